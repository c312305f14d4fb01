"""End to end, as a data engineer works in the UI: real processes, no mocks.

The fixture starts the API sandbox, ``dagster-webserver`` and ``dagster-daemon`` on a fresh
``DAGSTER_HOME`` (a copy of ``deploy/dagster.local.yaml``: queued runs, pool limit 1 per run) and a
fresh DuckDB file. The tests talk to the webserver's GraphQL API only, as the UI does, then read
the DuckDB file and compare it with what the sandbox serves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
from dagster import DagsterInstance

from conversation_assets.defs.assets import pool_name
from conversation_assets.defs.automation import partitions_due
from conversation_assets.defs.partitions import monthly_partitions
from conversation_assets.dixa.windows import to_ms
from conversation_assets_tests.support.processes import (
    ManagedProcess,
    free_port,
    start_process,
    stop_process,
    venv_executable,
    wait_for,
)
from dixa_sandbox import SandboxData

# Each test starts its own deployment; on a busy 2-core machine a test may take several minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

T = TypeVar("T")

PROJECT_DIR = Path(__file__).resolve().parents[2]
TOKEN = "e2e-token-Hk27pQ"
NOW = "2024-06-15T12:00:00Z"
PER_DAY = 50
DATA_START = date(2023, 10, 1)
START_DATE = "2024-01-01"

ASSET_PATH = ["dixa", "conversation_export"]
JOB_NAME = "dixa_conversation_export_job"
LOCATION_NAME = "conversation_assets"
REPOSITORY_NAME = "__repository__"  # the repository Dagster makes of a Definitions object

STARTUP_TIMEOUT = 120.0
RUNS_TIMEOUT = 600.0
SUCCESS_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS"}
FAILED_STATUSES = {"FAILED", "COMPLETED_FAILED", "CANCELED"}
FINISHED_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Setup:
    """What a deployment serves and runs with; the fixture's default is the module's constants.

    A test picks another with ``@pytest.mark.parametrize("deployment", [Setup(...)],
    indirect=True)``.
    """

    per_day: int = PER_DAY
    data_start: date = DATA_START
    #: Extra environment of the webserver and the daemon (and so of code servers and runs).
    env: dict[str, str] = field(default_factory=dict)
    #: False: the daemon is not started by the fixture but by the test (``start_daemon``).
    start_daemon: bool = True
    #: Extra arguments of the sandbox (e.g. its rate limit).
    sandbox_args: tuple[str, ...] = ()


@dataclass
class Deployment:
    """The running sandbox, webserver and daemon, and where their data lands."""

    webserver_url: str
    sandbox_url: str
    database: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = PROJECT_DIR

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``query`` to the webserver; the ``data`` of the answer (fails on ``errors``)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.webserver_url}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}"
        return answer["data"]

    def logs(self) -> str:
        """The tails of every process's log, for failure messages."""
        return "\n".join(process.log_tail() for process in self.processes)

    def wait_for(self, condition: Callable[[], T | None], what: str, timeout: float) -> T:
        """:func:`wait_for` that fails early if a process dies, showing the logs."""
        return wait_for(
            condition, what=what, timeout=timeout, watch=self.processes, describe=self.logs
        )

    def start_daemon(self) -> None:
        """Start ``dagster-daemon`` (for a ``Setup(start_daemon=False)``); stopped at teardown."""
        args = dagster_commands(0)["daemon"]
        daemon = start_process("daemon", args, env=self.env, cwd=PROJECT_DIR, log_dir=self.log_dir)
        self.processes.append(daemon)


# -- the deployment ------------------------------------------------------------------------


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Sandbox, webserver and daemon on fresh state; all stopped at the end, even on failure."""
    with running_deployment(getattr(request, "param", Setup()), tmp_path) as deployment:
        yield deployment


@contextmanager
def running_deployment(setup: Setup, tmp_path: Path) -> Iterator[Deployment]:
    """Start the sandbox, webserver and daemon under ``tmp_path``; stop them all on exit.

    Used by the fixture above and by the browser test (``test_browser.py``).
    """
    processes: list[ManagedProcess] = []
    logs = tmp_path / "logs"
    try:
        sandbox = start_process(
            "sandbox", sandbox_command(setup), env=os.environ, cwd=PROJECT_DIR, log_dir=logs
        )
        processes.append(sandbox)
        sandbox_url = wait_for(
            lambda: listening_url(sandbox.log_text()),
            what="the sandbox's listening line",
            timeout=60,
            watch=[sandbox],
            describe=sandbox.log_tail,
        )

        env = child_environment(tmp_path, make_dagster_home(tmp_path), sandbox_url)
        env.update(setup.env)
        port = free_port()
        for name, args in dagster_commands(port).items():
            if name != "daemon" or setup.start_daemon:
                processes.append(start_process(name, args, env=env, cwd=PROJECT_DIR, log_dir=logs))

        deployment = Deployment(
            webserver_url=f"http://127.0.0.1:{port}",
            sandbox_url=sandbox_url,
            database=Path(env["DESTINATION__DUCKDB__CREDENTIALS"]),
            processes=processes,
            env=env,
            log_dir=logs,
        )
        deployment.wait_for(
            lambda: server_info(deployment.webserver_url), "the webserver", STARTUP_TIMEOUT
        )
        deployment.wait_for(
            lambda: location_loaded(deployment), "the code location to load", STARTUP_TIMEOUT
        )
        set_pool_limit(deployment, pool_name("duckdb"), 1)
        yield deployment
    finally:
        for process in reversed(processes):
            stop_process(process)


def sandbox_command(setup: Setup) -> list[str]:
    """The sandbox on a free port, with the data and clock the expected ids are computed from."""
    data = ("--per-day", str(setup.per_day), "--data-start", setup.data_start.isoformat())
    return [
        sys.executable,
        *("-m", "dixa_sandbox", "--port", "0", "--token", TOKEN),
        *("--now", NOW, *data),
        *setup.sandbox_args,
    ]


def dagster_commands(port: int) -> dict[str, list[str]]:
    """``dagster-webserver`` on ``port`` and ``dagster-daemon``, both on ``workspace.yaml``."""
    workspace = ["-w", "workspace.yaml"]
    return {
        "webserver": [
            venv_executable("dagster-webserver"),
            *workspace,
            *("-h", "127.0.0.1", "-p", str(port)),
        ],
        "daemon": [venv_executable("dagster-daemon"), "run", *workspace],
    }


def make_dagster_home(tmp_path: Path) -> Path:
    """A fresh DAGSTER_HOME holding ``deploy/dagster.local.yaml``, its SQLite storage created.

    The storage is created here, before the webserver and the daemon start: started together on
    an empty home, they and their code servers race to create the SQLite schemas, and one of them
    may fail with alembic's "Version table 'alembic_version' has more than one head present".
    (``dagster dev`` avoids that the same way: it opens the instance before its children start.)
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    return home


def child_environment(tmp_path: Path, home: Path, sandbox_url: str) -> dict[str, str]:
    """The environment of the webserver and the daemon (and so of the code servers and runs)."""
    env = {key: value for key, value in os.environ.items() if key != "DESTINATION"}
    env.update(
        DAGSTER_HOME=str(home),
        DIXA_API_TOKEN=TOKEN,
        DIXA_BASE_URL=sandbox_url,
        DIXA_START_DATE=START_DATE,
        DIXA_RETRY_BACKOFF_SECONDS="0",
        # Its catch-up runs of the wall clock's month would mix with the runs a test counts.
        DIXA_FRESHNESS_SENSOR="off",
        DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / "conversations.duckdb"),
        DIXA_DLT_RUNS_DIR=str(tmp_path / "dlt_runs"),
        PYTHONUNBUFFERED="1",
    )
    return env


def listening_url(log: str) -> str | None:
    """The URL in the sandbox's ``sandbox listening on URL`` line, once it is printed."""
    match = re.search(r"sandbox listening on (\S+)", log)
    return match.group(1) if match else None


def server_info(webserver_url: str) -> dict[str, Any] | None:
    """The webserver's ``/server_info``, or None while it does not answer yet."""
    try:
        with urllib.request.urlopen(f"{webserver_url}/server_info", timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


LOCATIONS_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def location_loaded(deployment: Deployment) -> bool | None:
    """True once the project's code location has loaded; fails if it loaded with an error."""
    workspace = deployment.graphql(LOCATIONS_QUERY)["workspaceOrError"]
    entries = {entry["name"]: entry for entry in workspace.get("locationEntries", [])}
    entry = entries.get(LOCATION_NAME)
    if entry is None or entry["loadStatus"] != "LOADED":
        return None
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", f"location failed to load: {location}"
    return True


# -- GraphQL operations, as the UI performs them ---------------------------------------------

SET_POOL_LIMIT = """
mutation($pool: String!, $limit: Int!) {
  setConcurrencyLimit(concurrencyKey: $pool, limit: $limit)
}
"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status error { message } }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""

RUNS = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
    ... on Error { message }
  }
}
"""

BACKFILL_COUNTS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            numPartitionsTargeted
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
  }
}
"""

RUN_EVENTS = """
query($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level }
        ... on ErrorEvent {
          error { message causes { message } errorChain { error { message } } }
        }
      }
    }
    ... on Error { message }
  }
}
"""

MATERIALIZATIONS = """
query($path: [String!]!, $partitions: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition
        runId
        metadataEntries {
          label
          ... on TextMetadataEntry { text }
          ... on IntMetadataEntry { intRepr }
        }
      }
    }
  }
}
"""


def set_pool_limit(deployment: Deployment, pool: str, limit: int) -> None:
    """Give ``pool`` an explicit limit (the UI's Deployment > Concurrency > "Add pool limit").

    Needed with Dagster 1.13.27: the run queue writes a pool's ``default_limit`` to storage only
    in the dequeue pass that first sees the pool, after it has read the configured pools, so that
    pass launches every queued run of the pool at once (three DuckDB writers: lock errors).
    """
    result = deployment.graphql(SET_POOL_LIMIT, {"pool": pool, "limit": limit})
    assert result["setConcurrencyLimit"] is True, result


def launch_backfill(deployment: Deployment, partitions: list[str]) -> str:
    """Backfill the asset for ``partitions`` (the UI's "Materialize selected"); its id."""
    params = {"partitionNames": partitions, "assetSelection": [{"path": ASSET_PATH}]}
    result = deployment.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def wait_for_backfill(deployment: Deployment, backfill_id: str) -> dict[str, Any]:
    """Poll the backfill until it has finished; its final ``status`` (and ``error``)."""

    def finished() -> dict[str, Any] | None:
        backfill = deployment.graphql(BACKFILL_STATUS, {"id": backfill_id})
        backfill = backfill["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill if backfill["status"] in SUCCESS_STATUSES | FAILED_STATUSES else None

    return deployment.wait_for(finished, f"backfill {backfill_id} to finish", RUNS_TIMEOUT)


def launch_job_run(deployment: Deployment, partition: str) -> str:
    """Launch the job for one partition (the launchpad's "Launch run"); the run's id."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": REPOSITORY_NAME,
            "jobName": JOB_NAME,
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = deployment.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def find_runs(deployment: Deployment, run_filter: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs matching a ``RunsFilter``, each with a ``partition`` taken from its tags."""
    runs = deployment.graphql(RUNS, {"filter": run_filter})["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    for run in runs["results"]:
        run["partition"] = run_partition({tag["key"]: tag["value"] for tag in run["tags"]})
    return runs["results"]


def run_partition(tags: dict[str, str]) -> str | None:
    """The one partition a run targets: a job run's partition tag, or a backfill run's range."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    return start if start == end else f"{start}...{end}"


def wait_for_runs(deployment: Deployment, run_ids: list[str]) -> list[dict[str, Any]]:
    """Poll until every run in ``run_ids`` has finished; the runs."""

    def finished() -> list[dict[str, Any]] | None:
        runs = find_runs(deployment, {"runIds": run_ids})
        done = len(runs) == len(run_ids)
        return runs if done and all(r["status"] in FINISHED_RUN_STATUSES for r in runs) else None

    return deployment.wait_for(finished, f"runs {run_ids} to finish", RUNS_TIMEOUT)


def run_events(deployment: Deployment, run_id: str) -> list[dict[str, Any]]:
    """Every event of a run's event log (the UI's run log), page by page."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = deployment.graphql(RUN_EVENTS, {"runId": run_id, "cursor": cursor})["logsForRun"]
        assert page["__typename"] == "EventConnection", page
        events += page["events"]
        if not page["hasMore"]:
            return events
        cursor = page["cursor"]


def error_texts(events: list[dict[str, Any]]) -> list[str]:
    """The messages of error events and of their errors (causes and chained errors too)."""
    texts = []
    for event in events:
        if event.get("level") in ("ERROR", "CRITICAL"):
            texts.append(event["message"])
        error = event.get("error")
        if error:
            texts.append(error["message"])
            texts += [cause["message"] for cause in error["causes"]]
            texts += [link["error"]["message"] for link in error["errorChain"]]
    return texts


def partition_metadata(deployment: Deployment, partitions: list[str]) -> dict[str, dict[str, str]]:
    """Metadata of the newest materialization of each partition, as label -> text."""
    data = deployment.graphql(MATERIALIZATIONS, {"path": ASSET_PATH, "partitions": partitions})
    asset = data["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    newest: dict[str, dict[str, str]] = {}
    for event in asset["assetMaterializations"]:  # newest first
        entries = {
            entry["label"]: entry.get("text", entry.get("intRepr"))
            for entry in event["metadataEntries"]
        }
        newest.setdefault(event["partition"], entries)
    return newest


# -- what the sandbox serves and what DuckDB holds -------------------------------------------


def expected_ids(start: date, end: date, setup: Setup | None = None) -> set[int]:
    """Ids the sandbox serves with ``updated_at`` in ``[start, end)`` as of its clock."""
    setup = setup or Setup()
    data = SandboxData(per_day=setup.per_day, data_start=setup.data_start)
    return data.expected_ids(to_ms(start), to_ms(end), to_ms(datetime.fromisoformat(NOW)))


def loaded_ids(deployment: Deployment) -> list[int]:
    """Every ``id`` in the root table, duplicates included, read once no run holds the file."""

    def read() -> list[int] | None:
        try:
            with duckdb.connect(str(deployment.database), read_only=True) as connection:
                rows = connection.execute("SELECT id FROM dixa.conversation_export").fetchall()
        except duckdb.IOException:  # a finished run's process may still be letting go of it
            return None
        return [row[0] for row in rows]

    return deployment.wait_for(read, "a read-only connection to the DuckDB file", 60)


# -- the tests -------------------------------------------------------------------------------


def test_a_backfill_of_three_months_loads_each_month_once_with_its_own_metadata(
    deployment: Deployment,
) -> None:
    months = ["2024-01-01", "2024-02-01", "2024-03-01"]

    backfill_id = launch_backfill(deployment, months)
    backfill = wait_for_backfill(deployment, backfill_id)
    runs = find_runs(deployment, {"tags": [{"key": "dagster/backfill", "value": backfill_id}]})
    summary = [(run["partition"], run["status"]) for run in runs]
    assert backfill["status"] in SUCCESS_STATUSES, f"{backfill}: {summary}\n{deployment.logs()}"
    assert len(runs) == 3, f"one run per partition (multi_run(1)), got {summary}"
    assert all(run["status"] == "SUCCESS" for run in runs), summary
    assert sorted(run["partition"] for run in runs) == months

    ids = loaded_ids(deployment)
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == expected_ids(date(2024, 1, 1), date(2024, 4, 1))

    metadata = partition_metadata(deployment, months)
    assert sorted(metadata) == months, "every partition has a materialization"
    for key in months:
        assert metadata[key]["window_start"] == f"{key}T00:00:00.000Z"
    loaded = {key: int(metadata[key]["conversations_loaded"]) for key in months}
    assert sum(loaded.values()) == len(ids), f"per-partition counts, not a total each: {loaded}"
    for key, next_key in zip(months, [*months[1:], "2024-04-01"], strict=True):
        month = expected_ids(date.fromisoformat(key), date.fromisoformat(next_key))
        assert loaded[key] == len(month), key


def test_two_partitions_launched_at_once_take_turns_in_the_pool(deployment: Deployment) -> None:
    months = ["2024-04-01", "2024-05-01"]

    with ThreadPoolExecutor(max_workers=2) as pool:  # two clicks at the same moment
        run_ids = list(pool.map(lambda key: launch_job_run(deployment, key), months))
    runs = wait_for_runs(deployment, run_ids)
    summary = [(run["partition"], run["status"]) for run in runs]
    assert all(run["status"] == "SUCCESS" for run in runs), f"{summary}\n{deployment.logs()}"
    assert sorted(run["partition"] for run in runs) == months

    first, second = sorted(runs, key=lambda run: run["startTime"])
    assert first["endTime"] <= second["startTime"], (
        "the pool (limit 1, run granularity) must keep the runs apart: "
        f"{first['runId']} ran {first['startTime']}-{first['endTime']}, "
        f"{second['runId']} started at {second['startTime']}"
    )

    ids = loaded_ids(deployment)
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == expected_ids(date(2024, 4, 1), date(2024, 6, 1))


SCHEDULE_NAME = "daily_dixa_export"
MONTHS_2023 = [f"2023-{month:02d}-01" for month in range(1, 13)]
#: Conversations from October 2022 (late updates reach into January 2023), partitions from
#: January 2023, and the daily schedule every minute. The daemon is started by the test.
SCHEDULE_EVERY_MINUTE = Setup(
    per_day=20,
    data_start=date(2022, 10, 1),
    env={"DIXA_START_DATE": "2023-01-01", "DIXA_SCHEDULE_CRON": "* * * * *"},
    start_daemon=False,
)
#: The daemon is started between these seconds of a minute (see the test): it queues the
#: backfill's runs a few seconds after it starts, before the first tick at the next full minute,
#: and the twelve runs (~4 s each here) are still going when that tick comes.
DAEMON_START_SECONDS = (38.0, 46.0)


def wait_for_second_of_minute(earliest: float, latest: float) -> None:
    """Return when the wall clock is between ``earliest`` and ``latest`` into its minute."""
    second = time.time() % 60
    if not earliest <= second <= latest:
        time.sleep((earliest - second) % 60 + 0.2)


def overlapping(run: dict[str, Any], others: list[dict[str, Any]], start: str) -> list[str]:
    """Ids of ``others`` whose ``[start, endTime]`` overlaps ``run``'s."""
    return [
        other["runId"]
        for other in others
        if other[start] < run["endTime"] and run[start] < other["endTime"]
    ]


@pytest.mark.slow
@pytest.mark.parametrize("deployment", [SCHEDULE_EVERY_MINUTE], indirect=True, ids=["cron-1m"])
def test_a_backfill_of_twelve_months_while_the_schedule_fires_fails_no_run(
    deployment: Deployment,
) -> None:
    """README, faults: "a 12-partition backfill while the schedule fires: none fails on a lock".

    The backfill is launched before the daemon runs; the daemon's first backfill iteration queues
    its 12 runs at once, and every tick of the schedule (each full minute from the daemon's start)
    queues one more run while they wait or run (Dagster matches a schedule's run key together
    with the tick's time, so ``<partition>@<day>`` does not hold back the next tick). The ticks
    request the real current month (and, early in a month, the previous one too), where the
    sandbox has no conversations: those runs load nothing, so the table holds 2023 only.

    The daemon is started late in a minute: the backfill's runs are queued before the first
    tick's (one of them creates the table first), and they are still running when it comes.
    """
    setup = SCHEDULE_EVERY_MINUTE
    backfill_id = launch_backfill(deployment, MONTHS_2023)
    wait_for_second_of_minute(*DAEMON_START_SECONDS)
    deployment.start_daemon()
    daemon_started = time.time()

    schedule_filter = {"tags": [{"key": "dagster/schedule_name", "value": SCHEDULE_NAME}]}
    deployment.wait_for(
        lambda: find_runs(deployment, schedule_filter) or None, "the schedule's first run", 180
    )
    backfill = wait_for_backfill(deployment, backfill_id)
    wait_for_runs(deployment, [run["runId"] for run in find_runs(deployment, schedule_filter)])
    # Every run of the instance: the backfill's and the schedule's.
    everything = wait_for_runs(deployment, [run["runId"] for run in find_runs(deployment, {})])

    def kind(run: dict[str, Any]) -> str:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        if tags.get("dagster/backfill") == backfill_id:
            return "backfill"
        return "schedule" if tags.get("dagster/schedule_name") == SCHEDULE_NAME else "other"

    summary = [(kind(run), run["partition"], run["status"], run["runId"]) for run in everything]
    # No run failed, none on the DuckDB file's lock in particular.
    events = {run["runId"]: run_events(deployment, run["runId"]) for run in everything}
    errors = {run_id: error_texts(run_log) for run_id, run_log in events.items()}
    lock_errors = {
        run_id: [text for text in texts if "lock" in text.lower()]
        for run_id, texts in errors.items()
        if any("lock" in text.lower() for text in texts)
    }
    assert not lock_errors, f"runs failed on a lock: {lock_errors}\n{summary}"
    failed = [entry for entry in summary if entry[2] != "SUCCESS"]
    assert not failed, f"failed runs {failed}: {[errors[e[3]] for e in failed]}\n{summary}"

    # Every backfill partition succeeded, one run each.
    assert backfill["status"] in SUCCESS_STATUSES, f"{backfill}: {summary}"
    counts = deployment.graphql(BACKFILL_COUNTS, {"id": backfill_id})["partitionBackfillOrError"]
    (status,) = counts["assetBackfillData"]["assetBackfillStatuses"]
    assert status == {
        "numPartitionsTargeted": 12,
        "numPartitionsMaterialized": 12,
        "numPartitionsFailed": 0,
    }, status
    backfill_runs = [run for run in everything if kind(run) == "backfill"]
    assert sorted(run["partition"] for run in backfill_runs) == MONTHS_2023, summary

    # The schedule's runs: the partitions due on the tick's day; they succeeded (above).
    schedule_runs = [run for run in everything if kind(run) == "schedule"]
    assert schedule_runs, summary
    for run in schedule_runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        partition, day = tags["dagster/run_key"].split("@")
        moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
        assert (
            partition
            == run["partition"]
            in partitions_due(moment, 3, monthly_partitions(date(2023, 1, 1)))
        ), tags

    # A schedule run was queued or running while backfill runs were: they competed for the pool.
    # (With the pool's limit of 1 they never execute at the same time.)
    waiting_together = {
        run["runId"]: overlapping(run, backfill_runs, "creationTime") for run in schedule_runs
    }
    executing_together = {
        run["runId"]: overlapping(run, backfill_runs, "startTime") for run in schedule_runs
    }
    timeline = sorted(
        (
            round(run["creationTime"] - daemon_started, 1),
            round(run["startTime"] - daemon_started),
            round(run["endTime"] - daemon_started),
            kind(run),
            run["partition"],
        )
        for run in everything
    )
    waited = [
        run_id
        for run_id, run_log in events.items()
        if any("Waiting for another load" in event.get("message", "") for event in run_log)
    ]
    report = (
        f"runs that waited for the DuckDB file's lock: {len(waited)}; "
        f"schedule run -> backfill runs alive at the same time: "
        f"{ {k: len(v) for k, v in waiting_together.items()} }; executing at the same time: "
        f"{ {k: len(v) for k, v in executing_together.items()} }; "
        f"timeline (created, started, ended, kind, partition; seconds after the daemon started): "
        f"{timeline}"
    )
    print(report)
    assert any(waiting_together.values()), f"no schedule run overlapped the backfill: {report}"

    # Every conversation of 2023 exactly once; each month's own count in its metadata.
    ids = loaded_ids(deployment)
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == expected_ids(date(2023, 1, 1), date(2024, 1, 1), setup)
    metadata = partition_metadata(deployment, MONTHS_2023)
    for key, next_key in zip(MONTHS_2023, [*MONTHS_2023[1:], "2024-01-01"], strict=True):
        month = expected_ids(date.fromisoformat(key), date.fromisoformat(next_key), setup)
        assert int(metadata[key]["conversations_loaded"]) == len(month), key


#: 2023 from a sandbox that allows 10 requests a minute. In 16-day requests the 12 months need
#: 24, two a month: the first two waves of three runs make 12 within seconds of each other, so
#: the API refuses some even on a slow machine.
RATE_LIMITED = Setup(
    per_day=20,
    data_start=date(2022, 10, 1),
    env={"DIXA_START_DATE": "2023-01-01", "DIXA_BATCH_SIZE_DAYS": "16"},
    sandbox_args=("--rate-limit", "10"),
)


@pytest.mark.slow
@pytest.mark.parametrize("deployment", [RATE_LIMITED], indirect=True, ids=["10-a-minute"])
def test_a_backfill_with_a_pool_of_three_against_a_rate_limit_fails_no_run(
    deployment: Deployment,
) -> None:
    """README, Concurrency: partitions extract at the same time, take turns to load, and wait
    out the API's 429s (``Retry-After``); every month lands exactly once."""
    set_pool_limit(deployment, pool_name("duckdb"), 3)
    backfill_id = launch_backfill(deployment, MONTHS_2023)
    backfill = wait_for_backfill(deployment, backfill_id)
    runs = find_runs(deployment, {"tags": [{"key": "dagster/backfill", "value": backfill_id}]})
    summary = [(run["partition"], run["status"], run["runId"]) for run in runs]
    failed = [entry for entry in summary if entry[1] != "SUCCESS"]
    errors = {entry[2]: error_texts(run_events(deployment, entry[2])) for entry in failed}
    assert not failed, f"failed runs {failed}: {errors}\n{deployment.logs()}"
    assert backfill["status"] in SUCCESS_STATUSES, f"{backfill}: {summary}"
    assert sorted(run["partition"] for run in runs) == MONTHS_2023

    # The path under test ran: runs executed at the same time, and the API refused some
    # requests, which were retried after its Retry-After.
    concurrent = {run["runId"]: overlapping(run, runs, "startTime") for run in runs}
    assert any(len(others) > 1 for others in concurrent.values()), concurrent
    messages = [
        event.get("message", "") for run in runs for event in run_events(deployment, run["runId"])
    ]
    assert any("answered HTTP 429" in message for message in messages), "no 429 was retried"

    ids = loaded_ids(deployment)
    assert len(ids) == len(set(ids)), "no duplicate id"
    assert set(ids) == expected_ids(date(2023, 1, 1), date(2024, 1, 1), RATE_LIMITED)
