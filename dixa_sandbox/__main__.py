"""``python -m dixa_sandbox --port 8765 --token TOKEN [--fault 429x3 ...]``."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from datetime import UTC, date, datetime
from pathlib import Path

from dixa_sandbox.data import SandboxData
from dixa_sandbox.faults import Fault
from dixa_sandbox.server import BOUNDS, Latency, SandboxServer


def parse_now(text: str) -> int:
    """``--now``: milliseconds since the epoch, or an ISO date/datetime (naive means UTC)."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_range(text: str) -> tuple[int, int]:
    """``--messages-per-conversation``: ``N`` or ``LOW-HIGH`` (inclusive)."""
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or LOW-HIGH, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dixa_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get("DIXA_API_TOKEN"),
        help="the expected bearer token (default: $DIXA_API_TOKEN)",
    )
    parser.add_argument("--per-day", type=int, default=50, help="conversations per day")
    parser.add_argument("--data-start", type=date.fromisoformat, default=date(2023, 1, 1))
    parser.add_argument("--now", type=parse_now, help="server clock, ISO or ms (default: wall)")
    parser.add_argument("--bounds", choices=BOUNDS, default="exclusive")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--array-repeat",
        type=int,
        default=1,
        help="repeat every array of a record N times (child rows per conversation: ~8.7 x N)",
    )
    parser.add_argument(
        "--messages-per-conversation",
        type=parse_range,
        default=(3, 15),
        metavar="LOW-HIGH",
        help="messages a conversation has, drawn per conversation (default 3-15; or one N)",
    )
    parser.add_argument(
        "--message-text-scale",
        type=float,
        default=1.0,
        help="multiply every message text's length (1.0: messages of about 1 KB on average)",
    )
    parser.add_argument("--cache-dir", type=Path, help="keep answers as files and replay them")
    parser.add_argument(
        "--first-byte-seconds",
        type=float,
        default=0.0,
        help="wait before each export answer starts (a real service builds it first)",
    )
    parser.add_argument(
        "--bandwidth-mb",
        type=float,
        default=0.0,
        help="MB/s of each export answer's body (0: unlimited)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="N",
        help="export requests a token may make a minute; beyond: 429 with Retry-After (0: off)",
    )
    parser.add_argument(
        "--fault",
        type=Fault.parse,
        action="extend",
        nargs="+",
        default=[],
        metavar="SPEC",
        help="queue faults, e.g. 429x3:retry_after=1 cutoff:5000 (see faults.py)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or DIXA_API_TOKEN")
    try:
        data = SandboxData(
            per_day=args.per_day,
            data_start=args.data_start,
            seed=args.seed,
            array_repeat=args.array_repeat,
            messages_per_conversation=args.messages_per_conversation,
            message_text_scale=args.message_text_scale,
        )
    except ValueError as error:
        parser.error(str(error))
    latency = Latency(args.first_byte_seconds, args.bandwidth_mb * 1_000_000, args.rate_limit)
    server = SandboxServer(
        args.token,
        data,
        host=args.host,
        port=args.port,
        bounds=args.bounds,
        now=args.now,
        cache_dir=args.cache_dir,
        latency=latency,
    )
    server.inject(*args.fault)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with server:
        print(f"sandbox listening on {server.url}", flush=True)
        while not stopping.wait(0.5):
            pass


if __name__ == "__main__":
    main()
