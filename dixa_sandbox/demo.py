"""The demo: load the last three monthly partitions through Dagster, then show how to browse them.

    python -m dixa_sandbox.demo [--months 3] [--per-day 300]

Without ``DIXA_API_TOKEN`` (or with ``DIXA_SANDBOX=on``) it starts the local API sandbox on a free
port and points the project at it. With a token set it runs against the real API. Dagster's
instance lives in ``.dagster_home`` (from ``deploy/dagster.local.yaml``), so ``dagster dev`` shows
the same runs afterwards.
"""

import argparse
import os
import secrets
import shutil
import sys
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_INSTANCE_CONFIG = PROJECT_DIR / "deploy" / "dagster.local.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--months", type=int, default=3, help="partitions to load (default 3)")
    parser.add_argument("--per-day", type=int, default=300, help="sandbox conversations a day")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        if os.environ.get("DIXA_SANDBOX") == "on" or not os.environ.get("DIXA_API_TOKEN"):
            start_sandbox(stack, args.months, args.per_day)
        else:
            say(f"Using the Dixa API at {os.environ.get('DIXA_BASE_URL', 'exports.dixa.io')}")
        prepare_dagster_home()
        return run_partitions(args.months)


def say(line: str) -> None:
    print(line, flush=True)


def start_sandbox(stack: ExitStack, months: int, per_day: int) -> None:
    """Serve synthetic conversations locally and point the DIXA_* settings at them."""
    from dixa_sandbox import SandboxData, SandboxServer

    first_month = months_back(datetime.now(tz=UTC).date(), months - 1)
    token = secrets.token_urlsafe(16)
    data = SandboxData(per_day=per_day, data_start=first_month - timedelta(days=62))
    server = stack.enter_context(SandboxServer(token=token, data=data))
    os.environ.update(
        {
            "DIXA_API_TOKEN": token,
            "DIXA_BASE_URL": server.url,
            "DIXA_RETRY_BACKOFF_SECONDS": os.environ.get("DIXA_RETRY_BACKOFF_SECONDS", "1"),
        }
    )
    os.environ.setdefault("DIXA_START_DATE", first_month.isoformat())
    say(f"Started the local API sandbox at {server.url} ({per_day} conversations a day)")


def months_back(today: date, months: int) -> date:
    """The first day of the month ``months`` before ``today``'s month."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def prepare_dagster_home() -> Path:
    """``DAGSTER_HOME`` (default ``.dagster_home``) with the embedded instance config."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_DIR / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(LOCAL_INSTANCE_CONFIG, home / "dagster.yaml")
        set_pool_limit()
    return home


def set_pool_limit() -> None:
    """Write the pool's limit into a new instance (``dagster instance concurrency set``).

    Dagster 1.13.27 starts every queued run of a pool it has not seen before at once, whatever
    ``default_limit`` says; an explicit limit avoids that first burst.
    """
    from dagster import DagsterInstance

    from conversation_assets.config import Config
    from conversation_assets.defs.assets import pool_name

    destination = Config.from_env(require_token=False).destination
    with DagsterInstance.get() as instance:
        limit = 1 if destination == "duckdb" else 3
        instance.event_log_storage.set_concurrency_slots(pool_name(destination), limit)


def run_partitions(months: int) -> int:
    """Materialize the last ``months`` partitions of both assets (with their checks) with the
    daily job, one run a partition."""
    from dagster import DagsterInstance

    from conversation_assets.config import Config
    from conversation_assets.definitions import build_definitions
    from conversation_assets.defs.automation import JOB_NAME
    from conversation_assets.defs.partitions import monthly_partitions

    config = Config.from_env(require_token=False)
    job = build_definitions(config).resolve_job_def(JOB_NAME)
    keys = monthly_partitions(config.start_date).get_partition_keys()[-months:]
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    rows: list[tuple[str, Any, Any, Any, float, str]] = []
    with DagsterInstance.get() as instance:
        say(
            "Materializing dixa/conversation_export and dixa/message_export for partitions "
            + ", ".join(keys)
        )
        for key in keys:
            say(f"  {key}: loading ...")
            started = time.monotonic()
            result = job.execute_in_process(
                partition_key=key, instance=instance, run_config=quiet, raise_on_error=False
            )
            seconds = time.monotonic() - started
            metadata = materialization_metadata(result)
            status = "ok" if result.success else "FAILED"
            rows.append(
                (
                    key,
                    metadata.get("conversations_loaded", "-"),
                    metadata.get("messages_loaded", "-"),
                    metadata.get("requests", 0),
                    seconds,
                    status,
                )
            )
            say(f"  {key}: {status} in {seconds:.1f} s")
            if not result.success:
                say(failure_text(result))
    print_summary(rows)
    return 0 if all(row[5] == "ok" for row in rows) else 1


def materialization_metadata(result: Any) -> dict[str, Any]:
    """The metadata of the run's materializations (both assets), requests summed."""
    merged: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        for key, value in event.materialization.metadata.items():
            if key == "requests":
                merged[key] = merged.get(key, 0) + value.value
            else:
                merged[key] = value.value
    return merged


def failure_text(result: Any) -> str:
    for event in result.all_events:
        if event.is_failure and event.step_failure_data:
            return f"    {event.step_failure_data.error.message.strip()}"
    return "    (see the run's logs in the UI)"


def print_summary(rows: list[tuple[str, Any, Any, Any, float, str]]) -> None:
    say("")
    say(
        f"{'partition':<12} {'conversations':>13} {'messages':>9} {'requests':>8} "
        f"{'seconds':>8}  status"
    )
    for key, conversations, messages, requests, seconds, status in rows:
        say(
            f"{key:<12} {conversations!s:>13} {messages!s:>9} {requests!s:>8} "
            f"{seconds:>8.1f}  {status}"
        )
    database = os.environ.get("DESTINATION__DUCKDB__CREDENTIALS", "data/conversations.duckdb")
    say("")
    say(
        f"Data: DuckDB file {database}, dataset 'dixa', tables 'conversation_export' and "
        "'message_export' (and their child tables)."
    )
    say("See them in the Dagster UI (assets in group dixa, their partitions and checks):")
    say(f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} uv run dagster dev")
    say("then open http://127.0.0.1:3000")


if __name__ == "__main__":
    sys.exit(main())
