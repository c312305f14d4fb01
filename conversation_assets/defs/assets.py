"""The partitioned Dagster asset over the Dixa source: one monthly partition per run."""

import atexit
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
    AssetsDefinition,
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

from conversation_assets.config import Config
from conversation_assets.defs.partitions import monthly_partitions, partition_window
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
from conversation_assets.pipeline import make_pipeline

ASSET_KEY = AssetKey(["dixa", TABLE_NAME])
GROUP_NAME = "dixa"


def pool_name(destination: str) -> str:
    """The concurrency pool of the asset: one per destination (DuckDB's limit stays 1)."""
    return f"dixa_{destination}"


class DixaTranslator(DagsterDltTranslator):
    """Names the asset ``dixa/conversation_export`` and describes it; no upstream asset."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

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
            kinds={"dlt", self.config.destination},
            owners=["team:data-engineering"],
            tags={"source": "dixa"},
            metadata={**default.metadata, "dagster/column_schema": column_schema()},
            freshness_policy=FreshnessPolicy.time_window(
                fail_window=timedelta(hours=self.config.freshness_fail_hours),
                warn_window=timedelta(hours=self.config.freshness_warn_hours),
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


def definitions_pipeline(config: Config) -> dlt.Pipeline:
    """The pipeline dagster-dlt reads the destination from when the definitions load; it never runs.

    Its working folder is private to this process and removed at exit: not dlt's default in the
    user's home (shared by every project on the machine), and not a shared folder either (code
    servers and run workers that load the definitions at once raced on creating it).
    """
    folder = tempfile.mkdtemp(prefix="dixa-definitions-")
    atexit.register(shutil.rmtree, folder, True)
    return make_pipeline(config, folder)


def build_conversation_asset(config: Config) -> AssetsDefinition:
    """The partitioned asset, as ``config`` (read when the definitions load) describes it."""

    @dlt_assets(
        dlt_source=dixa_source(api_token="definition-time-placeholder"),
        dlt_pipeline=definitions_pipeline(config),
        name="dixa_conversation_export",
        dagster_dlt_translator=DixaTranslator(config),
        partitions_def=monthly_partitions(config.start_date),
        # One run per partition: each partition gets its own window, metadata and retry.
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        pool=pool_name(config.destination),
    )
    def dixa_conversation_export(
        context: AssetExecutionContext, dlt: DagsterDltResource, dixa: DixaResource
    ) -> Iterator[MaterializeResult]:
        """Load the partition's month of conversations with dlt and record what was loaded."""
        yield load_partition(context, dlt, dixa.config())

    return dixa_conversation_export


def load_partition(
    context: AssetExecutionContext, dlt: DagsterDltResource, config: Config
) -> MaterializeResult:
    """Extract, normalize and load the partition's window; metadata of what it loaded."""
    window = partition_window(context.partition_time_window, config.start_date)
    stats = RequestStats()
    source = source_for_window(config, window, stats=stats, logger=context.log)
    remove_abandoned_run_dirs(context, config.runs_dir)
    run_dir = config.runs_dir / context.run.run_id
    pipeline = make_pipeline(config, run_dir, staging_suffix=context.partition_key)
    context.log.info(f"Loading partition {context.partition_key}: updated_at in {window}")
    # Download, parse and normalize in parallel with other partitions; only the load waits
    # for the destination (dagster-dlt's run() would hold it from dlt's first state sync on).
    load_info, summary = extract_then_load(pipeline, source, config, context.log)
    metadata = dlt.extract_resource_metadata(
        context, source.resources[TABLE_NAME], load_info, pipeline
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    return MaterializeResult(
        asset_key=ASSET_KEY,
        metadata={
            **metadata,
            **partition_metadata(window.start_ms, window.end_ms, stats, summary),
        },
    )


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


def remove_abandoned_run_dirs(context: AssetExecutionContext, runs_dir: Path) -> None:
    """Delete the dlt folders of finished runs (a killed run leaves its folder behind).

    Their pending packages are never loaded: the partition's next run extracts the window again
    and the merge keeps one row per conversation.
    """
    if not runs_dir.is_dir():
        return
    for folder in runs_dir.iterdir():
        run = context.instance.get_run_by_id(folder.name.split("-checks-")[0])
        if run is not None and run.is_finished and run.run_id != context.run.run_id:
            context.log.info(f"Removing the dlt folder of finished run {run.run_id}")
            shutil.rmtree(folder, ignore_errors=True)
