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

from conversation_assets.settings import SettingsError

PIPELINE_NAME = "dixa_conversation_export"
DATASET_NAME = "dixa"
DEFAULT_DUCKDB_FILE = Path("data") / "conversations.duckdb"
SUPPORTED_DESTINATIONS = ("duckdb", "postgres")
# Parquet end to end: never dlt's insert_values for DuckDB (many times slower, huge memory).
LOADER_FILE_FORMAT = "parquet"


def destination_name(environ: Mapping[str, str] | None = None) -> str:
    """``DESTINATION``: ``duckdb`` (the default) or ``postgres``."""
    env = os.environ if environ is None else environ
    name = (env.get("DESTINATION") or "duckdb").strip().lower()
    if name not in SUPPORTED_DESTINATIONS:
        raise SettingsError(
            f"DESTINATION must be one of {', '.join(SUPPORTED_DESTINATIONS)}, got {name!r}."
        )
    return name


def duckdb_file(environ: Mapping[str, str] | None = None) -> Path:
    """The DuckDB file: ``DESTINATION__DUCKDB__CREDENTIALS`` or ``data/conversations.duckdb``."""
    env = os.environ if environ is None else environ
    return Path(env.get("DESTINATION__DUCKDB__CREDENTIALS") or DEFAULT_DUCKDB_FILE)


def make_destination(name: str | None = None) -> Destination[Any, Any]:
    """A dlt destination object for ``name`` (default: from ``DESTINATION``)."""
    name = name or destination_name()
    if name == "duckdb":
        path = duckdb_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(credentials=str(path))
    return dlt.destinations.postgres()


def make_pipeline(
    pipelines_dir: str | Path | None = None, destination: Destination[Any, Any] | None = None
) -> dlt.Pipeline:
    """The project's pipeline; ``pipelines_dir`` gives a run its own dlt working folder."""
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=None if pipelines_dir is None else str(pipelines_dir),
        destination=destination or make_destination(),
        dataset_name=DATASET_NAME,
        progress="log" if os.environ.get("DIXA_PROGRESS") == "log" else None,
    )


@dataclass
class LoadSummary:
    """What one load wrote: rows per table and the dlt load ids."""

    row_counts: dict[str, int] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)

    @property
    def conversations(self) -> int:
        return self.row_counts.get("conversation_export", 0)


def summarize(pipeline: dlt.Pipeline) -> LoadSummary:
    """Rows per data table and load ids of the pipeline's last run."""
    trace = pipeline.last_trace
    normalize_info = trace.last_normalize_info if trace else None
    load_info = trace.last_load_info if trace else None
    counts = dict(normalize_info.row_counts) if normalize_info else {}
    return LoadSummary(
        row_counts={name: n for name, n in sorted(counts.items()) if not name.startswith("_dlt")},
        load_ids=list(load_info.loads_ids) if load_info else [],
    )
