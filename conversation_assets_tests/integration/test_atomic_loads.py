"""A partition's load commits every table or none; a dataset of the other load path is refused."""

from pathlib import Path

import duckdb
import pytest

from conversation_assets_tests.support.helpers import load_window, month_window, query, table_counts
from dixa_sandbox import SandboxServer

MARCH = month_window("2024-03-01")


def load_ids(database: str) -> set[str]:
    return {row[0] for row in query(database, "SELECT _dlt_load_id FROM dixa.conversation_export")}


@pytest.mark.parametrize("extract_format", ["json"], indirect=True)
def test_a_load_that_fails_in_a_child_table_commits_no_table(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    """dlt's normalizer makes the child tables nested tables of the root: dlt merges the root and
    all of its child tables in one transaction, so a failure in the last table undoes the rest.
    """
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    load_window(MARCH, tmp_path / "first")
    before_counts, before_loads = table_counts(database), load_ids(database)
    # The failure: one child table no longer has a column the merge inserts into.
    with duckdb.connect(database) as connection:
        connection.execute(
            "ALTER TABLE dixa.conversation_export__tags RENAME COLUMN value TO value_moved"
        )
    with pytest.raises(Exception, match="value"):
        load_window(MARCH, tmp_path / "second")
    assert load_ids(database) == before_loads, "the root table kept the first load's rows"
    assert table_counts(database) == before_counts, "no table lost or gained a row"


@pytest.mark.parametrize("extract_format", ["json"], indirect=True)
def test_a_dataset_of_the_arrow_path_is_refused_by_the_json_path_with_advice(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default changed from arrow to json: a dataset of the old default gets a clear error
    before any request, not dlt's schema conflict."""
    monkeypatch.setenv("DIXA_EXTRACT_FORMAT", "arrow")
    load_window(MARCH, tmp_path / "arrow")
    requests_before = len(sandbox.requests)
    monkeypatch.setenv("DIXA_EXTRACT_FORMAT", "json")
    with pytest.raises(Exception, match="DIXA_EXTRACT_FORMAT=arrow") as error:
        load_window(MARCH, tmp_path / "json")
    assert "conversation_export__" in str(error.value)
    assert len(sandbox.requests) == requests_before, "refused before any request"
