"""The sandbox HTTP server: the export endpoints as Dixa's exports API answers them.

- ``GET /v1/conversation_export`` (filter pair ``updated_after`` / ``updated_before``) and
  ``GET /v1/message_export`` (``created_after`` / ``created_before``): one code path, the
  endpoint is data (``endpoints.py``).
- ``Authorization: Bearer <token>`` is required (401 otherwise); ``GET /v1/health`` is open.
- The endpoint's filter pair is required, each bound milliseconds since the epoch or
  ``yyyy-MM-dd`` (UTC midnight); a span of more than 31 days is refused with 400.
- The answer is one JSON array at the root, streamed with chunked transfer encoding.
- Whether the bounds are exclusive or inclusive is undocumented, so it is a setting (``bounds``).
- A realistic API (off by default, :class:`Latency`): a time to first byte, a bandwidth, and a
  per-token rate limit (N export requests a minute; beyond it 429 with ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dixa_sandbox import faults
from dixa_sandbox.data import DAY_MS, GENERATOR_VERSION, Record, SandboxData
from dixa_sandbox.endpoints import BY_PATH, CONVERSATIONS, ENDPOINTS, Endpoint, endpoint_named
from dixa_sandbox.faults import Fault
from dixa_sandbox.scripted import ScriptedData

HEALTH_PATH = "/v1/health"
MAX_SPAN_MS = 31 * DAY_MS
BATCH_BYTES = 256 * 1024
BOUNDS = ("exclusive", "inclusive")

_MS = re.compile(r"[0-9]{1,15}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
_FILTER_PARAMETERS = tuple(name for e in ENDPOINTS for name in (e.after, e.before))


@dataclass
class RequestRecord:
    """One request as the server saw it (``status`` is 0 until the answer starts)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    #: ``(id, cursor)`` of each record served, in order (only with ``record_served``); the
    #: cursor is the endpoint's: ``updated_at`` for conversations, ``created_at`` for messages.
    served: list[tuple[Any, Any]] = field(default_factory=list)


class BadRequest(ValueError):
    """A 400 answer; the text is the JSON ``message``."""


def parse_instant(name: str, query: dict[str, str]) -> int:
    """Query parameter ``name`` in ms: digits are ms, ``yyyy-MM-dd`` is that UTC midnight."""
    text = query.get(name)
    expected = "expected milliseconds since epoch or yyyy-MM-dd"
    if text is None:
        raise BadRequest(f"Missing parameter {name}: {expected}")
    if _MS.fullmatch(text):
        return int(text)
    if _DATE.fullmatch(text):
        with contextlib.suppress(ValueError):
            return SandboxData.day_start_ms(date.fromisoformat(text))
    raise BadRequest(f"Invalid parameter {name}: {expected}")


def parse_window(query: dict[str, str], endpoint: Endpoint = CONVERSATIONS) -> tuple[int, int]:
    """The endpoint's filter pair (e.g. ``updated_after``, ``updated_before``) in ms, validated
    as the API does."""
    after = parse_instant(endpoint.after, query)
    before = parse_instant(endpoint.before, query)
    if after >= before:
        raise BadRequest(f"{endpoint.after} must be before {endpoint.before}")
    if before - after > MAX_SPAN_MS:
        raise BadRequest(
            f"The interval between {endpoint.after} and {endpoint.before} cannot exceed 31 days"
        )
    return after, before


def json_array(records: Iterable[Record], batch_bytes: int = BATCH_BYTES) -> Iterator[bytes]:
    """``records`` as one JSON array, in UTF-8 blocks of about ``batch_bytes``."""
    parts: list[str] = []
    size, separator = 0, "["
    for record in records:
        text = _encode(record)
        parts += (separator, text)
        separator = ","
        size += len(text) + 1
        if size >= batch_bytes:
            yield "".join(parts).encode()
            parts, size = [], 0
    if separator == "[":
        parts.append("[")
    parts.append("]")
    yield "".join(parts).encode()


@dataclass(frozen=True)
class Latency:
    """How slow and how strict the API is; the defaults (all off) answer at once, unlimited.

    ``first_byte_seconds``: the wait before the answer's status line (a real export service
    builds a month's answer first). ``bytes_per_second``: the body's pace (0: unlimited).
    ``requests_per_minute``: export requests a token may make in any 60 s (0: unlimited); the
    next one gets 429 with ``Retry-After`` (whole seconds until a slot frees). Refused requests
    do not count.
    """

    first_byte_seconds: float = 0.0
    bytes_per_second: float = 0.0
    requests_per_minute: int = 0

    def __post_init__(self) -> None:
        if self.first_byte_seconds < 0 or self.bytes_per_second < 0:
            raise ValueError("first_byte_seconds and bytes_per_second must not be negative")
        if self.requests_per_minute < 0:
            raise ValueError("requests_per_minute must not be negative")


class RateLimiter:
    """A sliding 60 s window of accepted requests per token (the token itself is not kept)."""

    WINDOW_SECONDS = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._accepted: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, token: str) -> float:
        """0 if the request may go ahead (and count it); else the seconds until a slot frees."""
        if self.per_minute <= 0:
            return 0.0
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            now = self.clock()
            accepted = self._accepted.setdefault(key, deque())
            while accepted and accepted[0] <= now - self.WINDOW_SECONDS:
                accepted.popleft()
            if len(accepted) < self.per_minute:
                accepted.append(now)
                return 0.0
            return max(accepted[0] + self.WINDOW_SECONDS - now, 0.001)


class SandboxServer:
    """A local stand-in for the Dixa exports API; ``start()`` serves it from a daemon thread."""

    def __init__(
        self,
        token: str,
        data: SandboxData | ScriptedData | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bounds: str = "exclusive",
        now: int | None = None,
        cache_dir: Path | None = None,
        record_served: bool = False,
        latency: Latency | None = None,
    ):
        if bounds not in BOUNDS:
            raise ValueError(f"bounds must be one of {BOUNDS}")
        if cache_dir is not None and isinstance(data, ScriptedData):
            raise ValueError("cache_dir is for generated data: scripted data changes")
        self.token = token
        self.data = data or SandboxData()
        self.host = host
        self.bounds = bounds
        self.now_ms = now  # None: the wall clock
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        #: Keep ``(id, updated_at)`` of every record served in ``RequestRecord.served``
        #: (off by default: a benchmark serves millions; cached answers are not recorded).
        self.record_served = record_served
        self.latency = latency or Latency()
        self.rate_limiter = RateLimiter(self.latency.requests_per_minute)
        self.requests: list[RequestRecord] = []
        #: Records appended to every answer of an endpoint, by endpoint name.
        self.extras: dict[str, list[Record]] = {endpoint.name: [] for endpoint in ENDPOINTS}
        #: The conversations' extra records (``extras["conversation_export"]``).
        self.extra_records: list[Record] = self.extras[CONVERSATIONS.name]
        self._port = port
        self._faults: deque[list[Any]] = deque()  # [fault, uses left, endpoint name or None]
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind (``port=0`` picks a free port) and serve from a daemon thread."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self._port), self)
            self._port = self._httpd.server_address[1]
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="dixa-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:8765/v1/``."""
        return f"http://{self.host}:{self._port}/v1/"

    # -- test controls --------------------------------------------------------------------

    def inject(self, *injected: Fault, endpoint: Endpoint | str | None = None) -> None:
        """Queue faults; each export request consumes the first one queued for it.

        ``endpoint`` (an :class:`Endpoint` or its name): only that endpoint's requests consume
        these faults; ``None``: any export request does.
        """
        name = None if endpoint is None else endpoint_named(endpoint).name
        with self._lock:
            self._faults.extend([fault, fault.times, name] for fault in injected)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget requests, faults and extra records."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            for extra in self.extras.values():
                extra.clear()

    def _next_fault(self, endpoint: Endpoint) -> Fault | None:
        with self._lock:
            for queued in self._faults:
                if queued[2] in (None, endpoint.name):
                    queued[1] -= 1
                    if queued[1] == 0:
                        self._faults.remove(queued)
                    return queued[0]
            return None

    def _record(self, request: RequestRecord) -> None:
        with self._lock:
            self.requests.append(request)

    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    # -- answers ----------------------------------------------------------------------------

    def _body(
        self, endpoint: Endpoint, after: int, before: int, request: RequestRecord
    ) -> Iterator[bytes]:
        """The export answer's bytes: from the cache file when there is one."""
        now, inclusive = self._now(), self.bounds == "inclusive"
        extra = list(self.extras[endpoint.name])

        def generate() -> Iterator[bytes]:
            found = self.data.iter_records(endpoint, after, before, now, inclusive)
            records: Iterable[Record] = chain(found, extra)
            if self.record_served:
                records = _noting(records, endpoint, request.served)
            return json_array(records)

        if self.cache_dir is None:
            return generate()
        data = self.data
        assert isinstance(data, SandboxData)
        key = [GENERATOR_VERSION, after, before, now, self.bounds, extra, *data.cache_key(endpoint)]
        name = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:32]
        return _cached(self.cache_dir / f"{name}.json", generate)


def _noting(
    records: Iterable[Record], endpoint: Endpoint, served: list[tuple[Any, Any]]
) -> Iterator[Record]:
    """``records``, noting each one's ``(id, cursor)`` in ``served`` as it is sent."""
    for record in records:
        served.append((record.get(endpoint.key), record.get(endpoint.cursor)))
        yield record


def _cached(path: Path, generate: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
    """Stream ``path`` if it exists; otherwise stream ``generate()`` and save it as ``path``.

    The file is written under a temporary name and renamed only once the body is complete,
    so an interrupted answer never leaves a partial cache file.
    """
    if path.exists():
        with path.open("rb") as cached:
            while block := cached.read(BATCH_BYTES):
                yield block
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as out:
            for block in generate():
                out.write(block)
                yield block
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer):
        self.sandbox = sandbox
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _DISCONNECTS):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        self._request = RequestRecord("GET", url.path, query, dict(self.headers.items()))
        self._sent = 0
        sandbox = self.server.sandbox
        sandbox._record(self._request)
        try:
            self._route(sandbox, url.path.rstrip("/"), query)
        except _DISCONNECTS:
            self.close_connection = True
        finally:
            self._log(url.path, query)

    def _route(self, sandbox: SandboxServer, path: str, query: dict[str, str]) -> None:
        if path == HEALTH_PATH:
            return self._send_json(200, {"status": "ok"})
        endpoint = BY_PATH.get(path)
        if endpoint is None:
            return self._send_json(404, {"message": "Not found"})
        expected = f"Bearer {sandbox.token}".encode()
        if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), expected):
            return self._send_json(401, {"message": "Unauthorized"})
        try:
            after, before = parse_window(query, endpoint)
        except BadRequest as error:
            return self._send_json(400, {"message": str(error)})
        wait = sandbox.rate_limiter.admit(self.headers.get("Authorization", ""))
        if wait:
            retry_after = {"Retry-After": str(math.ceil(wait))}
            message = f"Rate limit of {sandbox.latency.requests_per_minute} requests a minute"
            return self._send_json(429, {"message": message}, retry_after)
        if sandbox.latency.first_byte_seconds:
            time.sleep(sandbox.latency.first_byte_seconds)
        fault = sandbox._next_fault(endpoint)
        if fault is None or fault.kind in faults.BODY_KINDS:
            return self._stream(sandbox._body(endpoint, after, before, self._request), fault)
        if fault.kind == faults.SLOW:
            time.sleep(fault.delay)
            return self._stream(sandbox._body(endpoint, after, before, self._request), None)
        if fault.kind == faults.STATUS:
            retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return self._send_json(fault.status, {"message": fault.error_message}, retry)
        if fault.kind == faults.REDIRECT:
            return self._send_json(302, {"message": "Found"}, {"Location": fault.message})
        if fault.kind == faults.OBJECT_BODY:
            return self._send_json(200, {"message": "not an array"})
        return self._send(200, b'[{"id": 1, "created_at": \x00garbage', {})  # INVALID_JSON

    # -- writing ----------------------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), headers or {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._start(status, {**headers, "Content-Length": str(len(body))})
        self.wfile.write(body)
        self._sent += len(body)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._request.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _stream(self, blocks: Iterator[bytes], fault: Fault | None) -> None:
        """A chunked 200; a body fault acts once ``fault.after_bytes`` have been sent."""
        self._start(200, {"Transfer-Encoding": "chunked"})
        self._body_started = time.monotonic()
        try:
            for block in blocks:
                if fault is not None and self._sent + len(block) >= fault.after_bytes:
                    cut = fault.after_bytes - self._sent
                    self._chunk(block[:cut])
                    if fault.kind != faults.STALL:
                        return self._break_off(fault)
                    time.sleep(fault.delay)
                    block, fault = block[cut:], None
                self._chunk(block)
            if fault is not None:  # the body was shorter than after_bytes
                if fault.kind != faults.STALL:
                    return self._break_off(fault)
                time.sleep(fault.delay)
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()  # a generator stopped early drops its partial cache file

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self._sent += len(data)
            self._pace()

    def _pace(self) -> None:
        """Hold the body to the configured bandwidth (sleep until the bytes sent are due)."""
        rate = self.server.sandbox.latency.bytes_per_second
        if rate:
            ahead = self._body_started + self._sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _break_off(self, fault: Fault) -> None:
        """End the connection mid-body: a plain close (cut-off) or a TCP RST (reset)."""
        self.close_connection = True
        if fault.kind == faults.RESET:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    # -- logging ----------------------------------------------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: ``_log`` writes one line per request once it is answered."""

    def _log(self, path: str, query: dict[str, str]) -> None:
        window = urlencode({k: query[k] for k in _FILTER_PARAMETERS if k in query})
        seconds = time.monotonic() - self._request.at
        target = f"{path}?{window}" if window else path
        sys.stderr.write(
            f"sandbox: GET {target} {self._request.status} {self._sent}B {seconds:.3f}s\n"
        )
