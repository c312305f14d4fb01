"""The export endpoints the sandbox serves, as data: one code path serves them all.

An endpoint is its path, the filter pair that selects a window (``<filter>_after`` /
``<filter>_before``) and the record field that pair filters on (the cursor). Parsing, the 31-day
limit, auth, bound modes, faults and streaming are the same for every endpoint (``server.py``);
only the records differ (``data.py``, ``scripted.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

API_PREFIX = "/v1/"


@dataclass(frozen=True)
class Endpoint:
    """One export endpoint: ``GET /v1/<name>?<filter>_after=..&<filter>_before=..``."""

    name: str  # e.g. "conversation_export"
    filter: str  # e.g. "updated": the pair updated_after / updated_before
    cursor: str  # the record field the filter pair selects on, e.g. "updated_at"
    key: str = "id"  # the record field that identifies a record

    @property
    def path(self) -> str:
        return f"{API_PREFIX}{self.name}"

    @property
    def after(self) -> str:
        """The lower bound's query parameter."""
        return f"{self.filter}_after"

    @property
    def before(self) -> str:
        """The upper bound's query parameter."""
        return f"{self.filter}_before"


CONVERSATIONS = Endpoint("conversation_export", filter="updated", cursor="updated_at")
#: Messages never change once written: the creation time is their cursor.
MESSAGES = Endpoint("message_export", filter="created", cursor="created_at")
ENDPOINTS: tuple[Endpoint, ...] = (CONVERSATIONS, MESSAGES)
BY_PATH: dict[str, Endpoint] = {endpoint.path: endpoint for endpoint in ENDPOINTS}


def endpoint_named(endpoint: Endpoint | str) -> Endpoint:
    """``endpoint`` itself, or the endpoint of that name (``"message_export"``)."""
    if isinstance(endpoint, Endpoint):
        return endpoint
    for known in ENDPOINTS:
        if known.name == endpoint:
            return known
    names = [known.name for known in ENDPOINTS]
    raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {names}")
