"""Shared fixtures: the API sandbox on a free loopback port, and a DuckDB file per test."""

import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from conversation_assets.dixa.windows import to_ms
from dixa_sandbox import SandboxData, SandboxServer

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
TOKEN = "test-token-Zq8vX2"
#: The sandbox's clock in tests: mid-June 2024, so that Jan-May 2024 are complete months.
NOW = "2024-06-15T12:00:00Z"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox serving 20 conversations a day from 2023-10-01, clock fixed at ``NOW``."""
    now_ms = to_ms(datetime.fromisoformat(NOW))
    data = SandboxData(per_day=20, data_start=date(2023, 10, 1))
    with SandboxServer(token=TOKEN, data=data, now=now_ms) as server:
        yield server


@pytest.fixture(params=["arrow", "json"])
def extract_format(request: pytest.FixtureRequest) -> str:
    """Both load paths: the Arrow fast path (default) and dlt's normalizer (the reference)."""
    return request.param


@pytest.fixture
def dixa_env(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extract_format: str
) -> dict[str, str]:
    """Environment for a run against the sandbox into a fresh DuckDB file."""
    env = {
        "DIXA_EXTRACT_FORMAT": extract_format,
        "DIXA_API_TOKEN": TOKEN,
        "DIXA_BASE_URL": sandbox.url,
        "DIXA_START_DATE": "2024-01-01",
        "DIXA_RETRY_BACKOFF_SECONDS": "0",
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "conversations.duckdb"),
        "DIXA_DLT_RUNS_DIR": str(tmp_path / "dlt_runs"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DESTINATION", raising=False)
    return env


@pytest.fixture(scope="session")
def postgres() -> Iterator[dict[str, str]]:
    """A real PostgreSQL server on a free loopback port (``scripts/postgres-up.sh``).

    The script installs Debian's server when it can; when it cannot (exit 3) the Postgres tests
    are skipped with its reason. Yields the ``PG*``, ``DAGSTER_PG_*`` and dlt variables.
    """
    # Not under pytest's private tmp folder: the server runs as the postgres OS user.
    data_dir = Path(tempfile.gettempdir()) / f"conversation-assets-pg-{os.getpid()}"
    env = {**os.environ, "PGDATA_DIR": str(data_dir)}
    env.pop("PGPORT", None)
    up = subprocess.run(
        ["bash", str(SCRIPTS / "postgres-up.sh")], env=env, capture_output=True, text=True
    )
    if up.returncode == 3:
        pytest.skip(f"PostgreSQL is not available: {up.stderr.strip().splitlines()[-1]}")
    assert up.returncode == 0, up.stderr
    variables = dict(
        pair.split("=", 1)
        for line in up.stdout.splitlines()
        if line.startswith("export ")
        for pair in shlex.split(line[len("export ") :])
    )
    try:
        yield variables
    finally:
        subprocess.run(
            ["bash", str(SCRIPTS / "postgres-down.sh")], env=env, capture_output=True, check=False
        )
