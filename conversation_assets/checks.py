"""Data-quality checks that run after each partition's materialization (blocking).

They query the destination through dlt's SQL client, so they work on DuckDB and Postgres alike.
"""

import tempfile
from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetRecordsFilter,
    asset_check,
)
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from conversation_assets.assets import ASSET_KEY, PARTITIONS, runs_dir
from conversation_assets.destination import hold_destination
from conversation_assets.dixa.schema import TABLE_NAME
from conversation_assets.pipeline import make_pipeline


def query_one(
    context: AssetCheckExecutionContext, sql: str, *params: Any, if_no_table: tuple[Any, ...]
) -> tuple[Any, ...]:
    """One row of a query against the dataset; ``{table}`` is the qualified root table.

    ``if_no_table`` is the answer while the root table does not exist yet: a first load of a
    window without conversations creates no table.
    """
    # A dlt working folder of its own (removed afterwards), and the destination's lock: another
    # run may be loading the same DuckDB file.
    runs_dir().mkdir(parents=True, exist_ok=True)
    prefix = f"{context.run.run_id}-checks-"
    with tempfile.TemporaryDirectory(dir=runs_dir(), prefix=prefix) as workdir:
        pipeline = make_pipeline(pipelines_dir=workdir)
        with hold_destination(
            pipeline, f"to run check {context.op_def.name}", context.log
        ) as client:
            table = client.make_qualified_table_name(TABLE_NAME)
            try:
                rows = client.execute_sql(sql.format(table=table), *params)
            except DatabaseUndefinedRelation:
                return if_no_table
    return tuple(rows[0]) if rows else ()


def latest_partition_metadata(context: AssetCheckExecutionContext) -> dict[str, Any]:
    """Metadata of the newest materialization of the check's partition."""
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[context.partition_key]),
        limit=1,
    )
    if not result.records:
        return {}
    materialization = result.records[0].asset_materialization
    return {key: value.value for key, value in (materialization.metadata or {}).items()}


@asset_check(asset=ASSET_KEY, partitions_def=PARTITIONS, blocking=True)
def no_duplicate_ids(context: AssetCheckExecutionContext) -> AssetCheckResult:
    """Exactly one row per conversation ``id`` in the whole table."""
    (duplicates,) = query_one(
        context,
        "SELECT COUNT(*) FROM (SELECT id FROM {table} GROUP BY id HAVING COUNT(*) > 1) d",
        if_no_table=(0,),
    )
    return AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_ids": int(duplicates)})


@asset_check(asset=ASSET_KEY, partitions_def=PARTITIONS, blocking=True)
def no_null_id_or_updated_at(context: AssetCheckExecutionContext) -> AssetCheckResult:
    """Every row has an ``id`` and an ``updated_at``."""
    (null_ids, null_updated) = query_one(
        context,
        "SELECT COUNT(*) FILTER (WHERE id IS NULL), "
        "COUNT(*) FILTER (WHERE updated_at IS NULL) FROM {table}",
        if_no_table=(0, 0),
    )
    return AssetCheckResult(
        passed=null_ids == 0 and null_updated == 0,
        metadata={"null_id": int(null_ids), "null_updated_at": int(null_updated)},
    )


@asset_check(asset=ASSET_KEY, partitions_def=PARTITIONS, blocking=True)
def loaded_rows_inside_partition_window(context: AssetCheckExecutionContext) -> AssetCheckResult:
    """Every row the partition's latest load wrote has ``updated_at`` inside its window."""
    metadata = latest_partition_metadata(context)
    load_id = metadata.get("dlt_load_id")
    if not load_id:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            metadata={"note": "no load of this partition to check"},
        )
    start_ms, end_ms = metadata["window_start_ms"], metadata["window_end_ms"]
    (loaded, outside) = query_one(
        context,
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE updated_at < %s OR updated_at >= %s) "
        "FROM {table} WHERE _dlt_load_id = %s",
        start_ms,
        end_ms,
        load_id,
        if_no_table=(0, 0),
    )
    return AssetCheckResult(
        passed=outside == 0,
        metadata={
            "rows_of_load": int(loaded),
            "rows_outside_window": int(outside),
            "dlt_load_id": load_id,
        },
    )


DATA_QUALITY_CHECKS: Sequence[AssetChecksDefinition] = (
    no_duplicate_ids,
    no_null_id_or_updated_at,
    loaded_rows_inside_partition_window,
)
