"""The dlt pipeline: destination, dataset, working folder and the writer settings that matter.

The destination is DuckDB unless ``DESTINATION`` says otherwise (``postgres``); credentials come
through dlt's own variables (``DESTINATION__DUCKDB__CREDENTIALS``,
``DESTINATION__POSTGRES__CREDENTIALS``) or ``.dlt/secrets.toml``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from conversation_assets.config import ConfigError

PIPELINE_NAME = "dixa_conversation_export"
DATASET_NAME = "dixa"
DEFAULT_DUCKDB_FILE = Path("data") / "conversations.duckdb"
SUPPORTED_DESTINATIONS = ("duckdb", "postgres")
# Parquet end to end: never dlt's insert_values for DuckDB (many times slower, huge memory).
LOADER_FILE_FORMAT = "parquet"
# DuckDB would take up to 80% of the machine's memory for a merge; capped, it spills to disk.
DUCKDB_CONFIG = {"memory_limit": "128MB", "preserve_insertion_order": False}


def destination_name(environ: Mapping[str, str] | None = None) -> str:
    """``DESTINATION``: ``duckdb`` (the default) or ``postgres``."""
    env = os.environ if environ is None else environ
    name = (env.get("DESTINATION") or "duckdb").strip().lower()
    if name not in SUPPORTED_DESTINATIONS:
        raise ConfigError(
            f"DESTINATION must be one of {', '.join(SUPPORTED_DESTINATIONS)}, got {name!r}."
        )
    return name


def duckdb_file(environ: Mapping[str, str] | None = None) -> Path:
    """The DuckDB file: ``DESTINATION__DUCKDB__CREDENTIALS`` or ``data/conversations.duckdb``."""
    env = os.environ if environ is None else environ
    return Path(env.get("DESTINATION__DUCKDB__CREDENTIALS") or DEFAULT_DUCKDB_FILE)


def make_destination(name: str | None = None, staging_suffix: str = "") -> Destination[Any, Any]:
    """A dlt destination object for ``name`` (default: from ``DESTINATION``).

    ``staging_suffix`` gives a load its own staging schema (``dixa_staging_<suffix>``): dlt
    empties the staging tables at the start of each load, so two loads running at once into one
    staging schema would lose each other's rows.
    """
    name = name or destination_name()
    layout = staging_layout(staging_suffix)
    if name == "duckdb":
        path = duckdb_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {**DUCKDB_CONFIG, "threads": duckdb_threads()}
        credentials = DuckDbCredentials(str(path), global_config=config)
        return dlt.destinations.duckdb(credentials=credentials, staging_dataset_name_layout=layout)
    return dlt.destinations.postgres(staging_dataset_name_layout=layout)


def duckdb_threads() -> int:
    """DuckDB threads per load job: dlt's load workers (``[load] workers``) share the cores.

    On 2 cores, 2 jobs of 2 threads each were slower (8.7 s vs 7.7 s at 200,000 conversations)
    and took more memory at 1,000,000 than 2 jobs of 1 thread.
    """
    workers = int(dlt.config.get("load.workers") or 20)  # dlt's default is 20
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def staging_layout(suffix: str) -> str:
    """dlt's ``staging_dataset_name_layout``: ``%s_staging`` or ``%s_staging_<suffix>``."""
    return "%s_staging" + (f"_{safe_identifier(suffix)}" if suffix else "")


def safe_identifier(text: str) -> str:
    """Letters, digits and underscores only: ``2024-03-01`` -> ``2024_03_01``."""
    return "".join(char if char.isalnum() else "_" for char in text.lower())


def make_pipeline(
    pipelines_dir: str | Path | None = None,
    destination: Destination[Any, Any] | None = None,
    staging_suffix: str = "",
) -> dlt.Pipeline:
    """The project's pipeline; ``pipelines_dir`` gives a run its own dlt working folder."""
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=None if pipelines_dir is None else str(pipelines_dir),
        destination=destination or make_destination(staging_suffix=staging_suffix),
        dataset_name=DATASET_NAME,
        progress="log" if os.environ.get("DIXA_PROGRESS") == "log" else None,
    )
    return pipeline


@dataclass
class LoadSummary:
    """What one load wrote: rows per table and the dlt load ids."""

    row_counts: dict[str, int] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)

    @property
    def conversations(self) -> int:
        return self.row_counts.get("conversation_export", 0)


def rows_of_load(pipeline: dlt.Pipeline, root_table: str, load_id: str) -> dict[str, int]:
    """Rows each table holds from one load, after dlt's merge: distinct conversations, not rows
    received (an API that answers a conversation twice is counted once).

    Child tables have no ``_dlt_load_id``: their rows count through their root row.
    """
    counts: dict[str, int] = {}
    schema = pipeline.default_schema
    with pipeline.sql_client() as client:
        root = client.make_qualified_table_name(root_table)
        for name in [root_table, *sorted(schema.tables)]:
            if name != root_table and not name.startswith(f"{root_table}__"):
                continue
            table = client.make_qualified_table_name(name)
            sql = f"SELECT COUNT(*) FROM {table} WHERE _dlt_load_id = %s"
            if name != root_table:
                sql = (
                    f"SELECT COUNT(*) FROM {table} c JOIN {root} r ON c._dlt_root_id = r._dlt_id "
                    "WHERE r._dlt_load_id = %s"
                )
            try:
                counts[name] = int(client.execute_sql(sql, load_id)[0][0])
            except DatabaseUndefinedRelation:
                continue
    return counts


def summarize(pipeline: dlt.Pipeline, root_table: str = "conversation_export") -> LoadSummary:
    """Rows per data table (as stored after the merge) and load ids of the pipeline's last run."""
    trace = pipeline.last_trace
    load_info = trace.last_load_info if trace else None
    load_ids = list(load_info.loads_ids) if load_info else []
    counts = rows_of_load(pipeline, root_table, load_ids[-1]) if load_ids else {}
    return LoadSummary(row_counts=counts, load_ids=load_ids)
