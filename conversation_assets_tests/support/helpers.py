"""Small helpers for tests: run the project's pipeline on a window, read the DuckDB file."""

from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from conversation_assets import load
from conversation_assets.config import Config
from conversation_assets.dixa import RequestStats
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets.pipeline import LoadSummary


def month_window(year: int, month: int) -> Window:
    following = date(year + month // 12, month % 12 + 1, 1)
    return Window(to_ms(date(year, month, 1)), to_ms(following))


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
