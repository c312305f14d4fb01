"""Scripted sandbox data: exactly the records a test lists, changed at a given request."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from dixa_sandbox import SandboxData, SandboxServer, ScriptedData, Update

TOKEN = "test-token"
T = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NOW = T + 100_000


def export(server: SandboxServer, after: int, before: int) -> list[dict]:
    response = requests.get(
        f"{server.url}conversation_export",
        params={"updated_after": after, "updated_before": before},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def pairs(records: list[dict]) -> list[tuple[int, int]]:
    return [(record["id"], record["updated_at"]) for record in records]


def test_serves_the_listed_records_in_order_duplicates_included() -> None:
    records = [
        {"id": 2, "updated_at": T + 5, "tags": ["b"]},
        {"id": 1, "updated_at": T + 7, "tags": []},
        {"id": 2, "updated_at": T + 9, "tags": None, "new_key": 4.5},
        {"id": 3, "updated_at": T + 20},
    ]
    with SandboxServer(TOKEN, ScriptedData(records), now=NOW, record_served=True) as server:
        assert export(server, T, T + 10) == records[:3]
        (request,) = server.requests
        assert request.query == {"updated_after": str(T), "updated_before": str(T + 10)}
        assert request.served == [(2, T + 5), (1, T + 7), (2, T + 9)]


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [("exclusive", [(2, T + 5)]), ("inclusive", [(1, T), (2, T + 5), (3, T + 10)])],
)
def test_bounds_apply_to_scripted_records(bounds: str, expected: list[tuple[int, int]]) -> None:
    records = [
        {"id": 1, "updated_at": T},
        {"id": 2, "updated_at": T + 5},
        {"id": 3, "updated_at": T + 10},
    ]
    with SandboxServer(TOKEN, ScriptedData(records), bounds=bounds, now=NOW) as server:
        assert pairs(export(server, T, T + 10)) == expected


def test_records_after_the_clock_do_not_exist_yet() -> None:
    data = ScriptedData([{"id": 1, "updated_at": T + 1}, {"id": 2, "updated_at": NOW + 1}])
    with SandboxServer(TOKEN, data, now=NOW) as server:
        assert pairs(export(server, T, NOW + 10)) == [(1, T + 1)]
    assert data.expected_ids(T, NOW + 10, NOW) == {1}


def test_an_update_lands_between_two_requests() -> None:
    old = {"id": 1, "updated_at": T + 1, "tags": ["stale"]}
    new = {"id": 1, "updated_at": T + 50, "tags": []}
    data = ScriptedData(
        [old, {"id": 1, "updated_at": T + 2}], [Update(after_request=1, record=new)]
    )
    with SandboxServer(TOKEN, data, now=NOW, record_served=True) as server:
        assert pairs(export(server, T, T + 100)) == [(1, T + 1), (1, T + 2)]
        assert export(server, T, T + 100) == [new], "the update replaced both records of id 1"
        assert [r.served for r in server.requests] == [[(1, T + 1), (1, T + 2)], [(1, T + 50)]]
    assert data.answers == 2
    assert data.records == [new]


def test_apply_all_applies_pending_updates_and_records_are_copies() -> None:
    record = {"id": 1, "updated_at": T + 1, "tags": ["a"]}
    data = ScriptedData([record], [Update(5, {"id": 2, "updated_at": T + 3})])
    record["tags"].append("changed by the caller")
    served = list(data.iter_conversations(T, T + 10, NOW, False))
    served[0]["tags"].append("changed by a consumer")
    assert data.records == [{"id": 1, "updated_at": T + 1, "tags": ["a"]}]
    data.apply_all()
    assert [r["id"] for r in data.records] == [1, 2]


def test_a_scripted_server_refuses_a_cache(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache_dir"):
        SandboxServer(TOKEN, ScriptedData(), cache_dir=tmp_path)


def test_generated_data_records_what_it_served_when_asked() -> None:
    data = SandboxData(per_day=3)
    day = data.day_start_ms(data.data_start)
    with SandboxServer(TOKEN, data, now=day + 10 * 86_400_000, record_served=True) as server:
        served = pairs(export(server, day, day + 86_400_000))
        assert server.requests[0].served == served and len(served) == 2  # index 0 on the edge
    with SandboxServer(TOKEN, data, now=day + 10 * 86_400_000) as server:
        export(server, day, day + 86_400_000)
        assert server.requests[0].served == [], "off by default"
