"""The project's settings as environment variables of a child process, named in one place.

Tests that start the CLI, the daemon or the webserver hand them this environment: the API
(the sandbox's URL and token) and every folder the project writes (the DuckDB file, dlt's
working folders) under one test folder, on top of the test's own environment.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where :func:`project_env` puts the DuckDB file, under the folder it is given.
DATABASE_NAME = "conversations.duckdb"


def project_env(folder: Path, *, token: str, base_url: str, **settings: str) -> dict[str, str]:
    """``os.environ`` without ``DESTINATION`` (DuckDB then), the API and folders under ``folder``.

    ``settings`` (e.g. ``DIXA_START_DATE="2024-01-01"``, ``DAGSTER_HOME=...``) come last and win.
    """
    env = {key: value for key, value in os.environ.items() if key != "DESTINATION"}
    env.update(
        DIXA_API_TOKEN=token,
        DIXA_BASE_URL=base_url,
        DESTINATION__DUCKDB__CREDENTIALS=str(folder / DATABASE_NAME),
        DIXA_DLT_RUNS_DIR=str(folder / "dlt_runs"),
    )
    env.update(settings)
    return env


def database_of(env: dict[str, str]) -> Path:
    """The DuckDB file a run with ``env`` writes."""
    return Path(env["DESTINATION__DUCKDB__CREDENTIALS"])
