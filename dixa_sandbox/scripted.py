"""Scripted API data: explicit lists of records per endpoint, changed at given requests.

Generated data (:class:`~dixa_sandbox.data.SandboxData`) is realistic but fixed;
a property test needs to say exactly what the API holds, including what a well-behaved API
would not do (the same id twice in one answer), and to change it *while* a run is in progress:

    data = ScriptedData(
        [{"id": 1, "updated_at": t1, "tags": ["a"]}],
        updates=[Update(after_request=1, record={"id": 1, "updated_at": t2, "tags": []})],
    )
    SandboxServer(token="t", data=data, record_served=True)

Messages are a second list, served by ``message_export`` on their ``created_at``:

    ScriptedData(conversations, messages=[{"id": "m1", "csid": 1, "created_at": t1}])

Every record whose cursor (``updated_at``, for messages ``created_at``) lies in an export
request's window (and not after the server's clock) is served, in list order, duplicates
included. An :class:`Update` is applied once ``after_request`` answers of its endpoint have been
served: its record replaces every record of its id in that endpoint's list (or is added).
:meth:`apply_all` applies the pending ones (the data then stays put).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dixa_sandbox.endpoints import CONVERSATIONS, ENDPOINTS, MESSAGES, Endpoint, endpoint_named
from dixa_sandbox.pools import Record


@dataclass(frozen=True)
class Update:
    """After the ``after_request``-th answer of ``endpoint`` (its name), ``record`` replaces
    its id's records in that endpoint's list."""

    after_request: int
    record: Record
    endpoint: str = CONVERSATIONS.name


class ScriptedData:
    """The API's data as explicit, mutable lists of records (same interface as SandboxData).

    Records are deep-copied on the way in and on the way out: neither the script nor a caller
    can change what was served.
    """

    def __init__(
        self,
        records: Iterable[Record] = (),
        updates: Iterable[Update] = (),
        messages: Iterable[Record] = (),
    ):
        self._lists: dict[str, list[Record]] = {endpoint.name: [] for endpoint in ENDPOINTS}
        self._lists[CONVERSATIONS.name] = [copy.deepcopy(record) for record in records]
        self._lists[MESSAGES.name] = [copy.deepcopy(record) for record in messages]
        for update in updates:
            endpoint_named(update.endpoint)  # an unknown name fails here, not mid-run
        self._updates = sorted(updates, key=lambda update: update.after_request)
        self._answers = dict.fromkeys(self._lists, 0)
        self._lock = threading.Lock()

    @property
    def records(self) -> list[Record]:
        """The conversations the API holds now (a copy)."""
        return self.records_of(CONVERSATIONS)

    @property
    def messages(self) -> list[Record]:
        """The messages the API holds now (a copy)."""
        return self.records_of(MESSAGES)

    def records_of(self, endpoint: Endpoint | str) -> list[Record]:
        """What ``endpoint`` holds now (a copy)."""
        with self._lock:
            return copy.deepcopy(self._lists[endpoint_named(endpoint).name])

    @property
    def answers(self) -> int:
        """How many export answers were served so far (all endpoints)."""
        return sum(self._answers.values())

    def answers_of(self, endpoint: Endpoint | str) -> int:
        """How many answers ``endpoint`` served so far."""
        return self._answers[endpoint_named(endpoint).name]

    def iter_conversations(
        self, after_ms: int, before_ms: int, now_ms: int, inclusive: bool
    ) -> Iterator[Record]:
        """The conversations inside the window, as of this request (see ``iter_records``)."""
        return self.iter_records(CONVERSATIONS, after_ms, before_ms, now_ms, inclusive)

    def iter_messages(
        self, after_ms: int, before_ms: int, now_ms: int, inclusive: bool
    ) -> Iterator[Record]:
        """The messages inside the window, as of this request (see ``iter_records``)."""
        return self.iter_records(MESSAGES, after_ms, before_ms, now_ms, inclusive)

    def iter_records(
        self,
        endpoint: Endpoint | str,
        after_ms: int,
        before_ms: int,
        now_ms: int,
        inclusive: bool,
    ) -> Iterator[Record]:
        """``endpoint``'s records inside the window, as of this request (its pending updates
        applied first).

        ``inclusive``: ``after <= cursor <= before``; otherwise ``after < cursor < before``.
        Chosen eagerly, so that an update after this request cannot change this answer.
        """
        endpoint = endpoint_named(endpoint)
        low, high = (after_ms, before_ms) if inclusive else (after_ms + 1, before_ms - 1)
        with self._lock:
            self._apply_due(endpoint.name)
            self._answers[endpoint.name] += 1
            chosen = [
                copy.deepcopy(record)
                for record in self._lists[endpoint.name]
                if _in_range(record, endpoint.cursor, low, min(high, now_ms))
            ]
        return iter(chosen)

    def expected_ids(self, after_ms: int, before_ms: int, now_ms: int) -> set[Any]:
        """Conversation ids with ``after_ms <= updated_at < before_ms`` (half-open), as of now."""
        return self.expected_keys(CONVERSATIONS, after_ms, before_ms, now_ms)

    def expected_message_ids(self, after_ms: int, before_ms: int, now_ms: int) -> set[Any]:
        """Message ids with ``after_ms <= created_at < before_ms`` (half-open), as of now."""
        return self.expected_keys(MESSAGES, after_ms, before_ms, now_ms)

    def expected_keys(
        self, endpoint: Endpoint | str, after_ms: int, before_ms: int, now_ms: int
    ) -> set[Any]:
        """Ids of ``endpoint``'s records with the cursor in ``[after_ms, before_ms)``, as of now."""
        endpoint = endpoint_named(endpoint)
        with self._lock:
            return {
                record[endpoint.key]
                for record in self._lists[endpoint.name]
                if _in_range(record, endpoint.cursor, after_ms, min(before_ms - 1, now_ms))
            }

    def expected_count(
        self, endpoint: Endpoint | str, after_ms: int, before_ms: int, now_ms: int
    ) -> int:
        """How many distinct ids ``endpoint`` has in ``[after_ms, before_ms)``, as of now."""
        return len(self.expected_keys(endpoint, after_ms, before_ms, now_ms))

    def apply(self, record: Record, endpoint: Endpoint | str = CONVERSATIONS) -> None:
        """``record`` replaces every record of its id in ``endpoint``'s list now (or is added)."""
        with self._lock:
            self._replace(endpoint_named(endpoint).name, record)

    def apply_all(self) -> None:
        """Apply every pending update: from now on the data is static."""
        with self._lock:
            self._apply_due(None)

    def _apply_due(self, name: str | None) -> None:
        """Apply the updates due for endpoint ``name`` (``None``: every pending update)."""
        pending = []
        for update in self._updates:
            if name is None or (
                update.endpoint == name and update.after_request <= self._answers[name]
            ):
                self._replace(update.endpoint, update.record)
            else:
                pending.append(update)
        self._updates = pending

    def _replace(self, name: str, record: Record) -> None:
        kept = [old for old in self._lists[name] if old.get("id") != record.get("id")]
        self._lists[name] = [*kept, copy.deepcopy(record)]


def _in_range(record: Record, cursor: str, low: int, high: int) -> bool:
    value = record.get(cursor)
    return isinstance(value, int) and low <= value <= high
