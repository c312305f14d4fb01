"""Load a dagster.yaml the way Dagster does and print what it configured; launches nothing.

    uv run python deploy/check_dagster_yaml.py deploy/dagster.local.yaml
    eval "$(scripts/postgres-up.sh)"
    uv run python deploy/check_dagster_yaml.py deploy/dagster.yaml

Each file is copied into a fresh temporary DAGSTER_HOME as dagster.yaml, then
``DagsterInstance.get()`` validates it against Dagster's instance schema and opens its storage
(for Postgres: connects with the DAGSTER_PG_* variables and creates Dagster's tables).
Exit 0 when every file loads, 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


def check(path: Path) -> None:
    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory(prefix="dagster-home-") as home:
        shutil.copy(path, Path(home) / "dagster.yaml")
        previous = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = home
        try:
            instance = DagsterInstance.get()
            try:
                config = instance.get_concurrency_config()
                queue = config.run_queue_config
                print(f"{path}: loaded")
                print(f"  run storage:       {type(instance.run_storage).__name__}")
                print(f"  event log storage: {type(instance.event_log_storage).__name__}")
                print(f"  schedule storage:  {type(instance.schedule_storage).__name__}")
                print(f"  run coordinator:   {type(instance.run_coordinator).__name__}")
                print(f"  run launcher:      {type(instance.run_launcher).__name__}")
                print(
                    f"  pools:             default_limit={config.pool_config.default_pool_limit}"
                    f" granularity={config.pool_config.pool_granularity}"
                )
                if queue is not None:
                    print(
                        f"  runs:              max_concurrent_runs={queue.max_concurrent_runs}"
                        f" tag_concurrency_limits={list(queue.tag_concurrency_limits)}"
                    )
                print(f"  telemetry:         {instance.telemetry_enabled}")
                print(f"  runs stored:       {instance.get_runs_count()}")
            finally:
                instance.dispose()
        finally:
            if previous is None:
                os.environ.pop("DAGSTER_HOME", None)
            else:
                os.environ["DAGSTER_HOME"] = previous


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or [Path("deploy/dagster.local.yaml")]
    failed = 0
    for path in paths:
        try:
            check(path)
        except Exception as error:  # report every file, then fail
            failed += 1
            print(f"{path}: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
