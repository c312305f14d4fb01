"""Load a window without Dagster: the same source and pipeline the asset runs.

    python -m conversation_assets.load --start 2024-01-01 --end 2024-02-01

Reads the DIXA_* settings and the destination from the environment, like the asset.
"""

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from conversation_assets.config import Config
from conversation_assets.destination import extract_then_load
from conversation_assets.dixa import RequestStats, source_for_window
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets.pipeline import LoadSummary, make_pipeline


def load_window(
    config: Config, window: Window, workdir: Path, logger: Any = None
) -> tuple[LoadSummary, RequestStats]:
    """Extract, normalize and load ``window``; ``workdir`` is the run's dlt working folder."""
    stats = RequestStats()
    source = source_for_window(config, window, stats=stats, logger=logger)
    pipeline = make_pipeline(config, workdir)
    _, summary = extract_then_load(pipeline, source, config, logger)
    return summary, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    parser.add_argument(
        "--end", type=date.fromisoformat, required=True, help="YYYY-MM-DD, not included"
    )
    args = parser.parse_args(argv)
    config = Config.from_env()
    window = Window(to_ms(args.start), to_ms(args.end))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dixa-dlt-") as workdir:
        summary, stats = load_window(config, window, Path(workdir))
    seconds = time.monotonic() - started
    print(
        f"window {window}: {summary.conversations} conversations, {stats.requests} requests, "
        f"{stats.retries} retries, {seconds:.1f} s; rows by table: {summary.row_counts}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
