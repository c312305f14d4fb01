"""The export endpoints, as data: one entry per endpoint, no code of their own.

Both endpoints answer a root JSON array of every record in a window (no pagination), filtered
by a pair of parameters on their cursor field, at most 31 days a request, and are merged on
``id``. What differs is only the path, the filter parameters and the records' schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversation_assets.dixa.schema import CONVERSATIONS, MESSAGES, RecordSchema
from conversation_assets.dixa.windows import Window

#: Statuses retried (dlt's REST API source's defaults, as the seed has them).
RETRY_STATUS_CODES: tuple[int, ...] = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Endpoint:
    """One export endpoint: its path, its filter parameters and the schema of its records."""

    path: str
    after_parameter: str
    before_parameter: str
    schema: RecordSchema
    #: What a record is, for logs and metadata ("conversations", "messages").
    noun: str
    #: What the asset holds, for the catalog.
    description: str

    @property
    def name(self) -> str:
        """The dlt resource and root table name."""
        return self.schema.table

    @property
    def cursor(self) -> str:
        return self.schema.cursor

    def query_params(self, window: Window) -> dict[str, int]:
        """The filter parameters that return ``window`` whatever the API's bound semantics."""
        after, before = window.filter_bounds
        return {self.after_parameter: after, self.before_parameter: before}


CONVERSATION_EXPORT = Endpoint(
    path="conversation_export",
    after_parameter="updated_after",
    before_parameter="updated_before",
    schema=CONVERSATIONS,
    noun="conversations",
    description=(
        "Dixa conversations from the exports API, one row per conversation (merged on `id`, "
        "newest `updated_at` wins). Arrays load into child tables "
        "`conversation_export__<field>`. Partition = calendar month of `updated_at`."
    ),
)
MESSAGE_EXPORT = Endpoint(
    path="message_export",
    after_parameter="created_after",
    before_parameter="created_before",
    schema=MESSAGES,
    noun="messages",
    description=(
        "Dixa messages from the exports API, one row per message (merged on `id`; messages do "
        "not change once written). `csid` is the conversation's `id`. Arrays (`to`, `cc`, "
        "`bcc`, `attached_files`) load into child tables `message_export__<field>`. "
        "Partition = calendar month of `created_at`."
    ),
)
ENDPOINTS: dict[str, Endpoint] = {item.name: item for item in (CONVERSATION_EXPORT, MESSAGE_EXPORT)}
