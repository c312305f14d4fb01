"""What keeps the asset current: a daily schedule, and a freshness sensor that catches up.

Defaults (all overridable by environment variables, read when the definitions load):

- ``DIXA_SCHEDULE_CRON`` (``0 1 * * *``, UTC): when the daily run starts.
- ``DIXA_FRESHNESS_SENSOR`` (``on``): whether the freshness sensor starts running (``off``:
  stopped until someone starts it in the UI).
- ``DIXA_LATE_UPDATE_DAYS`` (``3``): during the first N days of a month the schedule also
  re-loads the previous month, for conversations updated late in it.

The freshness sensor (every 15 minutes, on by default) requests a catch-up run of a partition the
schedule should have loaded but that has had no successful materialization for
``DIXA_FRESHNESS_FAIL_HOURS`` (a failed or missed daily run), at most once a day per partition.

There are no freshness *checks*: a check of an asset runs with every materialization launched
from the UI (its Materialize button uses Dagster's implicit asset job, which holds every check),
so ``build_time_partition_freshness_checks`` reported on the latest month whenever a past month
was loaded. The ``FreshnessPolicy`` on the asset is evaluated by the daemon, outside runs.
"""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from conversation_assets.config import parse_choice, parse_int
from conversation_assets.defs.assets import ASSET_KEY, FRESHNESS_FAIL_HOURS, PARTITIONS
from conversation_assets.defs.checks import DATA_QUALITY_CHECKS

SCHEDULE_CRON = os.environ.get("DIXA_SCHEDULE_CRON", "0 1 * * *")
FRESHNESS_SENSOR = parse_choice(
    "DIXA_FRESHNESS_SENSOR", os.environ.get("DIXA_FRESHNESS_SENSOR"), ("on", "off")
)
LATE_UPDATE_DAYS = parse_int(
    "DIXA_LATE_UPDATE_DAYS", os.environ.get("DIXA_LATE_UPDATE_DAYS"), 3, 0, 27
)

conversation_export_job = define_asset_job(
    name="dixa_conversation_export_job",
    # The asset and its data-quality checks (partitioned like the asset: each run checks the
    # partition it loaded); the partitions come from the asset.
    selection=AssetSelection.assets(ASSET_KEY).without_checks()
    | AssetSelection.checks(*DATA_QUALITY_CHECKS),
)


def partitions_due(moment: datetime, late_update_days: int = LATE_UPDATE_DAYS) -> list[str]:
    """Partition keys a tick at ``moment`` loads: this month, and last month early in a month."""
    current = moment.strftime("%Y-%m-01")
    keys = [current]
    if moment.day <= late_update_days:
        previous_month = moment.replace(day=1).month - 1 or 12
        previous_year = moment.year - (1 if previous_month == 12 else 0)
        keys.insert(0, f"{previous_year:04d}-{previous_month:02d}-01")
    valid = set(PARTITIONS.get_partition_keys(current_time=moment))
    return [key for key in keys if key in valid]


@schedule(
    job=conversation_export_job,
    cron_schedule=SCHEDULE_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def daily_conversation_export(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    """Keep the current month (and, early in a month, the previous one) up to date."""
    moment = context.scheduled_execution_time
    for key in partitions_due(moment):
        yield RunRequest(run_key=f"{key}@{moment:%Y-%m-%d}", partition_key=key)


def last_materialized(instance: DagsterInstance, partition_key: str) -> datetime | None:
    """When ``partition_key`` was last materialized successfully (None: never)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[partition_key]), limit=1
    ).records
    return datetime.fromtimestamp(records[0].timestamp, tz=UTC) if records else None


def stale_partitions(
    instance: DagsterInstance,
    now: datetime,
    max_age: timedelta = timedelta(hours=FRESHNESS_FAIL_HOURS),
) -> list[str]:
    """Partitions the schedule keeps current whose last materialization is older than max_age."""
    stale = []
    for key in partitions_due(now):
        loaded = last_materialized(instance, key)
        if loaded is None or now - loaded > max_age:
            stale.append(key)
    return stale


@sensor(
    job=conversation_export_job,
    minimum_interval_seconds=15 * 60,
    default_status=(
        DefaultSensorStatus.RUNNING if FRESHNESS_SENSOR == "on" else DefaultSensorStatus.STOPPED
    ),
)
def dixa_freshness_sensor(context: SensorEvaluationContext) -> Iterator[RunRequest | SkipReason]:
    """Catch up on a month the schedule keeps current but that has not loaded in time."""
    if not os.environ.get("DIXA_API_TOKEN"):
        yield SkipReason("DIXA_API_TOKEN is not set here: a catch-up run could not authenticate")
        return
    now = datetime.now(tz=UTC)
    stale = stale_partitions(context.instance, now)
    if not stale:
        yield SkipReason(
            f"every partition due was materialized in the last {FRESHNESS_FAIL_HOURS:g} h"
        )
    for key in stale:
        context.log.info(f"Partition {key} is not fresh: requesting a catch-up run")
        yield RunRequest(
            run_key=f"freshness:{key}@{now:%Y-%m-%d}",
            partition_key=key,
            tags={"dixa/trigger": "freshness_sensor"},
        )
