"""The reports: repeats reduced to medians and ratios, written as markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.contenders import Case
from benchmarks.memory import MB
from benchmarks.settings import BASELINE, SANDBOX_NOW, SEED
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, ENDPOINTS

if TYPE_CHECKING:
    from benchmarks.single_window import RunResult


@dataclass
class Summary:
    """The repeats of one (size, contender), reduced to what the table shows."""

    size: int
    records: int
    contender: str
    runs: int
    ok_runs: int
    status: str
    median_seconds: float | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    median_inner_seconds: float | None = None
    median_cpu_seconds: float | None = None
    records_per_second: float | None = None
    peak_rss_mb: float | None = None
    peak_pss_mb: float | None = None
    ratio_vs_baseline: float | None = None
    ratio_vs_floor: float | None = None
    rows_ok: bool | None = None
    rows_seen: list[int | None] = field(default_factory=list)
    same_body: bool | None = None


def summarize(results: Sequence[RunResult], cases: dict[int, Case]) -> list[Summary]:
    """Median/min/max seconds and the highest peak RSS over the repeats of each pair."""
    summaries: list[Summary] = []
    keys = list(dict.fromkeys((r.size, r.contender) for r in results))
    for size, contender in keys:
        runs = [r for r in results if r.size == size and r.contender == contender]
        ok = [r for r in runs if r.status == "ok"]
        records = cases[size].records
        not_ok = [r for r in runs if r.status != "ok"]
        status = "ok" if not not_ok else f"{not_ok[0].reason or not_ok[0].status}"
        if ok and not_ok:
            status = f"{len(ok)} of {len(runs)} ok; {status}"
        summary = Summary(size, records, contender, len(runs), len(ok), status)
        timed = [r.seconds for r in ok if r.seconds is not None]
        if timed:
            summary.median_seconds = round(statistics.median(timed), 2)
            summary.min_seconds, summary.max_seconds = min(timed), max(timed)
            summary.records_per_second = round(records / statistics.median(timed))
        inner = [r.inner_seconds for r in ok if r.inner_seconds is not None]
        if inner:
            summary.median_inner_seconds = round(statistics.median(inner), 2)
        cpu = [r.cpu_seconds for r in ok if r.cpu_seconds is not None]
        if cpu:
            summary.median_cpu_seconds = round(statistics.median(cpu), 2)
        peaks = [r.peak_rss_bytes for r in runs if r.peak_rss_bytes]
        if peaks:
            summary.peak_rss_mb = round(max(peaks) / MB)
        pss = [r.peak_pss_bytes for r in runs if r.peak_pss_bytes]
        if pss:
            summary.peak_pss_mb = round(max(pss) / MB)
        if ok:
            summary.rows_ok = all(r.rows_ok for r in ok)
            summary.rows_seen = [r.rows for r in ok]
            summary.same_body = all(r.same_body for r in ok)
        summaries.append(summary)
    for summary in summaries:
        base = next(
            (s for s in summaries if s.size == summary.size and s.contender == BASELINE), None
        )
        if base and base.median_seconds and summary.median_seconds:
            summary.ratio_vs_baseline = round(summary.median_seconds / base.median_seconds, 2)
        floor = next(
            (s for s in summaries if s.size == summary.size and s.contender == FLOOR), None
        )
        if floor and floor.median_seconds and summary.median_seconds:
            summary.ratio_vs_floor = round(summary.median_seconds / floor.median_seconds, 2)
    return summaries


def rows_cell(summary: Summary) -> str:
    """``yes``, or a loud ``**NO**`` with what was counted."""
    if summary.rows_ok is None:
        return "-"
    if summary.rows_ok and summary.same_body:
        return "yes"
    if summary.rows_ok:
        return "yes (**body differed**)"
    seen = ", ".join("?" if n is None else f"{n:,}" for n in summary.rows_seen)
    return f"**NO: {seen} of {summary.records:,}**"


#: The contender every row is also compared with (``x floor``), when it ran.
FLOOR = "duckdb_floor"


def table_columns(noun: str = "conversations") -> tuple[tuple[str, str], ...]:
    """The table's headers and alignments; ``noun`` names the records (``messages``)."""
    return (
        ("size", "---:"),
        ("contender", "---"),
        ("median s", "---:"),
        ("min-max s", "---:"),
        ("inner s", "---:"),
        ("CPU s", "---:"),
        (f"{noun}/s", "---:"),
        ("peak RSS MB", "---:"),
        ("peak PSS MB", "---:"),
        (f"s vs {BASELINE}", "---:"),
        ("x floor", "---:"),
        ("rows ok?", "---"),
    )


TABLE_COLUMNS = table_columns()


def table_cells(s: Summary) -> list[str]:
    """One row of the table; a contender with no successful run shows why in ``median s``."""
    peak = "" if s.peak_rss_mb is None else f"{s.peak_rss_mb:,.0f}"
    pss = "" if s.peak_pss_mb is None else f"{s.peak_pss_mb:,.0f}"
    if s.median_seconds is None:
        cells = [f"{s.size:,}", s.contender, s.status, "", "", "", "", peak, pss, "", ""]
        return [*cells, rows_cell(s)]
    assert s.min_seconds is not None and s.max_seconds is not None
    inner = "" if s.median_inner_seconds is None else f"{s.median_inner_seconds:.1f}"
    cpu = "" if s.median_cpu_seconds is None else f"{s.median_cpu_seconds:.1f}"
    ratio = "-" if s.ratio_vs_baseline is None else f"{s.ratio_vs_baseline:.2f}x"
    floor = "-" if s.ratio_vs_floor is None else f"{s.ratio_vs_floor:.2f}x"
    rows = rows_cell(s) if s.status == "ok" else f"{rows_cell(s)} ({s.status})"
    return [
        f"{s.size:,}",
        s.contender,
        f"{s.median_seconds:.1f}",
        f"{s.min_seconds:.1f}-{s.max_seconds:.1f}",
        inner,
        cpu,
        f"{s.records_per_second:,.0f}",
        peak,
        pss,
        ratio,
        floor,
        rows,
    ]


def markdown_table(summaries: Sequence[Summary], noun: str = "conversations") -> str:
    """The results table in GitHub markdown."""
    columns = table_columns(noun)
    lines = [
        "| " + " | ".join(name for name, _ in columns) + " |",
        "|" + "|".join(align for _, align in columns) + "|",
    ]
    lines += ["| " + " | ".join(table_cells(s)) + " |" for s in summaries]
    return "\n".join(lines)


def report_markdown(
    meta: dict[str, Any], cases: dict[int, Case], summaries: Sequence[Summary]
) -> str:
    """The whole markdown report: table, sizes, machine, command and notes."""
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    endpoint = ENDPOINTS[meta.get("endpoint", CONVERSATION_EXPORT.name)]
    noun = endpoint.noun
    lines = [
        f"# Benchmark {meta['started_at']} ({endpoint.name})",
        "",
        markdown_table(summaries, noun),
        "",
        f"Median of {meta['repeat']} run(s) per row, wall seconds of the contender's process "
        "from start to exit (interpreter start-up and imports included); min-max over the runs; "
        "inner s = the load's own time as the contender reports it (project_dagster: the asset "
        "step alone; project_pipeline: the time `conversation_assets.load` prints); "
        "CPU s = user + system CPU seconds of the contender's processes (median; on a busy "
        "machine wall seconds grow with others' load, CPU seconds much less); "
        f"{noun}/s = {noun} / median s; peak RSS = the highest sum of RSS over "
        "the contender's process tree (sampled every 50 ms) in any run (shared pages counted "
        "once per process); peak PSS = the same for PSS (a page shared by n processes counted "
        "1/n in each: forked workers' shared pages once in all); "
        f"s vs {BASELINE} = median s / {BASELINE}'s median s; x floor = median s / "
        f"{FLOOR}'s median s in the same run.",
        "",
        f"Sizes (window April 2024, one request; sandbox clock {SANDBOX_NOW}, seed {SEED}, "
        f"arrays repeated {meta['array_repeat']}x):",
        "",
    ]
    for case in cases.values():
        lines.append(
            f"- {case.size:,}: {case.records:,} {noun} (per_day {case.per_day:,} "
            "conversations), "
            f"body {case.body_bytes / MB:,.0f} MB"
        )
    lines += [
        "",
        f"Machine: {machine['cores']} cores, {machine['ram_gb']} GB RAM, {machine['cpu_model']}; "
        f"Python {machine['python']}; {versions}; git {machine['git']['commit']} "
        f"({len(machine['git']['changed_files'])} changed files in the work tree).",
        "",
        f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s in all).",
        "",
        f"Load average (1/5/15 min) at start {meta['load_average_at_start']}, at end "
        f"{meta['load_average_at_end']}; each run's 1-minute load before it is in the JSON "
        "(`load_before`): anything else running on the machine skews the timings.",
        "",
        "Notes:",
        "",
        *[f"- {note}" for note in meta["notes"]],
    ]
    return "\n".join(lines) + "\n"


def backfill_markdown(meta: dict[str, Any], summaries: Sequence[dict[str, Any]]) -> str:
    """The backfill report: one line per pool limit, then one line per run."""
    machine = meta["machine"]
    first = summaries[0]
    lines = [
        f"# Backfill benchmark {meta['started_at']}",
        "",
        f"Latency model: {' '.join(meta['latency']) or 'off'}; {meta['body_mb']:,} MB in "
        f"{meta['requests_per_backfill']} requests.",
        "",
        "| pool | partitions | conversations | total wall s | vs first | sum of run s "
        "| overhead s/partition | idle s/partition | first run after s | median gap s "
        "| median step gap s | most runs at once | most asset steps at once "
        "| requests (429) | peak RSS MB | rows ok? |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        rows = "yes" if s["rows_ok"] and not s["problems"] else f"**NO: {s['rows']}**"
        speedup = (
            f"{first['total_wall_seconds'] / s['total_wall_seconds']:.2f}x"
            if s["total_wall_seconds"] and first["total_wall_seconds"]
            else ""
        )
        lines.append(
            f"| {s['pool']} | {s['partitions']} | {s['conversations']:,} "
            f"| {s['total_wall_seconds']} | {speedup} | {s['sum_run_seconds']} "
            f"| {s['overhead_seconds_per_partition']} | {s.get('idle_seconds_per_partition')} "
            f"| {s['first_run_started_after_seconds']} | {s['median_gap_seconds']} "
            f"| {s.get('median_step_gap_seconds')} "
            f"| {s['max_concurrent_runs']} | {s.get('max_concurrent_asset_steps')} "
            f"| {s['requests']} ({s['refused_429']}) "
            f"| {s['peak_rss_mb']:,} | {rows} |"
        )
    lines += [
        "",
        "Total wall = from launching `dagster job backfill` to the end of the last run; vs first "
        "= the first pool's total wall / this one's; sum of run s = the runs' own start-to-end "
        "times from their run records; overhead = (total wall - sum of run s) / partitions, "
        "meaningful only when the runs did not overlap (most runs at once = 1); idle = (total "
        "wall - the time at least one partition's work, from its asset step's start to its "
        "check step's end, was going on) / partitions: what the backfill costs beyond the "
        "partitions' own work, whether or not runs overlap; median gap = from the end of one "
        "run to the start of the next where no run was running (step gap: the same for the "
        "partitions' work); most asset steps at once must not pass the pool limit; requests "
        "= export requests the sandbox answered (429: refused by its rate limit); peak RSS = "
        "the daemon's whole process tree (code server and run workers included). Rows ok = "
        "the root table holds each expected id once and every table has the same row count "
        f"in every pool: {meta['rows_by_table']}.",
    ]
    for s in summaries:
        lines += [
            "",
            f"Pool {s['pool']}:",
            "",
            "| partition | status | run s |",
            "|---|---|---:|",
            *[f"| {r['partition']} | {r['status']} | {r['seconds']} |" for r in s["runs"]],
        ]
        if s["other_runs_meanwhile"]:
            lines += ["", f"Other runs launched meanwhile: {s['other_runs_meanwhile']}."]
        if s["problems"]:
            lines += ["", "Problems:", "", *[f"- **{p}**" for p in s["problems"]]]
        if s["errors_in_daemon_log"]:
            errors = s["errors_in_daemon_log"]
            lines += ["", "Errors in the daemon's log:", "", *[f"- `{e}`" for e in errors]]
    lines += [
        "",
        f"Machine: {machine['cores']} cores, {machine['ram_gb']} GB RAM, {machine['cpu_model']}; "
        f"git {machine['git']['commit']}; load average at end {meta['load_average_at_end']}.",
        "",
        f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s in all).",
    ]
    return "\n".join(lines) + "\n"
