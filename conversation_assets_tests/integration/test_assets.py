"""The Dagster layer: definitions, partitions, and real materializations against the sandbox."""

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, Definitions, TimeWindow

from conversation_assets.definitions import build_definitions, defs
from conversation_assets.defs.assets import ASSET_KEY, MESSAGES_ASSET_KEY
from conversation_assets.defs.checks import DATA_QUALITY_CHECKS
from conversation_assets.defs.partitions import monthly_partitions, partition_window
from conversation_assets.dixa.windows import to_ms
from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.helpers import month_window, query, table_counts
from conversation_assets_tests.support.materialize import (
    check_only_in_process,
    materialize_in_process,
)
from dixa_sandbox import SandboxServer


def test_definitions_load_with_the_asset_checks_and_schedule() -> None:
    Definitions.validate_loadable(build_definitions())
    graph = build_definitions().resolve_asset_graph()
    assert graph.get_all_asset_keys() == {ASSET_KEY, MESSAGES_ASSET_KEY}
    node = graph.get(ASSET_KEY)
    assert node.group_name == "dixa"
    assert {"dlt", "duckdb"} <= set(node.kinds)
    assert not node.parent_keys, "no phantom upstream asset"
    assert node.freshness_policy is not None
    check_names = {key.name for key in graph.asset_check_keys}
    assert {
        "no_duplicate_ids",
        "no_null_id_or_updated_at",
        "loaded_rows_inside_partition_window",
        "no_duplicate_child_rows",
        "no_orphan_child_rows",
    } <= check_names
    assert build_definitions().resolve_schedule_def("daily_dixa_export")


def test_the_definitions_are_built_once_a_process_and_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dagster loads the code location several times a run: one build serves them all, and a
    changed setting gets definitions of its own."""
    first = defs()
    assert defs() is first
    monkeypatch.setenv("DIXA_FRESHNESS_FAIL_HOURS", "100")
    assert defs() is not first


def test_definitions_load_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIXA_API_TOKEN", raising=False)
    Definitions.validate_loadable(build_definitions())
    resource = build_definitions().resources["dixa"]
    assert "DIXA_API_TOKEN" in repr(resource.api_token)


def test_partitions_are_calendar_months_from_the_start_month() -> None:
    partitions = monthly_partitions(date(2024, 1, 1))
    keys = partitions.get_partition_keys(current_time=datetime(2024, 3, 10, tzinfo=UTC))
    assert keys == ["2024-01-01", "2024-02-01", "2024-03-01"], "current month included"


@pytest.mark.parametrize(
    ("key", "days"),
    [("2024-02-01", 29), ("2023-02-01", 28), ("2024-04-01", 30), ("2024-12-01", 31)],
)
def test_a_partition_window_is_its_whole_month(key: str, days: int) -> None:
    partitions = monthly_partitions(date(2023, 1, 1))
    window = partition_window(partitions.time_window_for_partition_key(key), date(2023, 1, 1))
    assert window.start_ms == to_ms(date.fromisoformat(key))
    assert window.end_ms - window.start_ms == days * 86_400_000


def test_the_first_partition_starts_at_the_start_date() -> None:
    partitions = monthly_partitions(date(2024, 1, 15))
    assert partitions.get_first_partition_key() == "2024-01-01"
    time_window: TimeWindow = partitions.time_window_for_partition_key("2024-01-01")
    window = partition_window(time_window, date(2024, 1, 15))
    assert window.start_ms == to_ms(date(2024, 1, 15))
    assert window.end_ms == to_ms(date(2024, 2, 1))


def test_materializing_a_partition_loads_exactly_its_window_and_is_idempotent(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    march = month_window("2024-03-01")
    with DagsterInstance.ephemeral() as instance:
        result = materialize_in_process("2024-03-01", instance)
        assert result.success
        ids = {row[0] for row in query(database, "SELECT id FROM dixa.conversation_export")}
        assert ids == sandbox.data.expected_ids(march.start_ms, march.end_ms, sandbox.now_ms)
        counts = table_counts(database)

        (event,) = result.get_asset_materialization_events()
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        assert event.materialization.partition == "2024-03-01"
        assert metadata["window_start"] == "2024-03-01T00:00:00.000Z"
        assert metadata["window_end"] == "2024-04-01T00:00:00.000Z"
        assert metadata["conversations_loaded"] == len(ids)
        assert metadata["rows_by_table"]["conversation_export"] == len(ids)
        assert metadata["rows_by_table"]["conversation_export__tags"] > 0
        assert metadata["requests"] == 2, "a 31-day month is two requests at batch size 31"
        assert metadata["retries"] == 0
        assert metadata["dlt_load_id"]

        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(DATA_QUALITY_CHECKS) and all(check.passed for check in checks)
        steps = {event.step_key for event in result.all_events if event.is_step_success}
        assert steps == {"dixa_conversation_export", "dixa_conversation_export_checks"}, (
            "the checks of the asset run as one step"
        )

        again = materialize_in_process("2024-03-01", instance)
        assert again.success
        assert table_counts(database) == counts
    assert not list(Path(dixa_env["DIXA_DLT_RUNS_DIR"]).glob("*")), "run folders are cleaned up"


def test_the_load_path_setting_takes_effect_under_dagster(
    sandbox: SandboxServer, dixa_env: dict[str, str], extract_format: str
) -> None:
    """DIXA_EXTRACT_FORMAT reaches the asset: the rows show which path wrote them."""
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    with DagsterInstance.ephemeral() as instance:
        assert materialize_in_process("2024-02-01", instance).success
    # The Arrow path keys a conversation's rows by its id; dlt's normalizer by a random row key.
    ((rows, keyed_by_id),) = query(
        database,
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE _dlt_id = CAST(id AS VARCHAR)) "
        "FROM dixa.conversation_export",
    )
    assert rows > 0
    assert keyed_by_id == (rows if extract_format == "arrow" else 0)


def test_a_missing_token_fails_the_run_naming_the_variable(
    dixa_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIXA_API_TOKEN")
    with DagsterInstance.ephemeral() as instance, pytest.raises(Exception) as error:
        materialize_in_process("2024-03-01", instance)
    assert "DIXA_API_TOKEN" in str(error.value)


def test_token_is_not_in_the_event_log_or_metadata(
    sandbox: SandboxServer, dixa_env: dict[str, str]
) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = materialize_in_process("2024-04-01", instance)
        assert result.success
        records = instance.all_logs(result.run_id)
        text = "\n".join(str(record) for record in records)
        assert TOKEN not in text
        assert TOKEN not in str(instance.get_run_by_id(result.run_id))


def test_a_month_without_conversations_on_a_new_destination_succeeds(
    sandbox: SandboxServer, dixa_env: dict[str, str]
) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = materialize_in_process("2024-07-01", instance)  # after the sandbox's clock: empty
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())


def test_a_check_that_raises_fails_the_step_after_the_others_report(
    dixa_env: dict[str, str],
) -> None:
    """The checks share one step: a check whose query fails (a root table without its cursor
    column) fails the step, naming it, and the other checks still report."""
    database = dixa_env["DESTINATION__DUCKDB__CREDENTIALS"]
    with duckdb.connect(database) as connection:
        connection.execute("CREATE SCHEMA dixa; CREATE TABLE dixa.conversation_export (id BIGINT)")
    with DagsterInstance.ephemeral() as instance:
        result = check_only_in_process("2024-03-01", instance)
    assert not result.success
    names = {evaluation.check_name for evaluation in result.get_asset_check_evaluations()}
    assert names == {
        "no_duplicate_ids",
        "loaded_rows_inside_partition_window",
        "no_duplicate_child_rows",
        "no_orphan_child_rows",
    }
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    assert "Checks that raised instead of reporting: no_null_id_or_updated_at" in str(error)
