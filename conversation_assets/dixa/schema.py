"""What each endpoint's records hold, and how every field is typed from Arrow to dlt to SQL.

One place owns a field's types: the Python tuples name the known fields of each endpoint by kind;
:class:`RecordSchema` turns them into the Arrow types the fast path builds, and the dlt column
hints both paths give dlt (the root table's typed columns and merge rules, the child tables' value
columns); the destination's SQL types are dlt's, from those hints (``bigint``, ``text``,
``bool``). The Arrow path's own hints (child tables of its own, tombstones) are at the end.

All fields are nullable and the records are open-ended: fields not listed here still load (dlt
adds a column for them), they just get no declared type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema, TTableSchemaColumns
from dlt.extract.hints import TResourceHints, make_hints

STRING = pa.string()
INTEGER = pa.int64()
BOOLEAN = pa.bool_()
#: Arrow type -> dlt data type (and so the SQL type of the destination's column).
DLT_TYPES = {STRING: "text", INTEGER: "bigint", BOOLEAN: "bool"}
WRITE_DISPOSITION = "merge"

# --- conversation_export

INTEGER_FIELDS: tuple[str, ...] = (
    "id",
    "created_at",
    "queued_at",
    "closed_at",
    "rating_score",
    "assigned_at",
    "total_duration",
    "handling_duration",
    "transfer_time",
    "updated_at",
    "last_message_created_at",
    "anonymized_at",
)

STRING_FIELDS: tuple[str, ...] = (
    "initial_channel",
    "requester_id",
    "requester_name",
    "requester_email",
    "requester_phone_number",
    "queue_id",
    "queue_name",
    "rating_message",
    "direction",
    "assignee_id",
    "assignee_name",
    "assignee_email",
    "assignee_phone_number",
    "to_provisioned_phone_number_id",
    "to_provisioned_phone_number_name",
    "from_provisioned_phone_number_id",
    "from_provisioned_phone_number_name",
    "dixa_email_integration_id",
    "dixa_email_integration_sender_name",
    "forwarding_email",
    "facebook_page_id",
    "facebook_page_name",
    "widget_id",
    "widget_name",
    "transferee_name",
    "originating_country",
    "status",
    "transferee_number",
    "subject",
)

STRING_ARRAY_FIELDS: tuple[str, ...] = (
    "requester_additional_emails",
    "requester_additional_phone_numbers",
    "tags",
    "conversation_wrapup_notes",
)

OBJECT_ARRAY_FIELDS: tuple[str, ...] = ("ratings", "tags_info", "custom_fields")

ARRAY_FIELDS: tuple[str, ...] = STRING_ARRAY_FIELDS + OBJECT_ARRAY_FIELDS

ALL_FIELDS: tuple[str, ...] = (
    INTEGER_FIELDS + STRING_FIELDS + STRING_ARRAY_FIELDS + OBJECT_ARRAY_FIELDS
)

RATING_STRING_FIELDS: tuple[str, ...] = (
    "rating_message",
    "rating_type",
    "rating_status",
    "rating_language",
)
RATING_INTEGER_FIELDS: tuple[str, ...] = (
    "rating_score",
    "rating_created_timestamp",
    "rating_offered_timestamp",
    "rating_modified_timestamp",
    "rating_rated_timestamp",
    "rating_scheduled_timestamp",
    "rating_scheduled_for_timestamp",
    "rating_unscheduled_timestamp",
    "rating_cancelled_timestamp",
)

#: Keys of the objects inside ``ratings``, ``tags_info`` and ``custom_fields``.
OBJECT_FIELDS: dict[str, pa.StructType] = {
    "ratings": pa.struct(
        [(name, STRING) for name in RATING_STRING_FIELDS]
        + [(name, INTEGER) for name in RATING_INTEGER_FIELDS]
    ),
    "tags_info": pa.struct([("id", STRING), ("name", STRING), ("is_deactivated", BOOLEAN)]),
    "custom_fields": pa.struct(
        [
            ("attribute_id", STRING),
            ("identifier", STRING),
            ("value", STRING),
            ("data_type", STRING),
            ("archived", BOOLEAN),
        ]
    ),
}
#: ``custom_fields[].value`` may be an array: its items go to a grandchild table.
GRANDCHILD = "custom_fields__value"

# --- message_export

MESSAGE_INTEGER_FIELDS: tuple[str, ...] = ("csid", "created_at", "duration")
MESSAGE_STRING_FIELDS: tuple[str, ...] = (
    "id",
    "initial_channel",
    "author_name",
    "author_email",
    "direction",
    "text",
    "from_phone_number",
    "to_phone_number",
    "from",
    "voicemail_url",
    "recording_url",
    "chat_input_question",
    "chat_input_answer",
    "chat_menu_text",
)
MESSAGE_BOOLEAN_FIELDS: tuple[str, ...] = ("is_automated_message",)
MESSAGE_STRING_ARRAY_FIELDS: tuple[str, ...] = ("to", "cc", "bcc", "attached_files")


def _column(data_type: pa.DataType) -> TColumnSchema:
    return {"data_type": DLT_TYPES[data_type], "nullable": True}  # type: ignore[typeddict-item]


@dataclass(frozen=True)
class RecordSchema:
    """The known fields of one endpoint's records, by kind, and the table they load into."""

    table: str
    primary_key: str
    cursor: str
    integer_fields: tuple[str, ...]
    string_fields: tuple[str, ...]
    boolean_fields: tuple[str, ...] = ()
    string_array_fields: tuple[str, ...] = ()
    #: Arrays of objects: field -> the Arrow type of one item.
    object_array_fields: Mapping[str, pa.StructType] = field(default_factory=dict)
    #: Arrays inside array items (``<field>__<key>``), whose items are strings.
    grandchildren: tuple[str, ...] = ()

    @property
    def array_fields(self) -> tuple[str, ...]:
        return self.string_array_fields + tuple(self.object_array_fields)

    def scalar_type(self, name: str) -> pa.DataType:
        """The Arrow type of a scalar field."""
        if name in self.integer_fields:
            return INTEGER
        if name in self.boolean_fields:
            return BOOLEAN
        return STRING

    def child_table(self, field_name: str) -> str:
        """``<table>__<field>``: dlt's name for the child table of an array field."""
        return f"{self.table}__{field_name}"

    def root_columns(self) -> TTableSchemaColumns:
        """Column hints for the root table: every scalar field, typed and nullable.

        Arrays are not declared here: dlt turns each array into a child table.
        """
        scalars = self.integer_fields + self.string_fields + self.boolean_fields
        columns: TTableSchemaColumns = {name: _column(self.scalar_type(name)) for name in scalars}
        columns[self.primary_key] = {
            "data_type": DLT_TYPES[self.scalar_type(self.primary_key)],
            "nullable": False,
            "primary_key": True,
        }
        return columns

    def root_merge_columns(self) -> TTableSchemaColumns:
        """Root columns plus the merge rule: the newest cursor wins among duplicates of a load."""
        columns = self.root_columns()
        columns[self.cursor] = {**columns[self.cursor], "dedup_sort": "desc"}
        return columns

    def value_columns(self, path: str) -> TTableSchemaColumns:
        """The data columns of one child table: object keys, or ``value`` for string arrays."""
        if path in self.object_array_fields:
            return {
                item.name: {"name": item.name, **_column(item.type)}  # type: ignore[typeddict-item]
                for item in self.object_array_fields[path]
            }
        return {"value": {"name": "value", **_column(STRING)}}  # type: ignore[typeddict-item]

    def nested_hints(self) -> dict[str | tuple[str, ...], Any]:
        """Typed child-table columns for dlt's normalizer (so both paths write the same)."""
        hints: dict[str | tuple[str, ...], Any] = {
            name: {"columns": self.value_columns(name)} for name in self.array_fields
        }
        for path in self.grandchildren:
            hints[tuple(path.split("__"))] = {"columns": self.value_columns(path)}
        return hints


CONVERSATIONS = RecordSchema(
    table="conversation_export",
    primary_key="id",
    cursor="updated_at",
    integer_fields=INTEGER_FIELDS,
    string_fields=STRING_FIELDS,
    string_array_fields=STRING_ARRAY_FIELDS,
    object_array_fields=OBJECT_FIELDS,
    grandchildren=(GRANDCHILD,),
)
MESSAGES = RecordSchema(
    table="message_export",
    primary_key="id",
    cursor="created_at",
    integer_fields=MESSAGE_INTEGER_FIELDS,
    string_fields=MESSAGE_STRING_FIELDS,
    boolean_fields=MESSAGE_BOOLEAN_FIELDS,
    string_array_fields=MESSAGE_STRING_ARRAY_FIELDS,
)

TABLE_NAME = CONVERSATIONS.table
PRIMARY_KEY = CONVERSATIONS.primary_key
CURSOR_FIELD = CONVERSATIONS.cursor

# --- the Arrow path (conversations only): typed nested tables, and its own child-table hints

#: The item of ``custom_fields``: ``value`` as a string, or its items in ``value_list``.
VALUE_LIST = "value_list"
CUSTOM_FIELD_STRUCT = pa.struct([*OBJECT_FIELDS["custom_fields"], (VALUE_LIST, pa.list_(STRING))])
SCALAR_SCHEMA = pa.schema(
    [(name, INTEGER) for name in INTEGER_FIELDS] + [(name, STRING) for name in STRING_FIELDS]
)
NESTED_SCHEMA = pa.schema(
    [
        *SCALAR_SCHEMA,
        *[(name, pa.list_(STRING)) for name in STRING_ARRAY_FIELDS],
        ("ratings", pa.list_(OBJECT_FIELDS["ratings"])),
        ("tags_info", pa.list_(OBJECT_FIELDS["tags_info"])),
        ("custom_fields", pa.list_(CUSTOM_FIELD_STRUCT)),
    ]
)
KNOWN_FIELDS = frozenset(NESTED_SCHEMA.names)
ROW_KEY_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("_dlt_root_id", STRING),
    ("_dlt_parent_id", STRING),
    ("_dlt_list_idx", INTEGER),
    ("_dlt_id", STRING),
)
DELETED_COLUMN = "_dlt_deleted"
MERGE = {"disposition": WRITE_DISPOSITION, "strategy": "delete-insert"}


def _typed(name: str, data_type: pa.DataType) -> TTableSchemaColumns:
    return {name: {"name": name, "data_type": DLT_TYPES[data_type], "nullable": True}}


def child_columns(field_name: str) -> TTableSchemaColumns:
    """Value columns, the linkage columns, and the tombstone flag of one child table."""
    columns = CONVERSATIONS.value_columns(field_name)
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
    root_columns = CONVERSATIONS.root_merge_columns()
    root_columns.update(_typed("_dlt_load_id", STRING))
    root_columns.update(_typed("_dlt_id", STRING))
    hints = {
        TABLE_NAME: make_hints(
            table_name=TABLE_NAME,
            write_disposition=MERGE,
            primary_key=PRIMARY_KEY,
            columns=root_columns,
        )
    }
    for name in (*ARRAY_FIELDS, GRANDCHILD):
        table = CONVERSATIONS.child_table(name)
        hints[table] = make_hints(
            table_name=table,
            write_disposition=MERGE,
            merge_key="_dlt_root_id",
            columns=child_columns(name),
        )
    return hints
