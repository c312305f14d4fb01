"""What keeps the asset current: a daily schedule (freshness is the asset's FreshnessPolicy).

Defaults (all overridable by environment variables, read when the definitions load):

- ``DIXA_SCHEDULE_CRON`` (``0 1 * * *``, UTC): when the daily run starts.
- ``DIXA_LATE_UPDATE_DAYS`` (``3``): during the first N days of a month the schedule also
  re-loads the previous month, for conversations updated late in it.

There are no freshness *checks*: a check of an asset runs with every materialization launched
from the UI (its Materialize button uses Dagster's implicit asset job, which holds every check),
so ``build_time_partition_freshness_checks`` reported on the latest month whenever a past month
was loaded. The ``FreshnessPolicy`` on the asset is evaluated by the daemon, outside runs.
"""

import os
from collections.abc import Iterator
from datetime import datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from conversation_assets.assets import ASSET_KEY, PARTITIONS
from conversation_assets.checks import DATA_QUALITY_CHECKS
from conversation_assets.settings import parse_int

SCHEDULE_CRON = os.environ.get("DIXA_SCHEDULE_CRON", "0 1 * * *")
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
