"""The Arrow fast path writes what dlt's own normalizer writes, table by table."""

from pathlib import Path

import pytest

from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.helpers import load_window, month_window, query
from dixa_sandbox import SandboxServer

#: Bookkeeping columns whose values differ by design (random vs deterministic row keys).
ROW_KEYS = {"_dlt_id", "_dlt_parent_id", "_dlt_root_id", "_dlt_load_id", "_dlt_deleted"}


def columns(database: Path) -> dict[str, dict[str, str]]:
    rows = query(
        database,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'dixa' AND table_name NOT LIKE '_dlt%'",
    )
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        if column not in ROW_KEYS:
            tables.setdefault(table, {})[column] = data_type
    return tables


def rows(database: Path, table: str, data_columns: list[str]) -> list[tuple]:
    """A table's rows keyed by conversation id and positions instead of random row keys."""
    selected = ", ".join(f"t.{name}" for name in sorted(data_columns))
    if table == "conversation_export":
        sql = f"SELECT {selected} FROM dixa.conversation_export t"
    elif table == "conversation_export__custom_fields__value":
        sql = (
            f"SELECT r.id, p._dlt_list_idx, {selected} FROM dixa.{table} t "
            "JOIN dixa.conversation_export__custom_fields p ON t._dlt_parent_id = p._dlt_id "
            "JOIN dixa.conversation_export r ON p._dlt_root_id = r._dlt_id"
        )
    else:
        sql = (
            f"SELECT r.id, {selected} FROM dixa.{table} t "
            "JOIN dixa.conversation_export r ON t._dlt_root_id = r._dlt_id"
        )
    return sorted(query(database, sql), key=repr)


def test_arrow_and_json_paths_load_identical_tables(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIXA_API_TOKEN", TOKEN)
    monkeypatch.setenv("DIXA_BASE_URL", sandbox.url)
    january, february = month_window("2024-01-01"), month_window("2024-02-01")
    sandbox.extra_records.append(
        {"id": 7, "updated_at": february.start_ms + 9, "tags": ["a", "b"], "surprise": "new"}
    )
    databases = {}
    for extract_format in ("json", "arrow"):
        database = tmp_path / f"{extract_format}.duckdb"
        monkeypatch.setenv("DIXA_EXTRACT_FORMAT", extract_format)
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(database))
        # January as of Feb 1st, then February as of mid-June: re-exported conversations merge.
        sandbox.now_ms = january.end_ms
        load_window(january, tmp_path / f"{extract_format}-jan")
        sandbox.now_ms = month_window("2024-06-01").start_ms + 14 * 86_400_000
        load_window(february, tmp_path / f"{extract_format}-feb")
        load_window(february, tmp_path / f"{extract_format}-feb-again")
        databases[extract_format] = database

    reference, fast = columns(databases["json"]), columns(databases["arrow"])
    assert fast == reference
    assert len(reference) == 9, sorted(reference)  # root, 7 arrays, custom_fields__value
    for table, data_columns in reference.items():
        expected = rows(databases["json"], table, list(data_columns))
        actual = rows(databases["arrow"], table, list(data_columns))
        assert actual == expected, table
        assert expected, f"{table} has rows"
