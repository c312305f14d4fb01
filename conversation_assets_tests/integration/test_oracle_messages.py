"""The oracle extended to messages (issue 12): every message table, after every run (Hypothesis).

Generated histories of scripted messages (``support/message_scenarios.py``: string ids,
duplicates in one answer, records on and next to request edges, late messages, new keys at the
top level and inside arrays) are served by the sandbox under either bound semantics and loaded
partition by partition, at random batch sizes, in random order with re-runs, through the
pipeline and through the Dagster asset; after every run every message table must equal the
tables computed from what the sandbox served. Profiles as for conversations
(``HYPOTHESIS_PROFILE``: ``default`` and ``ci`` 8 examples, ``long`` 2,000; Dagster a sixth).
"""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance
from hypothesis import given, settings

from conversation_assets import load
from conversation_assets.config import Config
from conversation_assets.dixa.endpoints import MESSAGE_EXPORT
from conversation_assets.dixa.windows import to_ms
from conversation_assets_tests.conftest import NOW, TOKEN
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.hypothesis_profiles import load_profile
from conversation_assets_tests.support.message_scenarios import (
    CASES,
    MessageScenario,
    message_scenarios,
    run_message_scenario,
    runner_with_path_check,
)
from conversation_assets_tests.support.messages import MESSAGE_JOB, duckdb_fetch, materialize
from conversation_assets_tests.support.oracle_scenarios import (
    END_MS,
    PATH_FORMATS,
    START_MS,
    RunPartition,
    environment,
    observing_extract,
)
from dixa_sandbox import SandboxServer, ScriptedData

PROFILE = load_profile()
#: Dagster examples are slower: a fraction of the profile's examples.
FEW = max(2, PROFILE.max_examples // 6)
NOW_MS = to_ms(datetime.fromisoformat(NOW))
JSON_FILES = PATH_FORMATS["json"]


def error_text(error: BaseException) -> str:
    """The error and its causes, as a user would read them."""
    text = "".join(traceback.format_exception_only(error))
    seen = error.__cause__ or error.__context__
    while seen is not None:
        text += f"caused by: {''.join(traceback.format_exception_only(seen))}"
        seen = seen.__cause__ or seen.__context__
    return text


def pipeline_runner(workdir: Path) -> RunPartition:
    """A partition of messages loaded without Dagster (``conversation_assets.load``)."""

    def run(month: str, number: int) -> str | None:
        try:
            config = Config.from_env()
            window = month_window(month)
            load.load_window(config, window, workdir / f"run-{number}", endpoint=MESSAGE_EXPORT)
        except Exception as error:
            return error_text(error)
        return None

    return run


def dagster_runner(instance: DagsterInstance) -> RunPartition:
    """A partition materialized through the Dagster asset ``dixa/message_export``."""

    def run(month: str, number: int) -> str | None:
        result = materialize(MESSAGE_JOB, month, instance)
        if result.success:
            return None
        failures = result.get_step_failure_events()
        return "\n".join(e.step_failure_data.error.to_string() for e in failures) or "failed"

    return run


@contextmanager
def scenario_sandbox(scenario: MessageScenario) -> Iterator[tuple[SandboxServer, ScriptedData]]:
    data = ScriptedData(messages=scenario.initial, updates=scenario.updates)
    server = SandboxServer(TOKEN, data, bounds=scenario.bounds, now=NOW_MS, record_served=True)
    with server:
        yield server, data


def check_on_duckdb(scenario: MessageScenario, via: str) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="oracle-messages-") as folder,
        scenario_sandbox(scenario) as (server, data),
        observing_extract() as spy,
    ):
        workdir = Path(folder)
        env = {
            "DIXA_EXTRACT_FORMAT": scenario.extract_format,
            "DIXA_API_TOKEN": TOKEN,
            "DIXA_BASE_URL": server.url,
            "DIXA_START_DATE": "2024-01-01",
            "DIXA_BATCH_SIZE_DAYS": str(scenario.batch_size),
            "DIXA_RETRY_BACKOFF_SECONDS": "0",
            "DIXA_MAX_RETRIES": "0",
            "DESTINATION__DUCKDB__CREDENTIALS": str(workdir / "conversations.duckdb"),
            "DIXA_DLT_RUNS_DIR": str(workdir / "dlt_runs"),
        }
        fetch = duckdb_fetch(workdir / "conversations.duckdb")
        with environment(env, remove=("DESTINATION",)):
            if via == "dagster":
                with DagsterInstance.ephemeral() as instance:
                    run = runner_with_path_check(
                        dagster_runner(instance), lambda: spy.formats, JSON_FILES
                    )
                    run_message_scenario(scenario, data, server, run, fetch)
            else:
                run = runner_with_path_check(
                    pipeline_runner(workdir), lambda: spy.formats, JSON_FILES
                )
                run_message_scenario(scenario, data, server, run, fetch)
        # A message of the loaded months is extracted at the latest by the final pass (where
        # each is in its own request's answer): then the path that wrote it is known.
        served = [at for request in server.requests for _, at in request.served]
        if any(isinstance(at, int) and START_MS <= at < END_MS for at in served):
            assert spy.formats == {JSON_FILES}, "the runs extracted nothing"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_hand_made_message_cases_match_the_oracle(case: MessageScenario) -> None:
    check_on_duckdb(case, via="pipeline")


@given(scenario=message_scenarios())
def test_every_message_table_matches_the_oracle(scenario: MessageScenario) -> None:
    check_on_duckdb(scenario, via="pipeline")


@settings(max_examples=FEW)
@given(scenario=message_scenarios(max_ids=4, max_runs=2))
def test_every_message_table_matches_the_oracle_through_dagster(
    scenario: MessageScenario,
) -> None:
    check_on_duckdb(scenario, via="dagster")
