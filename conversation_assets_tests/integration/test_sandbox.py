"""The sandbox exports API, exercised over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from conversation_assets.dixa.schema import (
    INTEGER_FIELDS,
    RATING_INTEGER_FIELDS,
    RATING_STRING_FIELDS,
    STRING_ARRAY_FIELDS,
    STRING_FIELDS,
)
from dixa_sandbox import Fault, Latency, SandboxData, SandboxServer
from dixa_sandbox.__main__ import build_parser, parse_now
from dixa_sandbox.data import DAY_MS, RECORD_FIELDS
from dixa_sandbox.server import RateLimiter

TOKEN = "test-token"
DATA = SandboxData(per_day=20)
NOW = DATA.day_start_ms(date(2024, 6, 1))
JAN_1 = DATA.day_start_ms(date(2024, 1, 1))
JAN_3 = DATA.day_start_ms(date(2024, 1, 3))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SandboxServer]:
    with SandboxServer(TOKEN, DATA, now=NOW) as server:
        yield server


@pytest.fixture
def server(shared_server: SandboxServer) -> SandboxServer:
    shared_server.reset()
    shared_server.bounds = "exclusive"
    shared_server.now_ms = NOW
    return shared_server


def export(
    server: SandboxServer, after: int | str, before: int | str, token: str = TOKEN, **kwargs
) -> requests.Response:
    return requests.get(
        f"{server.url}conversation_export",
        params={"updated_after": after, "updated_before": before},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kwargs,
    )


def ids(response: requests.Response) -> set[int]:
    assert response.status_code == 200, response.text
    return {record["id"] for record in response.json()}


# -- routing, auth, validation -------------------------------------------------------------


def test_health_needs_no_token(server: SandboxServer) -> None:
    response = requests.get(f"{server.url}health", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_unknown_path_is_404(server: SandboxServer) -> None:
    response = requests.get(f"{server.url}message_exports", timeout=5)
    assert (response.status_code, response.json()) == (404, {"message": "Not found"})


@pytest.mark.parametrize("token", ["wrong", ""])
def test_bad_token_is_401_and_not_echoed(server: SandboxServer, token: str) -> None:
    response = export(server, JAN_1, JAN_3, token=token)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert server.requests[-1].status == 401
    assert "wrong" not in response.text


def test_missing_authorization_header_is_401(server: SandboxServer) -> None:
    response = requests.get(f"{server.url}conversation_export", timeout=5)
    assert response.status_code == 401


def invalid_filters(after: str, before: str) -> list[tuple[dict[str, str], str]]:
    """Queries of one endpoint that miss or garble a filter, and the filter the 400 names."""
    return [
        ({before: "2024-01-02"}, after),
        ({after: "2024-01-01"}, before),
        ({after: "2024-13-01", before: "2024-01-02"}, after),
        ({after: "2024-01-01", before: "tomorrow"}, before),
        ({after: "-5", before: "2024-01-02"}, after),
    ]


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        *[
            ("conversation_export", *case)
            for case in invalid_filters("updated_after", "updated_before")
        ],
        *[("message_export", *case) for case in invalid_filters("created_after", "created_before")],
        # The other endpoint's filter pair is not this one's.
        (
            "message_export",
            {"updated_after": "2024-01-01", "updated_before": "2024-01-02"},
            "created_after",
        ),
    ],
)
def test_missing_or_invalid_parameter_is_400(
    server: SandboxServer, path: str, params: dict[str, str], named: str
) -> None:
    response = requests.get(
        f"{server.url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_after_not_before_before_is_400(server: SandboxServer) -> None:
    assert export(server, JAN_3, JAN_1).status_code == 400
    assert export(server, JAN_1, JAN_1).status_code == 400


def test_span_of_31_days_is_the_limit(server: SandboxServer) -> None:
    assert export(server, JAN_1, JAN_1 + 31 * DAY_MS).status_code == 200
    refused = export(server, JAN_1, JAN_1 + 31 * DAY_MS + 1)
    assert refused.status_code == 400
    assert refused.json() == {
        "message": "The interval between updated_after and updated_before cannot exceed 31 days"
    }


def test_dates_mean_utc_midnight(server: SandboxServer) -> None:
    assert (
        export(server, "2024-01-01", "2024-01-03").content == export(server, JAN_1, JAN_3).content
    )


def test_requests_are_recorded(server: SandboxServer) -> None:
    export(server, "2024-01-01", JAN_3)
    (seen,) = server.requests
    assert (seen.method, seen.path, seen.status) == ("GET", "/v1/conversation_export", 200)
    assert seen.query == {"updated_after": "2024-01-01", "updated_before": str(JAN_3)}
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


# -- data ------------------------------------------------------------------------------------


def test_same_query_same_bytes(server: SandboxServer) -> None:
    first = export(server, JAN_1, JAN_3)
    assert first.headers["Transfer-Encoding"] == "chunked"
    assert export(server, JAN_1, JAN_3).content == first.content
    again = SandboxData(per_day=20)
    assert list(again.iter_conversations(JAN_1, JAN_3, NOW, False)) == first.json()
    other_seed = SandboxData(per_day=20, seed=8)
    assert list(other_seed.iter_conversations(JAN_1, JAN_3, NOW, False)) != first.json()


def test_bounds_differ_exactly_on_the_boundary_records(server: SandboxServer) -> None:
    exclusive = ids(export(server, JAN_1, JAN_3))
    server.bounds = "inclusive"
    inclusive = ids(export(server, JAN_1, JAN_3))
    on_edges = {
        DATA.conversation_id(date(2024, 1, 1), 0),
        DATA.conversation_id(date(2024, 1, 3), 0),
    }
    assert inclusive - exclusive == on_edges
    assert exclusive <= inclusive
    assert DATA.conversation_id(date(2024, 1, 2), 1) in exclusive  # updated at Jan 3 - 1 ms


def test_boundary_records_sit_on_midnight() -> None:
    day = date(2024, 1, 2)
    records = {r["id"]: r for r in DATA.iter_conversations(JAN_1, JAN_3 + DAY_MS, NOW, True)}
    first = records[DATA.conversation_id(day, 0)]
    last = records[DATA.conversation_id(day, 1)]
    assert first["created_at"] == first["updated_at"] == DATA.day_start_ms(day)
    assert last["updated_at"] == DATA.day_start_ms(day) + DAY_MS - 1


@pytest.mark.parametrize(
    ("after", "before"),
    [(JAN_1 + 12_345, JAN_1 + 10 * DAY_MS + 678), (JAN_1, JAN_1 + 31 * DAY_MS)],
)
def test_expected_ids_match_served_half_open_windows(
    server: SandboxServer, after: int, before: int
) -> None:
    server.bounds = "inclusive"  # [after, before - 1] is the half-open [after, before)
    served = ids(export(server, after, before - 1))
    assert served == DATA.expected_ids(after, before, NOW)
    assert len(served) > 150


def test_second_versions_appear_only_once_now_passes_them(server: SandboxServer) -> None:
    window = (JAN_1, JAN_1 + 31 * DAY_MS)
    records = list(DATA.iter_conversations(*window, NOW, False))
    later = next(r for r in records if r["updated_at"] - r["created_at"] > 20 * DAY_MS)
    first_window = (later["created_at"] - DAY_MS, later["created_at"] + DAY_MS)

    server.now_ms = later["updated_at"] - 1
    assert later["id"] not in ids(export(server, *window))
    (before_update,) = [r for r in export(server, *first_window).json() if r["id"] == later["id"]]
    assert before_update["updated_at"] < later["updated_at"] - 20 * DAY_MS

    server.now_ms = later["updated_at"]
    assert later["id"] not in ids(export(server, *first_window))
    (after_update,) = [r for r in export(server, *window).json() if r["id"] == later["id"]]
    assert after_update == later
    assert after_update["status"] == "closed"
    assert "follow-up" in after_update["tags"]
    assert after_update["created_at"] == before_update["created_at"]


def test_nothing_updated_after_now_exists(server: SandboxServer) -> None:
    server.now_ms = JAN_1 + 12 * 3_600_000
    records = export(server, JAN_1 - DAY_MS, JAN_3).json()
    assert records
    assert max(r["updated_at"] for r in records) <= server.now_ms


def test_records_carry_every_field_with_its_type() -> None:
    records = list(DATA.iter_conversations(JAN_1, JAN_1 + 31 * DAY_MS, NOW, False))
    for record in records:
        assert set(record) == set(RECORD_FIELDS)
        assert all(isinstance(record[f], int | None) for f in INTEGER_FIELDS)
        assert all(isinstance(record[f], str | None) for f in STRING_FIELDS)
        for name in STRING_ARRAY_FIELDS:
            assert record[name] is None or all(isinstance(v, str) for v in record[name])
        assert isinstance(record["id"], int) and record["id"] > 0
        assert 0 <= len(record["tags"]) <= 4
        assert 0 <= len(record["ratings"]) <= 2
        assert 0 <= len(record["tags_info"]) <= 3
        assert 0 <= len(record["custom_fields"]) <= 4
        for rating in record["ratings"]:
            assert set(rating) == {*RATING_STRING_FIELDS, *RATING_INTEGER_FIELDS}
        for info in record["tags_info"]:
            assert set(info) == {"id", "name", "is_deactivated"}
        for field in record["custom_fields"]:
            assert set(field) == {"attribute_id", "identifier", "value", "data_type", "archived"}
    assert len({r["id"] for r in records}) == len(records)
    names = " ".join(r["requester_name"] or "" for r in records)
    assert any(ord(c) > 127 for c in names)
    nulls = sum(v is None for r in records for v in r.values()) / (len(records) * 48)
    assert 0.1 < nulls < 0.5


def test_every_day_has_both_kinds_of_custom_field_value() -> None:
    data = SandboxData(per_day=10, data_start=date(2024, 1, 1))
    kinds: dict[int, set[type]] = {}
    for record in data.iter_conversations(JAN_1, JAN_1 + 31 * DAY_MS, NOW, True):
        day = record["created_at"] // DAY_MS
        kinds.setdefault(day, set()).update(type(f["value"]) for f in record["custom_fields"])
    assert len(kinds) >= 30
    assert all({str, list} <= found for found in kinds.values())


def test_about_five_percent_get_a_second_version() -> None:
    records = list(DATA.iter_conversations(JAN_1, JAN_1 + 31 * DAY_MS, NOW, False))
    later = sum(r["updated_at"] - r["created_at"] > 20 * DAY_MS for r in records)
    assert 0.02 < later / len(records) < 0.09


def test_records_are_fresh_dicts() -> None:
    first = next(DATA.iter_conversations(JAN_1, JAN_3, NOW, False))
    for value in first.values():
        if isinstance(value, list):
            value.append("changed")
    again = next(DATA.iter_conversations(JAN_1, JAN_3, NOW, False))
    assert "changed" not in json.dumps(again)


def test_extra_records_end_every_answer(server: SandboxServer) -> None:
    server.extra_records.append({"id": "not-an-int", "updated_at": None})
    assert export(server, JAN_1, JAN_3).json()[-1] == {"id": "not-an-int", "updated_at": None}


def test_a_full_31_day_window_streams_unique_ids() -> None:
    data = SandboxData(per_day=1000, data_start=date(2023, 11, 1))
    after, before = JAN_1 + DAY_MS, JAN_1 + 32 * DAY_MS
    with SandboxServer(TOKEN, data, now=NOW) as server:
        response = export(server, after, before, stream=True)
        assert response.headers["Transfer-Encoding"] == "chunked"
        served = [record["id"] for record in json.loads(response.content)]
    assert 30_000 < len(served) < 32_000  # 31 days' worth, plus and minus second versions
    assert len(set(served)) == len(served)
    assert set(served) == data.expected_ids(after + 1, before, NOW)


# -- faults ----------------------------------------------------------------------------------


def test_429_with_retry_after_then_recovers(server: SandboxServer) -> None:
    server.inject(Fault.status_code(429, times=2, retry_after=1.5))
    for _ in range(2):
        limited = export(server, JAN_1, JAN_3)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1.5"
        assert limited.json() == {"message": "API limit has been reached"}
    assert export(server, JAN_1, JAN_3).status_code == 200


def test_faults_are_consumed_in_order_and_only_by_valid_requests(server: SandboxServer) -> None:
    server.inject(Fault.status_code(503), Fault.status_code(500, message="boom"))
    assert export(server, JAN_1, JAN_3, token="wrong").status_code == 401
    assert export(server, JAN_3, JAN_1).status_code == 400
    unavailable = export(server, JAN_1, JAN_3)
    assert unavailable.status_code == 503
    assert "Retry-After" not in unavailable.headers
    assert export(server, JAN_1, JAN_3).json() == {"message": "boom"}
    server.inject(Fault.status_code(502))
    server.clear_faults()
    assert export(server, JAN_1, JAN_3).status_code == 200


def test_slow_delays_the_headers(server: SandboxServer) -> None:
    server.inject(Fault.slow(0.3))
    started = time.monotonic()
    response = export(server, JAN_1, JAN_3)
    assert time.monotonic() - started >= 0.3
    assert ids(response)


def test_stall_pauses_mid_body_and_then_completes(server: SandboxServer) -> None:
    server.inject(Fault.stall(1000, 0.3))
    started = time.monotonic()
    response = export(server, JAN_1, JAN_3, stream=True)
    pieces = response.iter_content(100)
    first = next(pieces)
    assert time.monotonic() - started < 0.3
    body = first + b"".join(pieces)
    assert time.monotonic() - started >= 0.3
    assert body == export(server, JAN_1, JAN_3).content


def _read_until_broken(response: requests.Response) -> bytes:
    received = b""
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        for piece in response.iter_content(1024):
            received += piece
    return received


def test_cut_off_body_is_not_valid_json(server: SandboxServer) -> None:
    server.inject(Fault.cut_off(5000))
    response = export(server, JAN_1, JAN_3, stream=True)
    assert response.status_code == 200
    received = _read_until_broken(response)
    assert len(received) == 5000
    with pytest.raises(json.JSONDecodeError):
        json.loads(received)
    assert export(server, JAN_1, JAN_3).content.startswith(received)


def test_cut_off_past_the_end_still_lacks_the_final_chunk(server: SandboxServer) -> None:
    server.inject(Fault.cut_off(10**9))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        export(server, JAN_1, JAN_3)


def test_reset_breaks_the_connection(server: SandboxServer) -> None:
    server.inject(Fault.reset(5000))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        export(server, JAN_1, JAN_3).json()
    assert export(server, JAN_1, JAN_3).status_code == 200


def test_invalid_json_and_object_bodies(server: SandboxServer) -> None:
    server.inject(Fault.invalid_json(), Fault.object_body())
    broken = export(server, JAN_1, JAN_3)
    assert broken.status_code == 200
    with pytest.raises(requests.exceptions.JSONDecodeError):
        broken.json()
    not_array = export(server, JAN_1, JAN_3)
    assert (not_array.status_code, not_array.json()) == (200, {"message": "not an array"})


def test_redirect(server: SandboxServer) -> None:
    server.inject(Fault.redirect("http://elsewhere.invalid/v1/conversation_export"))
    response = export(server, JAN_1, JAN_3, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "http://elsewhere.invalid/v1/conversation_export"


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("429x3:retry_after=1", Fault.status_code(429, times=3, retry_after=1)),
        ("503x2", Fault.status_code(503, times=2)),
        ("500:message=boom", Fault.status_code(500, message="boom")),
        ("slow:2.5", Fault.slow(2.5)),
        ("stall:5000:1.5", Fault.stall(5000, 1.5)),
        ("cutoff:5000", Fault.cut_off(5000)),
        ("resetx2:5000", Fault.reset(5000, times=2)),
        ("invalid_json", Fault.invalid_json()),
        ("object", Fault.object_body()),
        ("redirect:http://x.invalid/v1/", Fault.redirect("http://x.invalid/v1/")),
    ],
)
def test_fault_specs(spec: str, fault: Fault) -> None:
    assert Fault.parse(spec) == fault


@pytest.mark.parametrize("spec", ["", "teapot", "slow", "cutoff:many", "429x0"])
def test_bad_fault_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        Fault.parse(spec)


# -- cache -----------------------------------------------------------------------------------


def test_cache_file_serves_the_second_request(tmp_path: Path) -> None:
    with SandboxServer(TOKEN, DATA, now=NOW, cache_dir=tmp_path) as server:
        fresh = export(server, JAN_1, JAN_3)
        (cached,) = tmp_path.iterdir()
        assert cached.suffix == ".json"
        assert cached.read_bytes() == fresh.content
        cached.write_bytes(b'[{"id": 42}]')
        assert export(server, JAN_1, JAN_3).json() == [{"id": 42}]
        server.now_ms = NOW + 1  # another clock is another answer
        assert export(server, JAN_1, JAN_3).content == fresh.content
        assert len(list(tmp_path.iterdir())) == 2


def test_interrupted_answers_leave_no_cache_file(tmp_path: Path) -> None:
    with SandboxServer(TOKEN, DATA, now=NOW, cache_dir=tmp_path) as server:
        server.inject(Fault.cut_off(3000))
        _read_until_broken(export(server, JAN_1, JAN_3, stream=True))
        time.sleep(0.1)
        assert list(tmp_path.iterdir()) == []


# -- command line ----------------------------------------------------------------------------


def test_cli_options() -> None:
    args = build_parser().parse_args(
        ["--port", "0", "--token", "t", "--fault", "429x3:retry_after=1", "cutoff:5000"]
    )
    assert args.fault == [Fault.status_code(429, times=3, retry_after=1), Fault.cut_off(5000)]
    assert parse_now("2024-01-01T00:00:00Z") == parse_now("2024-01-01") == JAN_1
    assert parse_now(str(JAN_1)) == JAN_1


def test_cli_serves_until_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DIXA_API_TOKEN"}
    command = [sys.executable, "-m", "dixa_sandbox", "--port", "0", "--token", "t"]
    command += ["--rate-limit", "1"]  # the latency model reaches the server
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the sandbox did not start"
        line = process.stdout.readline().strip()
        assert line.startswith("sandbox listening on http://127.0.0.1:")
        url = line.removeprefix("sandbox listening on ")
        assert requests.get(f"{url}health", timeout=5).json() == {"status": "ok"}
        export_url = f"{url}conversation_export?updated_after=2024-01-01&updated_before=2024-01-02"
        response = requests.get(export_url, headers={"Authorization": "Bearer t"}, timeout=5)
        assert response.status_code == 200
        again = requests.get(export_url, headers={"Authorization": "Bearer t"}, timeout=5)
        assert again.status_code == 429 and again.headers["Retry-After"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "Authorization" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        process.kill()
        process.wait()


def test_wall_clock_is_the_default_now() -> None:
    data = SandboxData(per_day=5, data_start=date.today())
    with SandboxServer(TOKEN, data) as server:
        now = int(time.time() * 1000)
        records = export(server, now - DAY_MS, now).json()
    assert all(r["updated_at"] <= int(time.time() * 1000) for r in records)
    assert records


def test_array_repeat_multiplies_child_rows_and_keeps_the_conversations() -> None:
    window = (JAN_1, JAN_1 + 7 * DAY_MS)
    plain = list(DATA.iter_conversations(*window, NOW, False))
    tripled = SandboxData(DATA.per_day, DATA.data_start, DATA.seed, array_repeat=3)
    rich = list(tripled.iter_conversations(*window, NOW, False))
    assert [r["id"] for r in rich] == [r["id"] for r in plain]
    for before, after in zip(plain, rich, strict=True):
        assert after["custom_fields"] == before["custom_fields"] * 3
        assert after["tags"] == (before["tags"] or []) * 3
        assert after["custom_fields"] is not before["custom_fields"]
    with pytest.raises(ValueError, match="array_repeat"):
        SandboxData(array_repeat=0)


# -- the realistic API (latency model): off by default ---------------------------------------


def test_rate_limit_answers_429_with_retry_after_beyond_n_a_minute() -> None:
    latency = Latency(requests_per_minute=3)
    with SandboxServer(TOKEN, DATA, now=NOW, latency=latency) as limited:
        statuses = [export(limited, JAN_1, JAN_3).status_code for _ in range(3)]
        refused = export(limited, JAN_1, JAN_3)
        other_token = requests.get(f"{limited.url}health", timeout=30)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "3 requests a minute" in refused.json()["message"]
    assert other_token.status_code == 200  # health is not rate-limited


def test_rate_limit_is_per_token_and_frees_a_slot_after_a_minute() -> None:
    clock = [1000.0]
    limiter = RateLimiter(2, clock=lambda: clock[0])
    assert limiter.admit("Bearer a") == 0 and limiter.admit("Bearer a") == 0
    assert limiter.admit("Bearer a") == pytest.approx(60.0)
    assert limiter.admit("Bearer b") == 0  # another token has its own budget
    clock[0] += 30
    assert limiter.admit("Bearer a") == pytest.approx(30.0)
    clock[0] += 30
    assert limiter.admit("Bearer a") == 0


def test_unauthorized_requests_do_not_use_the_rate_limit() -> None:
    with SandboxServer(TOKEN, DATA, now=NOW, latency=Latency(requests_per_minute=1)) as limited:
        assert export(limited, JAN_1, JAN_3, token="wrong").status_code == 401
        assert export(limited, JAN_1, JAN_3).status_code == 200
        assert export(limited, JAN_1, JAN_3).status_code == 429


def test_first_byte_and_bandwidth_slow_the_answer_down() -> None:
    latency = Latency(first_byte_seconds=0.5, bytes_per_second=200_000)
    with SandboxServer(TOKEN, DATA, now=NOW) as fast:
        body = export(fast, JAN_1, JAN_3).content
    started = time.monotonic()
    with SandboxServer(TOKEN, DATA, now=NOW, latency=latency) as slow:
        slowed = export(slow, JAN_1, JAN_3).content
    seconds = time.monotonic() - started
    assert slowed == body  # the same answer, only later
    # Generous bound: at least the first-byte wait plus most of the body at 200 KB/s.
    assert seconds >= 0.5 + 0.5 * len(body) / 200_000


def test_cli_takes_the_latency_model() -> None:
    args = build_parser().parse_args(
        ["--token", "t", "--first-byte-seconds", "5", "--bandwidth-mb", "5", "--rate-limit", "10"]
    )
    assert (args.first_byte_seconds, args.bandwidth_mb, args.rate_limit) == (5.0, 5.0, 10)
    defaults = build_parser().parse_args(["--token", "t"])
    assert (defaults.first_byte_seconds, defaults.bandwidth_mb, defaults.rate_limit) == (0, 0, 0)
