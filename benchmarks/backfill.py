"""The backfill benchmark: 12 monthly partitions through ``dagster-daemon``, once per pool limit,
on a fresh instance, DuckDB file and sandbox each (with the sandbox's latency model if asked)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.environment import clean_env, dagster_home
from benchmarks.files import (
    count_rows,
    dataset_counts,
    distinct_errors,
    scratch_dir,
    write_results,
)
from benchmarks.machine import machine_info
from benchmarks.memory import GB, MB, TreeWatch
from benchmarks.report import backfill_markdown
from benchmarks.sandbox import Sandbox, now_ms
from benchmarks.settings import (
    BACKFILL_NOW,
    BACKFILL_YEAR,
    DATA_START,
    PROJECT_TABLE,
    SEED,
    TOKEN,
)
from conversation_assets.config import MAX_BATCH_SIZE_DAYS
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT
from conversation_assets.dixa.windows import request_windows
from conversation_assets_tests.support.dagster_deployment import (
    PROJECT_DIR,
    WORKSPACE,
    DagsterDeployment,
)
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.materialize import JOB_NAME
from conversation_assets_tests.support.processes import venv_executable
from dixa_sandbox import SandboxData

#: The pool the DuckDB loads take turns in (``pool_name("duckdb")`` of the Dagster layer).
DUCKDB_POOL = "dixa_duckdb"


@dataclass
class BackfillOutcome:
    """What the daemon did with the backfill, read from the instance and the daemon's tree."""

    launched_at: float  # epoch seconds, just before `dagster job backfill`
    records: list[Any]  # the backfill's RunRecords
    steps: list[tuple[str, str, float, float]]  # (run id, step key, start, end) of each step
    other_runs: list[str]  # job names of runs launched meanwhile that are not the backfill's
    peak_rss_bytes: int
    killed: bool


def daemon_heartbeats(instance: Any) -> set[str] | None:
    """The daemons that have sent a heartbeat, once the backfill and run-queue daemons have."""
    beats = set(instance.get_daemon_heartbeats())
    return beats if {"BACKFILL", "QUEUED_RUN_COORDINATOR"} <= beats else None


def wait_for_runs(
    instance: Any, backfill_id: str, count: int, timeout: float, watch: TreeWatch
) -> list[Any]:
    """Poll the backfill's runs until ``count`` of them have finished (or it times out).

    Not :func:`wait_for`: a timeout or a kill for memory is reported with the runs so far.
    """
    from dagster import RunsFilter

    deadline = time.monotonic() + timeout
    done_states = {"SUCCESS", "FAILURE", "CANCELED"}
    reported = 0
    while True:
        records = instance.get_run_records(
            filters=RunsFilter(tags={"dagster/backfill": backfill_id})
        )
        finished = [r for r in records if r.dagster_run.status.value in done_states]
        if len(finished) > reported:
            reported = len(finished)
            print(f"  {reported}/{count} runs finished", flush=True)
        if len(finished) >= count or watch.killed or time.monotonic() > deadline:
            return list(records)
        time.sleep(1.0)


def step_intervals(instance: Any, run_ids: Sequence[str]) -> list[tuple[str, str, float, float]]:
    """(run id, step key, start, end) of every finished step of the runs, from their event logs:
    the partition's own work (the asset step, then its checks), without the run's start-up."""
    from dagster import DagsterEventType

    kinds = {
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
    }
    intervals = []
    for run_id in run_ids:
        started: dict[str, float] = {}
        for entry in instance.all_logs(run_id, of_type=kinds):
            if entry.dagster_event_type == DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif entry.step_key in started:
                intervals.append(
                    (run_id, entry.step_key, started.pop(entry.step_key), entry.timestamp)
                )
    return intervals


def run_backfill(
    env: dict[str, str], workdir: Path, keys: Sequence[str], args: argparse.Namespace
) -> BackfillOutcome:
    """Start ``dagster-daemon`` (log: ``workdir/daemon.log``), launch the backfill, and wait
    for its runs to finish; the daemon's whole tree is under the memory watch meanwhile."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    limit = int(args.memory_limit_gb * GB) if args.memory_limit_gb else None
    deployment = DagsterDeployment(env=env, log_dir=workdir)
    started = time.monotonic()
    deployment.start_daemon()
    (daemon,) = deployment.processes
    watch = TreeWatch(daemon.pid, limit)
    watch.start()
    try:
        deployment.wait_for(lambda: daemon_heartbeats(instance), "the daemon's heartbeats", 300)
        print(f"  daemon ready in {time.monotonic() - started:.1f} s", flush=True)
        launched_at = time.time()
        command = [
            venv_executable("dagster"), "job", "backfill", "-w", str(WORKSPACE),
            "-j", JOB_NAME, "--partitions", ",".join(keys), "--noprompt",
        ]  # fmt: skip
        launched = subprocess.run(
            command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
        )
        backfills = instance.get_backfills()
        if launched.returncode != 0 or not backfills:
            raise RuntimeError(f"dagster job backfill failed: {launched.stderr[-2000:]}")
        backfill_id = backfills[0].backfill_id
        print(f"  backfill {backfill_id} launched", flush=True)
        records = wait_for_runs(instance, backfill_id, len(keys), args.timeout, watch)
        steps = step_intervals(instance, [record.dagster_run.run_id for record in records])
        others = [
            record.dagster_run.job_name
            for record in instance.get_run_records()
            if record.dagster_run.tags.get("dagster/backfill") != backfill_id
            and record.create_timestamp.timestamp() >= launched_at
        ]
    finally:
        watch.stop()
        deployment.stop()
        instance.dispose()
    return BackfillOutcome(launched_at, records, steps, others, watch.peak_bytes, watch.killed)


def run_timeline(intervals: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """How long at least one run was running, the most runs at once, and the idle gaps.

    A gap is the time from the end of every earlier run to the start of the next one: the
    daemon's own overhead between two partitions when the runs go one at a time.
    """
    busy, covered_to, running, most, gaps = 0.0, float("-inf"), 0, 0, []
    for start, end in sorted(intervals):
        if covered_to != float("-inf") and start >= covered_to:
            gaps.append(start - covered_to)
        busy += max(0.0, end - max(start, covered_to))
        covered_to = max(covered_to, end)
    for _, change in sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals]):
        running += change
        most = max(most, running)
    return {
        "busy_seconds": round(busy, 1),
        "max_concurrent_runs": most,
        "gaps_between_runs": len(gaps),
        "median_gap_seconds": round(statistics.median(gaps), 1) if gaps else None,
    }


def run_table(records: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per backfill run, in start order: partition, status and timings."""
    rows = []
    for record in sorted(records, key=lambda r: r.start_time or 0):
        run = record.dagster_run
        timed = record.start_time is not None and record.end_time is not None
        rows.append(
            {
                "partition": run.tags.get("dagster/partition"),
                "run_id": run.run_id,
                "status": run.status.value,
                "queued_at": record.create_timestamp.timestamp(),
                "start_time": record.start_time,
                "end_time": record.end_time,
                "seconds": round(record.end_time - record.start_time, 2) if timed else None,
            }
        )
    return rows


def backfill_summary(
    outcome: BackfillOutcome,
    expected: dict[str, int],
    rows: int | None,
    errors: list[str],
    pool: int = 1,
) -> dict[str, Any]:
    """Total wall time vs the runs' own time, concurrency, memory, row count and problems."""
    runs = run_table(outcome.records)
    timed = [(r["start_time"], r["end_time"]) for r in runs if r["seconds"] is not None]
    total = max(end for _, end in timed) - outcome.launched_at if timed else None
    run_sum = sum(end - start for start, end in timed) if timed else None
    timeline = run_timeline(timed)
    # A partition's own work: from its run's first step start to its last step end.
    work: dict[str, tuple[float, float]] = {}
    for run_id, _, start, end in outcome.steps:
        first, last = work.get(run_id, (start, end))
        work[run_id] = (min(first, start), max(last, end))
    steps = list(work.values())
    step_timeline = run_timeline(steps)
    asset_steps = run_timeline(
        [(start, end) for _, key, start, end in outcome.steps if not key.endswith("_checks")]
    )
    problems = [
        f"run {r['run_id']} for {r['partition']}: {r['status']}"
        for r in runs
        if r["status"] != "SUCCESS"
    ]
    if len(runs) < len(expected):
        problems.append(f"only {len(runs)} of {len(expected)} runs were launched")
    if outcome.killed:
        problems.append("killed: the daemon's tree went over the memory limit")
    if asset_steps["max_concurrent_runs"] > pool:
        problems.append(
            f"up to {asset_steps['max_concurrent_runs']} asset steps ran at once, although the "
            f"instance's pool limit is {pool}"
        )
    conversations = sum(expected.values())
    if rows != conversations:
        problems.append(f"rows {rows} of {conversations} in {PROJECT_TABLE}")
    partitions = len(expected)
    return {
        "pool": pool,
        "partitions": partitions,
        "conversations": conversations,
        "conversations_by_partition": expected,
        "runs_finished": len(timed),
        "total_wall_seconds": None if total is None else round(total, 1),
        "sum_run_seconds": None if run_sum is None else round(run_sum, 1),
        "overhead_seconds_per_partition": (
            None if total is None or run_sum is None else round((total - run_sum) / partitions, 1)
        ),
        # The partitions' own work (asset step, then checks) and the time between them.
        "step_busy_seconds": step_timeline["busy_seconds"],
        "idle_seconds_per_partition": (
            None
            if total is None or not steps
            else round((total - step_timeline["busy_seconds"]) / partitions, 2)
        ),
        "median_step_gap_seconds": step_timeline["median_gap_seconds"],
        "max_concurrent_asset_steps": asset_steps["max_concurrent_runs"],
        "first_run_started_after_seconds": (
            round(min(start for start, _ in timed) - outcome.launched_at, 1) if timed else None
        ),
        **timeline,
        "peak_rss_mb": round(outcome.peak_rss_bytes / MB),
        "other_runs_meanwhile": {
            name: outcome.other_runs.count(name) for name in sorted(set(outcome.other_runs))
        },
        "rows": rows,
        "rows_ok": rows == conversations,
        "problems": problems,
        "errors_in_daemon_log": errors,
        "runs": runs,
    }


def latency_args(args: argparse.Namespace) -> list[str]:
    """The sandbox's latency model from the options (empty: the sandbox answers at once)."""
    extra = []
    if args.first_byte_seconds:
        extra += ["--first-byte-seconds", f"{args.first_byte_seconds:g}"]
    if args.bandwidth_mb:
        extra += ["--bandwidth-mb", f"{args.bandwidth_mb:g}"]
    if args.rate_limit:
        extra += ["--rate-limit", str(args.rate_limit)]
    return extra


def backfill_with_pool(
    pool: int,
    args: argparse.Namespace,
    scratch: Path,
    cache_dir: Path,
    per_day: int,
    expected: dict[str, int],
) -> tuple[dict[str, Any], dict[str, int]]:
    """One backfill of the 12 months with the pool limit ``pool``, on a fresh instance, file
    and sandbox (the rate limiter starts empty); its summary and rows per table."""
    workdir = scratch / f"backfill-pool-{pool}"
    workdir.mkdir()
    logs = scratch / f"sandbox-pool-{pool}"
    with Sandbox(per_day, BACKFILL_NOW, cache_dir, logs, extra_args=latency_args(args)) as sandbox:
        database = workdir / "conversations.duckdb"
        home = dagster_home(workdir, config=args.instance_config)
        env = clean_env(
            workdir,
            DAGSTER_HOME=str(home),
            DIXA_API_TOKEN=TOKEN,
            DIXA_BASE_URL=sandbox.url,
            DIXA_START_DATE=f"{BACKFILL_YEAR}-01-01",
            DESTINATION__DUCKDB__CREDENTIALS=str(database),
            DIXA_DLT_RUNS_DIR=str(workdir / "dlt_runs"),
            # Its catch-up runs of the wall clock's month are not part of the backfill.
            DIXA_FRESHNESS_SENSOR="off",
        )
        # As the README says for a new instance: Dagster 1.13.27 ignores default_limit for
        # the first runs of a pool it has not seen yet.
        subprocess.run(
            [venv_executable("dagster"), "instance", "concurrency", "set", DUCKDB_POOL, str(pool)],
            env=env,
            check=True,
            capture_output=True,
        )
        print(f"pool {pool}: sandbox {sandbox.url} {' '.join(latency_args(args))}", flush=True)
        outcome = run_backfill(env, workdir, list(expected), args)
        served = sandbox.served_since_last()
    rows, _ = count_rows(database, PROJECT_TABLE)
    counts = dataset_counts(database)
    summary = backfill_summary(
        outcome, expected, rows, distinct_errors(workdir / "daemon.log"), pool
    )
    summary["requests"] = served.requests
    summary["refused_429"] = served.statuses.count(429)
    if counts.get("distinct ids") != sum(expected.values()):
        summary["problems"].append(f"distinct ids {counts.get('distinct ids')}")
    return summary, counts


def backfill_benchmark(args: argparse.Namespace, command: str) -> int:
    """12 monthly partitions through ``dagster-daemon``, once per pool limit in ``--pools``."""
    started_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = machine_info()
    keys = [f"{BACKFILL_YEAR}-{month:02d}-01" for month in range(1, 13)]
    windows = {key: month_window(key) for key in keys}
    per_day = max(1, round(args.backfill_per_month * 12 / 365))
    data = SandboxData(per_day=per_day, data_start=DATA_START, seed=SEED)
    clock = now_ms(BACKFILL_NOW)
    expected = {
        key: len(data.expected_ids(w.start_ms, w.end_ms, clock)) for key, w in windows.items()
    }
    summaries: list[dict[str, Any]] = []
    counts: dict[int, dict[str, int]] = {}
    with scratch_dir(args.keep) as scratch:
        cache_dir = args.cache_dir or scratch / "cache"
        # The cache is written by a sandbox without the latency model: the runs' sandboxes
        # (with it) replay the same bytes.
        with Sandbox(per_day, BACKFILL_NOW, cache_dir, scratch / "sandbox-prewarm") as sandbox:
            # The project's own request windows: a 31-day month takes two requests.
            body_bytes = [
                sandbox.prewarm(CONVERSATION_EXPORT.query_params(request))
                for w in windows.values()
                for request in request_windows(w.start_ms, w.end_ms, MAX_BATCH_SIZE_DAYS)
            ]
        print(
            f"backfill: {len(windows)} partitions of {BACKFILL_YEAR}, "
            f"{sum(expected.values()):,} conversations (per_day {per_day}), "
            f"{sum(body_bytes) / MB:,.0f} MB in {len(body_bytes)} requests; pools {args.pools}",
            flush=True,
        )
        for pool in args.pools:
            summary, counts[pool] = backfill_with_pool(
                pool, args, scratch, cache_dir, per_day, expected
            )
            summaries.append(summary)
    reference = counts[args.pools[0]]
    for summary in summaries:
        if counts[summary["pool"]] != reference:
            summary["problems"].append(
                f"rows per table differ from pool {args.pools[0]}: {counts[summary['pool']]}"
            )
    meta = {
        "started_at": started_at,
        "command": command,
        "per_day": per_day,
        "sandbox_now": BACKFILL_NOW,
        "latency": latency_args(args),
        "body_mb": round(sum(body_bytes) / MB),
        "requests_per_backfill": len(body_bytes),
        "machine": machine,
        "total_seconds": round(time.monotonic() - started, 1),
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "rows_by_table": reference,
    }
    markdown = backfill_markdown(meta, summaries)
    write_results(args.out, "backfill", markdown, {**meta, "summaries": summaries})
    print("\n" + markdown)
    print(f"written: {args.out / 'backfill.md'} and {args.out / 'backfill.json'}")
    problems = [p for summary in summaries for p in summary["problems"]]
    for problem in problems:
        print(f"!!! {problem}", file=sys.stderr)
    return 1 if problems else 0
