"""Streamed parsing of an export answer: a root JSON array (or ``{"data": [...]}``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ijson

WHITESPACE = b" \t\r\n"


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
        while not self._buffer:
            if not self._fill():
                return b""
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

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
        items: Iterable[Any] = ijson.items(reader, "item", use_float=True)
    elif first == b"{":
        items = _data_items(reader)
    else:
        raise ValueError(f"expected a JSON array, the body starts with {first!r}")
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"expected conversation objects, got {type(item).__name__}")
        yield item


def _data_items(reader: ChunkReader) -> Iterator[Any]:
    keys = []
    for key, value in ijson.kvitems(reader, "", use_float=True):
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
