"""Postgres as the destination and as Dagster's storage, with partitions loading in parallel."""

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import psycopg2
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from conversation_assets_tests.conftest import TOKEN
from conversation_assets_tests.support.environment import project_env
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.materialize import start_materialize
from conversation_assets_tests.support.processes import venv_executable
from dixa_sandbox import SandboxData, SandboxServer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MONTHS = ("2024-01-01", "2024-02-01", "2024-03-01")
NOW_MS = month_window("2024-06-01").start_ms


def fetch(credentials: str, sql: str) -> list[tuple]:
    with psycopg2.connect(credentials) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.slow
def test_three_partitions_load_in_parallel_into_postgres_with_dagster_on_postgres(
    postgres: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    data = SandboxData(per_day=60, data_start=date(2023, 11, 1))
    credentials = postgres["DESTINATION__POSTGRES__CREDENTIALS"]
    fetch(credentials, "DROP SCHEMA IF EXISTS dixa CASCADE")
    with SandboxServer(token=TOKEN, data=data, now=NOW_MS) as sandbox:
        env = project_env(
            tmp_path,
            token=TOKEN,
            base_url=sandbox.url,
            **postgres,
            DAGSTER_HOME=str(home),
            DESTINATION="postgres",
            DIXA_START_DATE="2024-01-01",
        )
        # A deployment creates Dagster's storage once; three processes creating it at the same
        # moment race on CREATE TABLE instance_info (seen once in CI-like runs).
        migrate = [venv_executable("dagster"), "instance", "migrate"]
        subprocess.run(migrate, env=env, check=True, capture_output=True)
        runs = [start_materialize(env, month, tmp_path / f"{month}.log") for month in MONTHS]
        for month, run in zip(MONTHS, runs, strict=True):
            assert run.wait(timeout=600) == 0, (tmp_path / f"{month}.log").read_text()[-3000:]
        counts_before = table_counts(credentials)
        rerun = start_materialize(env, MONTHS[1], tmp_path / "rerun.log")
        assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]

    window = month_window("2024-01-01", "2024-03-01")
    expected = data.expected_ids(window.start_ms, window.end_ms, NOW_MS)
    total, distinct = fetch(
        credentials, "SELECT COUNT(*), COUNT(DISTINCT id) FROM dixa.conversation_export"
    )[0]
    assert total == distinct == len(expected)
    assert table_counts(credentials) == counts_before, "the re-run changed nothing"
    assert counts_before["conversation_export__tags"] > 0
    assert counts_before["conversation_export__custom_fields__value"] > 0
    orphans = fetch(
        credentials,
        "SELECT COUNT(*) FROM dixa.conversation_export__tags t LEFT JOIN "
        "dixa.conversation_export c ON t._dlt_root_id = c._dlt_id WHERE c.id IS NULL",
    )[0][0]
    assert orphans == 0

    os.environ.update({k: v for k, v in postgres.items() if k.startswith("DAGSTER_PG_")})
    with DagsterInstance.from_config(str(home)) as instance:
        assert "Postgres" in type(instance.run_storage).__name__
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(["dixa", "conversation_export"])), limit=10
        ).records
    assert sorted({r.partition_key for r in records}) == list(MONTHS)
    assert len(records) == 4


def table_counts(credentials: str) -> dict[str, int]:
    names = [
        row[0]
        for row in fetch(
            credentials,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'dixa' AND table_name NOT LIKE '\\_dlt%'",
        )
    ]
    return {name: fetch(credentials, f"SELECT COUNT(*) FROM dixa.{name}")[0][0] for name in names}
