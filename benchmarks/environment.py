"""The environment of a measured process: the caller's shell without the settings that would
change it, and a fresh DAGSTER_HOME (the test support's, or one without storage)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conversation_assets_tests.support.dagster_deployment import (
    LOCAL_INSTANCE_CONFIG,
    make_dagster_home,
)

#: Variables of the caller's shell that would change what a contender does.
STRIPPED_ENV_PREFIXES = (
    "DIXA_",
    "DESTINATION",
    "DAGSTER_",
    "RUNTIME__",
    "EXTRACT__",
    "NORMALIZE__",
    "LOAD__",
    "DATA_WRITER__",
    "SOURCES__",
)


#: ``--set NAME=VALUE``: variables every contender gets (a setting compared in one session).
CONTENDER_ENV: dict[str, str] = {}


def clean_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without settings that would change a contender, plus ``extra``
    and ``--set``'s variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(STRIPPED_ENV_PREFIXES)
    }
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**env, "TMPDIR": str(tmp), **extra, **CONTENDER_ENV}


def dagster_home(workdir: Path, create_storage: bool = True, config: Path | None = None) -> Path:
    """``workdir/dagster_home`` with ``config`` (default: the project's local instance
    config); its SQLite storage created (untimed) unless ``create_storage`` is false
    (``--fresh-instance``)."""
    config = config or LOCAL_INSTANCE_CONFIG
    if create_storage:
        return make_dagster_home(workdir, config)
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(config, home / "dagster.yaml")
    return home
