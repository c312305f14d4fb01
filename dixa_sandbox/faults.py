"""Fault injection: how the sandbox misbehaves on purpose, one queued fault per request.

Each export request (``conversation_export`` or ``message_export``) that passes auth and
validation consumes the first fault queued for it (``SandboxServer.inject(..., endpoint=...)``
aims faults at one endpoint; by default any export request takes them); a fault with
``times=n`` applies to the next ``n`` such requests.

CLI specs (``Fault.parse``): ``429x3:retry_after=1``, ``503x2``, ``500:message=boom``,
``slow:2.5``, ``stall:5000:2.5``, ``cutoff:5000``, ``reset:5000``, ``invalid_json``, ``object``,
``redirect:http://elsewhere/v1/conversation_export``. ``xN`` after the name repeats a fault N times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus

STATUS = "status"  # answer `status` with a JSON error body (and Retry-After when given)
SLOW = "slow"  # sleep `delay` seconds before sending headers, then answer normally
STALL = "stall"  # send `after_bytes` of the body, sleep `delay` seconds, then finish it
CUT_OFF = "cut_off"  # send `after_bytes` of the body, then close without the final chunk
RESET = "reset"  # send `after_bytes` of the body, then close with a TCP RST
INVALID_JSON = "invalid_json"  # 200 with a body that is not JSON
OBJECT_BODY = "object_body"  # 200 with a JSON object instead of the root array
REDIRECT = "redirect"  # 302 to `message` (the Location)

KINDS = (STATUS, SLOW, STALL, CUT_OFF, RESET, INVALID_JSON, OBJECT_BODY, REDIRECT)
#: Kinds that act part-way through a normal, streamed 200 answer.
BODY_KINDS = (STALL, CUT_OFF, RESET)

_DEFAULT_MESSAGES = {
    429: "API limit has been reached",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
_SPEC_HEAD = re.compile(r"(?P<name>[a-z_]+?|[0-9]{3})(?:x(?P<times>[0-9]+))?", re.ASCII)
_SPEC_NAMES = {
    "slow": SLOW,
    "stall": STALL,
    "cutoff": CUT_OFF,
    "cut_off": CUT_OFF,
    "reset": RESET,
    "invalid_json": INVALID_JSON,
    "object": OBJECT_BODY,
    "object_body": OBJECT_BODY,
    "redirect": REDIRECT,
}


@dataclass(frozen=True)
class Fault:
    """One kind of misbehaviour, applied to the next ``times`` export requests."""

    kind: str
    status: int = 0
    times: int = 1
    retry_after: float | None = None
    delay: float = 0.0
    after_bytes: int = 0
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.times < 1:
            raise ValueError("times must be at least 1")

    @classmethod
    def status_code(
        cls, code: int, times: int = 1, retry_after: float | None = None, message: str = ""
    ) -> Fault:
        """Answer ``code`` with ``{"message": ...}`` (and ``Retry-After`` when given)."""
        return cls(STATUS, status=code, times=times, retry_after=retry_after, message=message)

    @classmethod
    def slow(cls, delay_seconds: float, times: int = 1) -> Fault:
        """Sleep before sending the headers, then answer normally."""
        return cls(SLOW, times=times, delay=delay_seconds)

    @classmethod
    def stall(cls, after_bytes: int, delay_seconds: float, times: int = 1) -> Fault:
        """Send ``after_bytes`` of the body, sleep, then send the rest."""
        return cls(STALL, times=times, delay=delay_seconds, after_bytes=after_bytes)

    @classmethod
    def cut_off(cls, after_bytes: int, times: int = 1) -> Fault:
        """Send ``after_bytes`` of a valid body, then close without the terminating chunk."""
        return cls(CUT_OFF, times=times, after_bytes=after_bytes)

    @classmethod
    def reset(cls, after_bytes: int, times: int = 1) -> Fault:
        """Send ``after_bytes`` of the body, then close with a TCP RST."""
        return cls(RESET, times=times, after_bytes=after_bytes)

    @classmethod
    def invalid_json(cls, times: int = 1) -> Fault:
        """Answer 200 with a truncated, invalid JSON body."""
        return cls(INVALID_JSON, times=times)

    @classmethod
    def object_body(cls, times: int = 1) -> Fault:
        """Answer 200 with ``{"message": "not an array"}`` instead of an array."""
        return cls(OBJECT_BODY, times=times)

    @classmethod
    def redirect(cls, location: str, times: int = 1) -> Fault:
        """Answer 302 with ``Location: location``."""
        return cls(REDIRECT, status=302, times=times, message=location)

    @property
    def error_message(self) -> str:
        """The ``message`` of a status fault's JSON body."""
        if self.message:
            return self.message
        return _DEFAULT_MESSAGES.get(self.status) or _phrase(self.status)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """A fault from a CLI spec such as ``429x3:retry_after=1`` or ``cutoff:5000``."""
        head, _, rest = spec.strip().partition(":")
        match = _SPEC_HEAD.fullmatch(head)
        if not match:
            raise ValueError(f"invalid fault spec {spec!r}")
        name, times = match["name"], int(match["times"] or 1)
        if name == "redirect":
            return cls.redirect(rest, times)
        args = rest.split(":") if rest else []
        options = dict(arg.split("=", 1) for arg in args if "=" in arg)
        numbers = [float(arg) for arg in args if "=" not in arg]
        try:
            if name.isdigit():
                retry_after = options.get("retry_after")
                return cls.status_code(
                    int(name),
                    times,
                    float(retry_after) if retry_after is not None else None,
                    options.get("message", ""),
                )
            kind = _SPEC_NAMES[name]
            if kind == SLOW:
                return cls.slow(numbers[0], times)
            if kind == STALL:
                return cls.stall(int(numbers[0]), numbers[1], times)
            if kind in (CUT_OFF, RESET):
                return cls(kind, times=times, after_bytes=int(numbers[0]))
            return cls(kind, times=times)
        except (KeyError, IndexError) as error:
            raise ValueError(f"invalid fault spec {spec!r}") from error


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
