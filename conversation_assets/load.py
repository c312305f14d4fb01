"""Load a window without Dagster: the same source and pipeline the asset runs.

    python -m conversation_assets.load --start 2024-01-01 --end 2024-02-01
    python -m conversation_assets.load --start 2024-01-01 --end 2024-02-01 --endpoint message_export

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
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, ENDPOINTS, Endpoint
from conversation_assets.dixa.windows import Window, to_ms
from conversation_assets.pipeline import LoadSummary, make_pipeline


def load_window(
    config: Config,
    window: Window,
    workdir: Path,
    logger: Any = None,
    endpoint: Endpoint = CONVERSATION_EXPORT,
) -> tuple[LoadSummary, RequestStats]:
    """Extract, normalize and load ``window`` of ``endpoint``, from ``DIXA_START_DATE`` on at
    the earliest (as a partition's window); ``workdir`` is the run's dlt working folder."""
    stats = RequestStats()
    start_ms = max(window.start_ms, to_ms(config.start_date))
    if start_ms >= window.end_ms:
        return LoadSummary(root_table=endpoint.name), stats
    window = Window(start_ms, window.end_ms)
    source = source_for_window(config, window, endpoint, stats=stats, logger=logger)
    pipeline = make_pipeline(config, workdir)
    _, summary = extract_then_load(pipeline, source, config, logger, endpoint.name)
    return summary, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    parser.add_argument(
        "--end", type=date.fromisoformat, required=True, help="YYYY-MM-DD, not included"
    )
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default=CONVERSATION_EXPORT.name)
    args = parser.parse_args(argv)
    config = Config.from_env()
    endpoint = ENDPOINTS[args.endpoint]
    window = Window(to_ms(args.start), to_ms(args.end))
    started = time.monotonic()
    config.runs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="load-", dir=config.runs_dir) as workdir:
        summary, stats = load_window(config, window, Path(workdir), endpoint=endpoint)
    seconds = time.monotonic() - started
    print(
        f"window {window}: {summary.records} {endpoint.noun}, {stats.requests} requests, "
        f"{stats.retries} retries, {seconds:.1f} s; rows by table: {summary.row_counts}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
