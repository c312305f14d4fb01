"""Data-quality checks that run after each partition's materialization.

They query the destination through dlt's SQL client, so they work on DuckDB and Postgres alike.
Each check is a plain function of a :class:`CheckRun` (the check's context, the run's
:class:`Config`, the endpoint and an open SQL client); :func:`build_checks` makes them the
Dagster asset checks of an endpoint's asset, partitioned like it. The same checks serve every
endpoint (``{table}`` and ``{cursor}`` in their SQL are the endpoint's); messages add one
non-blocking check of their own.

The checks of one asset run as one step (a ``multi_asset_check``): one dlt pipeline, one turn at
the destination and one connection for all of them, and three Dagster events less a check than
a step each (a run's fixed cost, which decides small months).
"""

import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetRecordsFilter,
    PreviewWarning,
    multi_asset_check,
)
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from conversation_assets.config import Config
from conversation_assets.defs.assets import asset_key
from conversation_assets.defs.partitions import monthly_partitions, window_of_key
from conversation_assets.defs.resources import DixaResource
from conversation_assets.destination import hold_destination
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, MESSAGE_EXPORT, Endpoint
from conversation_assets.dixa.windows import Window
from conversation_assets.pipeline import make_pipeline


@dataclass(frozen=True)
class CheckRun:
    """One evaluation of an asset's checks: the Dagster context, the run's config, the endpoint
    and dlt's SQL client on the dataset (open, holding the destination)."""

    context: AssetCheckExecutionContext
    config: Config
    endpoint: Endpoint
    client: Any

    def query_one(self, sql: str, *params: Any, if_no_table: tuple[Any, ...]) -> tuple[Any, ...]:
        """One row of a query; ``{table}`` is the qualified root table, ``{cursor}`` its cursor.

        ``if_no_table`` is the answer while a table does not exist yet: a first load of a
        window without records creates no table.
        """
        names = {
            "table": self.client.make_qualified_table_name(self.endpoint.name),
            "cursor": self.endpoint.cursor,
            "conversations": self.client.make_qualified_table_name(CONVERSATION_EXPORT.name),
        }
        try:
            rows = self.client.execute_sql(sql.format(**names), *params)
        except DatabaseUndefinedRelation:
            return if_no_table
        return tuple(rows[0]) if rows else ()

    def count_per_child_table(self, sql: str, *params: Any) -> dict[str, int]:
        """``sql`` (one count) run for every child table; ``{child}`` and ``{root}`` are
        qualified, ``{cursor}`` is the root's cursor.

        Child tables are found in the destination itself (``<table>__*``), so tables that
        appeared with new array fields are checked too.
        """
        client = self.client
        tables = client.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            client.dataset_name,
        )
        prefix = f"{self.endpoint.name}__"
        names = sorted(name for (name,) in tables if name.startswith(prefix))
        root = client.make_qualified_table_name(self.endpoint.name)
        counts: dict[str, int] = {}
        for name in names:
            child = client.make_qualified_table_name(name)
            query = sql.format(child=child, root=root, cursor=self.endpoint.cursor)
            (count,) = client.execute_sql(query, *params)[0]
            counts[name] = int(count)
        return counts

    def latest_partition_metadata(self) -> dict[str, Any]:
        """Metadata of the newest materialization of the check's partition."""
        result = self.context.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=asset_key(self.endpoint), asset_partitions=[self.context.partition_key]
            ),
            limit=1,
        )
        if not result.records:
            return {}
        materialization = result.records[0].asset_materialization
        return {key: value.value for key, value in (materialization.metadata or {}).items()}

    def partition_window(self) -> Window:
        """The cursor window of the check's partition."""
        start = self.config.start_date
        return window_of_key(monthly_partitions(start), self.context.partition_key, start)


CheckBody = Callable[[CheckRun], AssetCheckResult]


@contextmanager
def checking(
    context: AssetCheckExecutionContext, config: Config, endpoint: Endpoint, names: Sequence[str]
) -> Iterator[CheckRun]:
    """A :class:`CheckRun` holding the destination (see ``hold_destination``) for ``names``.

    A dlt working folder of its own (removed afterwards), and the destination's turn: another
    run may be loading the same DuckDB file, or a reader holding it (a bounded, logged wait).
    """
    runs_dir = config.runs_dir
    runs_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{context.run.run_id}-checks-"
    with tempfile.TemporaryDirectory(dir=runs_dir, prefix=prefix) as workdir:
        pipeline = make_pipeline(config, workdir)
        what = f"to run check {', '.join(names)}"
        with hold_destination(pipeline, config, what, context.log) as client:
            yield CheckRun(context, config, endpoint, client)


class CheckError(RuntimeError):
    """A check raised instead of returning a result (the other checks still ran)."""


def check_name(body: CheckBody, endpoint: Endpoint) -> str:
    """The check's name: the body's, a ``cursor`` in it being the endpoint's cursor
    (``no_null_id_or_updated_at``)."""
    return body.__name__.replace("cursor", endpoint.cursor)


def no_duplicate_ids(run: CheckRun) -> AssetCheckResult:
    """Exactly one row per ``id`` in the whole table."""
    (duplicates,) = run.query_one(
        "SELECT COUNT(*) FROM (SELECT id FROM {table} GROUP BY id HAVING COUNT(*) > 1) d",
        if_no_table=(0,),
    )
    return AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_ids": int(duplicates)})


def no_null_id_or_cursor(run: CheckRun) -> AssetCheckResult:
    """Every row has an ``id`` and a cursor (``updated_at``, ``created_at``)."""
    (null_ids, null_cursor) = run.query_one(
        "SELECT COUNT(*) FILTER (WHERE id IS NULL), "
        "COUNT(*) FILTER (WHERE {cursor} IS NULL) FROM {table}",
        if_no_table=(0, 0),
    )
    return AssetCheckResult(
        passed=null_ids == 0 and null_cursor == 0,
        metadata={"null_id": int(null_ids), f"null_{run.endpoint.cursor}": int(null_cursor)},
    )


def loaded_rows_inside_partition_window(run: CheckRun) -> AssetCheckResult:
    """Every row the partition's latest load wrote has its cursor inside its window."""
    metadata = run.latest_partition_metadata()
    load_id = metadata.get("dlt_load_id")
    if not load_id:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            metadata={"note": "no load of this partition to check"},
        )
    start_ms, end_ms = metadata["window_start_ms"], metadata["window_end_ms"]
    (loaded, outside) = run.query_one(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE {cursor} < %s OR {cursor} >= %s) "
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


def no_duplicate_child_rows(run: CheckRun) -> AssetCheckResult:
    """Each array item of the partition's records is stored once in its child table.

    A record exported twice must keep the child rows of one version only: two rows with the
    same parent row and list position mean two versions' items were both kept.
    """
    window = run.partition_window()
    duplicates = run.count_per_child_table(
        "SELECT COUNT(*) FROM (SELECT c._dlt_parent_id, c._dlt_list_idx FROM {child} c "
        "JOIN {root} r ON c._dlt_root_id = r._dlt_id "
        "WHERE r.{cursor} >= %s AND r.{cursor} < %s "
        "GROUP BY c._dlt_parent_id, c._dlt_list_idx HAVING COUNT(*) > 1) d",
        window.start_ms,
        window.end_ms,
    )
    return AssetCheckResult(
        passed=not any(duplicates.values()),
        metadata={"duplicate_child_rows_by_table": duplicates},
    )


def no_orphan_child_rows(run: CheckRun) -> AssetCheckResult:
    """Every child row belongs to a record in the root table.

    An orphan has no root row, so no partition of its own: the whole dataset is counted.
    """
    orphans = run.count_per_child_table(
        "SELECT COUNT(*) FROM {child} c "
        "WHERE NOT EXISTS (SELECT 1 FROM {root} r WHERE r._dlt_id = c._dlt_root_id)"
    )
    return AssetCheckResult(
        passed=not any(orphans.values()), metadata={"orphan_child_rows_by_table": orphans}
    )


def messages_of_known_conversations(run: CheckRun) -> AssetCheckResult:
    """Counts the partition's messages whose ``csid`` is not (yet) in ``conversation_export``.

    Not blocking: a message may arrive before its conversation is loaded (a conversation's
    month is that of its last update, a message's that of its creation), so a count above zero
    is a warning to look at, not an error.
    """
    window = run.partition_window()
    inside = "FROM {table} m WHERE m.{cursor} >= %s AND m.{cursor} < %s"
    bounds = (window.start_ms, window.end_ms)
    (messages,) = run.query_one(f"SELECT COUNT(*) {inside}", *bounds, if_no_table=(0,))
    # Without a conversation_export table (messages loaded first) every message is of an
    # unknown conversation.
    (unknown,) = run.query_one(
        "SELECT COUNT(*) FILTER (WHERE NOT EXISTS "
        f"(SELECT 1 FROM {{conversations}} c WHERE c.id = m.csid)) {inside}",
        *bounds,
        if_no_table=(messages,),
    )
    return AssetCheckResult(
        passed=unknown == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={"messages": int(messages), "messages_of_unknown_conversations": int(unknown)},
    )


#: The blocking checks every partition's run runs after its load, in this order.
DATA_QUALITY_CHECKS: Sequence[CheckBody] = (
    no_duplicate_ids,
    no_null_id_or_cursor,
    loaded_rows_inside_partition_window,
    no_duplicate_child_rows,
    no_orphan_child_rows,
)
#: Non-blocking checks of one endpoint's asset.
ADVISORY_CHECKS: dict[str, Sequence[CheckBody]] = {
    MESSAGE_EXPORT.name: (messages_of_known_conversations,),
}


def build_checks(config: Config, endpoint: Endpoint) -> list[AssetChecksDefinition]:
    """The data-quality checks of one endpoint's asset, on its partitions: one step for all.

    The checks read the run's configuration from the ``dixa`` resource (its destination,
    folders and waits), as the asset does. Each check keeps its own name, description, result
    and blocking flag; a subset of them (the UI's "Execute" on one check) runs only those.
    Partitioned asset checks are a preview feature of Dagster 1.13, which says so with a
    ``PreviewWarning`` on every spec; the project relies on them knowingly, so that one warning
    is ignored here, for these only.
    """
    bodies = {check_name(body, endpoint): body for body in DATA_QUALITY_CHECKS}
    advisory = {check_name(body, endpoint): body for body in ADVISORY_CHECKS.get(endpoint.name, ())}
    key = asset_key(endpoint)
    partitions = monthly_partitions(config.start_date)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Specifying a partitions_def on an AssetCheckSpec",
            category=PreviewWarning,
        )
        specs = [
            AssetCheckSpec(
                name=name,
                asset=key,
                description=(body.__doc__ or "").split("\n\n")[0],
                partitions_def=partitions,
                blocking=name not in advisory,
            )
            for name, body in {**bodies, **advisory}.items()
        ]

    @multi_asset_check(specs=specs, name=f"dixa_{endpoint.name}_checks", can_subset=True)
    def checks(
        context: AssetCheckExecutionContext, dixa: DixaResource
    ) -> Iterator[AssetCheckResult]:
        selected = {check.name for check in context.selected_asset_check_keys}
        chosen = {name: body for name, body in {**bodies, **advisory}.items() if name in selected}
        yield from run_checks(run_config(dixa), context, endpoint, chosen)

    return [checks]


def run_config(dixa: DixaResource) -> Config:
    """The run's configuration: the checks need no token."""
    return dixa.config(require_token=False)


def run_checks(
    config: Config,
    context: AssetCheckExecutionContext,
    endpoint: Endpoint,
    bodies: dict[str, CheckBody],
) -> Iterator[AssetCheckResult]:
    """Each check's result, in order, on one connection; a check that raises fails the step
    after the others have reported (as a step of its own did).

    The results are reported once the destination is let go: Dagster writes an event for each.
    """
    key = asset_key(endpoint)
    results: list[AssetCheckResult] = []
    failed: list[str] = []
    first_error: Exception | None = None
    with checking(context, config, endpoint, list(bodies)) as run:
        for name, body in bodies.items():
            try:
                results.append(body(run)._replace(asset_key=key, check_name=name))
            except Exception as error:
                context.log.error(f"Check {name} raised {type(error).__name__}: {error}")
                failed.append(name)
                first_error = first_error or error
    yield from results
    if first_error is not None:
        message = f"Checks that raised instead of reporting: {', '.join(failed)}"
        raise CheckError(message) from first_error


def check_keys(checks: Sequence[AssetChecksDefinition]) -> set[AssetCheckKey]:
    """Every check key of ``checks`` (a multi-check holds several)."""
    return {key for definition in checks for key in definition.check_keys}
