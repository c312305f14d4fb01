"""Taking turns at the destination: only a load or a check holds it, and readers never fail a run.

A run downloads, parses and normalizes without touching the destination; then it takes the
destination's lock (DuckDB: a lock file next to the database file; Postgres: a dataset-wide
advisory lock) and opens one connection, held until the load (or the check) ends.

DuckDB lets one process at a time open a file for writing, and a reader in another process
(a notebook's ``duckdb.connect(path)``, even ``read_only=True``, a BI tool polling it) takes the
same OS lock. So the connection is opened with a bounded, logged retry: it names the file, the
holder's PID and what to do, and gives up after ``DIXA_DESTINATION_WAIT_SECONDS``.
"""

from __future__ import annotations

import fcntl
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo

from conversation_assets.config import Config
from conversation_assets.dixa.schema import TABLE_NAME
from conversation_assets.pipeline import LOADER_FILE_FORMAT, LoadSummary, summarize

DATASET_LOCK = "dixa"
#: First and longest pause between attempts to open a DuckDB file another process holds.
FIRST_PAUSE_SECONDS = 0.2
LONGEST_PAUSE_SECONDS = 5.0
READING_HELP = (
    "close that connection (or read a snapshot: `python -m conversation_assets.snapshot`, see "
    "'Reading the data while runs load' in the README)"
)
_PID = re.compile(r"\(PID (\d+)\)")


class DestinationBusy(RuntimeError):
    """The DuckDB file stayed held by another process for longer than the configured wait."""


def lock_conflict(error: BaseException) -> str | None:
    """DuckDB's "Could not set lock on file" message somewhere in ``error``'s chain, else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "Could not set lock on file" in str(current):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


def holder_pid(message: str) -> str:
    """The PID DuckDB names as the holder of the file's lock, or ``unknown``."""
    found = _PID.search(message)
    return found.group(1) if found else "unknown"


def retry_while_held(
    attempt: Callable[[], Any],
    path: Path,
    what: str,
    wait_seconds: float,
    log: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``attempt()`` until it does not fail on another process's lock of ``path``.

    Pauses grow from 0.2 s to 5 s (a reader that opens and closes the file every 0.3 s leaves
    gaps). Each wait is logged; after ``wait_seconds`` (``DIXA_DESTINATION_WAIT_SECONDS``) it
    raises :class:`DestinationBusy` naming the file, the holder's PID and what to do.
    """
    limit = wait_seconds
    started = time.monotonic()
    pause = FIRST_PAUSE_SECONDS
    logged_pid = None
    while True:
        try:
            return attempt()
        except Exception as error:
            message = lock_conflict(error)
            if message is None:
                raise
            pid = holder_pid(message)
            waited = time.monotonic() - started
            if waited >= limit:
                raise DestinationBusy(
                    f"Gave up {what} after waiting {waited:.0f} s: the DuckDB file {path} is held "
                    f"by another process (PID {pid}). DuckDB lets one process at a time open a "
                    f"file, and a reader holding it blocks every load. To go on: {READING_HELP}, "
                    "then re-run the partition; or raise DIXA_DESTINATION_WAIT_SECONDS "
                    f"(now {limit:g})."
                ) from None
            if log is not None and pid != logged_pid:
                log.warning(
                    f"Waiting {what}: the DuckDB file {path} is held by another process "
                    f"(PID {pid}); retrying for up to {limit:g} s (DIXA_DESTINATION_WAIT_SECONDS). "
                    f"To stop blocking runs: {READING_HELP}."
                )
                logged_pid = pid
            sleep(min(pause, max(limit - waited, 0.0)))
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)


@contextmanager
def destination_lock(pipeline: dlt.Pipeline, config: Config, log: Any = None) -> Iterator[None]:
    """Wait for the destination's turn among the project's own processes, and hold it.

    DuckDB: one writing process per file, so every load and check of a file takes its lock
    file (``<file>.lock``) in turn. Postgres: dlt creates and alters the dataset's tables in the
    load step, so two first loads at once collide (``relation ... already exists``, seen with
    three partitions): the load steps take turns on a dataset-wide advisory lock. Dagster's pool
    keeps most runs apart; this catches the rest (backfill runs carry no ``dagster/partition``
    tag, and a fresh instance may start several runs of one pool at once).
    """
    if pipeline.destination.destination_name != "duckdb":
        with advisory_lock(pipeline, DATASET_LOCK):
            yield
        return
    with duckdb_file_lock(config.duckdb_file, log):
        yield


@contextmanager
def duckdb_file_lock(path: Path, log: Any = None) -> Iterator[None]:
    """Hold ``<path>.lock`` (waits for it): the turn every load, check and snapshot takes."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log.info(f"Waiting for another load of {path} to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def extract_then_load(
    pipeline: dlt.Pipeline,
    source: Any,
    config: Config,
    log: Any = None,
    root_table: str = TABLE_NAME,
) -> tuple[LoadInfo, LoadSummary]:
    """dlt's ``run`` in its three steps, with only the load holding the destination.

    Extract (the download and parse) and normalize work in the run's own folder and never open
    the destination, so partitions do them at the same time. ``run`` would first sync the
    pipeline's state and schema from the destination (``restore_from_destination``): a run's
    folder is new and its window explicit (no incremental state), and the load step adds new
    columns itself, so the Arrow path skips it (its tables carry their types). dlt's normalizer
    (the JSON path) needs the stored schema to turn a value of another
    type into a variant column (``x__v_text``) instead of failing the load, so there the sync
    runs first, holding the destination for that moment.
    """
    if config.extract_format == "json":
        with hold_destination(pipeline, config, "to read the stored schema", log):
            pipeline.sync_destination()
        refuse_a_dataset_of_the_arrow_path(pipeline)
    pipeline.extract(source, loader_file_format=LOADER_FILE_FORMAT)
    pipeline.normalize()
    with hold_destination(pipeline, config, "to load", log):
        info = pipeline.load()
        info.raise_on_failed_jobs()
        summary = summarize(
            pipeline, root_table
        )  # what the tables hold now: read before letting go
    return info, summary


class DatasetLoadPathMismatch(RuntimeError):
    """The dataset was loaded with the other load path; dlt cannot merge the two layouts."""


def refuse_a_dataset_of_the_arrow_path(pipeline: dlt.Pipeline) -> None:
    """Fail before any request if the stored child tables are the Arrow path's (no parent).

    dlt's normalizer makes them nested tables of the root; the Arrow path, the default before
    2026-11-30, made them tables of their own, and dlt refuses to merge the two descriptions
    (``Cannot merge partial tables ... parent``), which says nothing about the cause.
    """
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    tables = schema.tables if schema is not None else {}
    own = sorted(
        name
        for name, table in tables.items()
        if name.startswith(f"{TABLE_NAME}__") and not table.get("parent")
    )
    if own:
        raise DatasetLoadPathMismatch(
            f"Dataset {pipeline.dataset_name!r} was loaded with DIXA_EXTRACT_FORMAT=arrow (its "
            f"child tables {', '.join(own[:3])}... are tables of their own), but this run uses "
            "the json path (the default since 2026-11-30), whose child tables are dlt nested "
            "tables. Either set DIXA_EXTRACT_FORMAT=arrow to keep loading this dataset, or drop "
            f"the dataset's {TABLE_NAME}* tables and dlt's _dlt_* tables (or use a new DuckDB "
            "file) and reload the partitions."
        )


@contextmanager
def hold_destination(
    pipeline: dlt.Pipeline, config: Config, what: str, log: Any = None
) -> Iterator[Any]:
    """The destination's lock and an open SQL client, for one load or one check.

    On DuckDB the client's connection keeps the file open for the whole block: dlt's own
    connections in this process share it, so no reader can slip in between two of them.
    """
    with destination_lock(pipeline, config, log):
        client = pipeline.sql_client()
        if pipeline.destination.destination_name == "duckdb":
            wait = config.destination_wait_seconds
            retry_while_held(client.open_connection, config.duckdb_file, what, wait, log)
        else:
            client.open_connection()
        try:
            yield client
        finally:
            client.close_connection()


@contextmanager
def advisory_lock(pipeline: dlt.Pipeline, name: str) -> Iterator[None]:
    """Hold the Postgres advisory lock named ``name`` (waits for it), on its own connection."""
    with pipeline.sql_client() as client:
        client.execute_sql("SELECT pg_advisory_lock(hashtext(%s))", name)
        try:
            yield
        finally:
            client.execute_sql("SELECT pg_advisory_unlock(hashtext(%s))", name)
