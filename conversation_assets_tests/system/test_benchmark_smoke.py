"""A quick run of ``python -m benchmarks``: it writes the table and the JSON, and every row is ok.

No timing is asserted: only that the benchmark runs end to end (sandbox, contenders as
subprocesses, memory sampling, row counts) and reports what it measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.backfill import latency_args
from benchmarks.cli import build_parser
from benchmarks.report import backfill_markdown

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONTENDERS = ("project_pipeline", "duckdb_floor")


def run_benchmark(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks <options> --out <out>`` in the project folder; it must exit 0."""
    command = [sys.executable, "-m", "benchmarks", *options, "--out", str(out)]
    done = subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    return done


@pytest.mark.timeout(600)
def test_benchmark_smoke_run_writes_table_and_json(tmp_path: Path) -> None:
    done = run_benchmark(
        tmp_path, "--sizes", "2000", "--repeat", "1", "--contenders", ",".join(CONTENDERS)
    )

    table = (tmp_path / "latest.md").read_text()
    for contender in CONTENDERS:
        assert f"| 2,000 | {contender} |" in table
    assert "ROW COUNT MISMATCH" not in done.stdout
    assert "**NO" not in table

    raw = json.loads((tmp_path / "latest.json").read_text())
    assert raw["command"].endswith(f"--out {tmp_path}")
    assert raw["machine"]["cores"] >= 1
    assert set(raw["machine"]["versions"]) >= {"dlt", "dagster", "duckdb"}
    (case,) = raw["cases"]
    assert case["size"] == 2000 and case["records"] > 0 and case["body_bytes"] > 0
    runs = raw["runs"]
    assert [run["contender"] for run in runs] == list(CONTENDERS)
    for run in runs:
        assert run["status"] == "ok", run
        assert run["rows"] == case["records"], run
        assert run["rows_ok"] is True
        assert run["same_body"] is True and run["requests"] == 1
        assert run["seconds"] > 0 and run["peak_rss_bytes"] > 0
    assert all(summary["rows_ok"] for summary in raw["summaries"])


@pytest.mark.timeout(600)
def test_benchmark_smoke_run_of_messages(tmp_path: Path) -> None:
    """``--endpoint message_export``: the project's pipeline and the floor load the messages the
    sandbox has in the window, from the message answer; the Arrow contender is skipped."""
    contenders = ("project_pipeline", "project_pipeline_arrow", "duckdb_floor")
    run_benchmark(
        tmp_path,
        *("--endpoint", "message_export", "--sizes", "3000", "--repeat", "1"),
        *("--contenders", ",".join(contenders)),
    )

    table = (tmp_path / "latest.md").read_text()
    assert "(message_export)" in table and "| messages/s |" in table
    assert "| 3,000 | project_pipeline_arrow | skipped: conversations only" in table
    raw = json.loads((tmp_path / "latest.json").read_text())
    assert raw["endpoint"] == "message_export"
    (case,) = raw["cases"]
    assert case["endpoint_name"] == "message_export" and case["records"] > 0
    ran = [run for run in raw["runs"] if run["status"] != "skipped"]
    assert [run["contender"] for run in ran] == ["project_pipeline", "duckdb_floor"]
    for run in ran:
        assert run["status"] == "ok", run
        assert run["rows"] == case["records"] and run["rows_ok"] is True, run
        assert run["same_body"] is True and run["requests"] == 1, run
    floor = next(s for s in raw["summaries"] if s["contender"] == "duckdb_floor")
    assert floor["ratio_vs_floor"] == 1.0


def test_backfill_options_reach_the_sandbox_and_the_report_compares_pools() -> None:
    """The latency model's options become the sandbox's flags; the report's speedup column
    compares each pool's total wall time with the first pool's."""
    args = build_parser().parse_args(
        ["--backfill", "--pools", "1,3", "--first-byte-seconds", "5", "--bandwidth-mb", "5"]
    )
    assert args.pools == [1, 3]
    assert latency_args(args) == ["--first-byte-seconds", "5", "--bandwidth-mb", "5"]
    assert latency_args(build_parser().parse_args(["--backfill"])) == []

    def summary(pool: int, wall: float) -> dict:
        return {
            "pool": pool, "partitions": 12, "conversations": 1200, "total_wall_seconds": wall,
            "sum_run_seconds": wall, "overhead_seconds_per_partition": 0.0,
            "first_run_started_after_seconds": 1.0, "median_gap_seconds": 1.0,
            "max_concurrent_runs": pool, "requests": 19, "refused_429": 0, "peak_rss_mb": 1,
            "rows": 1200, "rows_ok": True, "problems": [], "runs": [],
            "other_runs_meanwhile": {}, "errors_in_daemon_log": [],
        }  # fmt: skip

    meta = {
        "started_at": "now", "latency": ["--first-byte-seconds", "5"], "body_mb": 1,
        "requests_per_backfill": 19, "rows_by_table": {}, "command": "c", "total_seconds": 1.0,
        "load_average_at_end": [0.0], "machine": {
            "cores": 2, "ram_gb": 1, "cpu_model": "x", "git": {"commit": "abc"}
        },
    }  # fmt: skip
    report = backfill_markdown(meta, [summary(1, 300.0), summary(3, 100.0)])
    assert "| 3 | 12 | 1,200 | 100.0 | 3.00x |" in report
