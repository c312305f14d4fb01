"""Everything Dagster loads: assets, checks, jobs, schedule, sensor, resources. Nothing else.

The definitions are built when Dagster loads them (``@definitions``), from the one
:class:`~conversation_assets.config.Config` read from the environment then: importing this
module does no work.
"""

import functools

from dagster import Definitions, definitions, in_process_executor
from dagster_dlt import DagsterDltResource

from conversation_assets.config import Config
from conversation_assets.defs.assets import build_export_asset
from conversation_assets.defs.automation import (
    JOB_NAME,
    build_freshness_sensor,
    build_job,
    build_schedule,
    job_name,
)
from conversation_assets.defs.checks import build_checks
from conversation_assets.defs.resources import dixa_resource_from_env
from conversation_assets.dixa.endpoints import ENDPOINTS


def build_definitions(config: Config | None = None) -> Definitions:
    """The project's definitions for ``config`` (default: read from the environment)."""
    config = config or Config.from_env(require_token=False)
    endpoints = list(ENDPOINTS.values())
    checks = {endpoint.name: build_checks(config, endpoint) for endpoint in endpoints}
    every_check = [check for endpoint_checks in checks.values() for check in endpoint_checks]
    return Definitions(
        assets=[build_export_asset(config, endpoint) for endpoint in endpoints],
        asset_checks=every_check,
        jobs=[
            build_job(JOB_NAME, endpoints, every_check),
            *(build_job(job_name(e), [e], checks[e.name]) for e in endpoints),
        ],
        schedules=[build_schedule(config)],
        sensors=[build_freshness_sensor(config)],
        resources={"dlt": DagsterDltResource(), "dixa": dixa_resource_from_env()},
        # A few assets and cheap checks a run: a process per step would cost more than them.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """What ``dagster dev``, ``dg``, the code server and every run worker load."""
    return definitions_for(Config.from_env(require_token=False))


@functools.lru_cache(maxsize=4)
def definitions_for(config: Config) -> Definitions:
    """The definitions of ``config``, built once a process.

    Dagster calls ``defs`` again each time it reconstructs the code location: six times in one
    ``dagster asset materialize``, each build making the assets, checks and a dlt pipeline. A
    process whose environment changes gets new definitions (the configuration is the key).
    """
    return build_definitions(config)
