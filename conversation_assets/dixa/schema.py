"""The conversation_export record: the known fields, their types, and dlt column hints.

All fields are nullable. The record is open-ended: fields not listed here still load (dlt adds a
column for them), they just get no declared type.
"""

from __future__ import annotations

from dlt.common.schema.typing import TColumnSchema, TTableSchemaColumns

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

TABLE_NAME = "conversation_export"
PRIMARY_KEY = "id"
CURSOR_FIELD = "updated_at"


def _column(data_type: str) -> TColumnSchema:
    return {"data_type": data_type, "nullable": True}  # type: ignore[typeddict-item]


def root_columns() -> TTableSchemaColumns:
    """Column hints for the root table: every scalar field, typed and nullable.

    Arrays are not declared here: dlt turns each array into a child table
    (``conversation_export__tags``, ``conversation_export__ratings``, ...).
    """
    columns: TTableSchemaColumns = {name: _column("bigint") for name in INTEGER_FIELDS}
    columns.update({name: _column("text") for name in STRING_FIELDS})
    columns[PRIMARY_KEY] = {"data_type": "bigint", "nullable": False, "primary_key": True}
    return columns


def root_merge_columns() -> TTableSchemaColumns:
    """Root columns plus the merge rules: newest ``updated_at`` wins among duplicates of a load."""
    columns = root_columns()
    columns[CURSOR_FIELD] = {**columns[CURSOR_FIELD], "dedup_sort": "desc"}
    return columns
