"""Typed Arrow tables from an export answer on disk, parsed by DuckDB.

The fast half of the Arrow path. DuckDB's JSON reader parses the root array in C++ on every
core and streams record batches of exactly the table :func:`records_to_table` builds from
Python objects, about 6x faster and without one Python object per value.

It is strict where DuckDB would quietly convert: an integer or boolean field holding anything
else (``1.5``, ``"123"``, ``true`` in an integer) stops the query. Text fields keep a number or
an object as its JSON text, which loses nothing. Whatever DuckDB cannot read as declared (a
value of another type, a record over :data:`MAX_OBJECT_BYTES`, a body that is not a root array,
invalid JSON) is read again from the same file by the reference path (``ijson`` and
:func:`records_to_table`), from the first record DuckDB did not deliver: it loads what it can
load and raises the errors that name the conversation and the field.

Two passes over the file: one lists the keys of every record (fields nobody declared get a
column, typed from their values), one reads the values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from conversation_assets.dixa.parse.arrow import records_to_table
from conversation_assets.dixa.parse.records import ChunkReader, batched, iter_json_records
from conversation_assets.dixa.schema import (
    CUSTOM_FIELD_STRUCT,
    KNOWN_FIELDS,
    NESTED_SCHEMA,
    VALUE_LIST,
)

log = logging.getLogger(__name__)

#: The largest single conversation DuckDB reads; a larger one goes to the reference path.
MAX_OBJECT_BYTES = 16 * 1024 * 1024
#: DuckDB's working memory for the parse; it reads the file in buffers, not whole.
DUCKDB_CONFIG = {"memory_limit": "128MB"}
#: JSON types DuckDB may cast to a declared type without losing anything.
EXACT_JSON_TYPES = {"BIGINT": "('BIGINT', 'UBIGINT')", "BOOLEAN": "('BOOLEAN')"}
#: The column type of a field nobody declared, from the JSON types of its values.
INFERRED_TYPES: dict[frozenset[str], str] = {
    frozenset({"BIGINT"}): "BIGINT",
    frozenset({"UBIGINT"}): "BIGINT",
    frozenset({"BIGINT", "UBIGINT"}): "BIGINT",
    frozenset({"DOUBLE"}): "DOUBLE",
    frozenset({"BIGINT", "DOUBLE"}): "DOUBLE",
    frozenset({"UBIGINT", "DOUBLE"}): "DOUBLE",
    frozenset({"BIGINT", "UBIGINT", "DOUBLE"}): "DOUBLE",
    frozenset({"VARCHAR"}): "VARCHAR",
    frozenset({"BOOLEAN"}): "BOOLEAN",
}


def read_conversation_tables(
    path: Path, rows_per_table: int, logger: Any = None
) -> Iterator[pa.Table]:
    """Tables of up to ``rows_per_table`` conversations, in the answer's order."""
    delivered = 0
    if first_byte(path) == b"[":
        try:
            for table in _duckdb_tables(path, rows_per_table):
                delivered += table.num_rows
                yield table
            return
        except duckdb.Error as error:
            reason = str(error).splitlines()[0]
            (logger or log).warning(
                f"DuckDB could not read the answer as declared ({reason}); reading it again "
                f"with the reference path from conversation {delivered + 1}"
            )
    yield from reference_tables(path, rows_per_table, skip=delivered)


def reference_tables(path: Path, rows_per_table: int, skip: int = 0) -> Iterator[pa.Table]:
    """The same tables from Python objects (``ijson``): slower, and precise about bad input."""
    with path.open("rb") as body:
        reader = ChunkReader(iter(lambda: body.read(1 << 20), b""))
        for batch in batched(islice(iter_json_records(reader), skip, None), rows_per_table):
            yield records_to_table(batch)


def first_byte(path: Path) -> bytes:
    """The first byte of the file that is not white space (``b""`` if there is none)."""
    with path.open("rb") as body:
        return ChunkReader(iter(lambda: body.read(4096), b"")).peek_first_byte()


def _duckdb_tables(path: Path, rows_per_table: int) -> Iterator[pa.Table]:
    # Should DuckDB spill, it does so next to the answer (removed with it), not in the cwd.
    config = {**DUCKDB_CONFIG, "temp_directory": str(path.parent / "duckdb_spill")}
    with duckdb.connect(config=config) as connection:
        extras = undeclared_field_types(connection, path)
        query = typed_query(path, extras)
        for batch in connection.sql(query).to_arrow_reader(rows_per_table):
            yield pa.Table.from_batches([batch])


def undeclared_field_types(connection: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Fields of the answer that :data:`NESTED_SCHEMA` does not declare, with a column type.

    A field that is null everywhere gets no column (as with the reference path); one whose
    values are objects, arrays or of mixed types is kept as JSON text.
    """
    source = _objects(path)
    keys = connection.sql(f"SELECT DISTINCT unnest(json_keys(json)) FROM {source}").fetchall()
    names = sorted(key for (key,) in keys if key not in KNOWN_FIELDS)
    if not names:
        return {}
    types = ", ".join(
        f"list(DISTINCT json_type(json -> {_literal(name)})) FILTER "
        f"(WHERE json_type(json -> {_literal(name)}) <> 'NULL')"
        for name in names
    )
    (found,) = connection.sql(f"SELECT {types} FROM {source}").fetchall()
    return {
        name: INFERRED_TYPES.get(frozenset(kinds), "JSON")
        for name, kinds in zip(names, found, strict=True)
        if kinds
    }


def typed_query(path: Path, extras: dict[str, str]) -> str:
    """``SELECT`` the columns of :data:`NESTED_SCHEMA` (then ``extras``) from the file."""
    columns = {field.name: read_type(field.type) for field in NESTED_SCHEMA}
    columns.update(extras)
    spec = ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in columns.items())
    selected = [select_expression(field) for field in NESTED_SCHEMA]
    selected += [
        f"CAST({_name(name)} AS VARCHAR) AS {_name(name)}" if sql_type == "JSON" else _name(name)
        for name, sql_type in extras.items()
    ]
    return (
        f"SELECT {', '.join(selected)} FROM read_json({_literal(str(path))}, format='array', "
        f"columns={{{spec}}}, maximum_object_size={MAX_OBJECT_BYTES})"
    )


def read_type(data_type: pa.DataType) -> str:
    """How ``read_json`` reads a declared type: integers and booleans as JSON, to be checked."""
    if data_type == CUSTOM_FIELD_STRUCT:
        fields = [f for f in data_type if f.name != VALUE_LIST]
        return f"STRUCT({', '.join(f'{_name(f.name)} {_raw_read_type(f)}' for f in fields)})"
    if pa.types.is_list(data_type):
        return f"{read_type(data_type.value_type)}[]"
    if pa.types.is_struct(data_type):
        return f"STRUCT({', '.join(f'{_name(f.name)} {read_type(f.type)}' for f in data_type)})"
    if data_type == pa.string():
        return "VARCHAR"
    return "JSON"


def _raw_read_type(field: pa.Field) -> str:
    """``custom_fields[].value`` is a string or an array: read as JSON, split in the select."""
    return "JSON" if field.name == "value" else read_type(field.type)


def select_expression(field: pa.Field) -> str:
    """The SQL that turns one column as read into the declared Arrow type."""
    name = _name(field.name)
    if pa.types.is_list(field.type) and pa.types.is_struct(field.type.value_type):
        item = field.type.value_type
        parts = ", ".join(f"{_literal(f.name)}: {struct_field_expression(item, f)}" for f in item)
        return f"list_transform({name}, lambda item: {{{parts}}}) AS {name}"
    return f"{checked_cast(name, field.type)} AS {name}"


def struct_field_expression(item: pa.StructType, field: pa.Field) -> str:
    if item == CUSTOM_FIELD_STRUCT and field.name == "value":
        return "CASE WHEN json_type(item.value) = 'ARRAY' THEN NULL ELSE item.value ->> '$' END"
    if item == CUSTOM_FIELD_STRUCT and field.name == VALUE_LIST:
        return "CASE WHEN json_type(item.value) = 'ARRAY' THEN CAST(item.value AS VARCHAR[]) END"
    return checked_cast(f"item.{_name(field.name)}", field.type)


def checked_cast(expression: str, data_type: pa.DataType) -> str:
    """Cast a JSON value to BIGINT or BOOLEAN only if it is one; stop the query otherwise."""
    sql_type = {pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}.get(data_type)
    if sql_type is None:
        return expression
    return (
        f"CASE WHEN coalesce(json_type({expression}), 'NULL') = 'NULL' THEN NULL "
        f"WHEN json_type({expression}) IN {EXACT_JSON_TYPES[sql_type]} "
        f"THEN CAST({expression} AS {sql_type}) "
        f"ELSE error('a value that is not {sql_type}') END"
    )


def _objects(path: Path) -> str:
    return (
        f"read_json_objects({_literal(str(path))}, format='array', "
        f"maximum_object_size={MAX_OBJECT_BYTES})"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _name(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
