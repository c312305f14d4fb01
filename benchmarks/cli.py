"""Benchmark the project's load paths against the seed's rest_api config and a DuckDB floor.

    uv run python -m benchmarks                    # 50,000 and 200,000 conversations, 3 runs each
    uv run python -m benchmarks --sizes 50000,200000,1000000 --repeat 3
    uv run python -m benchmarks --sizes 2000 --repeat 1 \
        --contenders project_pipeline,duckdb_floor --out /tmp/bench
    uv run python -m benchmarks --endpoint message_export --sizes 200000,1000000 \
        --contenders project_dagster,project_pipeline,duckdb_floor     # messages (~1 KB each)
    uv run python -m benchmarks --backfill         # 12 monthly partitions through the daemon
    uv run python -m benchmarks --backfill --pools 1,3 --first-byte-seconds 5 --bandwidth-mb 5

Every contender downloads the identical body: the sandbox API runs as a subprocess on a free
loopback port with ``--cache-dir``, and one pre-warm request writes the cache file before any
timing. Each contender runs as its own subprocess (own session) with a fresh DuckDB file in a
temporary folder; a thread of this driver samples the RSS of the contender's whole process tree
every 50 ms and kills the tree when it passes ``--memory-limit-gb``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks.backfill import backfill_benchmark
from benchmarks.contenders import CONTENDERS
from benchmarks.environment import CONTENDER_ENV
from benchmarks.settings import DEFAULT_OUT
from benchmarks.single_window import single_window_benchmark
from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT, ENDPOINTS


def parse_sizes(text: str) -> list[int]:
    """``50000,200000`` -> ``[50000, 200000]``."""
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive whole numbers")
    return sizes


def parse_contenders(text: str) -> list[str]:
    """A comma-separated subset of the contenders, kept in the table's order."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown contender(s) {unknown}; choose from {', '.join(CONTENDERS)}"
        )
    return [name for name in CONTENDERS if name in names]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("50000,200000"),
        help="records (conversations, or messages) in the window, comma-separated "
        "(default 50000,200000)",
    )
    parser.add_argument(
        "--endpoint",
        choices=sorted(ENDPOINTS),
        default=CONVERSATION_EXPORT.name,
        help="what the single-window contenders load (default conversation_export); "
        "message_export runs project_dagster, project_pipeline and duckdb_floor",
    )
    parser.add_argument(
        "--contenders",
        type=parse_contenders,
        default=list(CONTENDERS),
        help=f"subset of {', '.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per (size, contender); the table shows the median (default 3)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=16.0,
        help="kill a contender whose process tree RSS passes this (0: no limit)",
    )
    parser.add_argument(
        "--array-repeat",
        type=int,
        default=1,
        help="repeat every array of a record N times (child rows: ~8.7 a conversation at 1)",
    )
    parser.add_argument(
        "--seed-max-size",
        type=int,
        default=200_000,
        help="skip seed_rest_api above this size (default 200000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds before a contender (or the whole backfill) is killed",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for latest.md/latest.json (default benchmarks/results)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="keep the sandbox's answer cache here across runs (default: temp)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folders (logs, DuckDB files) for inspection",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="instead: 12 monthly partitions of 2023 through dagster-daemon",
    )
    parser.add_argument(
        "--backfill-per-month",
        type=int,
        default=50_000,
        help="conversations per month in --backfill mode (default 50000)",
    )
    parser.add_argument(
        "--fresh-instance",
        action="store_true",
        help="project_dagster: time the first run on a new DAGSTER_HOME (storage created in it)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for every contender, after the caller's are stripped (repeatable; "
        "e.g. NORMALIZE__WORKERS=1 to compare a setting in the same session)",
    )
    parser.add_argument(
        "--pools",
        type=parse_sizes,
        default=[1],
        help="--backfill: the pool limits to compare, comma-separated (e.g. 1,3; default 1)",
    )
    parser.add_argument(
        "--first-byte-seconds",
        type=float,
        default=0.0,
        help="--backfill: the sandbox waits this long before each answer (default 0)",
    )
    parser.add_argument(
        "--bandwidth-mb",
        type=float,
        default=0.0,
        help="--backfill: MB/s of each answer's body (default 0: unlimited)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="--backfill: export requests a minute the sandbox allows (default 0: no limit)",
    )
    parser.add_argument(
        "--instance-config",
        type=Path,
        default=None,
        help="--backfill: the Dagster instance's dagster.yaml (default deploy/dagster.local.yaml)",
    )
    return parser  # fmt: skip


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict; a malformed one stops the benchmark naming it."""
    assignments = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set takes NAME=VALUE, got {item!r}")
        assignments[name] = value
    return assignments


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the chosen benchmark."""
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    CONTENDER_ENV.update(parse_assignments(args.set))
    raw_argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "benchmarks", *raw_argv])
    if args.backfill:
        return backfill_benchmark(args, command)
    return single_window_benchmark(args, command)
