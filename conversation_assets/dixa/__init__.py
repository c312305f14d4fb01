"""The Dixa source for dlt: conversations and messages from the exports API, merged on ``id``.

Verified-source style: credentials are ``dlt.secrets.value`` arguments (``[sources.dixa]
api_token`` in ``.dlt/secrets.toml``), every other setting has a default and may be passed in.
One resource per endpoint (:data:`~conversation_assets.dixa.endpoints.ENDPOINTS`), built by the
same code from the endpoint's data: path, filter parameters, cursor and schema.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dlt
import ijson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from conversation_assets.config import Config
from conversation_assets.dixa.download import (
    DixaApiError,
    ExportClient,
    RequestStats,
    broken_answer,
)
from conversation_assets.dixa.endpoints import (
    CONVERSATION_EXPORT,
    ENDPOINTS,
    Endpoint,
)
from conversation_assets.dixa.memory import release_unused_memory
from conversation_assets.dixa.parse.arrow import RecordError, split_nested
from conversation_assets.dixa.parse.duckdb import read_conversation_tables
from conversation_assets.dixa.parse.records import NumberOutOfRange, batched
from conversation_assets.dixa.schema import WRITE_DISPOSITION, table_hints
from conversation_assets.dixa.windows import Window, request_windows, to_ms

__all__ = ["ENDPOINTS", "DixaApiError", "RecordError", "RequestStats", "dixa_source"]

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
    """One resource per endpoint: records whose cursor lies in ``[start, end)``.

    Without ``start`` the range begins at ``start_date``, or where the last run stopped (dlt's
    incremental state on the cursor). Without ``end`` it runs up to now. Settings are
    validated before any request (None: the default of :class:`Config`); ``stats`` (optional)
    collects the requests made.

    ``extract_format="json"`` (the default) hands plain records to dlt's normalizer, which
    makes the child tables nested tables of the root: dlt's merge replaces a record and its
    child rows in one transaction. ``"arrow"`` builds typed Arrow tables and flattens the arrays
    into child tables itself: faster, with the limits the README lists; conversations only
    (messages always take the ``json`` path).
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
    stats = stats if stats is not None else RequestStats()
    return [
        export_resource(endpoint, config, start, end, stats, logger)
        for endpoint in ENDPOINTS.values()
    ]


def export_resource(
    endpoint: Endpoint,
    config: Config,
    start: datetime | date | int | None,
    end: datetime | date | int | None,
    stats: RequestStats,
    logger: Any,
) -> DltResource:
    """The resource of one endpoint, incremental on its cursor, merged on its key."""
    client = ExportClient(config, endpoint, logger=logger)
    client.stats = stats
    cursor = dlt.sources.incremental(
        endpoint.cursor,
        initial_value=to_ms(start or config.start_date),
        end_value=None if end is None else to_ms(end),
        range_start="closed",
        range_end="open",
        on_cursor_value_missing="include",
    )
    if config.extract_format == "arrow" and endpoint == CONVERSATION_EXPORT:
        pages = dlt.resource(
            answer_pages,
            name=f"{endpoint.name}_pages",
            primary_key=endpoint.schema.primary_key,
            selected=False,
        )(client, config.batch_size_days, cursor)
        return pages | dlt.transformer(conversation_tables, name=endpoint.name)
    schema = endpoint.schema
    return dlt.resource(
        answer_records,
        name=endpoint.name,
        primary_key=schema.primary_key,
        write_disposition=WRITE_DISPOSITION,
        columns=schema.root_merge_columns(),
        nested_hints=schema.nested_hints(),
    )(client, config.batch_size_days, cursor)


def windows_to_request(
    batch_size_days: int, cursor: dlt.sources.incremental[int]
) -> Iterator[Window]:
    """The request windows that cover the incremental's range."""
    now_ms = to_ms(datetime.now(tz=UTC))
    end_ms = cursor.end_value if cursor.end_value is not None else now_ms
    yield from request_windows(cursor.start_value, end_ms, batch_size_days, now_ms)


def answer_records(
    client: ExportClient, batch_size_days: int, cursor: dlt.sources.incremental[int]
) -> Iterator[list[dict[str, Any]]]:
    """Every record in the incremental's range, as records for dlt's normalizer."""
    schema = client.endpoint.schema
    for window in windows_to_request(batch_size_days, cursor):
        records = inside(window, schema.cursor, client.fetch(window))
        keep = (schema.primary_key, schema.cursor)
        yield from batched(without_nulls(keep, records), RECORDS_PER_BATCH)


def without_nulls(
    keep: tuple[str, ...], records: Iterator[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Records without their null top-level values (but those of ``keep``: the key and cursor).

    A missing value loads as NULL exactly as a null one does, but dlt's normalizer spends a
    type check per null value and per row (about 9 of a message's 20-22 fields are null: 9% of
    the CPU of 200,000 messages). A null array has no items, as an empty one; without it dlt
    sees no untyped root column either (it warned on every load in which no record had such an
    array). The key and the cursor stay, so that a missing one is reported as before.
    """
    for record in records:
        nulls = [name for name, value in record.items() if value is None and name not in keep]
        for name in nulls:
            del record[name]
        yield record


def inside(
    window: Window, cursor: str, records: Iterator[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The records of one answer that belong to its own request window.

    Under inclusive API bounds a record on a request edge is in two answers; each answer keeps
    only its own window's, so no run reads a record twice from its edges. A record without an
    integer cursor is kept (dlt's incremental includes it; a check reports it).
    """
    for record in records:
        value = record.get(cursor)
        if value in window or not isinstance(value, int) or isinstance(value, bool):
            yield record


def answer_pages(
    client: ExportClient, batch_size_days: int, cursor: dlt.sources.incremental[int]
) -> Iterator[Any]:
    """Every conversation in the incremental's range, as typed Arrow tables (the Arrow path).

    Each answer is written to a file in the pipeline's working folder (a run's own folder under
    Dagster, removed with it) and parsed from there.
    """
    spool_dir = Path(dlt.current.pipeline().working_dir)
    for window in windows_to_request(batch_size_days, cursor):
        for table in answer_tables(client, window, ROWS_PER_TABLE, spool_dir):
            yield table_inside(window, client.endpoint.cursor, table)
    release_unused_memory()


def answer_tables(
    client: ExportClient, window: Window, rows_per_table: int, spool_dir: Path | None = None
) -> Iterator[pa.Table]:
    """Every conversation of ``window`` in typed Arrow tables, via a temporary file.

    The file lives in ``spool_dir`` (default: the system's temporary folder, ``TMPDIR``) while
    the window is read; it needs about the size of the answer (~2.2 KB a conversation).
    """
    with tempfile.TemporaryDirectory(prefix="dixa-answer-", dir=spool_dir) as folder:
        path = Path(folder) / f"{client.endpoint.path}.json"
        with path.open("wb") as body:
            client.download(window, body)
        count = 0
        try:
            for table in read_conversation_tables(path, rows_per_table, client.log):
                count += table.num_rows
                yield table
        except RecordError:
            raise
        except NumberOutOfRange as error:
            raise DixaApiError(f"Window {window}: {error}", window=window) from None
        except (ijson.JSONError, ValueError) as error:
            raise broken_answer(window, f"{count} conversations", error) from None
    client.received(window, count)


def table_inside(window: Window, cursor: str, table: Any) -> Any:
    """The rows of one answer's table that belong to its own request window (see ``inside``)."""
    values = table[cursor]
    keep = pc.or_kleene(
        pc.and_(pc.greater_equal(values, window.start_ms), pc.less(values, window.end_ms)),
        pc.is_null(values),
    )
    return table.filter(keep)


def conversation_tables(table: Any) -> Iterator[Any]:
    """The root table and its child tables, each with its own merge hints (the Arrow path)."""
    load_id = dlt.current.load_package_state()["load_id"]
    hints = table_hints()
    for name, part in split_nested(table, load_id).items():
        yield dlt.mark.with_hints(part, hints[name], create_table_variant=True)


def source_for_window(
    config: Config, window: Window, endpoint: Endpoint = CONVERSATION_EXPORT, **kwargs: Any
) -> DltSource:
    """The source restricted to one endpoint and one window, with the settings of ``config``."""
    source = dixa_source(
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
    return source.with_resources(endpoint.name)
