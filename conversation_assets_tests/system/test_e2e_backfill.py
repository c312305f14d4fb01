"""End to end, as a data engineer works in the UI: real processes, no mocks.

Each test runs against the ``deployment`` fixture (``system/conftest.py``): the API sandbox,
``dagster-webserver`` and ``dagster-daemon`` on a fresh ``DAGSTER_HOME`` (a copy of
``deploy/dagster.local.yaml``: queued runs, pool limit 1 per run) and a fresh DuckDB file. The
tests talk to the webserver's GraphQL API only, as the UI does, then read the DuckDB file and
compare it with what the sandbox serves.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import pytest

from conversation_assets.defs.automation import partitions_due
from conversation_assets.defs.partitions import monthly_partitions
from conversation_assets_tests.support.dagster_deployment import duckdb_pool
from conversation_assets_tests.support.graphql import (
    BACKFILL_SUCCEEDED,
    Run,
    error_texts,
    overlapping,
    tags_of,
)
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.sandboxed_deployment import SandboxedDeployment, Setup

# Each test starts its own deployment; on a busy 2-core machine a test may take several minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MONTHS_2023 = [f"2023-{month:02d}-01" for month in range(1, 13)]


def backfill_filter(backfill_id: str) -> dict[str, Any]:
    return {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}


def month_counts_differing(
    deployment: SandboxedDeployment, months: list[str]
) -> dict[str, tuple[int, int]]:
    """Per month: the ``conversations_loaded`` of its materialization and the sandbox's count,
    for the months that differ (an empty dict when every month loaded exactly its own)."""
    metadata = deployment.dagster.graphql.partition_metadata(months)
    differ = {}
    for key in months:
        expected = deployment.setup.expected_ids(month_window(key))
        loaded = int(metadata[key]["conversations_loaded"])
        if loaded != len(expected):
            differ[key] = (loaded, len(expected))
    return differ


def test_a_backfill_of_three_months_loads_each_month_once_with_its_own_metadata(
    deployment: SandboxedDeployment,
) -> None:
    dagster, months = deployment.dagster, ["2024-01-01", "2024-02-01", "2024-03-01"]

    backfill_id = dagster.graphql.launch_backfill(months)
    backfill = dagster.wait_for_backfill(backfill_id)
    runs = dagster.graphql.runs(backfill_filter(backfill_id))
    summary = [(run["partition"], run["status"]) for run in runs]
    assert backfill["status"] in BACKFILL_SUCCEEDED, f"{backfill}: {summary}\n{dagster.logs()}"
    assert len(runs) == 3, f"one run per partition (multi_run(1)), got {summary}"
    assert all(run["status"] == "SUCCESS" for run in runs), summary
    assert sorted(run["partition"] for run in runs) == months

    ids = deployment.loaded_ids()
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == deployment.setup.expected_ids(month_window("2024-01-01", "2024-03-01"))

    metadata = dagster.graphql.partition_metadata(months)
    assert sorted(metadata) == months, "every partition has a materialization"
    for key in months:
        assert metadata[key]["window_start"] == f"{key}T00:00:00.000Z"
    loaded = {key: int(metadata[key]["conversations_loaded"]) for key in months}
    assert sum(loaded.values()) == len(ids), f"per-partition counts, not a total each: {loaded}"
    assert month_counts_differing(deployment, months) == {}


def test_two_partitions_launched_at_once_take_turns_in_the_pool(
    deployment: SandboxedDeployment,
) -> None:
    dagster, months = deployment.dagster, ["2024-04-01", "2024-05-01"]

    with ThreadPoolExecutor(max_workers=2) as pool:  # two clicks at the same moment
        run_ids = list(pool.map(dagster.graphql.launch_job_run, months))
    runs = dagster.wait_for_runs(run_ids)
    summary = [(run["partition"], run["status"]) for run in runs]
    assert all(run["status"] == "SUCCESS" for run in runs), f"{summary}\n{dagster.logs()}"
    assert sorted(run["partition"] for run in runs) == months

    first, second = sorted(runs, key=lambda run: run["startTime"])
    assert first["endTime"] <= second["startTime"], (
        "the pool (limit 1, run granularity) must keep the runs apart: "
        f"{first['runId']} ran {first['startTime']}-{first['endTime']}, "
        f"{second['runId']} started at {second['startTime']}"
    )

    ids = deployment.loaded_ids()
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == deployment.setup.expected_ids(month_window("2024-04-01", "2024-05-01"))


SCHEDULE_NAME = "daily_dixa_export"
#: A run's states before it leaves the queue (created, then submitted to the queue).
WAITING = {"NOT_STARTED", "QUEUED"}
#: Conversations from October 2022 (late updates reach into January 2023), partitions from
#: January 2023, and the daily schedule every minute. The daemon is started by the test.
SCHEDULE_EVERY_MINUTE = Setup(
    per_day=20,
    data_start=date(2022, 10, 1),
    env={"DIXA_START_DATE": "2023-01-01", "DIXA_SCHEDULE_CRON": "* * * * *"},
    start_daemon=False,
)


@pytest.mark.parametrize("deployment", [SCHEDULE_EVERY_MINUTE], indirect=True, ids=["cron-1m"])
def test_a_backfill_of_twelve_months_while_the_schedule_fires_fails_no_run(
    deployment: SandboxedDeployment,
) -> None:
    """README, faults: "a 12-partition backfill while the schedule fires: none fails on a lock".

    The DuckDB pool is closed (limit 0) while the backfill's 12 runs and the runs of the
    schedule's first tick queue up, then opened (limit 1): the schedule's runs compete with the
    backfill's for the pool and the file. Nothing depends on the second of the minute: whenever
    the daemon starts, its first tick (the next full minute) finds the backfill's runs waiting.
    Dagster matches a schedule's run key together with the tick's time, so ``<partition>@<day>``
    does not hold back the next tick. The ticks request the real current month (and, early in a
    month, the previous one too), where the sandbox has no conversations: those runs load
    nothing, so the table holds 2023 only.
    """
    dagster, setup = deployment.dagster, deployment.setup
    dagster.set_pool_limit(duckdb_pool(), 0)
    backfill_id = dagster.graphql.launch_backfill(MONTHS_2023)
    dagster.start_daemon()
    daemon_started = time.time()

    def kind(run: Run) -> str:
        tags = tags_of(run)
        if tags.get("dagster/backfill") == backfill_id:
            return "backfill"
        return "schedule" if tags.get("dagster/schedule_name") == SCHEDULE_NAME else "other"

    def queued_together() -> list[Run] | None:
        runs = dagster.graphql.runs()
        left = [(kind(run), run["status"]) for run in runs if run["status"] not in WAITING]
        assert not left, f"runs left the queue while the pool was closed: {left}"
        queued = [kind(run) for run in runs if run["status"] == "QUEUED"]
        return runs if queued.count("backfill") == 12 and "schedule" in queued else None

    dagster.wait_for(queued_together, "the backfill's runs and a tick's run in the queue", 180)
    dagster.set_pool_limit(duckdb_pool(), 1)

    backfill = dagster.wait_for_backfill(backfill_id)
    # Every run of the instance so far: the backfill's and the schedule's.
    everything = dagster.wait_for_runs([run["runId"] for run in dagster.graphql.runs()])
    summary = [(kind(run), run["partition"], run["status"], run["runId"]) for run in everything]
    # No run failed, none on the DuckDB file's lock in particular.
    events = {run["runId"]: dagster.graphql.run_events(run["runId"]) for run in everything}
    errors = {run_id: error_texts(run_log) for run_id, run_log in events.items()}
    lock_errors = {
        run_id: [text for text in texts if "lock" in text.lower()]
        for run_id, texts in errors.items()
        if any("lock" in text.lower() for text in texts)
    }
    assert not lock_errors, f"runs failed on a lock: {lock_errors}\n{summary}"
    failed = [entry for entry in summary if entry[2] != "SUCCESS"]
    assert not failed, f"failed runs {failed}: {[errors[e[3]] for e in failed]}\n{summary}"

    # Every backfill partition succeeded, one run each.
    assert backfill["status"] in BACKFILL_SUCCEEDED, f"{backfill}: {summary}"
    (status,) = dagster.graphql.backfill_counts(backfill_id)
    assert status == {
        "numPartitionsTargeted": 12,
        "numPartitionsMaterialized": 12,
        "numPartitionsFailed": 0,
    }, status
    backfill_runs = [run for run in everything if kind(run) == "backfill"]
    assert sorted(run["partition"] for run in backfill_runs) == MONTHS_2023, summary

    # The schedule's runs: the partitions due on the tick's day; they succeeded (above).
    schedule_runs = [run for run in everything if kind(run) == "schedule"]
    assert schedule_runs, summary
    for run in schedule_runs:
        tags = tags_of(run)
        partition, day = tags["dagster/run_key"].split("@")
        moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
        due = partitions_due(moment, 3, monthly_partitions(date(2023, 1, 1)))
        assert partition == run["partition"] in due, tags

    # A schedule run was queued or running while backfill runs were: they competed for the pool.
    # (With the pool's limit of 1 they never execute at the same time.)
    waiting_together = {
        run["runId"]: overlapping(run, backfill_runs, "creationTime") for run in schedule_runs
    }
    executing_together = {
        run["runId"]: overlapping(run, backfill_runs, "startTime") for run in schedule_runs
    }
    timeline = sorted(
        (
            round(run["creationTime"] - daemon_started, 1),
            round(run["startTime"] - daemon_started),
            round(run["endTime"] - daemon_started),
            kind(run),
            run["partition"],
        )
        for run in everything
    )
    waited = [
        run_id
        for run_id, run_log in events.items()
        if any("Waiting for another load" in event.get("message", "") for event in run_log)
    ]
    report = (
        f"runs that waited for the DuckDB file's lock: {len(waited)}; "
        f"schedule run -> backfill runs alive at the same time: "
        f"{ {k: len(v) for k, v in waiting_together.items()} }; executing at the same time: "
        f"{ {k: len(v) for k, v in executing_together.items()} }; "
        f"timeline (created, started, ended, kind, partition; seconds after the daemon started): "
        f"{timeline}"
    )
    print(report)
    assert any(waiting_together.values()), f"no schedule run overlapped the backfill: {report}"

    # Every conversation of 2023 exactly once; each month's own count in its metadata.
    ids = deployment.loaded_ids()
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == setup.expected_ids(month_window("2023-01-01", "2023-12-01"))
    assert month_counts_differing(deployment, MONTHS_2023) == {}


#: 2023 from a sandbox that allows 10 requests a minute. In 16-day requests the 12 months need
#: 24, two a month: the first two waves of three runs make 12 within seconds of each other, so
#: the API refuses some even on a slow machine.
RATE_LIMITED = Setup(
    per_day=20,
    data_start=date(2022, 10, 1),
    # The README's advice: retries at least twice the pool limit (runs waiting out one
    # Retry-After wake together and only one gets the freed slot; with 3 retries one run of
    # three lost four times in a row once on a busy machine).
    env={"DIXA_START_DATE": "2023-01-01", "DIXA_BATCH_SIZE_DAYS": "16", "DIXA_MAX_RETRIES": "6"},
    sandbox_args=("--rate-limit", "10"),
)


@pytest.mark.parametrize("deployment", [RATE_LIMITED], indirect=True, ids=["10-a-minute"])
def test_a_backfill_with_a_pool_of_three_against_a_rate_limit_fails_no_run(
    deployment: SandboxedDeployment,
) -> None:
    """README, Concurrency: partitions extract at the same time, take turns to load, and wait
    out the API's 429s (``Retry-After``); every month lands exactly once."""
    dagster = deployment.dagster
    dagster.set_pool_limit(duckdb_pool(), 3)
    backfill_id = dagster.graphql.launch_backfill(MONTHS_2023)
    backfill = dagster.wait_for_backfill(backfill_id)
    runs = dagster.graphql.runs(backfill_filter(backfill_id))
    summary = [(run["partition"], run["status"], run["runId"]) for run in runs]
    failed = [entry for entry in summary if entry[1] != "SUCCESS"]
    errors = {entry[2]: error_texts(dagster.graphql.run_events(entry[2])) for entry in failed}
    assert not failed, f"failed runs {failed}: {errors}\n{dagster.logs()}"
    assert backfill["status"] in BACKFILL_SUCCEEDED, f"{backfill}: {summary}"
    assert sorted(run["partition"] for run in runs) == MONTHS_2023

    # The path under test ran: runs executed at the same time, and the API refused some
    # requests, which were retried after its Retry-After.
    concurrent = {run["runId"]: overlapping(run, runs, "startTime") for run in runs}
    assert any(len(others) > 1 for others in concurrent.values()), concurrent
    messages = [
        event.get("message", "")
        for run in runs
        for event in dagster.graphql.run_events(run["runId"])
    ]
    assert any("answered HTTP 429" in message for message in messages), "no 429 was retried"

    ids = deployment.loaded_ids()
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == deployment.setup.expected_ids(month_window("2023-01-01", "2023-12-01"))
