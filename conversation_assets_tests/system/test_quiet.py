"""Quiet, isolated runs: no warnings, nothing in the user's home, only relevant verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from conversation_assets.config import Config
from conversation_assets.definitions import build_definitions
from conversation_assets.defs.partitions import monthly_partitions
from dixa_sandbox import SandboxServer

PROJECT_DIR = Path(__file__).resolve().parents[2]
ASSET = AssetKey(["dixa", "conversation_export"])

#: Loads the definitions with every warning recorded; prints all but the DeprecationWarnings a
#: library raises about its own dependencies (Pydantic's, inside Dagster), which Python hides.
RECORD_WARNINGS = """
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from dagster import Definitions
    from conversation_assets.definitions import build_definitions
    Definitions.validate_loadable(build_definitions())
    build_definitions().resolve_implicit_global_asset_job_def()
    build_definitions().resolve_job_def("dixa_conversation_export_job")
ours = [
    f"{w.category.__name__} {w.filename}:{w.lineno}: {w.message}"
    for w in caught
    if w.category.__module__.startswith("dagster")
    or "conversation_assets" in w.filename
    or not issubclass(w.category, DeprecationWarning)
]
print(json.dumps(ours))
"""


def isolated_environment(tmp_path: Path) -> dict[str, str]:
    """A HOME of its own and every project folder under ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "DESTINATION"}
    env.update(
        HOME=str(home),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / "conversations.duckdb"),
        DIXA_DLT_RUNS_DIR=str(tmp_path / "dlt_runs"),
        DIXA_RETRY_BACKOFF_SECONDS="0",
    )
    env.pop("DIXA_API_TOKEN", None)
    return env


def test_loading_the_definitions_warns_nothing(tmp_path: Path) -> None:
    env = isolated_environment(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", RECORD_WARNINGS],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    warnings_seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert warnings_seen == [], "\n".join(warnings_seen)
    assert list((tmp_path / "home").iterdir()) == [], "nothing in the user's home"


def test_the_demo_prints_no_warning_and_writes_nothing_into_home(tmp_path: Path) -> None:
    """``python -m dixa_sandbox.demo`` as a user runs it, HOME pointed at a fresh folder.

    Before, the pipeline built when the definitions load kept its state in ``~/.dlt/pipelines``
    (shared by every project on the machine), and Dagster printed a ``PreviewWarning``.
    """
    env = isolated_environment(tmp_path)
    demo = [sys.executable, "-m", "dixa_sandbox.demo", "--months", "1", "--per-day", "5"]
    done = subprocess.run(
        demo, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " ok in " in done.stdout, done.stdout
    noise = [line for line in done.stderr.splitlines() if "warning" in line.lower()]
    assert noise == [], done.stderr
    assert list((tmp_path / "home").iterdir()) == [], "nothing in the user's home (~/.dlt)"
    leftovers = list((tmp_path / "dlt_runs").iterdir()) if (tmp_path / "dlt_runs").is_dir() else []
    assert leftovers == [], "every run's dlt folder is removed when it ends"


def test_every_check_that_runs_with_a_materialization_is_about_that_partition() -> None:
    """The UI's Materialize button runs Dagster's implicit asset job, with every check of the
    asset: each must be partitioned like the asset (no check about another month)."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    checks = job.asset_layer.asset_graph.asset_check_keys
    assert checks, "the data-quality checks"
    for key in checks:
        node = job.asset_layer.asset_graph.get(key)
        partitions = monthly_partitions(Config.from_env(require_token=False).start_date)
        assert node.partitions_def == partitions, f"{key.name} is not partitioned like the asset"


def test_materializing_a_past_month_as_the_ui_does_reports_only_on_that_month(
    sandbox: SandboxServer, dixa_env: dict[str, str]
) -> None:
    """A past month through the implicit asset job (the Materialize button's, both assets):
    every blocking check passes, and every evaluation concerns that month."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            partition_key="2024-02-01", instance=instance, raise_on_error=False
        )
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        failed = [e for e in evaluations if not e.passed and e.blocking]
        assert not failed, failed
        blocking = {
            "no_duplicate_ids",
            "loaded_rows_inside_partition_window",
            "no_duplicate_child_rows",
            "no_orphan_child_rows",
        }
        names = {(e.asset_key.path[-1], e.check_name) for e in evaluations}
        assert names == {
            *{("conversation_export", name) for name in blocking},
            ("conversation_export", "no_null_id_or_updated_at"),
            *{("message_export", name) for name in blocking},
            ("message_export", "no_null_id_or_created_at"),
            # Advisory (a warning at most): messages of February whose conversation was
            # updated later are in a later conversation partition.
            ("message_export", "messages_of_known_conversations"),
        }
        assert {e.partition for e in evaluations} == {"2024-02-01"}
