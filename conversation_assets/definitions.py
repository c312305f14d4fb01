"""Everything Dagster loads: assets, checks, job, schedule, sensor, resources."""

from dagster import Definitions, in_process_executor
from dagster_dlt import DagsterDltResource

from conversation_assets.defs.assets import dixa_conversation_export
from conversation_assets.defs.automation import (
    conversation_export_job,
    daily_conversation_export,
    dixa_freshness_sensor,
)
from conversation_assets.defs.checks import DATA_QUALITY_CHECKS
from conversation_assets.defs.resources import dixa_resource_from_env

defs = Definitions(
    assets=[dixa_conversation_export],
    asset_checks=[*DATA_QUALITY_CHECKS],
    jobs=[conversation_export_job],
    schedules=[daily_conversation_export],
    sensors=[dixa_freshness_sensor],
    resources={"dlt": DagsterDltResource(), "dixa": dixa_resource_from_env()},
    # One asset and three cheap checks a run: a process per step would cost more than the checks.
    executor=in_process_executor,
)
