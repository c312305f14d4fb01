"""Materialize a partition of the project's asset: by the CLI in a process, or in-process.

The CLI is ``dagster asset materialize`` on the definitions module, as an operator runs it; the
in-process way is the job's ``execute_in_process``, as Dagster's own tests do. The definitions are
built only by the in-process helpers, from the environment of the moment.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult

from conversation_assets_tests.support.processes import venv_executable

DEFINITIONS_MODULE = "conversation_assets.definitions"
ASSET_SELECTION = "dixa/conversation_export"
JOB_NAME = "dixa_conversation_export_job"


def materialize_command(partition: str, selection: str = ASSET_SELECTION) -> list[str]:
    """``dagster asset materialize`` of the asset's ``partition`` (a key like ``2024-04-01``);
    ``selection`` another asset (``dixa/message_export``)."""
    return [
        venv_executable("dagster"),
        *("asset", "materialize", "-m", DEFINITIONS_MODULE),
        *("--select", selection, "--partition", partition),
    ]


def start_materialize(
    env: dict[str, str], partition: str, log: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start the CLI on ``partition``, stdout and stderr to ``log``.

    ``new_session``: the CLI leads a process group of its own, so that a test can kill it
    together with the step process it spawns (``os.killpg``).
    """
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            materialize_command(partition),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def materialize_by_cli(
    env: dict[str, str], partition: str, log: Path, timeout: float = 600
) -> tuple[int, str]:
    """Run the CLI on ``partition`` to the end; its exit code and its output (from ``log``)."""
    process = start_materialize(env, partition, log)
    code = process.wait(timeout=timeout)
    return code, log.read_text(errors="replace")


def materialize_in_process(
    partition: str, instance: DagsterInstance, *, raise_on_error: bool = False
) -> ExecuteInProcessResult:
    """Run the asset's job (the asset and its checks) for ``partition`` in this process."""
    from conversation_assets.definitions import build_definitions

    return (
        build_definitions()
        .resolve_job_def(JOB_NAME)
        .execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=raise_on_error
        )
    )


def check_only_in_process(partition: str, instance: DagsterInstance) -> ExecuteInProcessResult:
    """Only the asset's data-quality checks for ``partition`` (as the UI's "Execute checks")."""
    from conversation_assets.config import Config
    from conversation_assets.definitions import build_definitions
    from conversation_assets.defs.checks import build_checks, check_keys
    from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT

    config = Config.from_env(require_token=False)
    job = build_definitions(config).resolve_job_def(JOB_NAME)
    checks = check_keys(build_checks(config, CONVERSATION_EXPORT))
    subset = job.get_subset(asset_selection=set(), asset_check_selection=checks)
    return subset.execute_in_process(
        partition_key=partition, instance=instance, raise_on_error=False
    )
