"""The partitioned Dagster asset over the Dixa source: one monthly partition per run."""

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from conversation_assets.config import destination_wait_seconds, parse_hours
from conversation_assets.defs.partitions import (
    configured_start_date,
    monthly_partitions,
    partition_window,
)
from conversation_assets.defs.resources import DixaResource
from conversation_assets.destination import extract_then_load
from conversation_assets.dixa import RequestStats, dixa_source, source_for_window
from conversation_assets.dixa.schema import (
    INTEGER_FIELDS,
    OBJECT_ARRAY_FIELDS,
    STRING_ARRAY_FIELDS,
    STRING_FIELDS,
    TABLE_NAME,
)
from conversation_assets.dixa.windows import format_ms
from conversation_assets.pipeline import destination_name, make_pipeline

ASSET_KEY = AssetKey(["dixa", TABLE_NAME])
GROUP_NAME = "dixa"
RUNS_DIR_VARIABLE = "DIXA_DLT_RUNS_DIR"
DEFAULT_RUNS_DIR = Path("data") / "dlt_runs"
FRESHNESS_FAIL_HOURS = parse_hours("DIXA_FRESHNESS_FAIL_HOURS", 30.0)
FRESHNESS_WARN_HOURS = parse_hours("DIXA_FRESHNESS_WARN_HOURS", 26.0)


def pool_name(destination: str) -> str:
    """The concurrency pool of the asset: one per destination (DuckDB's limit stays 1)."""
    return f"dixa_{destination}"


class DixaTranslator(DagsterDltTranslator):
    """Names the asset ``dixa/conversation_export`` and describes it; no upstream asset."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        default = super().get_asset_spec(data)
        return default.replace_attributes(
            key=ASSET_KEY,
            deps=[],
            group_name=GROUP_NAME,
            description=(
                "Dixa conversations from the exports API, one row per conversation (merged on "
                "`id`, newest `updated_at` wins). Arrays load into child tables "
                "`conversation_export__<field>`. Partition = calendar month of `updated_at`."
            ),
            kinds={"dlt", destination_name()},
            owners=["team:data-engineering"],
            tags={"source": "dixa"},
            metadata={**default.metadata, "dagster/column_schema": column_schema()},
            freshness_policy=FreshnessPolicy.time_window(
                fail_window=timedelta(hours=FRESHNESS_FAIL_HOURS),
                warn_window=timedelta(hours=FRESHNESS_WARN_HOURS),
            ),
        )


def column_schema() -> TableSchema:
    """The root table's declared columns, for the catalog."""
    columns = [TableColumn(name, "bigint") for name in INTEGER_FIELDS]
    columns += [TableColumn(name, "text") for name in STRING_FIELDS]
    columns += [
        TableColumn(name, "child table", description=f"{TABLE_NAME}__{name}")
        for name in STRING_ARRAY_FIELDS + OBJECT_ARRAY_FIELDS
    ]
    return TableSchema(columns=columns)


PARTITIONS = monthly_partitions(configured_start_date())


def runs_dir() -> Path:
    """Where each run gets its own dlt working folder (``DIXA_DLT_RUNS_DIR``)."""
    return Path(os.environ.get(RUNS_DIR_VARIABLE) or DEFAULT_RUNS_DIR)


def definitions_pipeline() -> dlt.Pipeline:
    """The pipeline dagster-dlt reads the destination from when the definitions load; it never runs.

    Its working folder is private to this process and removed at exit: not dlt's default in the
    user's home (shared by every project on the machine), and not a shared folder either (code
    servers and run workers that load the definitions at once raced on creating it).
    """
    folder = tempfile.mkdtemp(prefix="dixa-definitions-")
    atexit.register(shutil.rmtree, folder, True)
    return make_pipeline(pipelines_dir=Path(folder))


@dlt_assets(
    dlt_source=dixa_source(api_token="definition-time-placeholder"),
    dlt_pipeline=definitions_pipeline(),
    name="dixa_conversation_export",
    dagster_dlt_translator=DixaTranslator(),
    partitions_def=PARTITIONS,
    # One run per partition: each partition gets its own window, metadata and retry.
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
    pool=pool_name(destination_name()),
)
def dixa_conversation_export(
    context: AssetExecutionContext, dlt: DagsterDltResource, dixa: DixaResource
) -> Iterator[MaterializeResult]:
    """Load the partition's month of conversations with dlt and record what was loaded."""
    settings = dixa.settings()
    wait_seconds = destination_wait_seconds()  # validated before any request
    window = partition_window(context.partition_time_window, settings.start_date)
    stats = RequestStats()
    source = source_for_window(settings, window, stats=stats, logger=context.log)
    remove_abandoned_run_dirs(context)
    run_dir = runs_dir() / context.run.run_id
    pipeline = make_pipeline(pipelines_dir=run_dir, staging_suffix=context.partition_key)
    context.log.info(f"Loading partition {context.partition_key}: updated_at in {window}")
    # Download, parse and normalize in parallel with other partitions; only the load waits
    # for the destination (dagster-dlt's run() would hold it from dlt's first state sync on).
    load_info, summary = extract_then_load(
        pipeline, source, context.log, wait_seconds, settings.extract_format == "json"
    )
    metadata = dlt.extract_resource_metadata(
        context, source.resources[TABLE_NAME], load_info, pipeline
    )
    yield MaterializeResult(
        asset_key=ASSET_KEY,
        metadata={
            **metadata,
            **partition_metadata(window.start_ms, window.end_ms, stats, summary),
        },
    )
    shutil.rmtree(run_dir, ignore_errors=True)


def partition_metadata(
    start_ms: int, end_ms: int, stats: RequestStats, summary: Any
) -> dict[str, Any]:
    """Metadata of one partition's materialization (its own numbers, not a range's total)."""
    return {
        "window_start": MetadataValue.text(format_ms(start_ms)),
        "window_end": MetadataValue.text(format_ms(end_ms)),
        "window_start_ms": MetadataValue.int(start_ms),
        "window_end_ms": MetadataValue.int(end_ms),
        "rows_by_table": MetadataValue.json(summary.row_counts),
        "conversations_loaded": MetadataValue.int(summary.conversations),
        "conversations_received": MetadataValue.int(stats.records),
        # Received but not loaded here: outside the window (an inclusive API bound, or a stray
        # record; loaded by the partition its updated_at belongs to), or received twice.
        "conversations_outside_window": MetadataValue.int(
            max(stats.records - summary.conversations, 0)
        ),
        "requests": MetadataValue.int(stats.requests),
        "retries": MetadataValue.int(stats.retries),
        "bytes_received": MetadataValue.int(stats.bytes),
        "dlt_load_id": MetadataValue.text(summary.load_ids[-1] if summary.load_ids else ""),
    }


def remove_abandoned_run_dirs(context: AssetExecutionContext) -> None:
    """Delete the dlt folders of finished runs (a killed run leaves its folder behind).

    Their pending packages are never loaded: the partition's next run extracts the window again
    and the merge keeps one row per conversation.
    """
    if not runs_dir().is_dir():
        return
    for folder in runs_dir().iterdir():
        run = context.instance.get_run_by_id(folder.name.split("-checks-")[0])
        if run is not None and run.is_finished and run.run_id != context.run.run_id:
            context.log.info(f"Removing the dlt folder of finished run {run.run_id}")
            shutil.rmtree(folder, ignore_errors=True)
