"""A copy of the DuckDB file to read while runs load: ``python -m conversation_assets.snapshot``.

    uv run python -m conversation_assets.snapshot data/snapshot.duckdb

DuckDB lets one process at a time open a file, and a reader (even ``read_only=True``) holds
the same lock a load needs. A copy taken between two loads (the copy waits for the lock file
every load and check takes) can be kept open as long as you like; take a new one to see newer
data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from conversation_assets.config import Config
from conversation_assets.destination import duckdb_file_lock


def snapshot(target: Path, source: Path | None = None) -> Path:
    """Copy the DuckDB file (and its WAL, if any) to ``target`` between two loads."""
    source = source or Config.from_env(require_token=False).duckdb_file
    if not source.is_file():
        raise SystemExit(
            f"No DuckDB file at {source}: nothing loaded yet "
            "(or set DESTINATION__DUCKDB__CREDENTIALS)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial")
    with duckdb_file_lock(source):
        shutil.copyfile(source, partial)
        wal = Path(f"{source}.wal")
        if wal.is_file():
            shutil.copyfile(wal, f"{target}.wal")
        else:
            Path(f"{target}.wal").unlink(missing_ok=True)
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "target",
        type=Path,
        nargs="?",
        default=Path("data") / "snapshot.duckdb",
        help="where the copy goes (default: data/snapshot.duckdb)",
    )
    args = parser.parse_args(argv)
    source = Config.from_env(require_token=False).duckdb_file
    print(f"copied {source} to {snapshot(args.target, source)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
