"""A message materialization killed with SIGKILL mid-extract, then run again (issue 12).

As for conversations (``test_crash.py``): the killed run commits nothing and leaves its dlt
folder behind; the re-run, the same command, extracts the month again, and every message table
then holds exactly the month's messages (the oracle, ``support/messages.py``).
"""

import os
import signal
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.environment import database_of, project_env
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.materialize import DEFINITIONS_MODULE
from conversation_assets_tests.support.messages import (
    describe,
    findings_against,
    load_messages,
    read_messages,
    served_in,
)
from conversation_assets_tests.support.processes import venv_executable
from dixa_sandbox import Fault, SandboxData, SandboxServer

MARCH = month_window("2024-03-01")
NOW_MS = month_window("2024-06-01").start_ms


def materialize(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``dagster asset materialize`` of April's messages, leading a process group of its own."""
    command = [
        venv_executable("dagster"),
        *("asset", "materialize", "-m", DEFINITIONS_MODULE),
        *("--select", "dixa/message_export", "--partition", "2024-04-01"),
    ]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.mark.slow
def test_a_message_materialization_killed_mid_extract_is_completed_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = SandboxData(per_day=100, data_start=date(2024, 1, 1))
    (tmp_path / "home").mkdir()
    with SandboxServer(token=TOKEN, data=data, now=NOW_MS) as sandbox:
        env = project_env(
            tmp_path,
            token=TOKEN,
            base_url=sandbox.url,
            DAGSTER_HOME=str(tmp_path / "home"),
            DIXA_START_DATE="2024-01-01",
            DIXA_BATCH_SIZE_DAYS="7",
        )
        database, runs_dir = database_of(env), Path(env["DIXA_DLT_RUNS_DIR"])
        for name in ("DIXA_API_TOKEN", "DIXA_BASE_URL", "DIXA_START_DATE", "DIXA_BATCH_SIZE_DAYS"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(database))
        monkeypatch.setenv("DIXA_DLT_RUNS_DIR", str(tmp_path / "march_runs"))
        monkeypatch.delenv("DESTINATION", raising=False)
        load_messages(MARCH, tmp_path / "march")  # a month already loaded must stay intact
        march = served_in(data, MARCH, NOW_MS)
        april = served_in(data, month_window("2024-04-01"), NOW_MS)
        sandbox.reset()

        # The second answer is held half-way: by then the first one went to dlt's extract.
        sandbox.inject(Fault.slow(0), Fault.stall(after_bytes=2_000_000, delay_seconds=120))
        process = materialize(env, tmp_path / "killed.log")
        deadline = time.monotonic() + 240
        while len([r for r in sandbox.requests if r.status == 200]) < 2:
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "never saw the second answer start"
            time.sleep(0.01)
        time.sleep(0.5)  # well inside the stall: the body is half sent
        # The whole process group, as when a worker is OOM-killed or its pod is evicted.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        sandbox.clear_faults()
        assert [r.status for r in sandbox.requests] == [200, 200]
        killed = list(runs_dir.glob("*/dixa_conversation_export"))
        assert killed, "the killed run left its dlt folder"
        findings = findings_against(database, march)
        assert not findings, "the killed run changed the tables: " + describe(findings)

        rerun = materialize(env, tmp_path / "rerun.log")
        assert rerun.wait(timeout=300) == 0, (tmp_path / "rerun.log").read_text()[-3000:]

    assert len(april) > 20_000
    findings = findings_against(database, march + april)
    assert not findings, describe(findings)
    loaded = read_messages(database)
    assert all(loaded.rows.get(f"message_export__{name}") for name in ("to", "cc"))
