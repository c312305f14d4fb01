"""The dlt pipeline: destination, dataset, working folder and the writer settings that matter.

The destination is ``Config.destination`` (DuckDB unless ``DESTINATION`` says ``postgres``);
Postgres credentials come through dlt's own ``DESTINATION__POSTGRES__CREDENTIALS`` or
``.dlt/secrets.toml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from conversation_assets.config import Config

PIPELINE_NAME = "dixa_conversation_export"
DATASET_NAME = "dixa"
# Parquet end to end: never dlt's insert_values for DuckDB (many times slower, huge memory).
LOADER_FILE_FORMAT = "parquet"
# DuckDB would take up to 80% of the machine's memory for a merge; capped, it spills to disk.
DUCKDB_CONFIG = {"memory_limit": "128MB", "preserve_insertion_order": False}


def make_destination(config: Config, staging_suffix: str = "") -> Destination[Any, Any]:
    """The dlt destination of ``config``.

    ``staging_suffix`` gives a load its own staging schema (``dixa_staging_<suffix>``): dlt
    empties the staging tables at the start of each load, so two loads running at once into one
    staging schema would lose each other's rows.
    """
    layout = staging_layout(staging_suffix)
    if config.destination == "duckdb":
        path = config.duckdb_file
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
    config: Config, pipelines_dir: str | Path, staging_suffix: str = ""
) -> dlt.Pipeline:
    """The project's pipeline; ``pipelines_dir`` gives a run its own dlt working folder."""
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(pipelines_dir),
        destination=make_destination(config, staging_suffix),
        dataset_name=DATASET_NAME,
        # Rows per table; no memory figures (they need psutil, which dlt warns about).
        progress=dlt.progress.log(dump_system_stats=False) if config.progress == "log" else None,
    )


@dataclass
class LoadSummary:
    """What one load wrote: rows per table (``root_table`` first) and the dlt load ids."""

    root_table: str = "conversation_export"
    row_counts: dict[str, int] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Rows of the root table: distinct records (conversations, messages) loaded."""
        return self.row_counts.get(self.root_table, 0)

    @property
    def conversations(self) -> int:
        return self.records


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
    return LoadSummary(root_table=root_table, row_counts=counts, load_ids=load_ids)
