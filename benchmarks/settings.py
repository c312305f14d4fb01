"""The fixed set-up every benchmark shares: the sandbox's data, the windows, the tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results"

TOKEN = "benchmark-token-4f7e"
SEED = 7
DATA_START = date(2023, 1, 1)
#: The single-window contenders load April 2024 (30 days: one request at batch size 31).
WINDOW_START, WINDOW_END = date(2024, 4, 1), date(2024, 5, 1)
PARTITION_KEY = "2024-04-01"
PROJECT_START_DATE = "2024-01-01"
#: The sandbox clock: after the window, so the window is complete.
SANDBOX_NOW = "2024-05-02T00:00:00+00:00"
PROJECT_TABLE = "dixa.conversation_export"
SEED_TABLE = "seed_rest_api_dataset.conversation_export"
FLOOR_TABLE = "main.conversation_export"


def project_table(endpoint_name: str) -> str:
    """The root table the project loads an endpoint into."""
    return f"dixa.{endpoint_name}"


def floor_table(endpoint_name: str) -> str:
    """The one table the DuckDB floor loads an endpoint's answer into."""
    return f"main.{endpoint_name}"


BASELINE = "project_dagster"

BACKFILL_YEAR = 2023
BACKFILL_NOW = "2024-01-02T00:00:00+00:00"
