"""Monthly partitions of the cursor, and the request window of each partition.

Dagster's time partitions follow a cron, so they cannot step by a fixed 31 days: a partition is one
calendar month (28-31 days, within the API's 31-day cap). The first partition starts at
``DIXA_START_DATE`` itself; the current month is a partition too, and its window ends at "now".
"""

from __future__ import annotations

from datetime import date

from dagster import MonthlyPartitionsDefinition, TimeWindow

from conversation_assets.dixa.windows import Window, to_ms


def monthly_partitions(start_date: date) -> MonthlyPartitionsDefinition:
    """Partitions ``YYYY-MM-01`` from the month of ``start_date`` through the current month."""
    return MonthlyPartitionsDefinition(
        start_date=start_date.replace(day=1).isoformat(), timezone="UTC", end_offset=1
    )


def partition_window(time_window: TimeWindow, start_date: date) -> Window:
    """The cursor window of a partition: its month, starting no earlier than start_date."""
    start = max(to_ms(time_window.start), to_ms(start_date))
    return Window(start, to_ms(time_window.end))


def window_of_key(partitions: MonthlyPartitionsDefinition, key: str, start_date: date) -> Window:
    """The cursor window of the partition ``key``."""
    return partition_window(partitions.time_window_for_partition_key(key), start_date)
