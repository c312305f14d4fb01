"""Contender ``duckdb_floor``: download the answer to a file, load it with DuckDB's ``read_json``.

    python benchmarks/duckdb_floor.py --url URL --after MS --before MS \
        --body FILE --database FILE                # token from DIXA_API_TOKEN
    python benchmarks/duckdb_floor.py --url .../message_export --after-parameter created_after \
        --before-parameter created_before --table message_export --after MS --before MS ...

The floor: no dlt, no normalization into child tables (arrays stay DuckDB LIST/STRUCT columns),
no merge. It shows how fast this machine can move the same bytes into one DuckDB table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import requests

TABLE_NAME = "conversation_export"  # the default; --table for another endpoint
CHUNK_BYTES = 1 << 20


def download(url: str, params: dict[str, int], token: str, body: Path) -> int:
    """Stream the answer into ``body`` (never held whole in memory); return its size in bytes."""
    size = 0
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with requests.get(url, params=params, headers=headers, stream=True, timeout=300) as response:
        response.raise_for_status()
        with body.open("wb") as out:
            for chunk in response.iter_content(CHUNK_BYTES):
                out.write(chunk)
                size += len(chunk)
    return size


def load(body: Path, database: Path, table: str = TABLE_NAME) -> int:
    """Load the root array in ``body`` into one table of a fresh DuckDB file; return its rows."""
    with duckdb.connect(str(database)) as connection:
        path = str(body).replace("'", "''")
        connection.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_json('{path}', format='array')"
        )
        row = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    """Download, load, and print a JSON summary line prefixed with ``BENCH``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the export endpoint's URL")
    parser.add_argument("--after-parameter", default="updated_after")
    parser.add_argument("--before-parameter", default="updated_before")
    parser.add_argument("--after", type=int, required=True, help="the lower filter bound, ms")
    parser.add_argument("--before", type=int, required=True, help="the upper filter bound, ms")
    parser.add_argument("--table", default=TABLE_NAME, help="the table to create")
    parser.add_argument("--body", type=Path, required=True, help="where to keep the answer")
    parser.add_argument("--database", type=Path, required=True)
    args = parser.parse_args(argv)
    params = {args.after_parameter: args.after, args.before_parameter: args.before}
    started = time.monotonic()
    size = download(args.url, params, os.environ["DIXA_API_TOKEN"], args.body)
    downloaded = time.monotonic()
    rows = load(args.body, args.database, args.table)
    summary = {
        "bytes": size,
        "rows": rows,
        "download_seconds": round(downloaded - started, 3),
        "load_seconds": round(time.monotonic() - downloaded, 3),
    }
    print("BENCH " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
