"""A quick run of ``benchmarks/run.py``: it writes the table and the JSON, and every row is ok.

No timing is asserted: only that the benchmark runs end to end (sandbox, contenders as
subprocesses, memory sampling, row counts) and reports what it measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT_DIR / "benchmarks" / "run.py"
CONTENDERS = ("project_pipeline", "duckdb_floor")


@pytest.mark.timeout(600)
def test_benchmark_smoke_run_writes_table_and_json(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(SCRIPT),
        *("--sizes", "2000", "--repeat", "1"),
        *("--contenders", ",".join(CONTENDERS)),
        *("--out", str(tmp_path)),
    ]
    done = subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"

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
    assert case["size"] == 2000 and case["conversations"] > 0 and case["body_bytes"] > 0
    runs = raw["runs"]
    assert [run["contender"] for run in runs] == list(CONTENDERS)
    for run in runs:
        assert run["status"] == "ok", run
        assert run["rows"] == case["conversations"], run
        assert run["rows_ok"] is True
        assert run["same_body"] is True and run["requests"] == 1
        assert run["seconds"] > 0 and run["peak_rss_bytes"] > 0
    assert all(summary["rows_ok"] for summary in raw["summaries"])
