"""What keeps the asset current: a daily schedule, freshness checks and their sensor.

Defaults (all overridable by environment variables, read when the definitions load):

- ``DIXA_SCHEDULE_CRON`` (``0 1 * * *``, UTC): when the daily run starts.
- ``DIXA_LATE_UPDATE_DAYS`` (``3``): during the first N days of a month the schedule also
  re-loads the previous month, for conversations updated late in it.
- ``DIXA_FRESHNESS_DEADLINE_CRON`` (``0 3 * * *``): by then the latest partition must exist.
"""

import os
import warnings
from collections.abc import Iterator
from datetime import datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    define_asset_job,
    schedule,
)
from dagster._utils.warnings import SupersessionWarning

from conversation_assets.assets import ASSET_KEY, PARTITIONS
from conversation_assets.checks import DATA_QUALITY_CHECKS
from conversation_assets.settings import parse_int

SCHEDULE_CRON = os.environ.get("DIXA_SCHEDULE_CRON", "0 1 * * *")
LATE_UPDATE_DAYS = parse_int(
    "DIXA_LATE_UPDATE_DAYS", os.environ.get("DIXA_LATE_UPDATE_DAYS"), 3, 0, 27
)
FRESHNESS_DEADLINE_CRON = os.environ.get("DIXA_FRESHNESS_DEADLINE_CRON", "0 3 * * *")

conversation_export_job = define_asset_job(
    name="dixa_conversation_export_job",
    # The asset and its data-quality checks; the freshness checks run from their sensor.
    selection=AssetSelection.assets(ASSET_KEY).without_checks()
    | AssetSelection.checks(*DATA_QUALITY_CHECKS),
    partitions_def=PARTITIONS,
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


# Dagster 1.13 marks these factories as superseded by FreshnessPolicy, which the asset has too;
# the checks add a per-partition verdict ("does the latest month exist by the deadline?") that the
# policy does not give, so both are kept and the warning is silenced here only.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SupersessionWarning)
    freshness_checks = build_time_partition_freshness_checks(
        assets=[ASSET_KEY], deadline_cron=FRESHNESS_DEADLINE_CRON, timezone="UTC"
    )
    freshness_sensor = build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        name="dixa_freshness_checks_sensor",
        default_status=DefaultSensorStatus.RUNNING,
    )
