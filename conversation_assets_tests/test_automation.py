"""The schedule and the freshness sensor, evaluated with Dagster's own test contexts."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from conversation_assets.assets import PARTITIONS, dixa_conversation_export
from conversation_assets.automation import (
    daily_conversation_export,
    freshness_checks,
    partitions_due,
)
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


def test_the_schedule_and_sensor_are_on_by_default() -> None:
    schedule = defs.resolve_schedule_def("daily_conversation_export")
    sensor = defs.resolve_sensor_def("dixa_freshness_checks_sensor")
    assert schedule.default_status.value == "RUNNING"
    assert sensor.default_status.value == "RUNNING"


def evaluate_freshness_sensor(instance: DagsterInstance) -> list[RunRequest]:
    sensor = defs.resolve_sensor_def("dixa_freshness_checks_sensor")
    context = build_sensor_context(instance=instance, definitions=defs)
    result = sensor.evaluate_tick(context)
    return list(result.run_requests or [])


def test_the_freshness_sensor_asks_for_the_freshness_check_to_run() -> None:
    with DagsterInstance.ephemeral() as instance:
        (request,) = evaluate_freshness_sensor(instance)
    assert request.asset_check_keys == [AssetCheckKey(ASSET, "freshness_check")]


def run_freshness_check(instance: DagsterInstance) -> bool:
    result = materialize(
        [dixa_conversation_export, *freshness_checks],
        selection=AssetSelection.checks(*freshness_checks),
        instance=instance,
        resources=defs.resources,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation.passed


def test_the_freshness_check_fails_without_the_latest_partition_and_passes_with_it() -> None:
    latest = PARTITIONS.get_last_partition_key()
    with DagsterInstance.ephemeral() as instance:
        assert not run_freshness_check(instance)
        instance.report_runless_asset_event(AssetMaterialization(ASSET, partition=latest))
        assert run_freshness_check(instance)
