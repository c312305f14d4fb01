"""DuckDB reads an answer into the same Arrow tables as the reference path, or hands over to it."""

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from conversation_assets.dixa.parse.arrow import RecordError
from conversation_assets.dixa.parse.duckdb import (
    MAX_OBJECT_BYTES,
    read_conversation_tables,
    reference_tables,
)
from conversation_assets_tests.support.helpers import month_window
from dixa_sandbox.data import SandboxData

APRIL = month_window("2024-04-01")
FALLBACK = "reading it again with the reference path"


def sandbox_records(per_day: int = 40) -> list[dict[str, Any]]:
    data = SandboxData(per_day=per_day)
    return list(data.iter_conversations(APRIL.start_ms, APRIL.end_ms, APRIL.end_ms, False))


def write_answer(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def read_both(path: Path, rows_per_table: int = 500) -> tuple[pa.Table, pa.Table]:
    fast = pa.concat_tables(read_conversation_tables(path, rows_per_table))
    reference = pa.concat_tables(reference_tables(path, rows_per_table))
    return fast, reference


def test_sandbox_answers_read_by_duckdb_equal_the_reference_tables(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = sandbox_records()
    path = write_answer(tmp_path / "answer.json", records)
    with caplog.at_level(logging.WARNING):
        fast, reference = read_both(path)
    assert FALLBACK not in caplog.text, "clean data is read by DuckDB alone"
    assert fast.num_rows == len(records) > 1000
    assert fast.schema == reference.schema
    assert fast.equals(reference)
    assert any(value for value in fast["custom_fields"].to_pylist() if value), "nested data"


def test_tables_come_in_the_requested_size(tmp_path: Path) -> None:
    path = write_answer(tmp_path / "answer.json", sandbox_records())
    sizes = [table.num_rows for table in read_conversation_tables(path, 500)]
    assert max(sizes) <= 500 and len(sizes) > 2


def test_undeclared_fields_get_typed_columns(tmp_path: Path) -> None:
    records = [
        {"id": 1, "updated_at": 5, "count": 3, "ratio": 0.5, "label": "x", "nested": {"a": [1]}},
        {"id": 2, "updated_at": 6, "count": None, "ratio": 2, "flag": True, "never": None},
    ]
    path = write_answer(tmp_path / "answer.json", records)
    (table,) = read_conversation_tables(path, 100)
    assert table.schema.field("count").type == pa.int64()
    assert table.schema.field("ratio").type == pa.float64()
    assert table.schema.field("label").type == pa.string()
    assert table.schema.field("flag").type == pa.bool_()
    assert table["nested"].to_pylist() == ['{"a":[1]}', None]
    assert "never" not in table.column_names, "a field that is null everywhere gets no column"
    assert table["ratio"].to_pylist() == [0.5, 2.0]


@pytest.mark.parametrize(
    ("value", "loads"),
    [(1.5, False), ("123", False), (True, False), (1.0, True)],
)
def test_a_value_duckdb_would_convert_goes_to_the_reference_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, value: Any, loads: bool
) -> None:
    records = sandbox_records(per_day=10)
    records[-1]["closed_at"] = value
    path = write_answer(tmp_path / "answer.json", records)
    with caplog.at_level(logging.WARNING):
        if loads:
            fast, reference = read_both(path, rows_per_table=50)
            assert fast.equals(reference)
            assert fast["closed_at"].to_pylist()[-1] == 1
        else:
            with pytest.raises(RecordError, match=f"id={records[-1]['id']}.*closed_at"):
                list(read_conversation_tables(path, 50))
    assert FALLBACK in caplog.text


def test_a_bad_value_in_a_nested_boolean_is_not_converted(tmp_path: Path) -> None:
    records = [{"id": 1, "updated_at": 5, "tags_info": [{"id": "t", "is_deactivated": 1}]}]
    path = write_answer(tmp_path / "answer.json", records)
    with pytest.raises(RecordError, match=r"id=1.*tags_info"):
        list(read_conversation_tables(path, 10))


def test_the_handover_delivers_every_conversation_once(tmp_path: Path) -> None:
    records = sandbox_records(per_day=20)
    records[-3]["queued_at"] = 7.0  # DuckDB stops here, after it delivered the earlier tables
    path = write_answer(tmp_path / "answer.json", records)
    tables = list(read_conversation_tables(path, 100))
    ids = pa.concat_tables(tables)["id"].to_pylist()
    assert ids == [record["id"] for record in records]


def test_a_record_over_duckdbs_limit_is_read_by_the_reference_path(tmp_path: Path) -> None:
    records = [
        {"id": 1, "updated_at": 5, "subject": "s" * (MAX_OBJECT_BYTES + 1)},
        {"id": 2, "updated_at": 6},
    ]
    path = write_answer(tmp_path / "answer.json", records)
    table = pa.concat_tables(read_conversation_tables(path, 10))
    assert table["id"].to_pylist() == [1, 2]
    assert len(table["subject"][0].as_py()) == MAX_OBJECT_BYTES + 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "expected a JSON array"),
        (b'{"message": "no"}', "expected a JSON array"),
        (b'[{"id": 1}, {"id": 2', "premature EOF"),
        (b"[1, 2]", "expected conversation objects"),
    ],
)
def test_an_answer_that_is_not_an_array_of_objects_fails_as_before(
    tmp_path: Path, body: bytes, message: str
) -> None:
    path = tmp_path / "answer.json"
    path.write_bytes(body)
    with pytest.raises(Exception, match=message):
        list(read_conversation_tables(path, 10))


def test_an_empty_array_is_an_empty_window(tmp_path: Path) -> None:
    path = tmp_path / "answer.json"
    path.write_bytes(b" [ ] ")
    assert list(read_conversation_tables(path, 10)) == []
