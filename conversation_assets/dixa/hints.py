"""dlt table hints for the Arrow path: merge rules and column types of every table it writes."""

from __future__ import annotations

from functools import cache
from typing import Any

import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.hints import TResourceHints, make_hints

from conversation_assets.dixa.endpoints import WRITE_DISPOSITION
from conversation_assets.dixa.parse.arrow import (
    ARRAY_FIELDS,
    DELETED_COLUMN,
    GRANDCHILD,
    OBJECT_FIELDS,
    ROW_KEY_COLUMNS,
    child_table_name,
)
from conversation_assets.dixa.schema import PRIMARY_KEY, TABLE_NAME, root_merge_columns

MERGE = {"disposition": WRITE_DISPOSITION, "strategy": "delete-insert"}
DLT_TYPES = {pa.string(): "text", pa.int64(): "bigint", pa.bool_(): "bool"}


def _typed(name: str, data_type: pa.DataType) -> TTableSchemaColumns:
    return {name: {"name": name, "data_type": DLT_TYPES[data_type], "nullable": True}}


def value_columns(field: str) -> TTableSchemaColumns:
    """The data columns of one child table: object keys, or ``value`` for string arrays."""
    columns: TTableSchemaColumns = {}
    if field in OBJECT_FIELDS:
        for item in OBJECT_FIELDS[field]:
            columns.update(_typed(item.name, item.type))
    else:
        columns.update(_typed("value", pa.string()))
    return columns


def nested_hints() -> dict[str | tuple[str, ...], Any]:
    """Typed child-table columns for dlt's normalizer, so both paths write the same columns."""
    hints: dict[str | tuple[str, ...], Any] = {
        field: {"columns": value_columns(field)} for field in ARRAY_FIELDS
    }
    hints[tuple(GRANDCHILD.split("__"))] = {"columns": value_columns(GRANDCHILD)}
    return hints


def child_columns(field: str) -> TTableSchemaColumns:
    """Value columns, the linkage columns, and the tombstone flag of one child table."""
    columns = value_columns(field)
    for name, data_type in ROW_KEY_COLUMNS:
        columns.update(_typed(name, data_type))
    columns["_dlt_root_id"]["nullable"] = False
    columns[DELETED_COLUMN] = {
        "name": DELETED_COLUMN,
        "data_type": "bool",
        "nullable": True,
        "hard_delete": True,
    }
    return columns


@cache
def table_hints() -> dict[str, TResourceHints]:
    """Hints for the root table (merge on ``id``) and each child table (merge on its root)."""
    root_columns = root_merge_columns()
    root_columns.update(_typed("_dlt_load_id", pa.string()))
    root_columns.update(_typed("_dlt_id", pa.string()))
    hints = {
        TABLE_NAME: make_hints(
            table_name=TABLE_NAME,
            write_disposition=MERGE,
            primary_key=PRIMARY_KEY,
            columns=root_columns,
        )
    }
    for field in (*ARRAY_FIELDS, GRANDCHILD):
        name = child_table_name(field)
        hints[name] = make_hints(
            table_name=name,
            write_disposition=MERGE,
            merge_key="_dlt_root_id",
            columns=child_columns(field),
        )
    return hints
