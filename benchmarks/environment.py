"""The environment of a measured process: the caller's shell without the settings that would
change it, a fresh DAGSTER_HOME, and the console scripts of the driver's venv."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from benchmarks.settings import ROOT, VENV_BIN

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


def clean_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without settings that would change a contender, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(STRIPPED_ENV_PREFIXES)
    }
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**env, "TMPDIR": str(tmp), **extra}


def dagster_home(workdir: Path) -> Path:
    """A fresh DAGSTER_HOME with the project's local instance config."""
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    return home


def create_instance_storage(home: Path) -> None:
    """Create the instance's SQLite storage (runs, event-log index, schedules), untimed."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)


def venv_tool(name: str) -> str:
    """A console script of the driver's environment (the same venv as the driver)."""
    return str(VENV_BIN / name) if (VENV_BIN / name).exists() else name
