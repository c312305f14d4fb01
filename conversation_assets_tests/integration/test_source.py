"""The dlt source against the sandbox over real HTTP, into real DuckDB files."""

import logging
import os
from pathlib import Path

import pytest

from conversation_assets.dixa import DixaApiError
from conversation_assets.dixa.windows import DAY_MS, Window, to_ms
from conversation_assets.pipeline import duckdb_threads
from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.helpers import load_window, month_window, query, table_counts
from dixa_sandbox import Fault, SandboxServer


def loaded_ids(database: str) -> list[int]:
    return [row[0] for row in query(database, "SELECT id FROM dixa.conversation_export")]


@pytest.mark.parametrize("bounds", ["exclusive", "inclusive"])
def test_boundary_conversations_load_exactly_once_under_either_bound_semantics(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, bounds: str
) -> None:
    sandbox.bounds = bounds
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    january, february = month_window("2024-01-01"), month_window("2024-02-01")
    # Two adjacent months, each in 7-day requests: many boundaries between requests.
    dixa_env_batch = {"DIXA_BATCH_SIZE_DAYS": "7"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in dixa_env_batch.items():
            patch.setenv(key, value)
        load_window(january, tmp_path / "run1")
        load_window(february, tmp_path / "run2")
    ids = loaded_ids(database)
    expected = sandbox.data.expected_ids(january.start_ms, february.end_ms, sandbox.now_ms)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    # The conversations sitting exactly on the first millisecond of each month are there once.
    on_edges = query(
        database,
        "SELECT updated_at, COUNT(*) FROM dixa.conversation_export "
        f"WHERE updated_at IN ({january.start_ms}, {february.start_ms}, {february.end_ms - 1}) "
        "GROUP BY 1 ORDER BY 1",
    )
    assert on_edges == [(january.start_ms, 1), (february.start_ms, 1), (february.end_ms - 1, 1)]


def test_a_conversation_on_a_request_edge_has_its_child_rows_once_under_inclusive_bounds(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    """January at batch size 31 is two requests, the second 1 ms long: under inclusive bounds a
    conversation on the last millisecond is in both answers; each answer keeps its own window.
    """
    sandbox.bounds = "inclusive"
    january = month_window("2024-01-01")
    edge = {
        "id": 90_001,
        "updated_at": january.end_ms - 1,
        "tags": ["a", "b"],
        "ratings": [{"rating_score": 5}, {"rating_score": 3}],
        "custom_fields": [{"identifier": "x", "value": ["1", "2"]}],
    }
    sandbox.extra_records.append(edge)
    _, stats = load_window(january, tmp_path / "run")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert stats.requests == 2
    rows = {
        table: query(
            database,
            f"SELECT COUNT(*) FROM dixa.{table} c JOIN dixa.conversation_export r "
            "ON c._dlt_root_id = r._dlt_id WHERE r.id = 90001",
        )[0][0]
        for table in ("conversation_export__tags", "conversation_export__ratings")
    }
    assert rows == {"conversation_export__tags": 2, "conversation_export__ratings": 2}
    assert query(
        database,
        "SELECT COUNT(*) FROM dixa.conversation_export__custom_fields__value "
        "WHERE _dlt_root_id IN (SELECT _dlt_id FROM dixa.conversation_export WHERE id = 90001)",
    ) == [(2,)]


def test_a_window_loads_exactly_its_conversations_with_child_tables(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    window = Window(to_ms_date("2024-03-01"), to_ms_date("2024-03-08"))
    summary, stats = load_window(window, tmp_path / "run")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert set(loaded_ids(database)) == sandbox.data.expected_ids(
        window.start_ms, window.end_ms, sandbox.now_ms
    )
    counts = table_counts(database)
    for child in ("ratings", "custom_fields", "tags_info", "tags"):
        assert counts[f"conversation_export__{child}"] > 0, child
    assert summary.conversations == counts["conversation_export"]
    assert stats.requests == 1 and stats.retries == 0
    assert not list((tmp_path / "run").rglob("dixa-answer-*")), "the answer file is removed"


def test_custom_field_values_load_whether_string_or_array(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    load_window(Window(to_ms_date("2024-03-01"), to_ms_date("2024-03-03")), tmp_path / "run")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    (strings,) = query(
        database,
        "SELECT COUNT(*) FROM dixa.conversation_export__custom_fields WHERE value IS NOT NULL",
    )[0]
    (array_items,) = query(
        database, "SELECT COUNT(*) FROM dixa.conversation_export__custom_fields__value"
    )[0]
    assert strings > 0 and array_items > 0


def test_an_undeclared_field_becomes_a_new_column(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    window = Window(to_ms_date("2024-03-01"), to_ms_date("2024-03-02"))
    sandbox.extra_records.append(
        {"id": 42, "updated_at": window.start_ms + 5, "brand_new_field": "surprise"}
    )
    load_window(window, tmp_path / "run")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert query(
        database, "SELECT brand_new_field FROM dixa.conversation_export WHERE id = 42"
    ) == [("surprise",)]


def test_rerunning_a_window_changes_nothing(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    window = Window(to_ms_date("2024-03-01"), to_ms_date("2024-03-05"))
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    load_window(window, tmp_path / "run1")
    first = table_counts(database)
    load_window(window, tmp_path / "run2")
    load_window(window, tmp_path / "run3")
    assert table_counts(database) == first


def test_a_conversation_updated_later_replaces_its_row_and_child_rows(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    january = month_window("2024-01-01")
    # Export January as it looked on Feb 1st, then the following months as of mid-June.
    sandbox.now_ms = january.end_ms
    load_window(january, tmp_path / "jan")
    sandbox.now_ms = to_ms_date("2024-06-15")
    for month in (2, 3):
        load_window(month_window(f"2024-{month:02d}-01"), tmp_path / f"m{month}")
    rows = query(
        database,
        "SELECT COUNT(*), COUNT(DISTINCT id) FROM dixa.conversation_export",
    )[0]
    assert rows[0] == rows[1]
    moved = query(
        database,
        "SELECT COUNT(*) FROM dixa.conversation_export "
        f"WHERE id / 1000000 < {days_since_2000('2024-01-01') + 31} "
        f"AND updated_at >= {month_window('2024-02-01').start_ms}",
    )[0][0]
    assert moved > 0, "some January conversations were updated again in Feb/March"
    orphans = query(
        database,
        "SELECT COUNT(*) FROM dixa.conversation_export__tags t "
        "LEFT JOIN dixa.conversation_export c ON t._dlt_parent_id = c._dlt_id "
        "WHERE c._dlt_id IS NULL",
    )[0][0]
    assert orphans == 0, "child rows of replaced versions are removed"


def test_429_then_200_is_retried_honouring_retry_after(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(429, retry_after=0.3))
    _, stats = load_window(month_window("2024-04-01"), tmp_path / "run")
    seen = [r for r in sandbox.requests if r.path.endswith("conversation_export")]
    assert [r.status for r in seen] == [429, 200]
    assert seen[1].at - seen[0].at >= 0.3
    assert stats.retries == 1


def test_503_three_times_then_200_succeeds(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(503, times=3))
    summary, stats = load_window(month_window("2024-04-01"), tmp_path / "run")
    assert [r.status for r in sandbox.requests] == [503, 503, 503, 200]
    assert (stats.requests, stats.retries) == (4, 3)
    assert summary.conversations > 0


def test_four_503s_fail_with_the_status_and_attempts(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(503, times=4))
    with pytest.raises(Exception) as error:
        load_window(month_window("2024-04-01"), tmp_path / "run")
    assert len(sandbox.requests) == 4
    message = str(error.value)
    assert "HTTP 503" in message and "after 4 attempts" in message and "2024-04-01" in message


def test_401_says_the_token_was_rejected(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DIXA_API_TOKEN", "wrong-token-1234")
    with pytest.raises(Exception) as error:
        load_window(month_window("2024-04-01"), tmp_path / "run")
    assert len(sandbox.requests) == 1, "a 401 is not retried"
    assert "HTTP 401" in str(error.value) and "DIXA_API_TOKEN" in str(error.value)
    assert "wrong-token-1234" not in str(error.value)


def test_400_quotes_the_api_message(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(400, message="Invalid parameter updated_after"))
    with pytest.raises(Exception) as error:
        load_window(month_window("2024-04-01"), tmp_path / "run")
    assert len(sandbox.requests) == 1
    assert "HTTP 400" in str(error.value)
    assert "Invalid parameter updated_after" in str(error.value)
    assert isinstance(error.value.__cause__ or error.value, (DixaApiError, Exception))


def test_retries_are_logged_and_the_token_appears_in_no_log_line(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.inject(Fault.status_code(429, times=2), Fault.status_code(401))
    with pytest.raises(Exception) as error:
        load_window(month_window("2024-04-01"), tmp_path / "run")
    retry_lines = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retry_lines) == 2 and "HTTP 429" in retry_lines[0]
    out, err = capfd.readouterr()
    everything = caplog.text + out + err + str(error.value) + repr(error.value)
    assert TOKEN not in everything


def to_ms_date(day: str) -> int:
    from datetime import date

    return to_ms(date.fromisoformat(day))


def days_since_2000(day: str) -> int:
    return (to_ms_date(day) - to_ms_date("2000-01-01")) // DAY_MS


def test_duckdb_load_jobs_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = os.cpu_count() or 1
    monkeypatch.setenv("LOAD__WORKERS", "1")
    assert duckdb_threads() == cores
    monkeypatch.setenv("LOAD__WORKERS", str(cores * 4))
    assert duckdb_threads() == 1
