"""Streamed parsing of an export answer: a root JSON array (or ``{"data": [...]}``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ijson

WHITESPACE = b" \t\r\n"

#: How much ijson reads at a time (its default is 64 KB). ijson's C parser re-scans a string
#: that spans reads, so a long string costs (length / read size) times its length: a 20 MB
#: record of non-ASCII text took 30 s in 64 KB reads and 0.5 s in 1 MB ones. 16 MB reads make
#: any record up to 16 MB (DuckDB's limit, beyond which this reader takes over) a single read.
IJSON_BUFFER_BYTES = 16 << 20

INT64_RANGE = range(-(2**63), 2**63)


class NumberOutOfRange(ValueError):
    """A number no 64-bit integer column can hold: a fact of the data, a re-run cannot help."""


class ChunkReader:
    """A minimal binary file over an iterable of byte chunks, for ijson."""

    def __init__(
        self, chunks: Iterable[bytes], on_chunk: Callable[[int], None] | None = None
    ) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._on_chunk = on_chunk

    def _fill(self) -> bool:
        """Load the next chunk into the buffer; False at the end of the body."""
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        if self._on_chunk:
            self._on_chunk(len(chunk))
        self._buffer = chunk
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (everything for -1), gathered from as many chunks as it takes:
        fewer, larger reads keep ijson linear on long strings (see ``IJSON_BUFFER_BYTES``)."""
        parts: list[bytes] = []
        wanted = size
        while wanted != 0:
            if not self._buffer and not self._fill():
                break
            if wanted < 0 or wanted >= len(self._buffer):
                part, self._buffer = self._buffer, b""
            else:
                part, self._buffer = self._buffer[:wanted], self._buffer[wanted:]
            parts.append(part)
            if wanted > 0:
                wanted -= len(part)
        return b"".join(parts)

    def peek_first_byte(self) -> bytes:
        """The first byte that is not white space, left unread; ``b""`` for an empty body."""
        while True:
            stripped = self._buffer.lstrip(WHITESPACE)
            if stripped:
                self._buffer = stripped
                return stripped[:1]
            self._buffer = b""
            if not self._fill():
                return b""


def iter_json_records(reader: ChunkReader) -> Iterator[dict[str, Any]]:
    """Yield the objects of a root array, or of the ``data`` array of a root object.

    Raises ``ValueError`` for anything else (an empty body, an error object, a non-object item),
    so that a wrong answer never passes for an empty window.
    """
    first = reader.peek_first_byte()
    if first == b"[":
        items: Iterable[Any] = ijson.items(
            reader, "item", use_float=True, buf_size=IJSON_BUFFER_BYTES
        )
    elif first == b"{":
        items = _data_items(reader)
    else:
        raise ValueError(f"expected a JSON array, the body starts with {first!r}")
    position, last_id = 0, None
    try:
        for item in items:
            if not isinstance(item, dict):
                raise ValueError(f"expected conversation objects, got {type(item).__name__}")
            position, last_id = position + 1, item.get("id")
            yield item
    except ijson.JSONError as error:
        if "integer overflow" in str(error):
            raise NumberOutOfRange(out_of_range(str(error), position, last_id)) from None
        raise


def out_of_range(parse_error: str, position: int, previous_id: Any) -> str:
    """Name the conversation and the field of ijson's "integer overflow" (from its excerpt)."""
    field, value = "a field", "a number"
    for key, digits in re.findall(r'"([^"\\]{1,200})"\s*:\s*(-?\d{19,})', parse_error):
        if int(digits) not in INT64_RANGE:
            field, value = key, digits
            break
    if field == "id":
        which = f"conversation id={value}: the id is"
    else:
        after = f" (after id={previous_id})" if position else ""
        which = f"conversation number {position + 1} of the answer{after}: {field} is {value},"
    return (
        f"{which} beyond the 64-bit integer range of the destination's columns. No load can "
        "store it, so a re-run fails the same way: ask Dixa about this conversation."
    )


def _data_items(reader: ChunkReader) -> Iterator[Any]:
    keys = []
    for key, value in ijson.kvitems(reader, "", use_float=True, buf_size=IJSON_BUFFER_BYTES):
        if key == "data" and isinstance(value, list):
            yield from value
            return
        keys.append(key)
    raise ValueError(f"expected a JSON array, got an object with keys {sorted(keys)}")


def batched(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Lists of up to ``size`` records: dlt extracts lists much faster than single items."""
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
