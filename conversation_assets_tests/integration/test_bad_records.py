"""Records the API should not send, and what each gets: a clear failure, or loaded and flagged."""

from pathlib import Path

import pytest
from dagster import DagsterInstance

from conversation_assets.dixa.parse.records import (
    IJSON_BUFFER_BYTES,
    ChunkReader,
    iter_json_records,
)
from conversation_assets_tests.support.helpers import load_window, month_window, query
from conversation_assets_tests.support.materialize import materialize_in_process
from dixa_sandbox import SandboxServer

APRIL = month_window("2024-04-01")
INSIDE = APRIL.start_ms + 1234


def rows_with_id(database: str, conversation_id: int) -> list[tuple]:
    return query(
        database,
        f"SELECT id, updated_at FROM dixa.conversation_export WHERE id = {conversation_id}",
    )


def test_a_record_without_id_fails_the_window_clearly(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.extra_records.append({"updated_at": INSIDE, "subject": "who am I"})
    with pytest.raises(Exception) as error:
        load_window(APRIL, tmp_path / "run")
    assert "id" in str(error.value)


def test_a_record_without_updated_at_is_loaded_and_flagged_by_the_check(
    sandbox: SandboxServer, dixa_env: dict[str, str]
) -> None:
    sandbox.extra_records.append({"id": 11, "subject": "no cursor"})
    with DagsterInstance.ephemeral() as instance:
        result = materialize_in_process("2024-04-01", instance)
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert rows_with_id(database, 11) == [(11, None)]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["no_null_id_or_updated_at"].passed
    assert checks["no_null_id_or_updated_at"].metadata["null_updated_at"].value == 1


def test_a_record_outside_the_window_waits_for_its_own_window(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    may = month_window("2024-05-01")
    sandbox.extra_records.append({"id": 12, "updated_at": may.start_ms + 5})
    summary, stats = load_window(APRIL, tmp_path / "april")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert rows_with_id(database, 12) == []
    assert stats.records == summary.conversations + 1, "received, counted, not loaded here"
    load_window(may, tmp_path / "may")
    assert rows_with_id(database, 12) == [(12, may.start_ms + 5)]


def test_a_field_whose_type_changes(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, extract_format: str
) -> None:
    sandbox.extra_records.append({"id": 13, "updated_at": INSIDE, "closed_at": "yesterday"})
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    if extract_format == "arrow":
        with pytest.raises(Exception) as error:
            load_window(APRIL, tmp_path / "run")
        assert "id=13" in str(error.value) and "closed_at" in str(error.value)
        assert "DIXA_EXTRACT_FORMAT=json" in str(error.value)
    else:
        load_window(APRIL, tmp_path / "run")
        assert query(
            database, "SELECT closed_at__v_text FROM dixa.conversation_export WHERE id = 13"
        ) == [("yesterday",)]


def test_a_ten_megabyte_record_loads(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    subject = "x" * 10_000_000
    sandbox.extra_records.append({"id": 14, "updated_at": INSIDE, "subject": subject})
    load_window(APRIL, tmp_path / "run")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert query(
        database, "SELECT length(subject) FROM dixa.conversation_export WHERE id = 14"
    ) == [(10_000_000,)]


@pytest.mark.parametrize(
    ("record", "named"),
    [
        ({"id": 2**64 + 5, "updated_at": INSIDE}, f"conversation id={2**64 + 5}: the id is"),
        (
            {"id": 16, "updated_at": INSIDE, "closed_at": -(10**22)},
            f"closed_at is {-(10**22)}",
        ),
    ],
    ids=["id", "closed_at"],
)
def test_a_number_beyond_int64_fails_for_good_naming_conversation_and_field(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    record: dict[str, int],
    named: str,
) -> None:
    """No column can hold it: the error says so and does not send the user to re-run."""
    sandbox.extra_records.append(record)
    with pytest.raises(Exception) as error:
        load_window(APRIL, tmp_path / "run")
    message = str(error.value)
    assert named in message, message
    assert "beyond the 64-bit integer range" in message
    assert "a re-run fails the same way" in message
    assert "broke off" not in message and "Re-run the partition" not in message


def test_a_twenty_megabyte_record_of_non_ascii_text_loads(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    """Read by the reference reader on the Arrow path (over DuckDB's 16 MB), by ijson on the
    JSON path; ijson reads 16 MB at a time (quadratic in 64 KB reads: 30 s, see stream.py)."""
    subject = "Grüße aus 東京 ✓ " * 1_250_000  # 20 million characters, 2-3 bytes each mostly
    sandbox.extra_records.append({"id": 17, "updated_at": INSIDE, "subject": subject})
    load_window(APRIL, tmp_path / "run")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    ((length, start, end),) = query(
        database,
        "SELECT length(subject), left(subject, 20), right(subject, 20) "
        "FROM dixa.conversation_export WHERE id = 17",
    )
    assert (length, start, end) == (len(subject), subject[:20], subject[-20:])


def test_ijson_reads_in_large_pieces_whatever_the_chunk_size() -> None:
    """The linear-time read: ijson gets ``IJSON_BUFFER_BYTES`` a read, not a network chunk."""
    body = b"[" + b'{"id": 1, "subject": "' + "é".encode() * 3_000_000 + b'"}]'
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    reader = ChunkReader(iter(chunks))
    assert reader.read(IJSON_BUFFER_BYTES) == body, "one read gathers every chunk"
    (record,) = iter_json_records(ChunkReader(iter(chunks)))
    assert record["subject"] == "é" * 3_000_000
