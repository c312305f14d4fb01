"""The Dixa source for dlt: conversations from the exports API, merged on ``id``.

Verified-source style: credentials are ``dlt.secrets.value`` arguments (``[sources.dixa]
api_token`` in ``.dlt/secrets.toml``), every other setting has a default and may be passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dlt
import pyarrow.compute as pc
from dlt.extract.source import DltSource

from conversation_assets.config import Config
from conversation_assets.dixa.download import DixaApiError, ExportClient, RequestStats
from conversation_assets.dixa.endpoints import WRITE_DISPOSITION
from conversation_assets.dixa.hints import nested_hints, table_hints
from conversation_assets.dixa.memory import release_unused_memory
from conversation_assets.dixa.parse.arrow import RecordError, split_nested
from conversation_assets.dixa.parse.records import batched
from conversation_assets.dixa.schema import (
    ARRAY_FIELDS,
    CURSOR_FIELD,
    PRIMARY_KEY,
    TABLE_NAME,
    root_merge_columns,
)
from conversation_assets.dixa.windows import Window, request_windows, to_ms

__all__ = ["DixaApiError", "RecordError", "RequestStats", "dixa_source"]

#: Parsed records held as Python objects at once (JSON path; the biggest share of its memory).
RECORDS_PER_BATCH = 2_000
#: Conversations per Arrow table handed to dlt: dlt's per-item work (hints, files) is amortized.
ROWS_PER_TABLE = 5_000


@dlt.source(name="dixa", max_table_nesting=2)
def dixa_source(
    api_token: str = dlt.secrets.value,
    base_url: str | None = None,
    start_date: str | None = None,
    end: datetime | date | int | None = None,
    batch_size_days: int | None = None,
    max_retries: int | None = None,
    retry_backoff_seconds: float | None = None,
    request_timeout_seconds: float | None = None,
    extract_format: str | None = None,
    start: datetime | date | int | None = None,
    stats: RequestStats | None = None,
    logger: Any = None,
) -> Any:
    """Conversations whose ``updated_at`` lies in ``[start, end)``.

    Without ``start`` the range begins at ``start_date``, or where the last run stopped (dlt's
    incremental state on ``updated_at``). Without ``end`` it runs up to now. Settings are
    validated before any request (None: the default of :class:`Config`); ``stats`` (optional)
    collects the requests made.

    ``extract_format="json"`` (the default) hands plain records to dlt's normalizer, which
    makes the child tables nested tables of the root: dlt's merge replaces a conversation and its
    child rows in one transaction. ``"arrow"`` builds typed Arrow tables and flattens the arrays
    into child tables itself: faster, with the limits the README lists.
    """
    config = Config.from_values(
        api_token=api_token,
        base_url=base_url,
        start_date=start_date,
        batch_size_days=batch_size_days,
        max_retries=max_retries,
        retry_backoff_seconds=retry_backoff_seconds,
        request_timeout_seconds=request_timeout_seconds,
        extract_format=extract_format,
    )
    client = ExportClient(config, logger=logger)
    if stats is not None:
        client.stats = stats
    updated_at = dlt.sources.incremental(
        CURSOR_FIELD,
        initial_value=to_ms(start or config.start_date),
        end_value=None if end is None else to_ms(end),
        range_start="closed",
        range_end="open",
        on_cursor_value_missing="include",
    )
    if config.extract_format == "json":
        return conversation_export(client, config.batch_size_days, updated_at)
    return conversation_pages(client, config.batch_size_days, updated_at) | conversation_tables


def windows_to_request(
    batch_size_days: int, updated_at: dlt.sources.incremental[int]
) -> Iterator[Window]:
    """The request windows that cover the incremental's range."""
    now_ms = to_ms(datetime.now(tz=UTC))
    end_ms = updated_at.end_value if updated_at.end_value is not None else now_ms
    yield from request_windows(updated_at.start_value, end_ms, batch_size_days, now_ms)


@dlt.resource(
    name=TABLE_NAME,
    primary_key=PRIMARY_KEY,
    write_disposition=WRITE_DISPOSITION,
    columns=root_merge_columns(),
    nested_hints=nested_hints(),
)
def conversation_export(
    client: ExportClient,
    batch_size_days: int,
    updated_at: dlt.sources.incremental[int] = dlt.sources.incremental(CURSOR_FIELD),
) -> Iterator[list[dict[str, Any]]]:
    """Every conversation updated in the incremental's range, as records for dlt's normalizer."""
    for window in windows_to_request(batch_size_days, updated_at):
        records = without_null_arrays(inside(window, client.fetch(window)))
        yield from batched(records, RECORDS_PER_BATCH)


def without_null_arrays(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Records without the array fields that are null: a null array has no items, as an empty one.

    dlt would otherwise see an untyped root column for them and warn on every load in which no
    conversation has such an array (``conversation_wrapup_notes`` often); their items go to
    child tables, never to a root column.
    """
    for record in records:
        for name in ARRAY_FIELDS:
            if name in record and record[name] is None:
                del record[name]
        yield record


def inside(window: Window, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The records of one answer that belong to its own request window.

    Under inclusive API bounds a conversation on a request edge is in two answers; each answer
    keeps only its own window's, so no run reads a conversation twice from its edges. A record
    without an integer ``updated_at`` is kept (dlt's incremental includes it; a check reports it).
    """
    for record in records:
        cursor = record.get(CURSOR_FIELD)
        if cursor in window or not isinstance(cursor, int) or isinstance(cursor, bool):
            yield record


@dlt.resource(name=f"{TABLE_NAME}_pages", primary_key=PRIMARY_KEY, selected=False)
def conversation_pages(
    client: ExportClient,
    batch_size_days: int,
    updated_at: dlt.sources.incremental[int] = dlt.sources.incremental(CURSOR_FIELD),
) -> Iterator[Any]:
    """Every conversation updated in the incremental's range, as typed Arrow tables.

    Each answer is written to a file in the pipeline's working folder (a run's own folder under
    Dagster, removed with it) and parsed from there.
    """
    spool_dir = Path(dlt.current.pipeline().working_dir)
    for window in windows_to_request(batch_size_days, updated_at):
        for table in client.fetch_tables(window, ROWS_PER_TABLE, spool_dir):
            yield table_inside(window, table)
    release_unused_memory()


def table_inside(window: Window, table: Any) -> Any:
    """The rows of one answer's table that belong to its own request window (see ``inside``)."""
    cursor = table[CURSOR_FIELD]
    keep = pc.or_kleene(
        pc.and_(pc.greater_equal(cursor, window.start_ms), pc.less(cursor, window.end_ms)),
        pc.is_null(cursor),
    )
    return table.filter(keep)


@dlt.transformer(name=TABLE_NAME)
def conversation_tables(table: Any) -> Iterator[Any]:
    """The root table and its child tables, each with its own merge hints."""
    load_id = dlt.current.load_package_state()["load_id"]
    hints = table_hints()
    for name, part in split_nested(table, load_id).items():
        yield dlt.mark.with_hints(part, hints[name], create_table_variant=True)


def source_for_window(config: Config, window: Window, **kwargs: Any) -> DltSource:
    """The source restricted to one window, with the settings of ``config``."""
    return dixa_source(
        api_token=config.api_token.reveal(),
        base_url=config.base_url,
        start_date=config.start_date.isoformat(),
        start=window.start_ms,
        end=window.end_ms,
        batch_size_days=config.batch_size_days,
        max_retries=config.max_retries,
        retry_backoff_seconds=config.retry_backoff_seconds,
        request_timeout_seconds=config.request_timeout_seconds,
        extract_format=config.extract_format,
        **kwargs,
    )
