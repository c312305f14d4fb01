"""The token appears nowhere: not in output, Dagster's storage, metadata, files or the data."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.helpers import month_window
from dixa_sandbox import Fault, SandboxData, SandboxServer

NOW_MS = month_window(2024, 6).start_ms


def materialize(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("asset", "materialize", "-m", "conversation_assets.definitions"),
        *("--select", "dixa/conversation_export", "--partition", "2024-04-01"),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def files_containing(folder: Path, secret: bytes) -> list[str]:
    return [
        str(path) for path in folder.rglob("*") if path.is_file() and secret in path.read_bytes()
    ]


@pytest.mark.slow
def test_the_token_is_nowhere_after_a_failed_and_a_successful_run(tmp_path: Path) -> None:
    home, data_dir = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    data = SandboxData(per_day=20, data_start=date(2024, 2, 1))
    with SandboxServer(token=TOKEN, data=data, now=NOW_MS) as sandbox:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DIXA_API_TOKEN": TOKEN,
            "DIXA_BASE_URL": sandbox.url,
            "DIXA_RETRY_BACKOFF_SECONDS": "0",
            "DESTINATION__DUCKDB__CREDENTIALS": str(data_dir / "conversations.duckdb"),
            "DIXA_DLT_RUNS_DIR": str(data_dir / "dlt_runs"),
        }
        sandbox.inject(Fault.status_code(500, times=4, message=f"echo {TOKEN}"))
        failed = materialize(env)
        succeeded = materialize(env)
    assert failed.returncode != 0
    assert "HTTP 500" in failed.stdout + failed.stderr
    assert succeeded.returncode == 0, succeeded.stderr[-3000:]

    for output in (failed.stdout, failed.stderr, succeeded.stdout, succeeded.stderr):
        assert TOKEN not in output
    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            assert TOKEN not in repr(run.run_config) and TOKEN not in repr(run.tags)
            for record in instance.all_logs(run.run_id):
                assert TOKEN not in repr(record)
    secret = TOKEN.encode()
    assert files_containing(home, secret) == []  # event log, run storage, compute logs
    assert files_containing(data_dir, secret) == []  # the DuckDB file, dlt's working folders
