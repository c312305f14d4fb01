"""One partition run two ways, without Dagster and under Dagster, seen as a user sees a run.

Both ways read every setting from the environment (as a deployment does) and report the same
:class:`Outcome`: whether the run succeeded, its error text, the requests and retries it reports
(``RequestStats`` without Dagster, the materialization's metadata under Dagster), and what it
logged. :class:`PipelineSpy` (a dlt tracking module) notes which dlt pipelines really ran: their
working folder and the file format the extract step wrote.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, Definitions
from dlt.pipeline import trace as dlt_trace

from conversation_assets import load
from conversation_assets.config import Config
from conversation_assets.definitions import build_definitions
from conversation_assets.defs.automation import job_name
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets_tests.support.oracle_scenarios import ExtractFormats

JOB_NAME = job_name(CONVERSATION_EXPORT)
WITHOUT_DAGSTER = "without Dagster"
UNDER_DAGSTER = "under Dagster"
WAYS = (WITHOUT_DAGSTER, UNDER_DAGSTER)


@dataclass
class Outcome:
    """What one run showed: success or its error, its request counts, its log."""

    way: str
    ok: bool
    error: str = ""
    requests: int | None = None
    retries: int | None = None
    conversations: int | None = None
    log: str = ""
    seconds: float = 0.0
    run_id: str = ""

    def everything(self) -> str:
        """Every text the run showed: to prove something is not in any of it."""
        return f"{self.error}\n{self.log}"


def month_of(key: str) -> Window:
    """The window of the monthly partition ``key`` (``YYYY-MM-01``): the whole month."""
    first = date.fromisoformat(key)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Window(to_ms(first), to_ms(following))


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def error_text(error: BaseException) -> str:
    """An exception and its causes, as one text."""
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def run_without_dagster(key: str, workdir: Path) -> Outcome:
    """``conversation_assets.load.load_window`` on the partition's month, settings from the env."""
    logger = logging.getLogger(f"two_ways.{workdir.name}.{time.monotonic_ns()}")
    handler = _Lines()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    started = time.monotonic()
    try:
        summary, stats = load.load_window(Config.from_env(), month_of(key), workdir, logger)
    except Exception as error:
        return Outcome(
            WITHOUT_DAGSTER,
            ok=False,
            error=error_text(error),
            log="\n".join(handler.lines),
            seconds=time.monotonic() - started,
        )
    return Outcome(
        WITHOUT_DAGSTER,
        ok=True,
        requests=stats.requests,
        retries=stats.retries,
        conversations=summary.conversations,
        log="\n".join(handler.lines),
        seconds=time.monotonic() - started,
    )


def run_under_dagster(
    key: str, instance: DagsterInstance, definitions: Definitions | None = None
) -> Outcome:
    """The definitions' job on partition ``key`` (default: the definitions built now)."""
    started = time.monotonic()
    job = (definitions or build_definitions()).resolve_job_def(JOB_NAME)
    result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False)
    seconds = time.monotonic() - started
    log = "\n".join(record.user_message for record in instance.all_logs(result.run_id))
    errors = [
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.is_failure and getattr(event.event_specific_data, "error", None)
    ]
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    return Outcome(
        UNDER_DAGSTER,
        ok=result.success,
        error="\n".join(errors),
        requests=metadata.get("requests"),
        retries=metadata.get("retries"),
        conversations=metadata.get("conversations_loaded"),
        log=log,
        seconds=seconds,
        run_id=result.run_id,
    )


class TwoWays:
    """Runs a partition ``way``; each call gets its own dlt folder or its own Dagster run."""

    def __init__(self, way: str, workdir: Path, instance: DagsterInstance) -> None:
        self.way = way
        self.workdir = workdir
        self.instance = instance
        self.calls = 0

    def __call__(self, key: str) -> Outcome:
        self.calls += 1
        if self.way == WITHOUT_DAGSTER:
            return run_without_dagster(key, self.workdir / f"run-{self.calls}")
        return run_under_dagster(key, self.instance)


class PipelineSpy(ExtractFormats):
    """Also notes each step's dlt working folder, and whether it existed at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.working_dirs: dict[str, bool] = {}

    def on_end_trace_step(self, trace: Any, step: Any, pipeline: Any, *rest: Any) -> None:
        self.working_dirs[pipeline.working_dir] = Path(pipeline.working_dir).is_dir()
        super().on_end_trace_step(trace, step, pipeline, *rest)


@contextmanager
def observing_pipelines() -> Iterator[PipelineSpy]:
    """A :class:`PipelineSpy` plugged into dlt for the block."""
    spy = PipelineSpy()
    dlt_trace.TRACKING_MODULES.append(spy)
    try:
        yield spy
    finally:
        dlt_trace.TRACKING_MODULES.remove(spy)


# A second process that opens a DuckDB file and keeps it open, as a notebook does.
_HOLDER = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(600)
"""


@contextmanager
def reader_holding(database: Path) -> Iterator[subprocess.Popen[str]]:
    """A reader process holding ``database`` open (read-only) until the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(database)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "holding"
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)
