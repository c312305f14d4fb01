"""The sandbox API as a subprocess with an answer cache, and how many records it holds."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.settings import DATA_START, SEED, TOKEN
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, MESSAGE_EXPORT, Endpoint
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets_tests.support.processes import ManagedProcess, stop_process
from conversation_assets_tests.support.sandboxed_deployment import sandbox_command, start_sandbox
from dixa_sandbox import SandboxData

_LOG_LINE = re.compile(r"sandbox: GET (?P<target>\S+) (?P<status>\d+) (?P<bytes>\d+)B")


@dataclass
class Served:
    """What the sandbox answered to export requests (read from its log)."""

    requests: int = 0
    statuses: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)


class Sandbox:
    """The sandbox API as a subprocess on a free loopback port, with an answer cache.

    Started and stopped by the test support's helpers; its log is ``log_dir/sandbox.log``.
    """

    def __init__(
        self,
        per_day: int,
        now: str,
        cache_dir: Path,
        log_dir: Path,
        array_repeat: int = 1,
        extra_args: Sequence[str] = (),
        endpoint: Endpoint = CONVERSATION_EXPORT,
    ):
        self.command = sandbox_command(
            token=TOKEN,
            now=now,
            per_day=per_day,
            data_start=DATA_START,
            extra=(
                *("--seed", str(SEED), "--cache-dir", str(cache_dir)),
                *("--array-repeat", str(array_repeat), *extra_args),
            ),
        )
        self.log_dir = log_dir
        self.endpoint = endpoint
        self.process: ManagedProcess | None = None
        self.url = ""
        self._log_offset = 0

    def __enter__(self) -> Sandbox:
        self.process, self.url = start_sandbox(self.command, self.log_dir)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)

    @property
    def log_path(self) -> Path:
        assert self.process is not None, "the sandbox was not started"
        return self.process.log_path

    @property
    def export_url(self) -> str:
        return self.url + self.endpoint.path

    def prewarm(self, params: dict[str, int]) -> int:
        """Ask for ``params`` once so the cache file exists; return the body's size in bytes."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        size = 0
        with requests.get(
            self.export_url, params=params, headers=headers, stream=True, timeout=3600
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_content(1 << 20):
                size += len(chunk)
        # The sandbox logs a request just after its last byte: wait for that line, so that it
        # is not counted as the first contender's.
        deadline = time.monotonic() + 10
        while not self.served_since_last().requests and time.monotonic() < deadline:
            time.sleep(0.05)
        return size

    def served_since_last(self) -> Served:
        """Export requests logged since the last call (the sandbox logs once a request ends)."""
        served = Served()
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._log_offset += len(complete)
        text = complete.decode(errors="replace")
        for match in _LOG_LINE.finditer(text):
            if f"/{self.endpoint.path}" not in match["target"]:
                continue
            served.requests += 1
            served.statuses.append(int(match["status"]))
            served.bytes.append(int(match["bytes"]))
            served.targets.append(match["target"])
        return served


def now_ms(text: str) -> int:
    """An ISO timestamp with offset in ms since the epoch."""
    return to_ms(datetime.fromisoformat(text).astimezone(UTC))


#: Messages a conversation has on average with the sandbox's default of 3-15: the first guess.
MESSAGES_PER_CONVERSATION = 9


def expected_records(
    per_day: int, window: Window, sandbox_now: str, endpoint: Endpoint = CONVERSATION_EXPORT
) -> int:
    """How many records of ``endpoint`` the sandbox has in ``window`` (half-open; conversations:
    current versions)."""
    data = SandboxData(per_day=per_day, data_start=DATA_START, seed=SEED)
    return data.expected_count(endpoint.name, window.start_ms, window.end_ms, now_ms(sandbox_now))


def calibrate(
    size: int, window: Window, sandbox_now: str, endpoint: Endpoint = CONVERSATION_EXPORT
) -> tuple[int, int]:
    """``(per_day, records)`` so that ``window`` holds about ``size`` records of ``endpoint``.

    Starts at ``size / days`` conversations a day (over the messages a conversation has, for
    messages) and corrects once or twice for the records that move into the window from
    earlier months (second versions, late messages).
    """
    days = (window.end_ms - window.start_ms) / 86_400_000
    per_record = MESSAGES_PER_CONVERSATION if endpoint == MESSAGE_EXPORT else 1
    per_day = max(1, round(size / days / per_record))
    count = expected_records(per_day, window, sandbox_now, endpoint)
    for _ in range(2):
        better = max(1, round(per_day * size / max(count, 1)))
        if better == per_day:
            break
        per_day, count = better, expected_records(better, window, sandbox_now, endpoint)
    return per_day, count
