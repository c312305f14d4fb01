"""Every setting of ``Config`` has its effect, under Dagster and without it (issue 13).

:data:`EFFECTS` says, for each field of :class:`~conversation_assets.config.Config`, what its
effect is and which tests prove it: a setting added to ``Config`` without an entry fails
:func:`test_every_setting_says_how_its_effect_is_tested`.

A run-time setting is set to a value other than its default through the environment, and one
small partition (March 2024, five conversations a day) runs twice: without Dagster
(``load.load_window(Config.from_env(), ...)``) and under Dagster (the definitions' job, in
process, on an ephemeral instance). A definition-time setting is read off the definitions built
from ``Config.from_env(env)``. Retries wait 0 s except where the wait is what is tested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    build_schedule_context,
)

from conversation_assets import load
from conversation_assets.config import Config, settings
from conversation_assets.definitions import build_definitions
from conversation_assets.defs.assets import ASSET_KEY
from conversation_assets.defs.resources import DixaResource
from conversation_assets.dixa.windows import DAY_MS, to_ms
from conversation_assets_tests.conftest import NOW, TOKEN
from conversation_assets_tests.support.helpers import query
from conversation_assets_tests.support.oracle_scenarios import PATH_FORMATS
from conversation_assets_tests.support.processes import free_port
from conversation_assets_tests.support.two_ways import (
    UNDER_DAGSTER,
    WAYS,
    WITHOUT_DAGSTER,
    Outcome,
    PipelineSpy,
    TwoWays,
    observing_pipelines,
    reader_holding,
    run_under_dagster,
)
from dixa_sandbox import Fault, SandboxData, SandboxServer

NOW_MS = to_ms(datetime.fromisoformat(NOW))
#: The partition every run loads: 31 days, so 2 requests at batch size 31 and 5 at 7.
MARCH = "2024-03-01"
WRONG_TOKEN = "wrong-token-Hq4vN8"


@dataclass(frozen=True)
class Effect:
    """What a setting does that a user can see, and the tests that prove it."""

    shows: str
    tests: tuple[str, ...]


RUN = "under Dagster and without it"
#: Settings read when the definitions load: they exist only under Dagster.
DEFINITIONS = "read off the definitions"
EFFECTS: dict[str, Effect] = {
    "api_token": Effect(
        f"a wrong token fails the run saying HTTP 401 and DIXA_API_TOKEN, never showing the "
        f"token ({RUN}; also as a DixaResource field)",
        (
            "test_api_token_that_is_wrong_fails_saying_401_and_never_shows",
            "test_a_resource_field_has_the_effect_of_its_variable",
        ),
    ),
    "base_url": Effect(
        f"the requests go to that server ({RUN})",
        ("test_base_url_is_where_the_requests_go",),
    ),
    "start_date": Effect(
        "a mid-month start: the first partition is its month, and it loads only from that day "
        "(under Dagster and without it)",
        (
            "test_start_date_mid_month_loads_only_from_that_day",
            "test_start_date_month_is_the_first_partition",
        ),
    ),
    "batch_size_days": Effect(
        f"7 days: a 31-day month is 5 requests, none longer than 7 days ({RUN}; also as a "
        "DixaResource field)",
        (
            "test_batch_size_days_of_7_makes_a_31_day_month_5_requests",
            "test_a_resource_field_has_the_effect_of_its_variable",
        ),
    ),
    "max_retries": Effect(
        f"two 503s: 1 retry fails after 2 attempts, 2 retries succeed with 2 retries ({RUN})",
        ("test_max_retries_against_two_503s",),
    ),
    "retry_backoff_seconds": Effect(
        f"the wait between a 503 and the retry, logged and observed by the server ({RUN})",
        ("test_retry_backoff_seconds_is_the_wait_before_a_retry",),
    ),
    "request_timeout_seconds": Effect(
        f"shorter than the server's wait for its first byte: the run fails on a timeout ({RUN})",
        ("test_request_timeout_seconds_below_the_first_byte_wait_fails_the_run",),
    ),
    "extract_format": Effect(
        f"the extract step writes typed-jsonl (json) or parquet (arrow) ({RUN}; also as a "
        "DixaResource field)",
        (
            "test_extract_format_decides_what_the_extract_step_writes",
            "test_a_resource_field_has_the_effect_of_its_variable",
        ),
    ),
    "destination": Effect(
        f"postgres: the run loads into the Postgres server of DESTINATION__POSTGRES__CREDENTIALS "
        f"(here: none listening, so it fails connecting there; no DuckDB file) ({RUN}); real "
        "loads into Postgres: system/test_postgres.py",
        ("test_destination_postgres_loads_into_the_configured_server",),
    ),
    "duckdb_file": Effect(
        f"the rows are in that file ({RUN})",
        ("test_duckdb_file_holds_the_rows",),
    ),
    "destination_wait_seconds": Effect(
        f"0 with a reader holding the file: the run fails at once naming the variable ({RUN})",
        ("test_destination_wait_seconds_of_0_fails_at_once_naming_it",),
    ),
    "runs_dir": Effect(
        "dlt's working folder of the run is created inside it (under Dagster and by the load "
        "command)",
        ("test_runs_dir_holds_the_runs_dlt_working_folder",),
    ),
    "progress": Effect(
        f"log: dlt prints its progress (rows per table) during the run; off: it does not ({RUN})",
        ("test_progress_log_prints_dlts_progress",),
    ),
    "schedule_cron": Effect(
        f"the schedule's cron ({DEFINITIONS})", ("test_schedule_cron_is_the_schedules_cron",)
    ),
    "late_update_days": Effect(
        f"which partitions a schedule tick early in a month requests ({DEFINITIONS})",
        ("test_late_update_days_decide_which_months_an_early_tick_loads",),
    ),
    "freshness_warn_hours": Effect(
        f"the asset's FreshnessPolicy warn window ({DEFINITIONS})",
        ("test_freshness_hours_are_the_freshness_policy_windows",),
    ),
    "freshness_fail_hours": Effect(
        f"the asset's FreshnessPolicy fail window ({DEFINITIONS})",
        ("test_freshness_hours_are_the_freshness_policy_windows",),
    ),
    "freshness_sensor": Effect(
        f"the freshness sensor's default status ({DEFINITIONS})",
        ("test_freshness_sensor_off_leaves_the_sensor_stopped",),
    ),
}


def test_every_setting_says_how_its_effect_is_tested() -> None:
    assert set(EFFECTS) == set(settings()), "add the new setting's effect (and its test) here"
    named = {name for effect in EFFECTS.values() for name in effect.tests}
    assert not {name for name in named if not callable(globals().get(name))}, "no such test"


# -- fixtures -----------------------------------------------------------------------------------


def small_sandbox() -> SandboxServer:
    """Five conversations a day from 2024-01-01, the clock at mid-June 2024."""
    return SandboxServer(
        token=TOKEN, data=SandboxData(per_day=5, data_start=date(2024, 1, 1)), now=NOW_MS
    )


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with small_sandbox() as server:
        yield server


@pytest.fixture
def env(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every setting at its default but these (the machine's own values removed)."""
    for item in settings().values():
        monkeypatch.delenv(item.variable, raising=False)
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    values = {
        "DIXA_API_TOKEN": TOKEN,
        "DIXA_BASE_URL": sandbox.url,
        "DIXA_RETRY_BACKOFF_SECONDS": "0",
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "conversations.duckdb"),
        "DIXA_DLT_RUNS_DIR": str(tmp_path / "dlt_runs"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture(params=WAYS)
def run(request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path) -> Iterator[TwoWays]:
    """Runs a partition without Dagster, or under Dagster (one ephemeral instance a test)."""
    with DagsterInstance.ephemeral() as instance:
        yield TwoWays(request.param, tmp_path / "load", instance)


def exports(server: SandboxServer) -> list:
    """The export requests the server received, in order."""
    return [r for r in server.requests if r.path.endswith("/conversation_export")]


def expected_ids(server: SandboxServer, start: date, end: date) -> set[int]:
    return server.data.expected_ids(to_ms(start), to_ms(end), server.now_ms)


def loaded_ids(database: str | Path) -> set[int]:
    return {row[0] for row in query(database, "SELECT id FROM dixa.conversation_export")}


def succeeded(outcome: Outcome) -> Outcome:
    assert outcome.ok, f"{outcome.way}: {outcome.error}"
    return outcome


# -- run-time settings: one partition without Dagster and under Dagster --------------------------


def test_api_token_that_is_wrong_fails_saying_401_and_never_shows(
    run: TwoWays, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIXA_API_TOKEN", WRONG_TOKEN)
    outcome = run(MARCH)
    assert not outcome.ok
    assert "HTTP 401" in outcome.error and "check DIXA_API_TOKEN" in outcome.error
    assert [r.headers.get("Authorization") for r in exports(sandbox)] == [f"Bearer {WRONG_TOKEN}"]
    assert WRONG_TOKEN not in outcome.everything()
    if run.way == UNDER_DAGSTER:
        assert WRONG_TOKEN not in str(run.instance.get_run_by_id(outcome.run_id))


def test_base_url_is_where_the_requests_go(
    run: TwoWays, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_sandbox() as other:
        monkeypatch.setenv("DIXA_BASE_URL", other.url)
        succeeded(run(MARCH))
    assert len(exports(other)) == 2 and not exports(sandbox)


def test_start_date_mid_month_loads_only_from_that_day(
    run: TwoWays,
    sandbox: SandboxServer,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("DIXA_START_DATE", "2024-03-10")
    succeeded(run(MARCH))
    database = env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert loaded_ids(database) == expected_ids(sandbox, date(2024, 3, 10), date(2024, 4, 1))
    assert int(exports(sandbox)[0].query["updated_after"]) == to_ms(date(2024, 3, 10)) - 1


def test_batch_size_days_of_7_makes_a_31_day_month_5_requests(
    run: TwoWays, sandbox: SandboxServer, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIXA_BATCH_SIZE_DAYS", "7")
    outcome = succeeded(run(MARCH))
    assert outcome.requests == 5
    spans = [
        int(r.query["updated_before"]) - int(r.query["updated_after"]) for r in exports(sandbox)
    ]
    assert len(spans) == 5 and max(spans) <= 7 * DAY_MS
    database = env["DESTINATION__DUCKDB__CREDENTIALS"]
    assert loaded_ids(database) == expected_ids(sandbox, date(2024, 3, 1), date(2024, 4, 1))


@pytest.mark.parametrize(("retries", "ok"), [(1, False), (2, True)])
def test_max_retries_against_two_503s(
    run: TwoWays,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    retries: int,
    ok: bool,
) -> None:
    monkeypatch.setenv("DIXA_MAX_RETRIES", str(retries))
    sandbox.inject(Fault.status_code(503, times=2))
    outcome = run(MARCH)
    statuses = [r.status for r in exports(sandbox)]
    if ok:
        assert succeeded(outcome).retries == 2
        assert statuses[:3] == [503, 503, 200]
    else:
        assert not outcome.ok
        assert "HTTP 503" in outcome.error and "after 2 attempts" in outcome.error
        assert statuses == [503, 503]


def test_retry_backoff_seconds_is_the_wait_before_a_retry(
    run: TwoWays, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIXA_RETRY_BACKOFF_SECONDS", "0.7")
    sandbox.inject(Fault.status_code(503))
    outcome = succeeded(run(MARCH))
    assert outcome.retries == 1
    assert "retry 1 of 3 in 0.7 s" in outcome.log
    first, second = exports(sandbox)[:2]
    assert second.at - first.at >= 0.7, "the server saw the retry only after the backoff"


def test_request_timeout_seconds_below_the_first_byte_wait_fails_the_run(
    run: TwoWays, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIXA_REQUEST_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DIXA_MAX_RETRIES", "0")
    sandbox.inject(Fault.slow(3))  # 3 s before the first byte
    outcome = run(MARCH)
    assert not outcome.ok
    assert "Could not reach the Dixa exports API" in outcome.error
    assert "ReadTimeout" in outcome.error and "read timeout=1" in outcome.error


@pytest.mark.parametrize("extract_format", ["json", "arrow"])
def test_extract_format_decides_what_the_extract_step_writes(
    run: TwoWays, monkeypatch: pytest.MonkeyPatch, extract_format: str
) -> None:
    monkeypatch.setenv("DIXA_EXTRACT_FORMAT", extract_format)
    with observing_pipelines() as spy:
        succeeded(run(MARCH))
    assert spy.formats == {PATH_FORMATS[extract_format]}


def test_destination_postgres_loads_into_the_configured_server(
    run: TwoWays, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a Postgres server: the run goes to the one configured and finds none there.

    Real loads into Postgres are proven by ``system/test_postgres.py``.
    """
    port = free_port()
    monkeypatch.setenv("DESTINATION", "postgres")
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS", f"postgresql://loader:pw-Kx2@127.0.0.1:{port}/dixa"
    )
    outcome = run(MARCH)
    assert not outcome.ok
    assert f'connection to server at "127.0.0.1", port {port} failed' in outcome.error
    assert not Path(env["DESTINATION__DUCKDB__CREDENTIALS"]).exists()
    assert "pw-Kx2" not in outcome.everything(), "the password is not shown"
    if run.way == UNDER_DAGSTER:
        node = build_definitions().resolve_asset_graph().get(ASSET_KEY)
        assert "postgres" in node.kinds and "duckdb" not in node.kinds


def test_duckdb_file_holds_the_rows(
    run: TwoWays,
    sandbox: SandboxServer,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = tmp_path / "elsewhere" / "mine.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(database))
    outcome = succeeded(run(MARCH))
    assert loaded_ids(database) == expected_ids(sandbox, date(2024, 3, 1), date(2024, 4, 1))
    assert outcome.conversations == len(loaded_ids(database))
    assert not Path(env["DESTINATION__DUCKDB__CREDENTIALS"]).exists()


def test_destination_wait_seconds_of_0_fails_at_once_naming_it(
    run: TwoWays, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Path(env["DESTINATION__DUCKDB__CREDENTIALS"])
    duckdb.connect(str(database)).close()  # a reader needs an existing file
    monkeypatch.setenv("DIXA_DESTINATION_WAIT_SECONDS", "0")
    with reader_holding(database) as notebook:
        outcome = run(MARCH)
    assert not outcome.ok
    assert f"held by another process (PID {notebook.pid})" in outcome.error
    assert "DIXA_DESTINATION_WAIT_SECONDS (now 0)" in outcome.error
    assert outcome.seconds < 120, "promptly: the default would wait 600 s"


def test_runs_dir_holds_the_runs_dlt_working_folder(
    run: TwoWays,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Each run's dlt working folder is made inside DIXA_DLT_RUNS_DIR (seen by dlt's tracking
    hooks while the run runs).

    Without Dagster the run is the ``python -m conversation_assets.load`` command, which reads
    everything else from the environment.
    """
    runs_dir = tmp_path / "my_runs"
    monkeypatch.setenv("DIXA_DLT_RUNS_DIR", str(runs_dir))
    with observing_pipelines() as spy:
        if run.way == WITHOUT_DAGSTER:
            assert load.main(["--start", "2024-03-01", "--end", "2024-04-01"]) == 0
        else:
            outcome = succeeded(run(MARCH))
            run_dir = runs_dir / outcome.run_id
            assert not run_dir.exists(), "removed after a successful run"
    assert spy.working_dirs and all(spy.working_dirs.values()), "made during the run"
    assert all(Path(folder).is_relative_to(runs_dir) for folder in spy.working_dirs)


@pytest.mark.parametrize("progress", ["off", "log"])
def test_progress_log_prints_dlts_progress(
    run: TwoWays,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    progress: str,
) -> None:
    monkeypatch.setenv("DIXA_PROGRESS", progress)
    succeeded(run(MARCH))
    printed = capfd.readouterr().out
    shown = "Extract dixa" in printed and "conversation_export: " in printed
    assert shown == (progress == "log"), printed[-2000:]


# -- the resource: a field of DixaResource acts as its variable ----------------------------------


@dataclass(frozen=True)
class ResourceCase:
    """A value of a resource field, the faults the server answers with, and what must show."""

    value: object
    proof: Callable[[Outcome, PipelineSpy, SandboxServer], None]
    faults: tuple[Fault, ...] = ()


def proves_wrong_token(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert not outcome.ok and "HTTP 401" in outcome.error
    assert WRONG_TOKEN not in outcome.everything()


def proves_other_server(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert not outcome.ok and "Could not reach the Dixa exports API" in outcome.error
    assert not exports(sandbox)


def proves_batch_size(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert outcome.ok and outcome.requests == 5, outcome.error


def proves_no_retry(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert not outcome.ok and "HTTP 503" in outcome.error and "after 1 attempts" in outcome.error


def proves_backoff(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert outcome.ok and "retry 1 of 3 in 0.7 s" in outcome.log, outcome.error


def proves_timeout(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert outcome.ok and outcome.retries == 1, outcome.error
    assert "Dixa answered ReadTimeout" in outcome.log


def proves_arrow(outcome: Outcome, spy: PipelineSpy, sandbox: SandboxServer) -> None:
    assert outcome.ok and spy.formats == {"parquet"}, outcome.error


#: One case for each field of DixaResource (a deployment may set them instead of variables).
RESOURCE_CASES: dict[str, ResourceCase] = {
    "api_token": ResourceCase(WRONG_TOKEN, proves_wrong_token),
    "base_url": ResourceCase(f"http://127.0.0.1:{free_port()}/v1/", proves_other_server),
    "batch_size_days": ResourceCase(7, proves_batch_size),
    "max_retries": ResourceCase(0, proves_no_retry, (Fault.status_code(503),)),
    "retry_backoff_seconds": ResourceCase(0.7, proves_backoff, (Fault.status_code(503),)),
    "request_timeout_seconds": ResourceCase(1, proves_timeout, (Fault.slow(3),)),
    "extract_format": ResourceCase("arrow", proves_arrow),
}


def test_every_resource_field_is_a_setting_with_a_case() -> None:
    assert set(DixaResource.model_fields) <= set(settings())
    assert set(RESOURCE_CASES) == set(DixaResource.model_fields)


def definitions_with(resource: DixaResource) -> Definitions:
    """The project's definitions with the ``dixa`` resource replaced (as a deployment may)."""
    defs = build_definitions()
    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        resources={**(defs.resources or {}), "dixa": resource},
        executor=defs.executor,
    )


@pytest.mark.parametrize("field", list(RESOURCE_CASES))
def test_a_resource_field_has_the_effect_of_its_variable(
    sandbox: SandboxServer, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    """A field set on the ``dixa`` resource does what its variable does (under Dagster)."""
    case = RESOURCE_CASES[field]
    resource = DixaResource(**{"api_token": EnvVar("DIXA_API_TOKEN"), field: case.value})
    for way in ("resource field", "variable"):
        sandbox.reset()
        sandbox.inject(*case.faults)
        with DagsterInstance.ephemeral() as instance, observing_pipelines() as spy:
            if way == "variable":
                monkeypatch.setenv(settings()[field].variable, str(case.value))
                outcome = run_under_dagster(MARCH, instance)
            else:
                outcome = run_under_dagster(MARCH, instance, definitions_with(resource))
        case.proof(outcome, spy, sandbox)


# -- definition-time settings: read off the definitions -------------------------------------------


def definitions_of(**variables: str) -> Definitions:
    return build_definitions(Config.from_env(variables, require_token=False))


def test_start_date_month_is_the_first_partition() -> None:
    graph = definitions_of(DIXA_START_DATE="2024-03-10").resolve_asset_graph()
    assert graph.get(ASSET_KEY).partitions_def.get_first_partition_key() == "2024-03-01"
    default = definitions_of().resolve_asset_graph()
    assert default.get(ASSET_KEY).partitions_def.get_first_partition_key() == "2024-01-01"


def test_schedule_cron_is_the_schedules_cron() -> None:
    schedule = definitions_of(DIXA_SCHEDULE_CRON="17 5 * * 2").resolve_schedule_def(
        "daily_dixa_export"
    )
    assert schedule.cron_schedule == "17 5 * * 2"


@pytest.mark.parametrize(
    ("days", "keys"), [("3", ["2024-06-01"]), ("10", ["2024-05-01", "2024-06-01"])]
)
def test_late_update_days_decide_which_months_an_early_tick_loads(
    days: str, keys: list[str]
) -> None:
    schedule = definitions_of(DIXA_LATE_UPDATE_DAYS=days).resolve_schedule_def("daily_dixa_export")
    moment = datetime(2024, 6, 5, 1, tzinfo=UTC)
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance, scheduled_execution_time=moment)
        requests = list(schedule(context))
    assert [r.partition_key for r in requests] == keys


def test_freshness_hours_are_the_freshness_policy_windows() -> None:
    defs = definitions_of(DIXA_FRESHNESS_WARN_HOURS="5", DIXA_FRESHNESS_FAIL_HOURS="7.5")
    policy = defs.resolve_asset_graph().get(ASSET_KEY).freshness_policy
    assert policy.warn_window.to_timedelta() == timedelta(hours=5)
    assert policy.fail_window.to_timedelta() == timedelta(hours=7.5)


@pytest.mark.parametrize(
    ("value", "status"), [("on", DefaultSensorStatus.RUNNING), ("off", DefaultSensorStatus.STOPPED)]
)
def test_freshness_sensor_off_leaves_the_sensor_stopped(
    value: str, status: DefaultSensorStatus
) -> None:
    sensor = definitions_of(DIXA_FRESHNESS_SENSOR=value).resolve_sensor_def("dixa_freshness_sensor")
    assert sensor.default_status == status
