"""The schedule and the freshness sensor, evaluated with Dagster's own test contexts."""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from conversation_assets.config import Config
from conversation_assets.definitions import build_definitions
from conversation_assets.defs.automation import (
    build_freshness_sensor,
    build_schedule,
    partitions_due,
    stale_partitions,
)
from conversation_assets.defs.partitions import monthly_partitions

ASSET = AssetKey(["dixa", "conversation_export"])
ASSETS = [ASSET, AssetKey(["dixa", "message_export"])]
CONFIG = Config.from_env({}, require_token=False)
defs = build_definitions(CONFIG)
daily_conversation_export = build_schedule(CONFIG)
LATE_UPDATE_DAYS = CONFIG.late_update_days


def due(moment: datetime) -> list[str]:
    return partitions_due(moment, LATE_UPDATE_DAYS, monthly_partitions(CONFIG.start_date))


def dixa_freshness_sensor(context: object, token: str = "test-token") -> list:
    """The sensor as the definitions build it where DIXA_API_TOKEN is ``token``."""
    config = Config.from_env({"DIXA_API_TOKEN": token}, require_token=False)
    return list(build_freshness_sensor(config)(context))


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
    keys = due(datetime(2025, 1, 1, 1, tzinfo=UTC))
    assert keys == ["2024-12-01", "2025-01-01"]


def test_the_first_month_has_no_previous_partition() -> None:
    assert due(datetime(2024, 1, 2, 1, tzinfo=UTC)) == ["2024-01-01"]


def test_the_schedule_is_on_by_default() -> None:
    schedule = defs.resolve_schedule_def("daily_dixa_export")
    assert schedule.default_status.value == "RUNNING"


def test_freshness_is_the_assets_policy_and_a_sensor_not_a_check() -> None:
    """Freshness is evaluated outside runs (the asset's FreshnessPolicy by the daemon, the
    catch-up sensor on its tick): no freshness check rides along with another month's run."""
    graph = defs.resolve_asset_graph()
    assert graph.get(ASSET).freshness_policy is not None
    assert "freshness_check" not in {key.name for key in graph.asset_check_keys}
    assert [sensor.name for sensor in defs.sensors or []] == ["dixa_freshness_sensor"]


def sensor_requests(instance: DagsterInstance) -> list[RunRequest]:
    context = build_sensor_context(instance=instance)
    return [item for item in dixa_freshness_sensor(context) if isinstance(item, RunRequest)]


def test_the_freshness_sensor_catches_up_on_a_month_that_never_loaded() -> None:
    now = datetime.now(tz=UTC)
    with DagsterInstance.ephemeral() as instance:
        requests = sensor_requests(instance)
    assert [r.partition_key for r in requests] == due(now)
    assert all(r.run_key.startswith("freshness:") for r in requests), "once a day a partition"


def test_the_freshness_sensor_skips_when_the_months_are_fresh() -> None:
    now = datetime.now(tz=UTC)
    with DagsterInstance.ephemeral() as instance:
        for key in due(now):
            for asset in ASSETS:
                instance.report_runless_asset_event(AssetMaterialization(asset, partition=key))
        assert sensor_requests(instance) == []
        context = build_sensor_context(instance=instance)
        (skip,) = dixa_freshness_sensor(context)
        assert isinstance(skip, SkipReason)


def test_a_month_loaded_too_long_ago_is_stale() -> None:
    with DagsterInstance.ephemeral() as instance:
        key = due(datetime.now(tz=UTC))[-1]
        instance.report_runless_asset_event(AssetMaterialization(ASSET, partition=key))
        a_day_and_a_half_later = datetime.now(tz=UTC) + timedelta(hours=36)
        stale = stale_partitions(instance, a_day_and_a_half_later, timedelta(hours=30), [key])
        assert stale == [key]


def test_the_freshness_sensor_launches_nothing_without_a_token() -> None:
    with DagsterInstance.ephemeral() as instance:
        (skip,) = dixa_freshness_sensor(build_sensor_context(instance=instance), token="")
    assert isinstance(skip, SkipReason) and "DIXA_API_TOKEN" in str(skip.skip_message)


def test_the_freshness_sensor_is_on_by_default() -> None:
    assert defs.resolve_sensor_def("dixa_freshness_sensor").default_status.value == "RUNNING"


def test_a_month_whose_messages_never_loaded_is_stale() -> None:
    """The sensor watches every endpoint's asset: fresh conversations are not enough."""
    now = datetime.now(tz=UTC)
    with DagsterInstance.ephemeral() as instance:
        key = due(now)[-1]
        instance.report_runless_asset_event(AssetMaterialization(ASSET, partition=key))
        assert stale_partitions(instance, now, timedelta(hours=30), [key]) == [key]
