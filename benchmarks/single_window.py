"""The single-window benchmark: every contender loads April 2024 at each size, ``--repeat`` times,
under the memory watch; the table compares them. ``--endpoint message_export`` loads messages
(sizes count messages) instead of conversations."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import contenders
from benchmarks.contenders import (
    CONTENDERS,
    FLOOR_NOTE,
    MESSAGE_CONTENDERS,
    OUTPUT_LOG,
    SEED_NOTES,
    Case,
    Invocation,
    inner_timing,
    output_log,
)
from benchmarks.files import count_rows, scratch_dir, tail, write_results
from benchmarks.machine import machine_info
from benchmarks.memory import GB, MB, TreeWatch, kill_tree
from benchmarks.report import report_markdown, summarize
from benchmarks.sandbox import Sandbox, calibrate
from benchmarks.settings import SANDBOX_NOW, WINDOW_END, WINDOW_START
from conversation_assets.dixa.endpoints import ENDPOINTS, MESSAGE_EXPORT
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets_tests.support.processes import start_process


@dataclass
class RunResult:
    """One (size, contender, repeat) measurement."""

    size: int
    contender: str
    repeat: int
    status: str  # ok | failed | killed | skipped
    reason: str = ""
    seconds: float | None = None
    inner_seconds: float | None = None
    #: CPU seconds (user + system) of the contender's processes: on a shared machine the wall
    #: seconds grow with others' load, the CPU seconds much less.
    cpu_seconds: float | None = None
    peak_rss_bytes: int | None = None
    #: The highest sum of PSS over the tree: pages shared by forked processes counted once.
    peak_pss_bytes: int | None = None
    peak_members: list[str] = field(default_factory=list)
    peak_processes: int | None = None
    samples: int | None = None
    expected_rows: int | None = None
    rows: int | None = None
    rows_ok: bool | None = None
    returncode: int | None = None
    requests: int | None = None
    same_body: bool | None = None
    details: dict[str, Any] | None = None
    #: The machine's 1-minute load average just before the run: others' work skews timings.
    load_before: float | None = None
    log_tail: list[str] | None = None


def children_cpu_seconds() -> float:
    """User and system CPU seconds of this process's children that have ended (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(
    invocation: Invocation, workdir: Path, limit_bytes: int | None, timeout: float
) -> tuple[int, TreeWatch, float, str, float]:
    """Run one contender under the watch; return (exit code, watch, seconds, kill reason,
    CPU seconds).

    Its output (stdout and stderr) goes to ``workdir/output.log``. The CPU seconds are those of
    the contender and of every descendant it waited for (the sandbox, still running, is not
    counted).
    """
    cpu_before = children_cpu_seconds()
    started = time.monotonic()
    process = start_process(
        OUTPUT_LOG, invocation.argv, env=invocation.env, cwd=invocation.cwd, log_dir=workdir
    )
    watch = TreeWatch(process.pid, limit_bytes)
    watch.start()
    reason = ""
    try:
        process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        reason = f"killed: timeout after {timeout:g} s"
        kill_tree(process.pid)
        process.popen.wait()
    seconds = time.monotonic() - started
    cpu_seconds = children_cpu_seconds() - cpu_before
    watch.stop()
    kill_tree(process.pid)  # anything the contender left running in its session
    if watch.killed:
        reason = f"killed: over {limit_bytes / GB:g} GB" if limit_bytes else "killed"
    return process.popen.returncode, watch, seconds, reason, cpu_seconds


def run_one(
    case: Case,
    contender: str,
    repeat: int,
    sandbox: Sandbox,
    limit_bytes: int | None,
    timeout: float,
    keep: bool,
    scratch: Path,
) -> RunResult:
    """Run ``contender`` once on ``case`` in a fresh folder and check what it loaded."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{contender}-{case.size}-", dir=scratch))
    result = RunResult(case.size, contender, repeat, "ok", expected_rows=case.records)
    result.load_before = round(os.getloadavg()[0], 2)
    try:
        invocation = CONTENDERS[contender](case, workdir)
        returncode, watch, seconds, killed, cpu = execute(invocation, workdir, limit_bytes, timeout)
        served = sandbox.served_since_last()
        result.seconds, result.cpu_seconds = round(seconds, 3), round(cpu, 2)
        result.peak_rss_bytes, result.peak_processes = watch.peak_bytes, watch.peak_processes
        result.peak_members = watch.peak_members
        result.peak_pss_bytes = watch.peak_pss_bytes
        result.samples, result.returncode = watch.samples, returncode
        result.requests = served.requests
        result.same_body = served.requests > 0 and all(
            status == 200 and size == case.body_bytes
            for status, size in zip(served.statuses, served.bytes, strict=True)
        )
        result.inner_seconds, result.details = inner_timing(contender, workdir, case.endpoint_name)
        if killed:
            result.status, result.reason = "killed", killed
        elif returncode != 0:
            result.status, result.reason = "failed", f"exit code {returncode}"
        if result.status == "failed":
            result.log_tail = tail(output_log(workdir))
        if result.status != "ok":
            return result
        rows, why = count_rows(invocation.database, invocation.table)
        result.rows = rows
        result.rows_ok = rows == case.records
        if rows is None:
            result.reason = why
        if not result.rows_ok:
            result.log_tail = tail(output_log(workdir))
        return result
    finally:
        if keep:
            print(f"    kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def plan_skip(contender: str, size: int, args: argparse.Namespace) -> str:
    """Why ``contender`` is not run at ``size`` (empty: it runs)."""
    if args.endpoint == MESSAGE_EXPORT.name and contender not in MESSAGE_CONTENDERS:
        return "skipped: conversations only (messages always take dlt's normalizer)"
    if contender == "seed_rest_api" and size > args.seed_max_size:
        return (
            f"skipped: above {args.seed_max_size:,} (dlt's rest_api holds the whole body many "
            "times over: 14.9 GB measured at 50,000); raise --seed-max-size to try"
        )
    return ""


def run_sizes(args: argparse.Namespace, scratch: Path) -> tuple[dict[int, Case], list[RunResult]]:
    """Every (size, contender) ``--repeat`` times, contenders interleaved within a repeat.

    A contender killed for memory is not run again at that size or any larger one.
    """
    window = Window(to_ms(WINDOW_START), to_ms(WINDOW_END))
    endpoint = ENDPOINTS[args.endpoint]
    cache_dir = args.cache_dir or scratch / "cache"
    limit = int(args.memory_limit_gb * GB) if args.memory_limit_gb else None
    cases: dict[int, Case] = {}
    results: list[RunResult] = []
    given_up: dict[str, str] = {}  # contender -> why it is not run any more
    for size in args.sizes:
        per_day, records = calibrate(size, window, SANDBOX_NOW, endpoint)
        log_dir = scratch / f"sandbox-{size}"
        with Sandbox(
            per_day, SANDBOX_NOW, cache_dir, log_dir, args.array_repeat, endpoint=endpoint
        ) as sandbox:
            body_bytes = sandbox.prewarm(endpoint.query_params(window))
            case = Case(size, per_day, records, sandbox.url, window, body_bytes, endpoint.name)
            cases[size] = case
            print(
                f"size {size:,}: {records:,} {endpoint.noun} (per_day {per_day}), "
                f"body {body_bytes / MB:,.0f} MB, sandbox {sandbox.url}",
                flush=True,
            )
            for contender in args.contenders:
                reason = plan_skip(contender, size, args) or given_up.get(contender, "")
                if reason:
                    results.append(RunResult(size, contender, 1, "skipped", reason))
                    print(f"  {contender}: {reason}", flush=True)
            for repeat in range(1, args.repeat + 1):
                for contender in args.contenders:
                    if plan_skip(contender, size, args) or contender in given_up:
                        continue
                    result = run_one(
                        case, contender, repeat, sandbox, limit, args.timeout, args.keep, scratch
                    )
                    results.append(result)
                    print_result(result)
                    if result.status == "killed":
                        given_up[contender] = f"skipped: {result.reason} at {size:,}"
    return cases, results


def print_result(result: RunResult) -> None:
    """One progress line per run."""
    rss, pss = (result.peak_rss_bytes or 0) / MB, (result.peak_pss_bytes or 0) / MB
    peak = f"{rss:,.0f} MB (PSS {pss:,.0f})"
    rows = "" if result.rows is None else f", rows {result.rows:,}/{result.expected_rows:,}"
    mark = "" if result.rows_ok in (True, None) else "  <<< ROW COUNT MISMATCH"
    status = result.status if not result.reason else f"{result.status} ({result.reason})"
    print(
        f"  [{result.repeat}] {result.contender}: {status}, {result.seconds} s "
        f"({result.cpu_seconds} CPU s), peak {peak}"
        f"{rows}, {result.requests} request(s){mark}",
        flush=True,
    )
    for line in result.log_tail or []:
        print(f"      | {line}", flush=True)


def single_window_benchmark(args: argparse.Namespace, command: str) -> int:
    """Run the sizes, write ``latest.md``/``latest.json``; exit 1 on a failure or mismatch."""
    contenders.FRESH_INSTANCE = args.fresh_instance
    started_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = machine_info()
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    with scratch_dir(args.keep) as scratch:
        cases, results = run_sizes(args, scratch)
    order = {name: i for i, name in enumerate(CONTENDERS)}
    results.sort(key=lambda r: (r.size, order[r.contender], r.repeat))
    summaries = summarize(results, cases)
    notes: list[str] = []
    if any(r.contender == "seed_rest_api" for r in results):
        notes += SEED_NOTES
    if any(r.contender == "duckdb_floor" for r in results):
        notes.append(FLOOR_NOTE)
    if args.endpoint == MESSAGE_EXPORT.name:
        notes.append(
            "message_export: the project loads messages on dlt's normalizer (the exact path; "
            "the Arrow path is conversations-only); `dixa.message_export` is counted."
        )
    if any(r.contender == "project_dagster" for r in results):
        notes.append(
            "project_dagster: `dagster asset materialize` (no daemon) runs the asset and the "
            "checks Dagster selects with it, in one process (the project's in-process "
            "executor); every step's seconds are in the JSON (`details.step_seconds`). "
            + (
                "Each run on a new DAGSTER_HOME: it creates the SQLite storage "
                "(`--fresh-instance`)."
                if contenders.FRESH_INSTANCE
                else "The DAGSTER_HOME's SQLite storage exists before the timed run, as for "
                "every run but an instance's first (`--fresh-instance` times that one)."
            )
        )
    meta = {
        "started_at": started_at,
        "command": command,
        "repeat": args.repeat,
        "array_repeat": args.array_repeat,
        "endpoint": args.endpoint,
        "memory_limit_gb": args.memory_limit_gb,
        "machine": machine,
        "total_seconds": round(time.monotonic() - started, 1),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "notes": notes,
    }
    markdown = report_markdown(meta, cases, summaries)
    raw = {
        **meta,
        "window": {"start": WINDOW_START, "end": WINDOW_END, "sandbox_now": SANDBOX_NOW},
        "cases": [asdict(case) for case in cases.values()],
        "summaries": [asdict(s) for s in summaries],
        "runs": [asdict(r) for r in results],
    }
    write_results(args.out, "latest", markdown, raw)
    print("\n" + markdown)
    print(f"written: {args.out / 'latest.md'} and {args.out / 'latest.json'}")
    bad = [r for r in results if r.status == "failed" or r.rows_ok is False]
    bad += [r for r in results if r.status == "ok" and r.same_body is False]
    for r in bad:
        print(
            f"!!! {r.contender} at {r.size:,} (run {r.repeat}): {r.status} {r.reason} "
            f"rows {r.rows} of {r.expected_rows}, same body: {r.same_body}",
            file=sys.stderr,
        )
    return 1 if bad else 0
