"""A materialization killed with SIGKILL in extract, normalize or load, then run again.

The killed run leaves its dlt working folder behind with a pending package that nothing will
load (a new run has a folder of its own); the re-run extracts the window again and the merge
keeps exactly one row per conversation.
"""

import os
import signal
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.environment import database_of, project_env
from conversation_assets_tests.support.helpers import month_window, query
from conversation_assets_tests.support.materialize import (
    materialize_in_process,
    start_materialize,
)
from dixa_sandbox import Fault, SandboxData, SandboxServer

APRIL = month_window("2024-04-01")
NOW_MS = month_window("2024-06-01").start_ms
PIPELINE = "dixa_conversation_export"


def pipeline_dirs(runs_dir: Path) -> list[Path]:
    return list(runs_dir.glob(f"*/{PIPELINE}"))


def has(runs_dir: Path, pattern: str) -> bool:
    return any(any(folder.glob(pattern)) for folder in pipeline_dirs(runs_dir))


#: How normalize and load show in a run's dlt working folder (dlt's own layout).
PHASES: dict[str, Callable[[Path], bool]] = {
    "normalize": lambda runs: has(runs, "load/new/*"),
    "load": lambda runs: has(runs, "load/normalized/*/started_jobs/*")
    or has(runs, "load/normalized/*/completed_jobs/*"),
}


def in_phase(phase: str, runs_dir: Path, sandbox: SandboxServer) -> bool:
    """Extract: the body is streaming (and held by the stall); later phases: dlt's folders."""
    if phase == "extract":
        return any(request.status == 200 for request in sandbox.requests)
    return PHASES[phase](runs_dir)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["extract", "normalize", "load"])
def test_a_killed_materialization_is_completed_by_the_next_run(
    phase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = SandboxData(per_day=1500, data_start=date(2024, 2, 1))
    runs_dir = tmp_path / "dlt_runs"
    (tmp_path / "home").mkdir()
    with SandboxServer(token=TOKEN, data=data, now=NOW_MS) as sandbox:
        env = project_env(
            tmp_path,
            token=TOKEN,
            base_url=sandbox.url,
            DAGSTER_HOME=str(tmp_path / "home"),
            DIXA_START_DATE="2024-01-01",
            DIXA_DLT_RUNS_DIR=str(runs_dir),
        )
        database = database_of(env)
        if phase == "extract":  # hold the body half-way so the kill lands inside extract
            sandbox.inject(Fault.stall(after_bytes=2_000_000, delay_seconds=120))
        process = start_materialize(env, "2024-04-01", tmp_path / "killed.log", new_session=True)
        deadline = time.monotonic() + 240
        while not in_phase(phase, runs_dir, sandbox):
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"never saw the {phase} phase"
            time.sleep(0.005)
        # The whole process group, as when a worker is OOM-killed or its pod is evicted: the
        # step runs in a child process of the CLI (Dagster's multiprocess executor).
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        sandbox.clear_faults()

        for name in (
            "DIXA_API_TOKEN",
            "DIXA_BASE_URL",
            "DESTINATION__DUCKDB__CREDENTIALS",
            "DIXA_DLT_RUNS_DIR",
        ):
            monkeypatch.setenv(name, env[name])
        with DagsterInstance.ephemeral() as instance:
            rerun = materialize_in_process("2024-04-01", instance, raise_on_error=True)
        assert rerun.success

        expected = data.expected_ids(APRIL.start_ms, APRIL.end_ms, NOW_MS)
    total, distinct = query(
        database, "SELECT COUNT(*), COUNT(DISTINCT id) FROM dixa.conversation_export"
    )[0]
    assert total == distinct == len(expected)
    orphans = query(
        database,
        "SELECT COUNT(*) FROM dixa.conversation_export__tags t "
        "LEFT JOIN dixa.conversation_export c ON t._dlt_root_id = c._dlt_id WHERE c.id IS NULL",
    )[0][0]
    assert orphans == 0
