"""Messages (issue 12) through the pipeline and through Dagster, against the sandbox.

Every table (``message_export`` and each ``message_export__<array>``) is compared row by row with
the tables computed from what the sandbox holds for the month (``support/messages.py``, the
oracle with ``root=MESSAGE_ROOT``): each message once, its child rows once, values equal. Both
bound semantics, batch sizes 1, 7 and 31, re-runs, faults, and the non-blocking check that
counts messages whose conversation is not (yet) loaded.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from conversation_assets.defs.checks import DATA_QUALITY_CHECKS
from conversation_assets.dixa.windows import Window, format_ms, request_windows
from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support import oracle
from conversation_assets_tests.support.environment import database_of
from conversation_assets_tests.support.helpers import load_window, month_window, query
from conversation_assets_tests.support.messages import (
    ADVISORY_CHECK,
    DAILY_JOB,
    MESSAGE_JOB,
    check_evaluations,
    describe,
    duckdb_fetch,
    findings_against,
    load_messages,
    materialize,
    message_tables,
    metadata_values,
    read_messages,
    served_in,
    served_pairs,
)
from conversation_assets_tests.support.oracle_scenarios import PATH_FORMATS, observing_extract
from dixa_sandbox import Fault, SandboxServer

FEBRUARY = month_window("2024-02-01")
MARCH = month_window("2024-03-01")
MESSAGE_CHILDREN = ("message_export__to", "message_export__cc", "message_export__attached_files")


@pytest.fixture
def extract_format() -> str:
    """The default setting; messages take dlt's normalizer whatever it says (a test below)."""
    return "json"


def requests_of(window: Window, batch_size: int) -> int:
    return len(list(request_windows(window.start_ms, window.end_ms, batch_size)))


def assert_exactly(database: Path | str, messages: list[dict]) -> None:
    """The message tables hold exactly ``messages``, and they are not trivially empty."""
    findings = findings_against(database, messages)
    assert not findings, describe(findings)
    loaded = read_messages(database)
    assert len(loaded.rows["message_export"]) == len(messages) > 1000
    for child in MESSAGE_CHILDREN:  # every kind of child row is exercised
        assert loaded.rows.get(child), f"no rows in {child}"


def message_snapshot(database: Path | str) -> dict[str, list[str]]:
    """The message tables' content, dlt's row ids and load ids aside (they change on a merge)."""
    raw = message_tables(oracle.read_raw(duckdb_fetch(database)))
    loaded = oracle.keyed(raw)
    return {
        name: sorted(repr((k, sorted(r.items()))) for k, r in rows)
        for name, rows in loaded.rows.items()
    }


# -- the pipeline (no Dagster) ---------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 31])
@pytest.mark.parametrize("bounds", ["exclusive", "inclusive"])
def test_a_month_of_messages_loads_exactly_what_the_sandbox_serves(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bounds: str,
    batch_size: int,
) -> None:
    sandbox.bounds, sandbox.record_served = bounds, True
    monkeypatch.setenv("DIXA_BATCH_SIZE_DAYS", str(batch_size))
    database = database_of(dixa_env)
    summary, stats = load_messages(MARCH, tmp_path / "run")

    expected = served_in(sandbox.data, MARCH, sandbox.now_ms)
    assert_exactly(database, expected)
    assert summary.records == len(expected)
    assert stats.requests == requests_of(MARCH, batch_size)
    served = served_pairs(sandbox)
    inside = Counter((key, at) for key, at in served if MARCH.start_ms <= at < MARCH.end_ms)
    assert {key for key, _ in inside} == {m["id"] for m in expected}
    # Inclusive bounds serve a message on an edge between two requests twice (loaded once).
    requests = list(request_windows(MARCH.start_ms, MARCH.end_ms, batch_size))
    inner_edges = {r.start_ms for r in requests[1:]}
    twice = {at for (_, at), count in inside.items() if count == 2}
    assert set(inside.values()) <= {1, 2}
    assert twice == (
        inner_edges & {m["created_at"] for m in expected} if bounds == "inclusive" else set()
    )
    # The month's first millisecond holds several messages (a conversation created and closed
    # at midnight): loaded once; the next month's first millisecond is not this partition's.
    on_edges = dict(
        query(
            database,
            "SELECT created_at, COUNT(*) FROM dixa.message_export "
            f"WHERE created_at IN ({MARCH.start_ms}, {MARCH.end_ms}) GROUP BY 1",
        )
    )
    at_start = sum(m["created_at"] == MARCH.start_ms for m in expected)
    assert on_edges == {MARCH.start_ms: at_start} and at_start > 1
    served_edges = {at for _, at in served} & {MARCH.start_ms - 1, MARCH.end_ms}
    # Inclusive bounds also serve the messages of the millisecond before the month (requests
    # ask from start - 1 ms) and of the next month's first one: this run leaves them to their
    # own partitions (the comparison above found no extra row). Exclusive bounds serve neither.
    edges = {MARCH.start_ms - 1, MARCH.end_ms}
    assert served_edges == (edges if bounds == "inclusive" else set())


def test_a_rerun_of_the_same_partition_changes_nothing(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    database = database_of(dixa_env)
    load_messages(FEBRUARY, tmp_path / "february")
    load_messages(MARCH, tmp_path / "first")
    before = message_snapshot(database)
    summary, _ = load_messages(MARCH, tmp_path / "again")
    assert summary.records > 1000, "the re-run loaded the month again"
    assert message_snapshot(database) == before
    assert_exactly(
        database,
        served_in(sandbox.data, FEBRUARY, sandbox.now_ms)
        + served_in(sandbox.data, MARCH, sandbox.now_ms),
    )


@pytest.mark.parametrize("extract_format", ["arrow"])
def test_messages_take_dlts_normalizer_even_when_the_arrow_path_is_set(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, extract_format: str
) -> None:
    assert dixa_env["DIXA_EXTRACT_FORMAT"] == "arrow"
    with observing_extract() as spy:
        load_messages(MARCH, tmp_path / "run")
    assert spy.formats == {PATH_FORMATS["json"]}, spy.formats
    assert_exactly(database_of(dixa_env), served_in(sandbox.data, MARCH, sandbox.now_ms))


# -- faults ------------------------------------------------------------------------------------


def test_429s_with_retry_after_are_waited_out(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(429, times=2, retry_after=0.3), endpoint="message_export")
    _, stats = load_messages(MARCH, tmp_path / "run")
    assert [r.status for r in sandbox.requests] == [429, 429, 200, 200]
    times = [r.at for r in sandbox.requests[:3]]
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times))
    assert stats.retries == 2
    assert_exactly(database_of(dixa_env), served_in(sandbox.data, MARCH, sandbox.now_ms))


def test_a_503_is_retried_then_the_month_loads(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(503))
    load_messages(MARCH, tmp_path / "run")
    assert [r.status for r in sandbox.requests] == [503, 200, 200]
    assert_exactly(database_of(dixa_env), served_in(sandbox.data, MARCH, sandbox.now_ms))


def expect_failure_then_recovery(
    sandbox: SandboxServer, env: dict[str, str], tmp_path: Path, *words: str
) -> None:
    """With February loaded, March fails naming ``words`` and changes nothing; a re-run
    loads March completely."""
    database = database_of(env)
    february = served_in(sandbox.data, FEBRUARY, sandbox.now_ms)
    before = message_snapshot(database)
    with pytest.raises(Exception) as error:
        load_messages(MARCH, tmp_path / "failed")
    message = str(error.value)
    for word in words:
        assert word in message, message
    assert TOKEN not in message
    assert message_snapshot(database) == before, "a failed run changed the tables"
    findings = findings_against(database, february)
    assert not findings, describe(findings)
    sandbox.clear_faults()
    load_messages(MARCH, tmp_path / "rerun")
    assert_exactly(database, february + served_in(sandbox.data, MARCH, sandbox.now_ms))


def test_more_429s_than_the_budget_fail_naming_status_window_and_attempts(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_messages(FEBRUARY, tmp_path / "february")
    monkeypatch.setenv("DIXA_MAX_RETRIES", "1")
    sandbox.inject(Fault.status_code(429, times=2, retry_after=0))
    expect_failure_then_recovery(
        sandbox, dixa_env, tmp_path, "HTTP 429", format_ms(MARCH.start_ms), "after 2 attempts"
    )


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.cut_off(after_bytes=200_000), ("broke off", "messages")),
        (Fault.reset(after_bytes=200_000), ("broke off", "messages")),
        (Fault.invalid_json(), ("broke off",)),
        (Fault.object_body(), ("expected a JSON array",)),
    ],
    ids=["cut-off-body", "connection-reset", "invalid-json", "object-instead-of-array"],
)
def test_a_broken_body_in_a_later_request_commits_nothing_and_a_rerun_completes(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
    words: tuple[str, ...],
) -> None:
    """March in 7-day requests: the third answer breaks after two were read in full."""
    load_messages(FEBRUARY, tmp_path / "february")
    monkeypatch.setenv("DIXA_BATCH_SIZE_DAYS", "7")
    sandbox.reset()
    sandbox.inject(Fault.slow(0, times=2), fault, endpoint="message_export")
    third = list(request_windows(MARCH.start_ms, MARCH.end_ms, 7))[2]
    expect_failure_then_recovery(sandbox, dixa_env, tmp_path, format_ms(third.start_ms), *words)
    assert [r.status for r in sandbox.requests[:3]] == [200, 200, 200]


# -- Dagster -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 31])
@pytest.mark.parametrize("bounds", ["exclusive", "inclusive"])
def test_materializing_a_message_partition_loads_exactly_its_month_and_reruns_change_nothing(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    bounds: str,
    batch_size: int,
) -> None:
    sandbox.bounds = bounds
    monkeypatch.setenv("DIXA_BATCH_SIZE_DAYS", str(batch_size))
    database = database_of(dixa_env)
    expected = served_in(sandbox.data, MARCH, sandbox.now_ms)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(MESSAGE_JOB, "2024-03-01", instance)
        assert result.success
        assert_exactly(database, expected)
        (event,) = result.get_asset_materialization_events()
        assert event.asset_key.path == ["dixa", "message_export"]
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        assert metadata["messages_loaded"] == len(expected)
        assert metadata["window_start"] == "2024-03-01T00:00:00.000Z"
        assert metadata["window_end"] == "2024-04-01T00:00:00.000Z"
        assert metadata["requests"] == requests_of(MARCH, batch_size)
        counts = {name: len(rows) for name, rows in read_messages(database).rows.items()}
        assert metadata["rows_by_table"] == counts
        checks = check_evaluations(result)
        blocking = {body.__name__.replace("cursor", "created_at") for body in DATA_QUALITY_CHECKS}
        assert set(checks) == blocking | {ADVISORY_CHECK}
        assert all(checks[name].passed for name in blocking), checks
        assert checks[ADVISORY_CHECK].severity == AssetCheckSeverity.WARN

        before = message_snapshot(database)
        again = materialize(MESSAGE_JOB, "2024-03-01", instance)
        assert again.success
        assert message_snapshot(database) == before
        assert all(
            check.passed
            for check in check_evaluations(again).values()
            if check.check_name != ADVISORY_CHECK
        )
    assert not list(Path(dixa_env["DIXA_DLT_RUNS_DIR"]).glob("*")), "run folders are cleaned up"


def test_a_broken_answer_fails_the_run_with_a_clear_message_and_a_rerun_completes(
    sandbox: SandboxServer, dixa_env: dict[str, str]
) -> None:
    database = database_of(dixa_env)
    sandbox.inject(Fault.cut_off(after_bytes=200_000), endpoint="message_export")
    with DagsterInstance.ephemeral() as instance:
        failed = materialize(MESSAGE_JOB, "2024-03-01", instance)
        assert not failed.success
        errors = "\n".join(
            event.step_failure_data.error.to_string() for event in failed.get_step_failure_events()
        )
        assert "broke off" in errors and "nothing of this window is committed" in errors, errors
        assert TOKEN not in errors
        assert not read_messages(database).rows, "a failed run committed rows"
        assert materialize(MESSAGE_JOB, "2024-03-01", instance).success
    assert_exactly(database, served_in(sandbox.data, MARCH, sandbox.now_ms))


def test_messages_without_conversations_load_and_the_advisory_check_reports_them(
    sandbox: SandboxServer, dixa_env: dict[str, str]
) -> None:
    expected = served_in(sandbox.data, MARCH, sandbox.now_ms)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(MESSAGE_JOB, "2024-03-01", instance)
    assert result.success, "a failing advisory check does not fail the run"
    assert_exactly(database_of(dixa_env), expected)
    advisory = check_evaluations(result)[ADVISORY_CHECK]
    assert advisory.severity == AssetCheckSeverity.WARN
    assert metadata_values(advisory) == {
        "messages": len(expected),
        "messages_of_unknown_conversations": len(expected),
    }
    assert not advisory.passed


def test_the_daily_job_loads_both_and_unknown_conversations_are_those_updated_later(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    """Conversations are partitioned by ``updated_at``, messages by ``created_at``: a March
    message whose conversation was last updated in April or later has no conversation in
    March's partition. Once the later months' conversations are in, the count is zero."""
    data, now = sandbox.data, sandbox.now_ms
    messages = served_in(data, MARCH, now)
    updated_in_march = data.expected_ids(MARCH.start_ms, MARCH.end_ms, now)
    later = [m for m in messages if m["csid"] not in updated_in_march]
    updated_later = data.expected_ids(MARCH.end_ms, now + 1, now)
    assert later and {m["csid"] for m in later} <= updated_later
    database = database_of(dixa_env)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(DAILY_JOB, "2024-03-01", instance)
        assert result.success
        keys = [e.asset_key.path[-1] for e in result.get_asset_materialization_events()]
        assert keys == ["conversation_export", "message_export"], "conversations first"
        assert all(
            check.passed for check in check_evaluations(result, "conversation_export").values()
        )
        advisory = check_evaluations(result)[ADVISORY_CHECK]
        assert (advisory.passed, advisory.severity) == (False, AssetCheckSeverity.WARN)
        assert metadata_values(advisory) == {
            "messages": len(messages),
            "messages_of_unknown_conversations": len(later),
        }
        assert_exactly(database, messages)

        # The months in which those conversations were last updated (up to the sandbox's clock).
        load_window(month_window("2024-04-01"), tmp_path / "conversations-april")
        load_window(month_window("2024-05-01", "2024-06-01"), tmp_path / "conversations-later")
        again = materialize(MESSAGE_JOB, "2024-03-01", instance)
        assert again.success
        advisory = check_evaluations(again)[ADVISORY_CHECK]
        assert advisory.passed
        assert metadata_values(advisory) == {
            "messages": len(messages),
            "messages_of_unknown_conversations": 0,
        }
