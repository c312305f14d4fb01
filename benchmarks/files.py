"""What runs leave on disk: the scratch folder, logs, row counts in DuckDB files, results."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.settings import PROJECT_TABLE
from conversation_assets_tests.support.helpers import query, table_counts


def count_rows(database: Path, table: str) -> tuple[int | None, str]:
    """Rows of ``table`` in ``database``, or ``None`` and why not."""
    if not database.exists():
        return None, f"no database file {database.name}"
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            row = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    except duckdb.Error as error:
        return None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return (int(row[0]) if row else 0), ""


def dataset_counts(database: Path) -> dict[str, int]:
    """Rows per table of the ``dixa`` dataset (dlt's own tables left out), plus distinct ids."""
    if not database.exists():
        return {}
    counts = dict(sorted(table_counts(database).items()))
    if "conversation_export" in counts:
        sql = f"SELECT COUNT(DISTINCT id) FROM {PROJECT_TABLE}"
        counts["distinct ids"] = query(database, sql)[0][0]
    return counts


def tail(path: Path, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of a log file."""
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def bench_details(output: Path) -> dict[str, Any] | None:
    """The ``BENCH {json}`` line a contender script printed, if any."""
    for line in reversed(tail(output, 50)):
        if line.startswith("BENCH "):
            with suppress(ValueError):
                return json.loads(line[6:])
    return None


@contextmanager
def scratch_dir(keep: bool) -> Iterator[Path]:
    """A temporary folder for the cache, logs and contender folders."""
    path = Path(tempfile.mkdtemp(prefix="conversation-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


_ERROR_LINE = re.compile(r"^([\w.]+(?:Exception|Error)): (.{0,240})", re.MULTILINE)


def distinct_errors(log: Path, limit: int = 5) -> list[str]:
    """The first few distinct exception lines of a log (for a failed run's reason)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = dict.fromkeys(f"{m[1]}: {m[2]}" for m in _ERROR_LINE.finditer(text))
    return list(found)[:limit]


def write_results(out: Path, stem: str, markdown: str, raw: dict[str, Any]) -> None:
    """``{stem}.md`` and ``{stem}.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
