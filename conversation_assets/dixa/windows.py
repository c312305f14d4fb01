"""Window arithmetic, no I/O: which requests cover a time range, and with which parameters.

Every window is half-open, ``[start_ms, end_ms)`` in milliseconds since the epoch. The API does not
document whether ``updated_after`` / ``updated_before`` are inclusive, so each request asks for
``updated_after = start - 1`` and ``updated_before = end``:

- if the API's bounds are exclusive it answers ``start <= updated_at < end``;
- if they are inclusive it also answers ``start - 1`` and ``end``, which the source filters out
  (dlt's incremental with a closed start and an open end).

Either way a conversation on a boundary belongs to exactly one window. The request then spans
``end - start + 1`` ms, so a window holds at most ``batch_size_days`` days less 1 ms: the API
refuses a span of more than 31 days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open range ``[start_ms, end_ms)`` of a cursor (``updated_at``, ``created_at``)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"empty window: {self.start_ms} >= {self.end_ms}")

    @property
    def filter_bounds(self) -> tuple[int, int]:
        """The (after, before) filter values that return this window whatever the API's bound
        semantics (see the module's docstring)."""
        return self.start_ms - 1, self.end_ms

    @property
    def request_span_ms(self) -> int:
        return self.end_ms - self.start_ms + 1

    def __contains__(self, ms: object) -> bool:
        return isinstance(ms, int) and self.start_ms <= ms < self.end_ms

    def __str__(self) -> str:
        return f"[{format_ms(self.start_ms)}, {format_ms(self.end_ms)})"


def request_windows(
    start_ms: int, end_ms: int, batch_size_days: int, now_ms: int | None = None
) -> Iterator[Window]:
    """Consecutive windows covering ``[start_ms, min(end_ms, now_ms))``.

    No request spans more than ``batch_size_days`` days; the last window may be shorter. Nothing
    is yielded when the range is empty (for example a month that starts after ``now_ms``).
    """
    if not 1 <= batch_size_days <= 31:
        raise ValueError(f"batch_size_days must be 1-31, got {batch_size_days}")
    stop = end_ms if now_ms is None else min(end_ms, now_ms)
    step = batch_size_days * DAY_MS - 1
    cursor = start_ms
    while cursor < stop:
        upper = min(cursor + step, stop)
        yield Window(cursor, upper)
        cursor = upper


def to_ms(moment: datetime | date | int) -> int:
    """Milliseconds since the epoch; a date means its midnight UTC; naive datetimes are UTC."""
    if isinstance(moment, int):
        return moment
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def format_ms(value: int) -> str:
    """An ISO-8601 UTC timestamp with milliseconds, for messages and metadata."""
    moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
