"""The token appears nowhere: not in output, Dagster's storage, metadata, files or the data."""

from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.environment import project_env
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.materialize import materialize_by_cli
from dixa_sandbox import Fault, SandboxData, SandboxServer

NOW_MS = month_window("2024-06-01").start_ms


def files_containing(folder: Path, secret: bytes) -> list[str]:
    return [
        str(path) for path in folder.rglob("*") if path.is_file() and secret in path.read_bytes()
    ]


@pytest.mark.slow
def test_the_token_is_nowhere_after_a_failed_and_a_successful_run(tmp_path: Path) -> None:
    home, data_dir, logs = tmp_path / "dagster_home", tmp_path / "data", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    data = SandboxData(per_day=20, data_start=date(2024, 2, 1))
    with SandboxServer(token=TOKEN, data=data, now=NOW_MS) as sandbox:
        env = project_env(
            data_dir,
            token=TOKEN,
            base_url=sandbox.url,
            DAGSTER_HOME=str(home),
            DIXA_RETRY_BACKOFF_SECONDS="0",
        )
        sandbox.inject(Fault.status_code(500, times=4, message=f"echo {TOKEN}"))
        failed, failed_output = materialize_by_cli(env, "2024-04-01", logs / "failed.log")
        succeeded, succeeded_output = materialize_by_cli(env, "2024-04-01", logs / "ok.log")
    assert failed != 0
    assert "HTTP 500" in failed_output
    assert succeeded == 0, succeeded_output[-3000:]

    for output in (failed_output, succeeded_output):
        assert TOKEN not in output
    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            assert TOKEN not in repr(run.run_config) and TOKEN not in repr(run.tags)
            for record in instance.all_logs(run.run_id):
                assert TOKEN not in repr(record)
    secret = TOKEN.encode()
    assert files_containing(home, secret) == []  # event log, run storage, compute logs
    assert files_containing(data_dir, secret) == []  # the DuckDB file, dlt's working folders
