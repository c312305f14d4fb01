"""Data-quality checks that run after each partition's materialization (blocking).

They query the destination through dlt's SQL client, so they work on DuckDB and Postgres alike.
Each check is a plain function of the check's context and the run's :class:`Config`;
:func:`build_checks` makes them Dagster asset checks, partitioned like the asset.
"""

import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    PartitionsDefinition,
    PreviewWarning,
    asset_check,
)
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from conversation_assets.config import Config
from conversation_assets.defs.assets import ASSET_KEY
from conversation_assets.defs.partitions import monthly_partitions, window_of_key
from conversation_assets.defs.resources import DixaResource
from conversation_assets.destination import hold_destination
from conversation_assets.dixa.schema import TABLE_NAME
from conversation_assets.pipeline import make_pipeline


@contextmanager
def dataset_client(context: AssetCheckExecutionContext, config: Config) -> Iterator[Any]:
    """dlt's SQL client on the dataset, holding the destination (see ``hold_destination``).

    A dlt working folder of its own (removed afterwards), and the destination's turn: another
    run may be loading the same DuckDB file, or a reader holding it (a bounded, logged wait).
    """
    config.runs_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{context.run.run_id}-checks-"
    with tempfile.TemporaryDirectory(dir=config.runs_dir, prefix=prefix) as workdir:
        pipeline = make_pipeline(config, workdir)
        with hold_destination(
            pipeline, config, f"to run check {context.op_def.name}", context.log
        ) as client:
            yield client


def query_one(
    context: AssetCheckExecutionContext,
    config: Config,
    sql: str,
    *params: Any,
    if_no_table: tuple[Any, ...],
) -> tuple[Any, ...]:
    """One row of a query against the dataset; ``{table}`` is the qualified root table.

    ``if_no_table`` is the answer while the root table does not exist yet: a first load of a
    window without conversations creates no table.
    """
    with dataset_client(context, config) as client:
        table = client.make_qualified_table_name(TABLE_NAME)
        try:
            rows = client.execute_sql(sql.format(table=table), *params)
        except DatabaseUndefinedRelation:
            return if_no_table
    return tuple(rows[0]) if rows else ()


def count_per_child_table(
    context: AssetCheckExecutionContext, config: Config, sql: str, *params: Any
) -> dict:
    """``sql`` (one count) run for every child table; ``{child}`` and ``{root}`` are qualified.

    Child tables are found in the destination itself (``conversation_export__*``), so tables
    that appeared with new array fields are checked too.
    """
    counts: dict[str, int] = {}
    with dataset_client(context, config) as client:
        tables = client.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            client.dataset_name,
        )
        names = sorted(name for (name,) in tables if name.startswith(f"{TABLE_NAME}__"))
        root = client.make_qualified_table_name(TABLE_NAME)
        for name in names:
            child = client.make_qualified_table_name(name)
            (count,) = client.execute_sql(sql.format(child=child, root=root), *params)[0]
            counts[name] = int(count)
    return counts


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


CheckBody = Callable[[AssetCheckExecutionContext, Config], AssetCheckResult]


def partitioned_check(
    body: CheckBody, asset_key: AssetKey, partitions: PartitionsDefinition
) -> AssetChecksDefinition:
    """A blocking check of the asset, partitioned like it: a run checks the partition it loaded.

    The check reads the run's configuration from the ``dixa`` resource (its destination,
    folders and waits), as the asset does. Partitioned asset checks are a preview feature of
    Dagster 1.13, which says so with a ``PreviewWarning`` on every definition; the project relies
    on them knowingly, so that one warning is ignored here, for these definitions only.
    """

    def check(context: AssetCheckExecutionContext, dixa: DixaResource) -> AssetCheckResult:
        return body(context, dixa.config(require_token=False))

    check.__name__ = body.__name__
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Specifying a partitions_def on an AssetCheckSpec",
            category=PreviewWarning,
        )
        return asset_check(
            asset=asset_key,
            name=body.__name__,
            description=body.__doc__,
            partitions_def=partitions,
            blocking=True,
        )(check)


def no_duplicate_ids(context: AssetCheckExecutionContext, config: Config) -> AssetCheckResult:
    """Exactly one row per conversation ``id`` in the whole table."""
    (duplicates,) = query_one(
        context,
        config,
        "SELECT COUNT(*) FROM (SELECT id FROM {table} GROUP BY id HAVING COUNT(*) > 1) d",
        if_no_table=(0,),
    )
    return AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_ids": int(duplicates)})


def no_null_id_or_updated_at(
    context: AssetCheckExecutionContext, config: Config
) -> AssetCheckResult:
    """Every row has an ``id`` and an ``updated_at``."""
    (null_ids, null_updated) = query_one(
        context,
        config,
        "SELECT COUNT(*) FILTER (WHERE id IS NULL), "
        "COUNT(*) FILTER (WHERE updated_at IS NULL) FROM {table}",
        if_no_table=(0, 0),
    )
    return AssetCheckResult(
        passed=null_ids == 0 and null_updated == 0,
        metadata={"null_id": int(null_ids), "null_updated_at": int(null_updated)},
    )


def loaded_rows_inside_partition_window(
    context: AssetCheckExecutionContext, config: Config
) -> AssetCheckResult:
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
        config,
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


def no_duplicate_child_rows(
    context: AssetCheckExecutionContext, config: Config
) -> AssetCheckResult:
    """Each array item of the partition's conversations is stored once in its child table.

    A conversation exported twice must keep the child rows of one version only: two rows with
    the same parent row and list position mean two versions' items were both kept.
    """
    partitions = monthly_partitions(config.start_date)
    window = window_of_key(partitions, context.partition_key, config.start_date)
    duplicates = count_per_child_table(
        context,
        config,
        "SELECT COUNT(*) FROM (SELECT c._dlt_parent_id, c._dlt_list_idx FROM {child} c "
        "JOIN {root} r ON c._dlt_root_id = r._dlt_id "
        "WHERE r.updated_at >= %s AND r.updated_at < %s "
        "GROUP BY c._dlt_parent_id, c._dlt_list_idx HAVING COUNT(*) > 1) d",
        window.start_ms,
        window.end_ms,
    )
    return AssetCheckResult(
        passed=not any(duplicates.values()),
        metadata={"duplicate_child_rows_by_table": duplicates},
    )


def no_orphan_child_rows(context: AssetCheckExecutionContext, config: Config) -> AssetCheckResult:
    """Every child row belongs to a conversation in the root table.

    An orphan has no root row, so no partition of its own: the whole dataset is counted.
    """
    orphans = count_per_child_table(
        context,
        config,
        "SELECT COUNT(*) FROM {child} c "
        "WHERE NOT EXISTS (SELECT 1 FROM {root} r WHERE r._dlt_id = c._dlt_root_id)",
    )
    return AssetCheckResult(
        passed=not any(orphans.values()), metadata={"orphan_child_rows_by_table": orphans}
    )


#: The checks every partition's run runs after its load, in this order.
DATA_QUALITY_CHECKS: Sequence[CheckBody] = (
    no_duplicate_ids,
    no_null_id_or_updated_at,
    loaded_rows_inside_partition_window,
    no_duplicate_child_rows,
    no_orphan_child_rows,
)


def build_checks(config: Config) -> list[AssetChecksDefinition]:
    """The data-quality checks as Dagster asset checks on the asset's partitions."""
    partitions = monthly_partitions(config.start_date)
    return [partitioned_check(body, ASSET_KEY, partitions) for body in DATA_QUALITY_CHECKS]
