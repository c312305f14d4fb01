"""The partitioned Dagster assets over the Dixa source: one per endpoint, one month a run."""

import atexit
import functools
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
from dlt.extract.source import DltSource

from conversation_assets.config import Config
from conversation_assets.defs.partitions import monthly_partitions, partition_window
from conversation_assets.defs.resources import DixaResource
from conversation_assets.destination import extract_then_load
from conversation_assets.dixa import RequestStats, dixa_source, source_for_window
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, MESSAGE_EXPORT, Endpoint
from conversation_assets.dixa.schema import RecordSchema
from conversation_assets.dixa.windows import Window, format_ms
from conversation_assets.pipeline import LoadSummary, make_pipeline

GROUP_NAME = "dixa"


def asset_key(endpoint: Endpoint) -> AssetKey:
    """``dixa/<endpoint>``: ``dixa/conversation_export``, ``dixa/message_export``."""
    return AssetKey([GROUP_NAME, endpoint.name])


ASSET_KEY = asset_key(CONVERSATION_EXPORT)
MESSAGES_ASSET_KEY = asset_key(MESSAGE_EXPORT)


def pool_name(destination: str) -> str:
    """The concurrency pool of the assets: one per destination (DuckDB's limit stays 1)."""
    return f"dixa_{destination}"


class DixaTranslator(DagsterDltTranslator):
    """Names the asset ``dixa/<endpoint>`` and describes it from the endpoint's data."""

    def __init__(self, config: Config, endpoint: Endpoint) -> None:
        super().__init__()
        self.config = config
        self.endpoint = endpoint

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        default = super().get_asset_spec(data)
        # Messages come after their conversations in a run that loads both (lineage; the
        # check counting messages of unknown conversations then sees this month's).
        upstream = [ASSET_KEY] if self.endpoint == MESSAGE_EXPORT else []
        return default.replace_attributes(
            key=asset_key(self.endpoint),
            deps=upstream,
            group_name=GROUP_NAME,
            description=self.endpoint.description,
            kinds={"dlt", self.config.destination},
            owners=["team:data-engineering"],
            tags={"source": "dixa"},
            metadata={
                **default.metadata,
                "dagster/column_schema": column_schema(self.endpoint.schema),
            },
            freshness_policy=FreshnessPolicy.time_window(
                fail_window=timedelta(hours=self.config.freshness_fail_hours),
                warn_window=timedelta(hours=self.config.freshness_warn_hours),
            ),
        )


def column_schema(schema: RecordSchema) -> TableSchema:
    """The root table's declared columns, for the catalog."""
    sql_types = {"bigint": "bigint", "text": "text", "bool": "boolean"}
    columns = [
        TableColumn(name, sql_types[column["data_type"]])
        for name, column in schema.root_columns().items()
    ]
    columns += [
        TableColumn(name, "child table", description=schema.child_table(name))
        for name in schema.array_fields
    ]
    return TableSchema(columns=columns)


@functools.cache
def definitions_pipeline(config: Config) -> dlt.Pipeline:
    """The pipeline dagster-dlt reads the destination from when the definitions load; it never runs.

    Its working folder is private to this process and removed at exit: not dlt's default in the
    user's home (shared by every project on the machine), and not a shared folder either (code
    servers and run workers that load the definitions at once raced on creating it). One a
    process and configuration, shared by every endpoint's asset: making a dlt pipeline resolves
    dlt's configuration, a cost every process that loads the definitions pays.
    """
    folder = tempfile.mkdtemp(prefix="dixa-definitions-")
    atexit.register(shutil.rmtree, folder, True)
    return make_pipeline(config, folder)


@functools.cache
def definitions_source() -> DltSource:
    """The source the assets are described from (its resources' names); it never runs.

    One a process: calling a dlt source resolves its configuration (0.15 s), and the run makes
    its own source for its window (``source_for_window``).
    """
    return dixa_source(api_token="definition-time-placeholder")


def build_export_asset(config: Config, endpoint: Endpoint) -> AssetsDefinition:
    """The partitioned asset of one endpoint, as ``config`` (read when the definitions load)
    describes it: the same code for every endpoint."""
    source = definitions_source().with_resources(endpoint.name)  # a copy: the shared one stays

    @dlt_assets(
        dlt_source=source,
        dlt_pipeline=definitions_pipeline(config),
        name=f"dixa_{endpoint.name}",
        dagster_dlt_translator=DixaTranslator(config, endpoint),
        partitions_def=monthly_partitions(config.start_date),
        # One run per partition: each partition gets its own window, metadata and retry.
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
        pool=pool_name(config.destination),
    )
    def export_asset(
        context: AssetExecutionContext, dlt: DagsterDltResource, dixa: DixaResource
    ) -> Iterator[MaterializeResult]:
        """Load the partition's month of the endpoint with dlt and record what was loaded."""
        yield load_partition(context, dlt, dixa.config(), endpoint)

    return export_asset


def load_partition(
    context: AssetExecutionContext, dlt: DagsterDltResource, config: Config, endpoint: Endpoint
) -> MaterializeResult:
    """Extract, normalize and load the partition's window; metadata of what it loaded."""
    window = partition_window(context.partition_time_window, config.start_date)
    stats = RequestStats()
    source = source_for_window(config, window, endpoint, stats=stats, logger=context.log)
    remove_abandoned_run_dirs(context, config.runs_dir)
    run_dir = config.runs_dir / context.run.run_id
    pipeline = make_pipeline(config, run_dir, staging_suffix=context.partition_key)
    context.log.info(
        f"Loading {endpoint.name} partition {context.partition_key}: {endpoint.cursor} in {window}"
    )
    # Download, parse and normalize in parallel with other partitions; only the load waits
    # for the destination (dagster-dlt's run() would hold it from dlt's first state sync on).
    load_info, summary = extract_then_load(pipeline, source, config, context.log, endpoint.name)
    metadata = dlt.extract_resource_metadata(
        context, source.resources[endpoint.name], load_info, pipeline
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    return MaterializeResult(
        asset_key=asset_key(endpoint),
        metadata={**metadata, **partition_metadata(endpoint, window, stats, summary)},
    )


def partition_metadata(
    endpoint: Endpoint, window: Window, stats: RequestStats, summary: LoadSummary
) -> dict[str, Any]:
    """Metadata of one partition's materialization (its own numbers, not a range's total)."""
    noun = endpoint.noun
    return {
        "window_start": MetadataValue.text(format_ms(window.start_ms)),
        "window_end": MetadataValue.text(format_ms(window.end_ms)),
        "window_start_ms": MetadataValue.int(window.start_ms),
        "window_end_ms": MetadataValue.int(window.end_ms),
        "rows_by_table": MetadataValue.json(summary.row_counts),
        f"{noun}_loaded": MetadataValue.int(summary.records),
        f"{noun}_received": MetadataValue.int(stats.records),
        # Received but not loaded here: outside the window (an inclusive API bound, or a stray
        # record; loaded by the partition its cursor belongs to), or received twice.
        f"{noun}_outside_window": MetadataValue.int(max(stats.records - summary.records, 0)),
        "requests": MetadataValue.int(stats.requests),
        "retries": MetadataValue.int(stats.retries),
        "bytes_received": MetadataValue.int(stats.bytes),
        "dlt_load_id": MetadataValue.text(summary.load_ids[-1] if summary.load_ids else ""),
    }


def remove_abandoned_run_dirs(context: AssetExecutionContext, runs_dir: Path) -> None:
    """Delete the dlt folders of finished runs (a killed run leaves its folder behind).

    Their pending packages are never loaded: the partition's next run extracts the window again
    and the merge keeps one row per record.
    """
    if not runs_dir.is_dir():
        return
    for folder in runs_dir.iterdir():
        run = context.instance.get_run_by_id(folder.name.split("-checks-")[0])
        if run is not None and run.is_finished and run.run_id != context.run.run_id:
            context.log.info(f"Removing the dlt folder of finished run {run.run_id}")
            shutil.rmtree(folder, ignore_errors=True)
