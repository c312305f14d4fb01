"""The contenders: how each one is started, where its rows are counted, how it reports its time.

Each runs as its own subprocess with a fresh DuckDB file in its own folder; ``CONTENDERS`` keeps
the table's order.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.environment import clean_env, dagster_home
from benchmarks.files import bench_details
from benchmarks.settings import (
    BENCH_DIR,
    PARTITION_KEY,
    PROJECT_START_DATE,
    ROOT,
    SEED_TABLE,
    TOKEN,
    WINDOW_END,
    WINDOW_START,
    floor_table,
    project_table,
)
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, ENDPOINTS, Endpoint
from conversation_assets.dixa.windows import Window
from conversation_assets_tests.support.materialize import materialize_command

#: A contender's output (stdout and stderr) is ``<its folder>/output.log``.
OUTPUT_LOG = "output"


def output_log(workdir: Path) -> Path:
    """Where the contender run in ``workdir`` wrote its output."""
    return workdir / f"{OUTPUT_LOG}.log"


@dataclass(frozen=True)
class Case:
    """One size: the sandbox serving it and the window every contender loads."""

    size: int
    per_day: int
    #: Records of the endpoint the sandbox has in the window: every contender must load them all.
    records: int
    base_url: str
    window: Window
    body_bytes: int
    #: The endpoint loaded (``--endpoint``): ``conversation_export`` or ``message_export``.
    endpoint_name: str = CONVERSATION_EXPORT.name

    @property
    def endpoint(self) -> Endpoint:
        return ENDPOINTS[self.endpoint_name]

    @property
    def params(self) -> dict[str, int]:
        return self.endpoint.query_params(self.window)


@dataclass(frozen=True)
class Invocation:
    """How to start a contender and where to count what it loaded."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    database: Path
    table: str


def project_env(case: Case, workdir: Path, database: Path) -> dict[str, str]:
    """The DIXA_* settings and DuckDB destination of the project's two paths."""
    return clean_env(
        workdir,
        DIXA_API_TOKEN=TOKEN,
        DIXA_BASE_URL=case.base_url,
        DIXA_START_DATE=PROJECT_START_DATE,
        DESTINATION__DUCKDB__CREDENTIALS=str(database),
        DIXA_DLT_RUNS_DIR=str(workdir / "dlt_runs"),
    )


#: ``--fresh-instance``: time the first run on a new DAGSTER_HOME (its SQLite storage created by
#: the timed run) instead of a run on an instance that exists, as every run after the first.
FRESH_INSTANCE = False


def project_dagster(case: Case, workdir: Path) -> Invocation:
    """One partition materialized through Dagster's CLI (in process, no daemon)."""
    database = workdir / "conversations.duckdb"
    env = project_env(case, workdir, database)
    env["DAGSTER_HOME"] = str(dagster_home(workdir, create_storage=not FRESH_INSTANCE))
    argv = materialize_command(PARTITION_KEY, f"dixa/{case.endpoint_name}")
    return Invocation(argv, env, ROOT, database, project_table(case.endpoint_name))


def project_pipeline(case: Case, workdir: Path) -> Invocation:
    """The same window through ``python -m conversation_assets.load`` (no Dagster)."""
    database = workdir / "conversations.duckdb"
    argv = [
        sys.executable, "-m", "conversation_assets.load",
        "--start", WINDOW_START.isoformat(), "--end", WINDOW_END.isoformat(),
        "--endpoint", case.endpoint_name,
    ]  # fmt: skip
    env = project_env(case, workdir, database)
    return Invocation(argv, env, ROOT, database, project_table(case.endpoint_name))


def seed_rest_api(case: Case, workdir: Path) -> Invocation:
    """The seed's rest_api configuration with dlt's defaults, from an empty working folder."""
    database = workdir / "seed.duckdb"
    cwd = workdir / "cwd"
    cwd.mkdir()
    env = clean_env(workdir, DIXA_API_TOKEN=TOKEN, RUNTIME__DLTHUB_TELEMETRY="false")
    argv = [
        sys.executable, str(BENCH_DIR / "seed_rest_api.py"), "--base-url", case.base_url,
        "--after", str(case.params["updated_after"]),
        "--before", str(case.params["updated_before"]),
        "--database", str(database), "--pipelines-dir", str(workdir / "pipelines"),
    ]  # fmt: skip
    return Invocation(argv, env, cwd, database, SEED_TABLE)


def duckdb_floor(case: Case, workdir: Path) -> Invocation:
    """The same body streamed to a file and loaded with DuckDB's ``read_json``."""
    database = workdir / "floor.duckdb"
    env = clean_env(workdir, DIXA_API_TOKEN=TOKEN)
    argv = [
        sys.executable, str(BENCH_DIR / "duckdb_floor.py"),
        "--url", case.base_url + case.endpoint.path,
        "--after-parameter", case.endpoint.after_parameter,
        "--before-parameter", case.endpoint.before_parameter,
        "--after", str(case.params[case.endpoint.after_parameter]),
        "--before", str(case.params[case.endpoint.before_parameter]),
        "--table", case.endpoint_name,
        "--body", str(workdir / "body.json"), "--database", str(database),
    ]  # fmt: skip
    return Invocation(argv, env, workdir, database, floor_table(case.endpoint_name))


def on_the_arrow_path(
    contender: Callable[[Case, Path], Invocation],
) -> Callable[[Case, Path], Invocation]:
    """The same contender with ``DIXA_EXTRACT_FORMAT=arrow`` (the default is dlt's normalizer)."""

    def arrow_contender(case: Case, workdir: Path) -> Invocation:
        invocation = contender(case, workdir)
        return replace(invocation, env={**invocation.env, "DIXA_EXTRACT_FORMAT": "arrow"})

    arrow_contender.__doc__ = f"{contender.__doc__} (Arrow path)"
    return arrow_contender


CONTENDERS: dict[str, Callable[[Case, Path], Invocation]] = {
    "project_dagster": project_dagster,
    "project_pipeline": project_pipeline,
    "project_dagster_arrow": on_the_arrow_path(project_dagster),
    "project_pipeline_arrow": on_the_arrow_path(project_pipeline),
    "seed_rest_api": seed_rest_api,
    "duckdb_floor": duckdb_floor,
}


SEED_NOTES = (
    "seed_rest_api: the seed's `data_selector: \"data\"` finds nothing in the API's root array "
    '(dlt 1.31 loads 0 conversations without an error), so the benchmark uses `"$"`.',
    "seed_rest_api: the seed's `error_handler` block is not a dlt key: not applied.",
    "seed_rest_api: dlt's defaults (insert_values into DuckDB, default writer settings and "
    "normalize workers); run in an empty working folder so `.dlt/config.toml` does not apply; "
    "only telemetry is switched off.",
)
#: The contenders that load messages (``--endpoint message_export``): the Arrow path is
#: conversations-only (messages always take dlt's normalizer) and the seed configuration
#: describes conversations.
MESSAGE_CONTENDERS = ("project_dagster", "project_pipeline", "duckdb_floor")

FLOOR_NOTE = (
    "duckdb_floor: one table with LIST/STRUCT columns (no child tables, no merge): the floor, "
    "not a like-for-like load."
)


_STEP_SUCCESS = re.compile(
    r'STEP_SUCCESS - Finished execution of step "(?P<step>[^"]+)" in (?P<t>\S+)\.'
)
_LOAD_SECONDS = re.compile(r"retries, (?P<t>[0-9.]+) s;")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def dagster_duration(text: str) -> float:
    """Seconds of a Dagster duration such as ``786ms``, ``8.19s`` or ``1m0s``."""
    return sum(
        float(number) * _UNIT_SECONDS[unit]
        for number, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", text)
    )


def inner_timing(
    contender: str, workdir: Path, endpoint_name: str = CONVERSATION_EXPORT.name
) -> tuple[float | None, dict[str, Any]]:
    """The contender's own time for the load, without interpreter start-up and orchestration.

    ``project_dagster``: the asset step's duration from Dagster's log (all steps are listed in
    the details); ``project_pipeline``: the seconds ``conversation_assets.load`` prints; the two
    scripts: what they print on their ``BENCH`` line.
    """
    output = output_log(workdir)
    text = output.read_text(errors="replace") if output.exists() else ""
    if contender.startswith("project_dagster"):
        steps = {m["step"]: dagster_duration(m["t"]) for m in _STEP_SUCCESS.finditer(text)}
        return steps.get(f"dixa_{endpoint_name}"), {"step_seconds": steps}
    if contender.startswith("project_pipeline"):
        match = _LOAD_SECONDS.search(text)
        return (float(match["t"]) if match else None), {}
    details = bench_details(output) or {}
    if contender == "duckdb_floor" and "load_seconds" in details:
        return details["download_seconds"] + details["load_seconds"], details
    return details.get("seconds"), details
