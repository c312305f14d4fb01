"""Everything Dagster loads: assets, checks, job, schedule, sensor, resources. Nothing else.

The definitions are built when Dagster loads them (``@definitions``), from the one
:class:`~conversation_assets.config.Config` read from the environment then: importing this
module does no work.
"""

from dagster import Definitions, definitions, in_process_executor
from dagster_dlt import DagsterDltResource

from conversation_assets.config import Config
from conversation_assets.defs.assets import build_conversation_asset
from conversation_assets.defs.automation import build_freshness_sensor, build_job, build_schedule
from conversation_assets.defs.checks import build_checks
from conversation_assets.defs.resources import dixa_resource_from_env


def build_definitions(config: Config | None = None) -> Definitions:
    """The project's definitions for ``config`` (default: read from the environment)."""
    config = config or Config.from_env(require_token=False)
    checks = build_checks(config)
    return Definitions(
        assets=[build_conversation_asset(config)],
        asset_checks=checks,
        jobs=[build_job(checks)],
        schedules=[build_schedule(config)],
        sensors=[build_freshness_sensor(config)],
        resources={"dlt": DagsterDltResource(), "dixa": dixa_resource_from_env()},
        # One asset and a few cheap checks a run: a process per step would cost more than them.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """What ``dagster dev``, ``dg`` and the code server load."""
    return build_definitions()
