"""Scripted API data: an explicit list of conversation records, changed at given requests.

Generated data (:class:`~dixa_sandbox.data.SandboxData`) is realistic but fixed;
a property test needs to say exactly what the API holds, including what a well-behaved API
would not do (the same id twice in one answer), and to change it *while* a run is in progress:

    data = ScriptedData(
        [{"id": 1, "updated_at": t1, "tags": ["a"]}],
        updates=[Update(after_request=1, record={"id": 1, "updated_at": t2, "tags": []})],
    )
    SandboxServer(token="t", data=data, record_served=True)

Every record whose ``updated_at`` lies in an export request's window (and not after the
server's clock) is served, in list order, duplicates included. An :class:`Update` is applied
once ``after_request`` export answers have been served: its record replaces every record of
its id (or is added). :meth:`apply_all` applies the pending ones (the data then stays put).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dixa_sandbox.pools import Record


@dataclass(frozen=True)
class Update:
    """After the ``after_request``-th export answer, ``record`` replaces its id's records."""

    after_request: int
    record: Record


class ScriptedData:
    """The API's data as an explicit, mutable list of records (same interface as SandboxData).

    Records are deep-copied on the way in and on the way out: neither the script nor a caller
    can change what was served.
    """

    def __init__(self, records: Iterable[Record] = (), updates: Iterable[Update] = ()):
        self._records = [copy.deepcopy(record) for record in records]
        self._updates = sorted(updates, key=lambda update: update.after_request)
        self._answers = 0
        self._lock = threading.Lock()

    @property
    def records(self) -> list[Record]:
        """What the API holds now (a copy)."""
        with self._lock:
            return copy.deepcopy(self._records)

    @property
    def answers(self) -> int:
        """How many export answers were served so far."""
        return self._answers

    def iter_conversations(
        self, after_ms: int, before_ms: int, now_ms: int, inclusive: bool
    ) -> Iterator[Record]:
        """The records inside the window, as of this request (pending updates applied first).

        ``inclusive``: ``after <= updated_at <= before``; otherwise ``after < updated_at < before``.
        Chosen eagerly, so that an update after this request cannot change this answer.
        """
        low, high = (after_ms, before_ms) if inclusive else (after_ms + 1, before_ms - 1)
        with self._lock:
            self._apply_due(self._answers)
            self._answers += 1
            chosen = [
                copy.deepcopy(record)
                for record in self._records
                if _in_range(record, low, min(high, now_ms))
            ]
        return iter(chosen)

    def expected_ids(self, after_ms: int, before_ms: int, now_ms: int) -> set[int]:
        """Ids of the records with ``after_ms <= updated_at < before_ms`` (half-open), as of now."""
        with self._lock:
            return {
                record["id"]
                for record in self._records
                if _in_range(record, after_ms, min(before_ms - 1, now_ms))
            }

    def apply(self, record: Record) -> None:
        """``record`` replaces every record of its id now (or is added)."""
        with self._lock:
            self._replace(record)

    def apply_all(self) -> None:
        """Apply every pending update: from now on the data is static."""
        with self._lock:
            self._apply_due(None)

    def _apply_due(self, answers: int | None) -> None:
        while self._updates and (answers is None or self._updates[0].after_request <= answers):
            self._replace(self._updates.pop(0).record)

    def _replace(self, record: Record) -> None:
        kept = [old for old in self._records if old.get("id") != record.get("id")]
        self._records = [*kept, copy.deepcopy(record)]


def _in_range(record: Record, low: int, high: int) -> bool:
    updated_at = record.get("updated_at")
    return isinstance(updated_at, int) and low <= updated_at <= high
