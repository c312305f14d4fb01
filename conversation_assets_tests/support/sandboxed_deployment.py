"""The API sandbox as a process, and a whole local deployment against it.

:func:`running_deployment` starts ``python -m dixa_sandbox`` on a free port, then
``dagster-webserver`` and ``dagster-daemon`` (:mod:`.dagster_deployment`) on a fresh
``DAGSTER_HOME`` and a fresh DuckDB file, all under one test folder. The tests that use it talk
to the webserver only (GraphQL or a browser), then compare the DuckDB file with what the
sandbox serves (:meth:`Setup.expected_ids`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from conversation_assets_tests.support.dagster_deployment import (
    PROJECT_DIR,
    DagsterDeployment,
    dagster_deployment,
    default_pool_limit,
    make_dagster_home,
)
from conversation_assets_tests.support.environment import database_of, project_env
from conversation_assets_tests.support.helpers import Window, to_ms
from conversation_assets_tests.support.processes import (
    ManagedProcess,
    start_process,
    stop_process,
    wait_for,
)
from dixa_sandbox import SandboxData

TOKEN = "e2e-token-Hk27pQ"
#: The sandbox's clock: mid-June 2024, so that January to May 2024 are complete months.
NOW = "2024-06-15T12:00:00Z"


def sandbox_command(
    *, token: str, now: str, per_day: int, data_start: date, extra: tuple[str, ...] = ()
) -> list[str]:
    """``python -m dixa_sandbox`` on a free port with the given data and clock."""
    return [
        sys.executable,
        *("-m", "dixa_sandbox", "--port", "0", "--token", token),
        *("--now", now, "--per-day", str(per_day), "--data-start", data_start.isoformat()),
        *extra,
    ]


def listening_url(log: str) -> str | None:
    """The URL in the sandbox's ``sandbox listening on URL`` line, once it is printed."""
    match = re.search(r"sandbox listening on (\S+)", log)
    return match.group(1) if match else None


def start_sandbox(args: list[str], log_dir: Path) -> tuple[ManagedProcess, str]:
    """Start the sandbox (``args`` from :func:`sandbox_command`); the process and its URL."""
    sandbox = start_process("sandbox", args, env=os.environ, cwd=PROJECT_DIR, log_dir=log_dir)
    try:
        url = wait_for(
            lambda: listening_url(sandbox.log_text()),
            what="the sandbox's listening line",
            timeout=60,
            watch=[sandbox],
            describe=sandbox.log_tail,
        )
    except BaseException:
        stop_process(sandbox)
        raise
    return sandbox, url


@dataclass
class Setup:
    """What a deployment serves and runs with.

    A test picks another than the default with ``@pytest.mark.parametrize("deployment",
    [Setup(...)], indirect=True)`` (the ``deployment`` fixture of ``system/conftest.py``).
    """

    per_day: int = 50
    data_start: date = date(2023, 10, 1)
    #: Extra environment of the webserver and the daemon (and so of code servers and runs).
    env: dict[str, str] = field(default_factory=dict)
    #: False: the daemon is not started with the rest but by the test (``start_daemon``).
    start_daemon: bool = True
    #: Extra arguments of the sandbox (e.g. its rate limit).
    sandbox_args: tuple[str, ...] = ()

    def expected_ids(self, window: Window) -> set[int]:
        """Ids the sandbox serves with ``updated_at`` in ``window`` as of its clock."""
        data = SandboxData(per_day=self.per_day, data_start=self.data_start)
        now_ms = to_ms(datetime.fromisoformat(NOW))
        return data.expected_ids(window.start_ms, window.end_ms, now_ms)


@dataclass
class SandboxedDeployment:
    """The running deployment (``dagster``), the sandbox's URL and the DuckDB file."""

    dagster: DagsterDeployment
    sandbox_url: str
    setup: Setup

    @property
    def database(self) -> Path:
        return database_of(self.dagster.env)

    def loaded_ids(self) -> list[int]:
        """Every ``id`` in the root table, duplicates included, read once no run holds the file."""

        def read() -> list[int] | None:
            try:
                with duckdb.connect(str(self.database), read_only=True) as connection:
                    rows = connection.execute("SELECT id FROM dixa.conversation_export").fetchall()
            except duckdb.IOException:  # a finished run's process may still be letting go of it
                return None
            return [row[0] for row in rows]

        return self.dagster.wait_for(read, "a read-only connection to the DuckDB file", 60)


@contextmanager
def running_deployment(setup: Setup, folder: Path) -> Iterator[SandboxedDeployment]:
    """Start the sandbox, the webserver and the daemon under ``folder``; stop them all on exit."""
    logs = folder / "logs"
    args = sandbox_command(
        token=TOKEN,
        now=NOW,
        per_day=setup.per_day,
        data_start=setup.data_start,
        extra=setup.sandbox_args,
    )
    sandbox, sandbox_url = start_sandbox(args, logs)
    try:
        home = make_dagster_home(folder)
        assert default_pool_limit(home) == 1, "deploy/dagster.local.yaml: pools of limit 1"
    except BaseException:
        stop_process(sandbox)
        raise
    settings = {
        "DAGSTER_HOME": str(home),
        "DIXA_START_DATE": "2024-01-01",
        "DIXA_RETRY_BACKOFF_SECONDS": "0",
        # Its catch-up runs of the wall clock's month would mix with the runs a test counts.
        "DIXA_FRESHNESS_SENSOR": "off",
        "PYTHONUNBUFFERED": "1",
        **setup.env,
    }
    env = project_env(folder, token=TOKEN, base_url=sandbox_url, **settings)
    with dagster_deployment(
        env, logs, daemon=setup.start_daemon, processes=[sandbox]
    ) as deployment:
        yield SandboxedDeployment(deployment, sandbox_url, setup)
