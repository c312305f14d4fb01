"""Readers never fail a run: another process holding the DuckDB file (a notebook, a BI tool).

Each reader is a real second process with ``duckdb.connect``; the runs are real Dagster runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from conversation_assets.config import ConfigError, destination_wait_seconds
from conversation_assets.defs.checks import DATA_QUALITY_CHECKS
from conversation_assets.destination import DestinationBusy, retry_while_held
from conversation_assets.snapshot import snapshot
from conversation_assets_tests.support.helpers import month_window, query, table_counts
from conversation_assets_tests.support.materialize import (
    check_only_in_process,
    materialize_in_process,
)
from dixa_sandbox import SandboxServer

# The reader: holds a connection for ``hold`` seconds (then exits), or, with ``every``, opens,
# queries and closes the file every ``every`` seconds until killed (as a BI tool polls).
READER = """
import sys, time, duckdb
path, read_only = sys.argv[1], sys.argv[2] == "ro"
hold, every = float(sys.argv[3]), float(sys.argv[4])
if every:
    print("polling", flush=True)
    while True:
        try:
            with duckdb.connect(path, read_only=read_only) as connection:
                connection.execute("SELECT COUNT(*) FROM dixa.conversation_export").fetchall()
        except duckdb.Error:
            pass  # a load holds the file right now: the reader's own problem
        time.sleep(every)
connection = duckdb.connect(path, read_only=read_only)
print("holding", flush=True)
time.sleep(hold)
"""


@contextmanager
def reader(
    database: str, *, read_only: bool = True, hold: float = 0.0, every: float = 0.0
) -> Iterator[subprocess.Popen[str]]:
    """A second process with the DuckDB file open; stopped (killed) when the block ends."""
    mode = "ro" if read_only else "rw"
    process = subprocess.Popen(
        [sys.executable, "-c", READER, database, mode, str(hold), str(every)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() in ("holding", "polling")
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


def warnings_of(instance: DagsterInstance, run_id: str) -> list[str]:
    return [record.user_message for record in instance.all_logs(run_id)]


def failure_text(result) -> str:
    return "\n".join(
        str(event.event_specific_data.error.to_string())
        for event in result.all_events
        if event.is_failure and event.event_specific_data.error
    )


def month_ids(sandbox: SandboxServer, month: int) -> set[int]:
    window = month_window(f"2024-{month:02d}-01")
    return sandbox.data.expected_ids(window.start_ms, window.end_ms, sandbox.now_ms)


@pytest.fixture
def loaded(
    sandbox: SandboxServer, dixa_env: dict[str, str], extract_format: str
) -> Iterator[tuple[DagsterInstance, str]]:
    """An instance and a DuckDB file holding March 2024 (the reader needs an existing file)."""
    if extract_format != "arrow":
        pytest.skip("the reader cases do not depend on the load path")
    with DagsterInstance.ephemeral() as instance:
        assert materialize_in_process("2024-03-01", instance).success
        yield instance, dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]


def test_a_run_waits_for_a_notebook_holding_the_file_and_names_its_pid(
    sandbox: SandboxServer, loaded: tuple[DagsterInstance, str]
) -> None:
    instance, database = loaded
    with reader(database, read_only=True, hold=8) as notebook:
        result = materialize_in_process("2024-04-01", instance)
    assert result.success, failure_text(result)
    messages = "\n".join(warnings_of(instance, result.run_id))
    assert f"the DuckDB file {database} is held by another process (PID {notebook.pid})" in (
        messages
    )
    assert "python -m conversation_assets.snapshot" in messages  # says what to do
    ids = {row[0] for row in query(database, "SELECT id FROM dixa.conversation_export")}
    assert ids == month_ids(sandbox, 3) | month_ids(sandbox, 4)


def test_a_reader_polling_every_0_3_s_fails_no_run_and_no_check(
    sandbox: SandboxServer, loaded: tuple[DagsterInstance, str]
) -> None:
    instance, database = loaded
    with reader(database, every=0.3):
        results = [
            materialize_in_process(key, instance)
            for key in ("2024-04-01", "2024-05-01", "2024-04-01")
        ]
    for result in results:
        assert result.success, failure_text(result)
        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(DATA_QUALITY_CHECKS) and all(check.passed for check in checks)
    ids = [row[0] for row in query(database, "SELECT id FROM dixa.conversation_export")]
    assert len(ids) == len(set(ids))
    assert set(ids) == month_ids(sandbox, 3) | month_ids(sandbox, 4) | month_ids(sandbox, 5)


def test_a_reader_that_never_lets_go_fails_the_run_after_the_limit_with_what_to_do(
    sandbox: SandboxServer,
    loaded: tuple[DagsterInstance, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance, database = loaded
    before = table_counts(database)
    monkeypatch.setenv("DIXA_DESTINATION_WAIT_SECONDS", "2")
    sandbox.reset()
    with reader(database, read_only=False, hold=600) as notebook:
        result = materialize_in_process("2024-04-01", instance)
    assert not result.success
    # The file was held from before the run started: the run still downloaded its month (only
    # the load step needs the file; dlt's state sync would have opened it first).
    april = month_window("2024-04-01")
    served = [r for r in sandbox.requests if r.path.endswith("conversation_export")]
    assert served and all(r.status == 200 for r in served)
    assert int(served[-1].query["updated_before"]) == april.end_ms
    text = failure_text(result)
    assert f"the DuckDB file {database} is held by another process (PID {notebook.pid})" in text
    assert "DIXA_DESTINATION_WAIT_SECONDS" in text and "re-run the partition" in text
    assert "internet connection" not in text and "configured the credentials" not in text
    assert table_counts(database) == before, "nothing of April was committed"


def test_checks_wait_for_a_reader_too(
    sandbox: SandboxServer, loaded: tuple[DagsterInstance, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that takes the file between the load and the checks: the checks wait for it."""
    instance, database = loaded
    monkeypatch.setenv("DIXA_DESTINATION_WAIT_SECONDS", "2")
    with reader(database, read_only=True, hold=600) as notebook:
        result = check_only_in_process("2024-03-01", instance)
    assert not result.success
    text = failure_text(result)
    assert "Gave up to run check no_duplicate_ids after waiting" in text or "Gave up to run" in text
    assert f"(PID {notebook.pid})" in text
    monkeypatch.setenv("DIXA_DESTINATION_WAIT_SECONDS", "120")
    with reader(database, read_only=True, hold=5):
        result = check_only_in_process("2024-03-01", instance)
    assert result.success, failure_text(result)
    assert len(result.get_asset_check_evaluations()) == len(DATA_QUALITY_CHECKS)
    assert any("is held by another process" in m for m in warnings_of(instance, result.run_id))


def test_an_analyst_reads_a_snapshot_while_runs_load(
    sandbox: SandboxServer, loaded: tuple[DagsterInstance, str], tmp_path: Path
) -> None:
    """The README's way to read without blocking: a snapshot, open as long as one likes."""
    instance, database = loaded
    copy = snapshot(tmp_path / "snapshot.duckdb")
    with duckdb.connect(str(copy), read_only=True) as notebook:  # held across the next run
        result = materialize_in_process("2024-04-01", instance)
        (march,) = notebook.execute("SELECT COUNT(*) FROM dixa.conversation_export").fetchone()
    assert result.success, failure_text(result)
    messages = "\n".join(warnings_of(instance, result.run_id))
    assert "held by another process" not in messages, "the snapshot never blocked the run"
    assert march == len(month_ids(sandbox, 3))
    fresh = snapshot(tmp_path / "snapshot.duckdb")
    assert table_counts(fresh) == table_counts(database)


def test_the_wait_is_validated_like_every_setting() -> None:
    assert destination_wait_seconds({}) == 600
    assert destination_wait_seconds({"DIXA_DESTINATION_WAIT_SECONDS": "30"}) == 30
    with pytest.raises(ConfigError, match="DIXA_DESTINATION_WAIT_SECONDS must be a number"):
        destination_wait_seconds({"DIXA_DESTINATION_WAIT_SECONDS": "-1"})


def test_the_retry_gives_up_naming_file_and_pid(tmp_path: Path) -> None:
    """DuckDB's own error from a second process, retried until the limit."""
    database = tmp_path / "held.duckdb"
    duckdb.connect(str(database)).close()
    pauses: list[float] = []
    with reader(str(database), read_only=False, hold=600) as holder:
        started = time.monotonic()
        with pytest.raises(DestinationBusy) as error:
            retry_while_held(
                lambda: duckdb.connect(str(database)),
                database,
                "to load",
                wait_seconds=1.0,
                sleep=lambda seconds: (pauses.append(seconds), time.sleep(seconds)),
            )
    assert f"(PID {holder.pid})" in str(error.value) and str(database) in str(error.value)
    assert len(pauses) >= 2 and time.monotonic() - started < 60
