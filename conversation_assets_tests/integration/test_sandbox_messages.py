"""The sandbox's ``message_export``, exercised over real HTTP on loopback.

The same code path as ``conversation_export`` (auth, the 31-day limit, bound modes, faults,
streaming), with its own filter pair (``created_after`` / ``created_before``) and cursor
(``created_at``); and messages consistent with the conversations the sandbox serves.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from dixa_sandbox import (
    CONVERSATIONS,
    MESSAGES,
    Fault,
    Latency,
    SandboxData,
    SandboxServer,
    ScriptedData,
    Update,
)
from dixa_sandbox.__main__ import build_parser
from dixa_sandbox.data import DAY_MS, HOUR_MS
from dixa_sandbox.endpoints import endpoint_named
from dixa_sandbox.messages import ARRAY_FIELDS, SCALAR_FIELDS
from dixa_sandbox.server import json_array

TOKEN = "test-token"
DATA = SandboxData(per_day=20)
NOW = DATA.day_start_ms(date(2024, 6, 1))
JAN_1 = DATA.day_start_ms(date(2024, 1, 1))
JAN_3 = DATA.day_start_ms(date(2024, 1, 3))
FEB_1 = DATA.day_start_ms(date(2024, 2, 1))
REPO = Path(__file__).resolve().parents[2]
STRING_FIELDS = tuple(
    f for f in SCALAR_FIELDS if f not in ("csid", "created_at", "duration", "is_automated_message")
)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SandboxServer]:
    with SandboxServer(TOKEN, DATA, now=NOW) as server:
        yield server


@pytest.fixture
def server(shared_server: SandboxServer) -> SandboxServer:
    shared_server.reset()
    shared_server.bounds = "exclusive"
    shared_server.now_ms = NOW
    shared_server.record_served = False
    return shared_server


def export(
    server: SandboxServer,
    after: int | str,
    before: int | str,
    token: str | None = TOKEN,
    endpoint: str = "message_export",
    **kwargs: Any,
) -> requests.Response:
    filters = endpoint_named(endpoint)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.get(
        f"{server.url}{endpoint}",
        params={filters.after: after, filters.before: before},
        headers=headers,
        timeout=60,
        **kwargs,
    )


def records(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return response.json()


def ids(response: requests.Response) -> set[str]:
    return {record["id"] for record in records(response)}


def conversations_served(server: SandboxServer, start: int, end: int) -> dict[int, dict]:
    """Every conversation the server serves with ``start <= updated_at <= end``, by id."""
    server.bounds = "inclusive"
    found: dict[int, dict] = {}
    for after in range(start, end, 31 * DAY_MS):
        before = min(after + 31 * DAY_MS, end)
        response = export(server, after, before, endpoint="conversation_export")
        found.update((r["id"], r) for r in records(response))
    return found


def conversations_between(data: SandboxData, start: int, end: int) -> dict[int, dict]:
    """Every conversation with ``start <= updated_at <= end`` as of ``NOW``, by id."""
    found: dict[int, dict] = {}
    for after in range(start, end, 31 * DAY_MS):
        before = min(after + 31 * DAY_MS, end)
        found.update((r["id"], r) for r in data.iter_conversations(after, before, NOW, True))
    return found


def messages_between(data: SandboxData, start: int, end: int, now: int) -> list[dict]:
    """Every message with ``start <= created_at < end`` (half-open), through 31-day windows."""
    found = []
    for after in range(start, end, 31 * DAY_MS):
        before = min(after + 31 * DAY_MS, end)
        found += data.iter_messages(after, before - 1, now, True)
    return found


# -- the endpoint as data ---------------------------------------------------------------------


def test_endpoints_are_data() -> None:
    assert (MESSAGES.path, MESSAGES.after, MESSAGES.before, MESSAGES.cursor, MESSAGES.key) == (
        "/v1/message_export",
        "created_after",
        "created_before",
        "created_at",
        "id",
    )
    assert (CONVERSATIONS.path, CONVERSATIONS.after, CONVERSATIONS.cursor) == (
        "/v1/conversation_export",
        "updated_after",
        "updated_at",
    )
    assert endpoint_named("message_export") is MESSAGES
    with pytest.raises(ValueError, match="unknown endpoint"):
        endpoint_named("messages")


# -- auth, validation -------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong", "", None])
def test_missing_or_wrong_token_is_401_and_not_echoed(
    server: SandboxServer, token: str | None
) -> None:
    response = export(server, JAN_1, JAN_3, token=token)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert server.requests[-1].status == 401
    assert "wrong" not in response.text


def test_span_of_31_days_is_the_limit(server: SandboxServer) -> None:
    assert export(server, JAN_1, JAN_1 + 31 * DAY_MS).status_code == 200
    refused = export(server, JAN_1, JAN_1 + 31 * DAY_MS + 1)
    assert refused.status_code == 400
    assert refused.json() == {
        "message": "The interval between created_after and created_before cannot exceed 31 days"
    }
    assert export(server, JAN_3, JAN_1).status_code == 400
    assert export(server, JAN_1, JAN_1).status_code == 400


def test_dates_mean_utc_midnight_and_requests_are_recorded(server: SandboxServer) -> None:
    assert (
        export(server, "2024-01-01", "2024-01-03").content == export(server, JAN_1, JAN_3).content
    )
    seen = server.requests[0]
    assert (seen.path, seen.status) == ("/v1/message_export", 200)
    assert seen.query == {"created_after": "2024-01-01", "created_before": "2024-01-03"}


# -- bounds ----------------------------------------------------------------------------------


def test_bounds_differ_exactly_on_the_boundary_messages(server: SandboxServer) -> None:
    exclusive = records(export(server, JAN_1, JAN_3))
    server.bounds = "inclusive"
    inclusive = records(export(server, JAN_1, JAN_3))
    extra = [m for m in inclusive if m["id"] not in {e["id"] for e in exclusive}]
    assert {m["created_at"] for m in extra} == {JAN_1, JAN_3}
    assert {m["csid"] for m in extra} == {
        DATA.conversation_id(date(2024, 1, 1), 0),
        DATA.conversation_id(date(2024, 1, 3), 0),
    }
    assert len(extra) >= 6, "several messages sit on each boundary"
    assert {m["id"] for m in exclusive} <= {m["id"] for m in inclusive}
    last_ms = [m for m in exclusive if m["created_at"] == JAN_3 - 1]
    assert {m["csid"] for m in last_ms} == {DATA.conversation_id(date(2024, 1, 2), 1)}


@pytest.mark.parametrize("bounds", ["exclusive", "inclusive"])
def test_windows_served_match_expected_half_open_ids(server: SandboxServer, bounds: str) -> None:
    server.bounds = bounds
    after, before = JAN_1 + 12_345, JAN_1 + 10 * DAY_MS + 678
    # [after, before) as each bound mode reads it
    low, high = (after, before - 1) if bounds == "inclusive" else (after - 1, before)
    served = ids(export(server, low, high))
    assert served == DATA.expected_message_ids(after, before, NOW)
    assert len(served) > 1000


def test_adjacent_half_open_windows_cover_a_month_exactly_once() -> None:
    whole = DATA.expected_message_ids(JAN_1, FEB_1, NOW)
    assert DATA.expected_count("message_export", JAN_1, FEB_1, NOW) == len(whole)
    assert DATA.expected_count(CONVERSATIONS, JAN_1, FEB_1, NOW) == len(
        DATA.expected_ids(JAN_1, FEB_1, NOW)
    )
    parts = [DATA.expected_message_ids(a, a + DAY_MS, NOW) for a in range(JAN_1, FEB_1, DAY_MS)]
    assert sum(len(part) for part in parts) == len(whole)
    assert set().union(*parts) == whole


# -- the messages and their conversations ----------------------------------------------------


def test_every_message_belongs_to_a_served_conversation_and_sits_in_its_span(
    server: SandboxServer,
) -> None:
    messages = records(export(server, JAN_1, FEB_1))
    conversations = conversations_served(server, JAN_1 - 62 * DAY_MS, NOW)
    assert messages
    for message in messages:
        conversation = conversations[message["csid"]]
        assert conversation["created_at"] <= message["created_at"] <= conversation["updated_at"]
        assert message["initial_channel"] == conversation["initial_channel"]
        assert JAN_1 < message["created_at"] < FEB_1


def test_several_messages_a_conversation() -> None:
    messages = messages_between(DATA, JAN_1, NOW, NOW)
    per_conversation = Counter(m["csid"] for m in messages)
    created_in_feb = {
        r["id"]
        for r in DATA.iter_conversations(FEB_1, FEB_1 + 31 * DAY_MS, NOW, True)
        if FEB_1 <= r["created_at"] < FEB_1 + 29 * DAY_MS
    }
    assert len(created_in_feb) > 400
    assert all(3 <= per_conversation[csid] <= 15 for csid in created_in_feb)
    assert {per_conversation[csid] for csid in created_in_feb} >= {3, 9, 15}


def test_records_carry_the_fields_with_their_types() -> None:
    messages = list(DATA.iter_messages(JAN_1, FEB_1, NOW, False))
    absent = Counter()
    kinds: dict[str, Counter] = {name: Counter() for name in ARRAY_FIELDS}
    for message in messages:
        assert set(SCALAR_FIELDS) <= set(message) <= {*SCALAR_FIELDS, *ARRAY_FIELDS}
        assert isinstance(message["id"], str) and len(message["id"]) == 36
        assert isinstance(message["csid"], int) and isinstance(message["created_at"], int)
        assert isinstance(message["is_automated_message"], bool)
        assert isinstance(message["duration"], int | None)
        assert all(isinstance(message[f], str | None) for f in STRING_FIELDS)
        for name in ARRAY_FIELDS:
            if name not in message:
                absent[name] += 1
            elif message[name] is None:
                kinds[name]["null"] += 1
            else:
                assert all(isinstance(value, str) for value in message[name])
                kinds[name]["empty" if not message[name] else "filled"] += 1
    assert len({m["id"] for m in messages}) == len(messages)
    for name in ARRAY_FIELDS:
        assert absent[name] > 0, f"{name} is never absent"
        assert kinds[name]["null"] > 0, f"{name} is never null"
        assert kinds[name]["empty"] > 0, f"{name} is never empty"
    assert all(kinds[name]["filled"] > 0 for name in ("to", "cc", "attached_files"))
    automated = [m for m in messages if m["is_automated_message"]]
    assert 0 < len(automated) < len(messages) / 4
    assert {m["direction"] for m in messages} == {"inbound", "outbound"}
    for field in ("duration", "recording_url", "voicemail_url", "from_phone_number", "from"):
        assert any(m[field] is not None for m in messages), field
    for field in ("chat_input_question", "chat_input_answer", "chat_menu_text"):
        assert any(m[field] is not None for m in messages), field


def test_long_texts_and_non_ascii_on_the_wire(server: SandboxServer) -> None:
    response = export(server, JAN_1, FEB_1)
    texts = [m["text"] or "" for m in records(response)]
    assert max(len(t.encode()) for t in texts) > 4000
    assert sum(len(t.encode()) > 2000 for t in texts) > len(texts) / 50
    joined = "".join(texts)
    assert any(ord(c) > 0xFFFF for c in joined), "emoji"
    assert any(0xC0 <= ord(c) <= 0x17F for c in joined), "accented Latin"
    assert any(0x4E00 <= ord(c) <= 0x9FFF for c in joined), "CJK"
    assert "📦".encode() in response.content, "UTF-8 on the wire, not \\u escapes"
    sizes = [len(json.dumps(m, ensure_ascii=False).encode()) for m in response.json()]
    assert 700 < sum(sizes) / len(sizes) < 1400, "about 1 KB a message"


def test_nothing_exists_after_the_clock_and_csids_exist_as_of_it(server: SandboxServer) -> None:
    clock = JAN_3 + 12 * HOUR_MS + 34_567
    server.now_ms = clock
    messages = records(export(server, JAN_1 - 10 * DAY_MS, JAN_3 + DAY_MS))
    server.bounds = "inclusive"  # updated_at >= created_at of a message > the window's start
    conversations = records(
        export(server, JAN_1 - 10 * DAY_MS, JAN_3 + DAY_MS, endpoint="conversation_export")
    )
    assert messages
    assert max(m["created_at"] for m in messages) <= clock
    served = {c["id"]: c for c in conversations}
    for message in messages:
        assert served[message["csid"]]["updated_at"] >= message["created_at"]
    # Later, more messages exist: the earlier ones unchanged.
    server.now_ms = NOW
    later = {m["id"]: m for m in records(export(server, JAN_1 - 10 * DAY_MS, JAN_3 + DAY_MS))}
    assert len(later) > len(messages)
    assert all(later[m["id"]] == m for m in messages)


def test_second_versions_bring_later_messages_once_they_exist() -> None:
    conversations = list(DATA.iter_conversations(JAN_1, FEB_1, NOW, False))
    later = next(r for r in conversations if r["updated_at"] - r["created_at"] > 20 * DAY_MS)
    window = (later["updated_at"] - 6 * HOUR_MS - 1, later["updated_at"] + 1)

    def of_conversation(now: int) -> list[dict]:
        return [m for m in DATA.iter_messages(*window, now, True) if m["csid"] == later["id"]]

    before_update = of_conversation(later["updated_at"] - 1)
    after_update = of_conversation(later["updated_at"])
    assert not before_update
    assert 1 <= len(after_update) <= 3
    assert after_update[-1]["created_at"] == later["updated_at"]


# -- determinism -----------------------------------------------------------------------------


def test_same_query_same_bytes_and_seed_decides(server: SandboxServer) -> None:
    first = export(server, JAN_1, JAN_3)
    assert first.headers["Transfer-Encoding"] == "chunked"
    assert export(server, JAN_1, JAN_3).content == first.content
    assert list(SandboxData(per_day=20).iter_messages(JAN_1, JAN_3, NOW, False)) == first.json()
    other_seed = list(SandboxData(per_day=20, seed=8).iter_messages(JAN_1, JAN_3, NOW, False))
    assert other_seed != first.json()
    assert not {m["id"] for m in other_seed} & {m["id"] for m in first.json()}


def test_a_message_is_the_same_through_any_window() -> None:
    wide = {m["id"]: m for m in DATA.iter_messages(JAN_1, JAN_1 + 20 * DAY_MS, NOW, False)}
    narrow = list(DATA.iter_messages(JAN_1 + 5 * DAY_MS, JAN_1 + 6 * DAY_MS, NOW, False))
    assert narrow and all(wide[m["id"]] == m for m in narrow)


def test_messages_per_conversation_and_text_scale_are_knobs() -> None:
    one = SandboxData(per_day=20, messages_per_conversation=(1, 1))
    messages = list(one.iter_messages(JAN_1, FEB_1, NOW, False))
    conversations = conversations_between(one, JAN_1, NOW)
    assert Counter(Counter(m["csid"] for m in messages).values()) == {1: len(messages)}
    assert all(m["created_at"] == conversations[m["csid"]]["created_at"] for m in messages)
    scaled = SandboxData(per_day=20, message_text_scale=3.0)
    plain = list(DATA.iter_messages(JAN_1, JAN_3, NOW, False))
    bigger = list(scaled.iter_messages(JAN_1, JAN_3, NOW, False))
    assert [m["created_at"] for m in bigger] == [m["created_at"] for m in plain]
    assert sum(len(m["text"] or "") for m in bigger) > 2 * sum(len(m["text"] or "") for m in plain)
    for bad in ({"messages_per_conversation": (0, 3)}, {"messages_per_conversation": (5, 4)}):
        with pytest.raises(ValueError, match="messages_per_conversation"):
            SandboxData(**bad)
    with pytest.raises(ValueError, match="message_text_scale"):
        SandboxData(message_text_scale=0)


# -- faults and the latency model: the conversations' code path ------------------------------


def test_429_with_retry_after_then_5xx_then_recovers(server: SandboxServer) -> None:
    server.inject(Fault.status_code(429, retry_after=1.5), Fault.status_code(503))
    limited = export(server, JAN_1, JAN_3)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1.5")
    assert limited.json() == {"message": "API limit has been reached"}
    assert export(server, JAN_1, JAN_3).status_code == 503
    assert export(server, JAN_1, JAN_3).status_code == 200


def test_faults_aimed_at_one_endpoint_wait_for_it(server: SandboxServer) -> None:
    server.inject(Fault.status_code(500), endpoint="message_export")
    server.inject(Fault.status_code(502), endpoint=CONVERSATIONS)
    assert export(server, JAN_1, JAN_3, endpoint="conversation_export").status_code == 502
    assert export(server, JAN_1, JAN_3, endpoint="conversation_export").status_code == 200
    assert export(server, JAN_1, JAN_3).status_code == 500
    assert export(server, JAN_1, JAN_3).status_code == 200
    server.inject(Fault.status_code(504))  # any endpoint
    assert export(server, JAN_1, JAN_3).status_code == 504


def _read_until_broken(response: requests.Response) -> bytes:
    received = b""
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        for piece in response.iter_content(1024):
            received += piece
    return received


@pytest.mark.parametrize("fault", [Fault.cut_off(5000), Fault.reset(5000)])
def test_broken_bodies(server: SandboxServer, fault: Fault) -> None:
    server.inject(fault)
    response = export(server, JAN_1, JAN_3, stream=True)
    assert response.status_code == 200
    received = _read_until_broken(response)
    assert export(server, JAN_1, JAN_3).content.startswith(received)


def test_invalid_json_object_body_stall_and_slow(server: SandboxServer) -> None:
    whole = export(server, JAN_1, JAN_3).content
    server.inject(Fault.invalid_json(), Fault.object_body(), Fault.stall(1000, 0.05))
    server.inject(Fault.slow(0.05))
    with pytest.raises(requests.exceptions.JSONDecodeError):
        export(server, JAN_1, JAN_3).json()
    assert export(server, JAN_1, JAN_3).json() == {"message": "not an array"}
    assert export(server, JAN_1, JAN_3).content == whole  # stalled, then complete
    assert export(server, JAN_1, JAN_3).content == whole  # slow, then complete


def test_rate_limit_counts_both_endpoints_of_a_token() -> None:
    with SandboxServer(TOKEN, DATA, now=NOW, latency=Latency(requests_per_minute=2)) as limited:
        assert export(limited, JAN_1, JAN_3, endpoint="conversation_export").status_code == 200
        assert export(limited, JAN_1, JAN_3).status_code == 200
        refused = export(limited, JAN_1, JAN_3)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60


def test_bandwidth_and_first_byte_keep_the_answer() -> None:
    latency = Latency(first_byte_seconds=0.01, bytes_per_second=50_000_000)
    expected = b"".join(json_array(DATA.iter_messages(JAN_1, JAN_3, NOW, False)))
    with SandboxServer(TOKEN, DATA, now=NOW, latency=latency) as slow:
        assert export(slow, JAN_1, JAN_3).content == expected


# -- what was served, extras, cache ----------------------------------------------------------


def test_record_served_notes_id_and_created_at(server: SandboxServer) -> None:
    server.record_served = True
    served = records(export(server, JAN_1, JAN_3))
    assert server.requests[0].served == [(m["id"], m["created_at"]) for m in served]


def test_extra_records_are_per_endpoint(server: SandboxServer) -> None:
    server.extras["message_export"].append({"id": 7, "created_at": "yesterday"})
    assert records(export(server, JAN_1, JAN_3))[-1] == {"id": 7, "created_at": "yesterday"}
    conversations = records(export(server, JAN_1, JAN_3, endpoint="conversation_export"))
    assert {"id": 7, "created_at": "yesterday"} not in conversations


def test_cache_keeps_the_endpoints_apart(tmp_path: Path) -> None:
    with SandboxServer(TOKEN, DATA, now=NOW, cache_dir=tmp_path) as server:
        messages = export(server, JAN_1, JAN_3).content
        conversations = export(server, JAN_1, JAN_3, endpoint="conversation_export").content
        assert len(list(tmp_path.iterdir())) == 2
        assert export(server, JAN_1, JAN_3).content == messages
        assert export(server, JAN_1, JAN_3, endpoint="conversation_export").content == (
            conversations
        )
    knobs = SandboxData(per_day=20, messages_per_conversation=(2, 2))
    with SandboxServer(TOKEN, knobs, now=NOW, cache_dir=tmp_path) as server:
        assert export(server, JAN_1, JAN_3).content != messages
        conversations_again = export(server, JAN_1, JAN_3, endpoint="conversation_export")
        assert conversations_again.content == conversations
    assert len(list(tmp_path.iterdir())) == 3, "the conversations' answer is shared"


# -- streaming: memory stays flat --------------------------------------------------------------


def _peak_while_streaming(server: SandboxServer, after: int, before: int) -> tuple[int, int]:
    """Bytes received and the process's traced peak while the answer streams through."""
    tracemalloc.start()
    try:
        received = 0
        with export(server, after, before, stream=True) as response:
            assert response.status_code == 200
            for block in response.iter_content(64 * 1024):
                received += len(block)
        return received, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_full_month_streams_in_flat_memory() -> None:
    data = SandboxData(per_day=100, data_start=date(2023, 11, 1))
    with SandboxServer(TOKEN, data, now=NOW) as server:
        export(server, JAN_1, JAN_1 + 1000)  # message pools built before measuring
        small, small_peak = _peak_while_streaming(server, JAN_1, JAN_1 + 2 * DAY_MS)
        big, big_peak = _peak_while_streaming(server, JAN_1, JAN_1 + 31 * DAY_MS)
    assert big > 25_000_000 and big > 10 * small
    assert big_peak < 12_000_000, f"peak {big_peak:,} B while streaming {big:,} B"
    assert big_peak < small_peak + 4_000_000, "memory grows with the answer"


def test_generation_is_lazy() -> None:
    data = SandboxData(per_day=20_000, data_start=date(2023, 12, 1))
    tracemalloc.start()
    try:
        messages = data.iter_messages(JAN_1, JAN_1 + 31 * DAY_MS, NOW, False)
        first = [next(messages) for _ in range(100)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len({m["id"] for m in first}) == 100
    assert peak < 30_000_000, "a month of 5 million messages must not be built up front"


# -- scripted messages (the correctness oracle) ----------------------------------------------

T = JAN_1


def scripted_export(server: SandboxServer, after: int, before: int, endpoint: str) -> list[dict]:
    return records(export(server, after, before, endpoint=endpoint))


def test_scripted_messages_are_served_on_created_at_in_order_duplicates_included() -> None:
    messages = [
        {"id": "b", "csid": 2, "created_at": T + 5, "to": ["x@example.com"]},
        {"id": "a", "csid": 1, "created_at": T + 7, "text": "Zoë 📦"},
        {"id": "b", "csid": 2, "created_at": T + 9, "new_key": 4.5},
        {"id": "c", "csid": 3, "created_at": T + 20},
        {"id": "d", "csid": 3, "updated_at": T + 6},  # no created_at: never in a window
    ]
    conversations = [{"id": 1, "updated_at": T + 8}]
    data = ScriptedData(conversations, messages=messages)
    with SandboxServer(TOKEN, data, now=NOW, record_served=True) as server:
        assert scripted_export(server, T, T + 10, "message_export") == messages[:3]
        assert scripted_export(server, T, T + 10, "conversation_export") == conversations
        assert server.requests[0].served == [("b", T + 5), ("a", T + 7), ("b", T + 9)]
        assert server.requests[1].served == [(1, T + 8)]
    assert data.expected_message_ids(T, T + 20, NOW) == {"a", "b"}
    assert data.expected_count(MESSAGES, T, T + 21, NOW) == 3
    assert data.messages == messages and data.records == conversations
    assert (data.answers_of("message_export"), data.answers_of(CONVERSATIONS)) == (1, 1)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [("exclusive", ["m2"]), ("inclusive", ["m1", "m2", "m3"])],
)
def test_bounds_apply_to_scripted_messages(bounds: str, expected: list[str]) -> None:
    messages = [
        {"id": "m1", "created_at": T},
        {"id": "m2", "created_at": T + 5},
        {"id": "m3", "created_at": T + 10},
        {"id": "m4", "created_at": NOW + 1},  # after the clock: not yet
    ]
    data = ScriptedData(messages=messages)
    with SandboxServer(TOKEN, data, bounds=bounds, now=NOW) as server:
        assert [m["id"] for m in scripted_export(server, T, T + 10, "message_export")] == expected
        assert scripted_export(server, NOW - 5, NOW + 5, "message_export") == []


def test_scripted_message_updates_count_message_answers_only() -> None:
    late = {"id": "late", "csid": 1, "created_at": T + 3}
    data = ScriptedData(
        [{"id": 1, "updated_at": T + 1}],
        updates=[Update(after_request=1, record=late, endpoint="message_export")],
        messages=[{"id": "early", "csid": 1, "created_at": T + 2}],
    )
    with SandboxServer(TOKEN, data, now=NOW, record_served=True) as server:
        for _ in range(2):  # conversation answers do not make the message update due
            scripted_export(server, T, T + 10, "conversation_export")
        assert [m["id"] for m in scripted_export(server, T, T + 10, "message_export")] == ["early"]
        second = scripted_export(server, T, T + 10, "message_export")
        assert [m["id"] for m in second] == ["early", "late"]
        assert [r.served for r in server.requests][-1] == [("early", T + 2), ("late", T + 3)]
    assert data.answers == 4
    with pytest.raises(ValueError, match="unknown endpoint"):
        ScriptedData(updates=[Update(1, late, endpoint="messages")])


def test_scripted_messages_are_copies_and_apply_all() -> None:
    message = {"id": "m", "created_at": T + 1, "cc": ["a"]}
    data = ScriptedData(
        messages=[message],
        updates=[Update(9, {"id": "n", "created_at": T + 2}, endpoint="message_export")],
    )
    message["cc"].append("changed by the caller")
    served = list(data.iter_messages(T, T + 10, NOW, False))
    served[0]["cc"].append("changed by a consumer")
    assert data.messages == [{"id": "m", "created_at": T + 1, "cc": ["a"]}]
    data.apply_all()
    assert [m["id"] for m in data.messages] == ["m", "n"]
    data.apply({"id": "m", "created_at": T + 4}, endpoint=MESSAGES)
    assert [m["created_at"] for m in data.messages] == [T + 2, T + 4]


# -- command line ----------------------------------------------------------------------------


def test_cli_message_knobs() -> None:
    args = build_parser().parse_args(
        ["--token", "t", "--messages-per-conversation", "2-4", "--message-text-scale", "0.5"]
    )
    assert (args.messages_per_conversation, args.message_text_scale) == ((2, 4), 0.5)
    single = build_parser().parse_args(["--token", "t", "--messages-per-conversation", "5"])
    assert single.messages_per_conversation == (5, 5)
    defaults = build_parser().parse_args(["--token", "t"])
    assert (defaults.messages_per_conversation, defaults.message_text_scale) == ((3, 15), 1.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--token", "t", "--messages-per-conversation", "a-b"])


def test_cli_serves_messages_with_the_knob() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DIXA_API_TOKEN"}
    command = [sys.executable, "-m", "dixa_sandbox", "--port", "0", "--token", "t"]
    command += ["--messages-per-conversation", "2", "--now", "2024-06-01", "--per-day", "5"]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the sandbox did not start"
        url = process.stdout.readline().strip().removeprefix("sandbox listening on ")
        response = requests.get(
            f"{url}message_export?created_after=2024-01-05&created_before=2024-01-20",
            headers={"Authorization": "Bearer t"},
            timeout=10,
        )
        per_conversation = Counter(m["csid"] for m in records(response))
        assert per_conversation and set(per_conversation.values()) <= {1, 2}
        assert Counter(per_conversation.values())[2] > len(per_conversation) / 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        log = process.stderr.read()  # type: ignore[union-attr]
        assert (
            "GET /v1/message_export?created_after=2024-01-05&created_before=2024-01-20 200" in log
        )
        assert "Bearer" not in log
    finally:
        process.kill()
        process.wait()
