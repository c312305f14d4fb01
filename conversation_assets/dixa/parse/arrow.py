"""Conversations as Arrow tables: the fast path, no I/O.

A batch of parsed records becomes one typed Arrow table with nested list columns
(:func:`records_to_table`, the reference; ``duckdb_reader`` builds the same table from the
answer's file without Python objects); dlt's incremental filters it on ``updated_at``; then
:func:`split_nested` flattens every array column into its child table with vectorised Arrow
kernels, producing the same tables and columns dlt's own normalizer would:

- root ``conversation_export``: one row per conversation, ``_dlt_id`` = the conversation id;
- ``conversation_export__<array>``: one row per array item with ``_dlt_root_id``,
  ``_dlt_parent_id``, ``_dlt_list_idx`` and a deterministic ``_dlt_id``; string arrays have a
  ``value`` column, object arrays one column per key;
- ``conversation_export__custom_fields__value``: the items of array-valued custom fields.

dlt loads Arrow tables as they are, so the nested tables are loaded as tables of their own,
merged on ``_dlt_root_id``: a conversation exported again replaces all its child rows. A
conversation that no longer has items in an array gets one tombstone row in that child table
(``_dlt_deleted = true``, dlt's ``hard_delete`` hint) so that its old rows are deleted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conversation_assets.dixa.schema import (
    ARRAY_FIELDS,
    BOOLEAN,
    CONVERSATIONS,
    DELETED_COLUMN,
    GRANDCHILD,
    INTEGER_FIELDS,
    KNOWN_FIELDS,
    NESTED_SCHEMA,
    RATING_INTEGER_FIELDS,
    STRING,
    TABLE_NAME,
    VALUE_LIST,
)


class RecordError(ValueError):
    """A record the fast path cannot load as it is; the message names the conversation."""


def child_table_name(field: str) -> str:
    return CONVERSATIONS.child_table(field)


def records_to_table(records: list[dict[str, Any]]) -> pa.Table:
    """One typed table (nested list columns included) for a batch of parsed records.

    Fields nobody declared are kept: their types are inferred and they become new columns.
    A known field whose value has the wrong type raises :class:`RecordError`.
    """
    extra_names: set[str] = set()
    for record in records:
        if record.keys() - KNOWN_FIELDS:
            extra_names |= record.keys() - KNOWN_FIELDS
        for field in record.get("custom_fields") or ():
            if isinstance(field, dict) and isinstance(field.get("value"), list):
                field[VALUE_LIST] = field["value"]
                field["value"] = None
        if fractions := fractional_integers(record):
            raise RecordError(bad_record_message(record, fractions, "a number with a fraction"))
    try:
        table = pa.Table.from_pylist(records, schema=NESTED_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
        raise RecordError(describe_bad_record(records, error)) from None
    if extra_names:
        table = append_inferred_columns(table, records, sorted(extra_names))
    return table


def fractional_integers(record: dict[str, Any]) -> list[str]:
    """Integer fields holding a number with a fraction, which pyarrow would cut off silently."""
    names = [name for name in INTEGER_FIELDS if _has_fraction(record.get(name))]
    for rating in record.get("ratings") or ():
        if isinstance(rating, dict):
            names += [
                f"ratings.{name}"
                for name in RATING_INTEGER_FIELDS
                if _has_fraction(rating.get(name))
            ]
    return names


def _has_fraction(value: Any) -> bool:
    return isinstance(value, float) and not value.is_integer()


def append_inferred_columns(
    table: pa.Table, records: list[dict[str, Any]], names: Sequence[str]
) -> pa.Table:
    """Add the undeclared fields as columns with inferred types (nested values as JSON text)."""
    extras = pa.Table.from_pylist([{name: row.get(name) for name in names} for row in records])
    for name in names:
        column = extras[name]
        if pa.types.is_nested(column.type):
            column = pa.array(
                [None if value is None else _json(value) for value in column.to_pylist()], STRING
            )
        table = table.append_column(name, column)
    return table


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def describe_bad_record(records: list[dict[str, Any]], error: Exception) -> str:
    """Find the first record that does not fit the declared types and say what is wrong."""
    for record in records:
        try:
            pa.Table.from_pylist([record], schema=NESTED_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as record_error:
            fields = [
                name
                for name in KNOWN_FIELDS
                if name in record and not _fits(record[name], NESTED_SCHEMA.field(name).type)
            ]
            return bad_record_message(record, fields, str(record_error))
    return f"a record does not fit the declared types: {error}"


def bad_record_message(record: dict[str, Any], fields: list[str], detail: str) -> str:
    """What is wrong with one record, and how to load it anyway."""
    return (
        f"conversation id={record.get('id')!r} has a value of an unexpected type in "
        f"{', '.join(sorted(fields)) or 'a nested field'} ({detail}). "
        "Set DIXA_EXTRACT_FORMAT=json to load it with dlt's normalizer, which keeps "
        "such values in a variant column."
    )


def _fits(value: Any, data_type: pa.DataType) -> bool:
    try:
        pa.array([value], type=data_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True


def split_nested(table: pa.Table, load_id: str) -> dict[str, pa.Table]:
    """The root table without arrays, and one table per array column (plus the grandchild)."""
    ids = table["id"].combine_chunks()
    if ids.null_count:
        raise RecordError(
            f"{ids.null_count} conversation(s) without an id: they cannot be merged. "
            "Nothing of this window was loaded."
        )
    root_ids = pc.cast(ids, STRING)
    tables: dict[str, pa.Table] = {}
    for field in ARRAY_FIELDS:
        tables.update(child_tables(field, table[field].combine_chunks(), root_ids))
    flat = table.drop_columns(list(ARRAY_FIELDS))
    flat = flat.append_column("_dlt_load_id", pa.array([load_id] * len(flat), STRING))
    flat = flat.append_column("_dlt_id", root_ids)
    return {TABLE_NAME: required(flat, "id"), **tables}


def child_tables(field: str, column: pa.ListArray, root_ids: pa.Array) -> dict[str, pa.Table]:
    """Rows of one array column linked to their conversation, with tombstones for empty ones."""
    parents = pc.list_parent_indices(column)
    items = pc.list_flatten(column)
    parent_ids = root_ids.take(parents)
    positions = list_positions(column, parents)
    row_ids = join_ids(parent_ids, field, positions)
    if pa.types.is_struct(items.type):
        values = {f.name: items.field(i) for i, f in enumerate(items.type)}
    else:
        values = {"value": items}
    value_lists = values.pop(VALUE_LIST, None)
    live = {**values, **row_key_columns(parent_ids, parent_ids, positions, row_ids)}
    empty = pc.equal(list_lengths(column), 0)
    tables = {child_table_name(field): with_tombstones(live, empty, root_ids)}
    if value_lists is not None:
        tables[child_table_name(GRANDCHILD)] = grandchild_table(
            value_lists, row_ids, parent_ids, root_ids
        )
    return tables


def grandchild_table(
    value_lists: pa.ListArray,
    parent_row_ids: pa.Array,
    parent_root_ids: pa.Array,
    root_ids: pa.Array,
) -> pa.Table:
    """Items of array-valued custom fields; their parent is the custom field's row."""
    parents = pc.list_parent_indices(value_lists)
    positions = list_positions(value_lists, parents)
    parent_ids = parent_row_ids.take(parents)
    live = {
        "value": pc.list_flatten(value_lists),
        **row_key_columns(
            parent_root_ids.take(parents),
            parent_ids,
            positions,
            join_ids(parent_ids, "value", positions),
        ),
    }
    has_items = pc.is_in(root_ids, value_set=pc.unique(live["_dlt_root_id"]))
    return with_tombstones(live, pc.invert(has_items), root_ids)


def list_lengths(column: pa.ListArray) -> pa.Array:
    """Items per row, 0 for a null list."""
    return pc.fill_null(pc.list_value_length(column), 0)


def list_positions(column: pa.ListArray, parents: pa.Array) -> pa.Array:
    """Each flattened item's index inside its own list (``_dlt_list_idx``)."""
    lengths = list_lengths(column).to_numpy(zero_copy_only=False)
    starts = np.cumsum(lengths) - lengths
    parent_index = parents.to_numpy(zero_copy_only=False)
    return pa.array(np.arange(len(parent_index), dtype=np.int64) - starts[parent_index])


def join_ids(prefixes: pa.Array, label: str, positions: pa.Array) -> pa.Array:
    """Deterministic row keys ``<parent>:<label>:<position>``."""
    labels = pa.array([label] * len(prefixes), STRING)
    return pc.binary_join_element_wise(prefixes, labels, pc.cast(positions, STRING), ":")


def row_key_columns(
    root_ids: pa.Array, parent_ids: pa.Array, positions: pa.Array, row_ids: pa.Array
) -> dict[str, pa.Array]:
    """The linkage columns dlt's normalizer writes into every nested table."""
    return {
        "_dlt_root_id": root_ids,
        "_dlt_parent_id": parent_ids,
        "_dlt_list_idx": positions,
        "_dlt_id": row_ids,
        DELETED_COLUMN: pa.nulls(len(row_ids), BOOLEAN),
    }


def with_tombstones(live: dict[str, pa.Array], mask: pa.Array, root_ids: pa.Array) -> pa.Table:
    """The live rows plus one ``_dlt_deleted`` row for each conversation selected by ``mask``."""
    roots = root_ids.filter(mask)
    dead = {name: pa.nulls(len(roots), array.type) for name, array in live.items()}
    dead["_dlt_root_id"] = roots
    dead[DELETED_COLUMN] = pa.array([True] * len(roots), BOOLEAN)
    return required(pa.concat_tables([pa.table(live), pa.table(dead)]), "_dlt_root_id")


def required(table: pa.Table, column: str) -> pa.Table:
    """Mark ``column`` as not nullable, as its dlt hint says (it has no nulls here)."""
    index = table.schema.get_field_index(column)
    field = table.schema.field(index).with_nullable(False)
    return table.cast(table.schema.set(index, field))
