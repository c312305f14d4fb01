"""Helpers for the message tests (issue 12): load message windows, read and judge their tables.

What a month of messages must look like is computed from the sandbox's data alone (the oracle,
``oracle.py``, with ``root=MESSAGE_ROOT``), and compared with the destination row by row.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetCheckEvaluation, DagsterInstance, ExecuteInProcessResult

from conversation_assets import load
from conversation_assets.config import Config
from conversation_assets.definitions import build_definitions
from conversation_assets.dixa import RequestStats
from conversation_assets.dixa.endpoints import MESSAGE_EXPORT
from conversation_assets.dixa.windows import Window
from conversation_assets.pipeline import LoadSummary
from conversation_assets_tests.support import oracle
from conversation_assets_tests.support.oracle import MESSAGE_ROOT, Finding, Record
from dixa_sandbox import SandboxData, SandboxServer, ScriptedData

MESSAGE_JOB = "dixa_message_export_job"
CONVERSATION_JOB = "dixa_conversation_export_job"
DAILY_JOB = "dixa_daily_job"
ADVISORY_CHECK = "messages_of_known_conversations"


def load_messages(
    window: Window, workdir: Path, logger: Any = None
) -> tuple[LoadSummary, RequestStats]:
    """Load ``window`` of ``message_export`` with the pipeline (no Dagster), as configured."""
    return load.load_window(
        Config.from_env(), window, workdir, logger=logger, endpoint=MESSAGE_EXPORT
    )


def served_in(data: SandboxData | ScriptedData, window: Window, now_ms: int) -> list[Record]:
    """The messages the API holds with ``created_at`` in ``window`` (half-open), as served."""
    return list(data.iter_messages(window.start_ms, window.end_ms - 1, now_ms, True))


def served_pairs(server: SandboxServer, first_request: int = 0) -> list[tuple[Any, Any]]:
    """``(id, created_at)`` of every message served from request ``first_request`` on."""
    return [
        pair
        for request in server.requests[first_request:]
        if request.path.endswith(MESSAGE_ROOT)
        for pair in request.served
    ]


def duckdb_fetch(database: Path | str) -> oracle.Fetch:
    """The oracle's ``Fetch`` on a DuckDB file (nothing while the file does not exist)."""

    def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        if not Path(database).exists():
            return [], []
        with duckdb.connect(str(database), read_only=True) as connection:
            cursor = connection.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()

    return fetch


def message_tables(raw: dict[str, list[oracle.Row]]) -> dict[str, list[oracle.Row]]:
    """The ``message_export`` tables of a dataset read with :func:`oracle.read_raw`."""
    return {
        name: rows
        for name, rows in raw.items()
        if name == MESSAGE_ROOT or name.startswith(f"{MESSAGE_ROOT}__")
    }


def read_messages(database: Path | str) -> oracle.Loaded:
    """The message tables of ``database``, keyed by ``(id, index...)`` instead of dlt's ids."""
    return oracle.keyed(message_tables(oracle.read_raw(duckdb_fetch(database))))


def findings_against(database: Path | str, messages: Iterable[Record]) -> list[Finding]:
    """Every difference between the message tables and the tables of exactly ``messages``
    (rows, values, duplicate or orphan rows, and the data columns)."""
    messages = list(messages)
    loaded = read_messages(database)
    findings = oracle.compare(loaded, oracle.expected_tables(messages, MESSAGE_ROOT))
    bounds = oracle.column_bounds(messages, messages, MESSAGE_ROOT)
    return findings + oracle.compare_columns(loaded, bounds)


def describe(findings: list[Finding], limit: int = 20) -> str:
    kinds = sorted({finding.kind for finding in findings})
    listed = "\n".join(f"  {finding}" for finding in findings[:limit])
    return f"{len(findings)} finding(s) of class {kinds}\n{listed}"


def materialize(
    job: str, partition: str, instance: DagsterInstance, raise_on_error: bool = False
) -> ExecuteInProcessResult:
    """Run ``job`` of the project's definitions for one partition, in process."""
    return (
        build_definitions()
        .resolve_job_def(job)
        .execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=raise_on_error
        )
    )


def check_evaluations(
    result: ExecuteInProcessResult, asset: str = MESSAGE_ROOT
) -> dict[str, AssetCheckEvaluation]:
    """The run's check evaluations of ``dixa/<asset>``, by check name."""
    return {
        evaluation.check_name: evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key.path[-1] == asset
    }


def metadata_values(evaluation: AssetCheckEvaluation) -> dict[str, Any]:
    return {key: value.value for key, value in evaluation.metadata.items()}
