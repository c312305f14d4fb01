"""Small helpers for tests: month windows, the pipeline on a window, reading the DuckDB file."""

from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from conversation_assets import load
from conversation_assets.config import Config
from conversation_assets.dixa import RequestStats
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets.pipeline import LoadSummary

__all__ = ["Window", "load_window", "month_window", "next_month", "query", "table_counts", "to_ms"]


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_window(first: str, last: str | None = None) -> Window:
    """The half-open window of the month ``first`` (a partition key, e.g. ``"2024-03-01"``), or
    of the months ``first`` to ``last`` (both included)."""
    start = date.fromisoformat(first)
    end = next_month(date.fromisoformat(last or first))
    return Window(to_ms(start), to_ms(end))


def load_window(
    window: Window, workdir: Path, logger: Any = None
) -> tuple[LoadSummary, RequestStats]:
    """Load ``window`` from the configured API into the configured destination."""
    return load.load_window(Config.from_env(), window, workdir, logger=logger)


def query(database: str | Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def table_counts(database: str | Path) -> dict[str, int]:
    """Rows per data table of the ``dixa`` dataset."""
    names = [
        row[0]
        for row in query(
            database,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'dixa' AND table_name NOT LIKE '_dlt%'",
        )
    ]
    return {name: query(database, f"SELECT COUNT(*) FROM dixa.{name}")[0][0] for name in names}
