"""The schedule, evaluated with Dagster's own test context; freshness is the asset's policy."""

from datetime import UTC, datetime

from dagster import AssetKey, DagsterInstance, RunRequest, build_schedule_context

from conversation_assets.automation import daily_conversation_export, partitions_due
from conversation_assets.definitions import defs

ASSET = AssetKey(["dixa", "conversation_export"])


def run_requests(moment: datetime) -> list[RunRequest]:
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance, scheduled_execution_time=moment)
        return list(daily_conversation_export(context))


def test_a_mid_month_tick_loads_the_current_month() -> None:
    (request,) = run_requests(datetime(2024, 5, 17, 1, tzinfo=UTC))
    assert request.partition_key == "2024-05-01"
    assert request.run_key == "2024-05-01@2024-05-17"


def test_a_month_start_tick_also_reloads_the_previous_month() -> None:
    requests = run_requests(datetime(2024, 6, 2, 1, tzinfo=UTC))
    assert [r.partition_key for r in requests] == ["2024-05-01", "2024-06-01"]


def test_a_january_tick_reaches_back_into_december() -> None:
    keys = partitions_due(datetime(2025, 1, 1, 1, tzinfo=UTC))
    assert keys == ["2024-12-01", "2025-01-01"]


def test_the_first_month_has_no_previous_partition() -> None:
    assert partitions_due(datetime(2024, 1, 2, 1, tzinfo=UTC)) == ["2024-01-01"]


def test_the_schedule_is_on_by_default() -> None:
    schedule = defs.resolve_schedule_def("daily_conversation_export")
    assert schedule.default_status.value == "RUNNING"


def test_freshness_is_the_assets_policy_not_a_check_or_sensor() -> None:
    """Freshness is evaluated by the daemon from the asset's FreshnessPolicy, outside runs: no
    freshness check rides along with a materialization of another month."""
    graph = defs.resolve_asset_graph()
    assert graph.get(ASSET).freshness_policy is not None
    assert "freshness_check" not in {key.name for key in graph.asset_check_keys}
    assert not list(defs.sensors or [])
