"""Helpers for tests that drive real processes: start, watch, wait for and stop them.

Every process starts in its own session, so that stopping it also stops the children it spawned
(Dagster's code servers and run workers) and nothing outlives the test. Output goes to a log file
whose tail is shown whenever something does not come up in time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: How often conditions are polled: often enough to be quick, rarely enough on a busy machine.
POLL_SECONDS = 1.0


@dataclass
class ManagedProcess:
    """A child process started by :func:`start_process`, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        """Everything the process has written so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log, headed by the process's name and state."""
        code = self.popen.poll()
        state = "running" if code is None else f"exited with {code}"
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- {self.name} (pid {self.pid}, {state}), {self.log_path} ---\n{tail}"


def venv_executable(name: str) -> str:
    """A console script of the running interpreter's environment (e.g. ``dagster-daemon``)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is not installed next to {sys.executable}")
    return str(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_process(
    name: str, args: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_dir: Path
) -> ManagedProcess:
    """Start ``args`` in a new session, stdout and stderr to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name, popen, log_path)


def stop_process(process: ManagedProcess, timeout: float = 30.0) -> None:
    """Stop a process and its children: SIGTERM to its group, then SIGKILL after ``timeout``.

    The group id is the process's own id (it leads a session of its own), so only the
    processes this test started are signalled.
    """
    group = process.pid
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.popen.wait(timeout=timeout)
    # Children (code servers, run workers) may outlive a leader that exited on SIGTERM.
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.popen.wait(timeout=10)


def wait_for(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    watch: Iterable[ManagedProcess] = (),
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``condition`` every second until it returns something other than None.

    Fails early if a process in ``watch`` exits, and after ``timeout`` seconds; either way the
    message ends with ``describe()`` (typically the tails of the logs).
    """
    watched = list(watch)
    deadline = time.monotonic() + timeout
    while True:
        for process in watched:
            if process.popen.poll() is not None:
                message = f"{process.name} exited while waiting for {what}"
                raise AssertionError(f"{message}\n{describe()}")
        result = condition()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{describe()}")
        time.sleep(POLL_SECONDS)


@contextmanager
def stopped_at_exit() -> Iterator[list[ManagedProcess]]:
    """A list to put started processes in; all stopped, newest first, when the block exits."""
    processes: list[ManagedProcess] = []
    try:
        yield processes
    finally:
        for process in reversed(processes):
            stop_process(process)


def http_json(url: str, timeout: float = 10.0) -> Any | None:
    """The JSON ``url`` answers with, or None while nothing answers there yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for_http(
    url: str,
    *,
    timeout: float,
    watch: Iterable[ManagedProcess] = (),
    describe: Callable[[], str] = lambda: "",
) -> Any:
    """Poll ``url`` until it answers with JSON; that JSON (fails like :func:`wait_for`)."""
    return wait_for(
        lambda: http_json(url), what=url, timeout=timeout, watch=watch, describe=describe
    )
