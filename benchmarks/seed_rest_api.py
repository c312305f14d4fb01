"""Contender ``seed_rest_api``: the seed's configuration through dlt's ``rest_api_source``.

    python benchmarks/seed_rest_api.py --base-url URL --after MS --before MS \
        --database FILE --pipelines-dir DIR        # token from DIXA_API_TOKEN

The benchmark starts it in an empty working directory, so the project's ``.dlt/config.toml``
does not apply: dlt's defaults (insert_values into DuckDB, default writer and normalize settings).
Two changes to the seed's configuration, both reported in the results:

- ``data_selector``: the seed says ``"data"``, but the API answers a root array. dlt 1.31 does not
  reject that: it finds nothing and loads 0 conversations without an error. ``"$"`` selects the
  root array, so the benchmark measures an actual load.
- the window's ``updated_after``/``updated_before`` are added as ``params`` (the seed has none).

The seed's ``error_handler`` block is not a dlt key and is not applied (``seed_rest_api_config``
does not carry it either).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import dlt
from dlt.sources.rest_api import rest_api_source

PIPELINE_NAME = "seed_rest_api"
#: dlt's default dataset name for a pipeline: ``<pipeline_name>_dataset``.
DATASET_NAME = f"{PIPELINE_NAME}_dataset"
SEED_DATA_SELECTOR = "data"
DATA_SELECTOR = "$"


def seed_rest_api_config(base_url: str, api_token: str) -> dict[str, Any]:
    """The seed's ``rest_api_source`` configuration as written (``data_selector`` included)."""
    return {
        "client": {
            "base_url": base_url,
            "auth": {"type": "bearer", "token": api_token},
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": "conversation_export",
                "endpoint": {
                    "path": "/conversation_export",
                    "data_selector": SEED_DATA_SELECTOR,
                    "paginator": {"type": "single_page"},
                },
            }
        ],
    }


def seed_config(base_url: str, token: str, after: int, before: int) -> dict[str, Any]:
    """The seed's configuration with the window's params and a root-array ``data_selector``."""
    config = seed_rest_api_config(base_url, token)
    endpoint = config["resources"][0]["endpoint"]
    if endpoint.get("data_selector") != SEED_DATA_SELECTOR:
        raise SystemExit(f"the seed's data_selector changed: {endpoint.get('data_selector')!r}")
    endpoint["data_selector"] = DATA_SELECTOR
    endpoint["params"] = {"updated_after": after, "updated_before": before}
    return config


def main(argv: list[str] | None = None) -> int:
    """Run the seed's pipeline once and print a JSON summary line prefixed with ``BENCH``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--after", type=int, required=True, help="updated_after, ms")
    parser.add_argument("--before", type=int, required=True, help="updated_before, ms")
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--pipelines-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.monotonic()
    config = seed_config(args.base_url, os.environ["DIXA_API_TOKEN"], args.after, args.before)
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(credentials=str(args.database)),
        pipelines_dir=str(args.pipelines_dir),
    )
    pipeline.run(rest_api_source(config))
    trace = pipeline.last_trace
    counts = dict(trace.last_normalize_info.row_counts) if trace.last_normalize_info else {}
    summary = {
        "dataset": pipeline.dataset_name,
        "row_counts": counts,
        "seconds": round(time.monotonic() - started, 3),
    }
    print("BENCH " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
