"""The fault matrix: what the API or the network does wrong, and what the pipeline does about it.

Every case ends in one of two outcomes: the window loads completely, or the run fails with a
message that says what happened and nothing of the window is committed (a re-run then loads it).
"""

import itertools
from pathlib import Path

import pytest

from conversation_assets.dixa.windows import Window
from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.helpers import load_window, month_window, query
from dixa_sandbox import Fault, SandboxServer

APRIL = month_window("2024-04-01")


def window_rows(database: str, window: Window) -> int:
    """Rows of the window in the destination (0 when the table does not exist yet)."""
    try:
        return query(
            database,
            "SELECT COUNT(*) FROM dixa.conversation_export "
            f"WHERE updated_at >= {window.start_ms} AND updated_at < {window.end_ms}",
        )[0][0]
    except Exception as error:  # the table is created by the first successful load
        assert "does not exist" in str(error)
        return 0


def expect_failure_then_recovery(
    sandbox: SandboxServer, env: dict[str, str], tmp_path: Path, *words: str
) -> None:
    """The load fails naming ``words``, commits nothing, and a re-run loads the whole window."""
    database = env["DESTINATION__DUCKDB__CREDENTIALS"]
    with pytest.raises(Exception) as error:
        load_window(APRIL, tmp_path / "failed")
    message = str(error.value)
    for word in words:
        assert word in message, message
    assert TOKEN not in message
    assert window_rows(database, APRIL) == 0, "nothing of a failed window is committed"
    sandbox.clear_faults()
    load_window(APRIL, tmp_path / "rerun")
    expected = sandbox.data.expected_ids(APRIL.start_ms, APRIL.end_ms, sandbox.now_ms)
    assert window_rows(database, APRIL) == len(expected)


def test_a_storm_of_429s_is_ridden_out_honouring_retry_after(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(429, times=3, retry_after=0.2))
    load_window(APRIL, tmp_path / "run")
    times = [r.at for r in sandbox.requests]
    assert [r.status for r in sandbox.requests] == [429, 429, 429, 200]
    assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(times))


def test_more_429s_than_the_budget_fail_naming_status_window_and_attempts(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.inject(Fault.status_code(429, times=4, retry_after=0))
    expect_failure_then_recovery(
        sandbox, dixa_env, tmp_path, "HTTP 429", "2024-04-01T00:00:00.000Z", "after 4 attempts"
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, status: int
) -> None:
    sandbox.inject(Fault.status_code(status, times=2))
    load_window(APRIL, tmp_path / "run")
    assert [r.status for r in sandbox.requests] == [status, status, 200]


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (400, "refused the request parameters"),
        (401, "check DIXA_API_TOKEN"),
        (403, "permissions"),
        (404, "check DIXA_BASE_URL"),
        (422, "could not process"),
    ],
)
def test_other_client_errors_fail_at_once_with_advice(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path, status: int, advice: str
) -> None:
    sandbox.inject(Fault.status_code(status, message=f"api says {status}"))
    expect_failure_then_recovery(
        sandbox, dixa_env, tmp_path, f"HTTP {status}", advice, f"api says {status}"
    )
    assert [r.status for r in sandbox.requests][:2] == [status, 200], "never retried"


def test_connection_refused_is_retried_then_reported(
    dixa_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SandboxServer(token=TOKEN) as closed:
        url = closed.url
    monkeypatch.setenv("DIXA_BASE_URL", url)
    monkeypatch.setenv("DIXA_MAX_RETRIES", "1")
    with pytest.raises(Exception) as error:
        load_window(APRIL, tmp_path / "run")
    assert "Could not reach the Dixa exports API" in str(error.value)
    assert "after 2 attempts" in str(error.value)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.cut_off(after_bytes=20_000), ("broke off",)),
        (Fault.reset(after_bytes=20_000), ("broke off",)),
        (Fault.invalid_json(), ("broke off",)),
        (Fault.object_body(), ("expected a JSON array",)),
    ],
    ids=["cut-off-body", "connection-reset", "invalid-json", "object-instead-of-array"],
)
def test_broken_bodies_commit_nothing_and_a_rerun_completes(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    fault: Fault,
    words: tuple[str, ...],
) -> None:
    sandbox.inject(fault)
    expect_failure_then_recovery(sandbox, dixa_env, tmp_path, "2024-04-01T00:00:00.000Z", *words)


def test_a_server_that_stops_answering_mid_body_times_out(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIXA_REQUEST_TIMEOUT_SECONDS", "1")
    sandbox.inject(Fault.stall(after_bytes=20_000, delay_seconds=4))
    expect_failure_then_recovery(sandbox, dixa_env, tmp_path, "broke off", "timed out")


def test_a_server_that_never_answers_is_retried_then_reported(
    sandbox: SandboxServer,
    dixa_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIXA_REQUEST_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DIXA_MAX_RETRIES", "1")
    sandbox.inject(Fault.slow(4, times=2))
    expect_failure_then_recovery(sandbox, dixa_env, tmp_path, "Could not reach", "Timeout")


def test_a_redirect_to_another_host_does_not_carry_the_token(
    sandbox: SandboxServer, dixa_env: dict[str, str], tmp_path: Path
) -> None:
    with SandboxServer(token="other-host-token", host="127.0.0.2") as other:
        sandbox.inject(Fault.redirect(other.url + "conversation_export"))
        with pytest.raises(Exception, match="HTTP 401"):
            load_window(APRIL, tmp_path / "run")
        (seen,) = other.requests
    assert "Authorization" not in seen.headers and "authorization" not in seen.headers
