"""Shared fixtures: the API sandbox on a free loopback port, and a DuckDB file per test."""

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from conversation_assets.dixa.windows import to_ms
from conversation_assets.sandbox import SandboxData, SandboxServer

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
