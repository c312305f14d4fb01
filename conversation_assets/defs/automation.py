"""What keeps the assets current: a daily schedule, and a freshness sensor that catches up.

Both run the daily job, which holds every endpoint's asset and checks: one run a partition
loads conversations, then messages. Each asset also has a job of its own (and the UI's
Materialize button), to load one without the other.

Settings (see :class:`~conversation_assets.config.Config`, read when the definitions load):
``DIXA_SCHEDULE_CRON`` (when the daily run starts, UTC), ``DIXA_LATE_UPDATE_DAYS`` (during the
first N days of a month the schedule also re-loads the previous month, for conversations updated
late in it), ``DIXA_FRESHNESS_SENSOR`` (``off``: stopped until someone starts it in the UI).

The freshness sensor (every 15 minutes, on by default) requests a catch-up run of a partition the
schedule should have loaded but that has had no successful materialization for
``DIXA_FRESHNESS_FAIL_HOURS`` (a failed or missed daily run), at most once a day per partition.

There are no freshness *checks*: a check of an asset runs with every materialization launched
from the UI (its Materialize button uses Dagster's implicit asset job, which holds every check),
so ``build_time_partition_freshness_checks`` reported on the latest month whenever a past month
was loaded. The ``FreshnessPolicy`` on the asset is evaluated by the daemon, outside runs.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetChecksDefinition,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from conversation_assets.config import Config
from conversation_assets.defs.assets import asset_key
from conversation_assets.defs.partitions import monthly_partitions
from conversation_assets.dixa.endpoints import ENDPOINTS, Endpoint

#: The job the schedule and the freshness sensor run: every endpoint's asset and checks.
JOB_NAME = "dixa_daily_job"


def job_name(endpoint: Endpoint) -> str:
    """``dixa_<endpoint>_job``: one endpoint's asset and its checks."""
    return f"dixa_{endpoint.name}_job"


def build_job(
    name: str, endpoints: Sequence[Endpoint], checks: Sequence[AssetChecksDefinition]
) -> Any:
    """A job of the endpoints' assets and their checks (partitioned like the assets, so each
    run checks the partition it loaded); the partitions come from the assets.

    Typed ``Any``: Dagster does not export the class of an unresolved asset job.
    """
    keys = [asset_key(endpoint) for endpoint in endpoints]
    return define_asset_job(
        name=name,
        selection=AssetSelection.assets(*keys).without_checks() | AssetSelection.checks(*checks),
    )


def partitions_due(
    moment: datetime, late_update_days: int, partitions: PartitionsDefinition
) -> list[str]:
    """Partition keys a tick at ``moment`` loads: this month, and last month early in a month."""
    current = moment.strftime("%Y-%m-01")
    keys = [current]
    if moment.day <= late_update_days:
        previous_month = moment.replace(day=1).month - 1 or 12
        previous_year = moment.year - (1 if previous_month == 12 else 0)
        keys.insert(0, f"{previous_year:04d}-{previous_month:02d}-01")
    valid = set(partitions.get_partition_keys(current_time=moment))
    return [key for key in keys if key in valid]


def build_schedule(config: Config) -> ScheduleDefinition:
    """The daily schedule at ``DIXA_SCHEDULE_CRON``: every endpoint, this month (and last)."""
    partitions = monthly_partitions(config.start_date)

    @schedule(
        job_name=JOB_NAME,
        cron_schedule=config.schedule_cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def daily_dixa_export(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        """Keep the current month (and, early in a month, the previous one) up to date."""
        moment = context.scheduled_execution_time
        for key in partitions_due(moment, config.late_update_days, partitions):
            yield RunRequest(run_key=f"{key}@{moment:%Y-%m-%d}", partition_key=key)

    return daily_dixa_export


def last_materialized(
    instance: DagsterInstance, endpoint: Endpoint, partition_key: str
) -> datetime | None:
    """When the endpoint's ``partition_key`` was last materialized successfully (None: never)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key(endpoint), asset_partitions=[partition_key]),
        limit=1,
    ).records
    return datetime.fromtimestamp(records[0].timestamp, tz=UTC) if records else None


def stale_partitions(
    instance: DagsterInstance, now: datetime, max_age: timedelta, due: Sequence[str]
) -> list[str]:
    """Partitions of ``due`` of which an endpoint's last materialization is older than max_age."""
    stale = []
    for key in due:
        for endpoint in ENDPOINTS.values():
            loaded = last_materialized(instance, endpoint, key)
            if loaded is None or now - loaded > max_age:
                stale.append(key)
                break
    return stale


def build_freshness_sensor(config: Config) -> SensorDefinition:
    """The freshness sensor (see the module's docstring)."""
    partitions = monthly_partitions(config.start_date)
    max_age = timedelta(hours=config.freshness_fail_hours)

    @sensor(
        job_name=JOB_NAME,
        minimum_interval_seconds=15 * 60,
        default_status=(
            DefaultSensorStatus.RUNNING
            if config.freshness_sensor == "on"
            else DefaultSensorStatus.STOPPED
        ),
    )
    def dixa_freshness_sensor(
        context: SensorEvaluationContext,
    ) -> Iterator[RunRequest | SkipReason]:
        """Catch up on a month the schedule keeps current but that has not loaded in time."""
        if not config.api_token:
            yield SkipReason(
                "DIXA_API_TOKEN is not set here: a catch-up run could not authenticate"
            )
            return
        now = datetime.now(tz=UTC)
        due = partitions_due(now, config.late_update_days, partitions)
        stale = stale_partitions(context.instance, now, max_age, due)
        if not stale:
            yield SkipReason(
                f"every partition due was materialized in the last "
                f"{config.freshness_fail_hours:g} h"
            )
        for key in stale:
            context.log.info(f"Partition {key} is not fresh: requesting a catch-up run")
            yield RunRequest(
                run_key=f"freshness:{key}@{now:%Y-%m-%d}",
                partition_key=key,
                tags={"dixa/trigger": "freshness_sensor"},
            )

    return dixa_freshness_sensor
