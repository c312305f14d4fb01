"""A run sees the schema earlier runs stored, though it extracts before opening the destination."""

from pathlib import Path

import pytest

from conversation_assets_tests.support.helpers import load_window, month_window, query
from dixa_sandbox import SandboxServer


def test_json_path_a_new_field_that_changes_type_in_a_later_run_gets_a_variant_column(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, extract_format: str
) -> None:
    """dlt's normalizer needs the stored schema for this: the JSON path syncs it first."""
    if extract_format != "json":
        pytest.skip("the Arrow path fails such a load (as before the change): see the README")
    april, may = month_window("2024-04-01"), month_window("2024-05-01")
    sandbox.extra_records.append({"id": 21, "updated_at": april.start_ms + 5, "brand_new": 7})
    load_window(april, tmp_path / "april")
    sandbox.extra_records[:] = [{"id": 22, "updated_at": may.start_ms + 5, "brand_new": "seven"}]
    load_window(may, tmp_path / "may")
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    rows = query(
        database,
        "SELECT id, brand_new, brand_new__v_text FROM dixa.conversation_export "
        "WHERE id IN (21, 22) ORDER BY id",
    )
    assert rows == [(21, 7, None), (22, None, "seven")]
