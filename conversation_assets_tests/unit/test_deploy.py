"""Deployment files: Helm values, Dagster instance configs, the Dockerfile, the Postgres scripts.

Fast and offline: files are parsed, never deployed. The instance configs also go through
Dagster's own instance-config validation (schema and concurrency rules), without connecting.
The Helm keys allowed below are copied from the chart's schema (helm/dagster/schema/ in
dagster-io/dagster, the version with the top-level `concurrency` block).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MODULE = "conversation_assets.definitions"
CODE_SERVER_PORT = 4000

# Fields of the chart's pydantic models (extra="forbid" in the chart's schema).
USER_DEPLOYMENT_KEYS = {
    "name",
    "image",
    "port",
    "dagsterApiGrpcArgs",
    "codeServerArgs",
    "includeConfigInLaunchedRuns",
    "env",
    "envConfigMaps",
    "envSecrets",
    "annotations",
    "nodeSelector",
    "affinity",
    "tolerations",
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "labels",
    "volumeMounts",
    "volumes",
    "schedulerName",
}
K8S_RUN_LAUNCHER_KEYS = {
    "image",
    "imagePullPolicy",
    "jobNamespace",
    "loadInclusterConfig",
    "kubeconfigFile",
    "envConfigMaps",
    "envSecrets",
    "envVars",
    "volumeMounts",
    "volumes",
    "labels",
    "failPodOnRunFailure",
    "resources",
    "schedulerName",
    "securityContext",
    "runK8sConfig",
}
POSTGRESQL_KEYS = {
    "image",
    "enabled",
    "postgresqlHost",
    "postgresqlUsername",
    "postgresqlPassword",
    "postgresqlDatabase",
    "postgresqlParams",
    "postgresqlScheme",
    "service",
}
QUEUED_RUN_COORDINATOR_KEYS = {
    "maxConcurrentRuns",
    "tagConcurrencyLimits",
    "dequeueIntervalSeconds",
    "dequeueNumWorkers",
    "dequeueUseThreads",
    "blockOpConcurrencyLimitedRuns",
}
CONCURRENCY_KEYS = {"enabled", "pools", "runs"}
CONCURRENCY_POOLS_KEYS = {"defaultLimit", "granularity", "opGranularityRunBuffer"}
CONCURRENCY_RUNS_KEYS = {"maxConcurrentRuns", "tagConcurrencyLimits"}
TAG_LIMIT_KEYS = {"key", "value", "limit"}


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def secret_names(env_secrets: Any) -> list[str]:
    """The chart's envSecrets: a list of {name: <secret>} (Kubernetes SecretEnvSource)."""
    assert isinstance(env_secrets, list) and env_secrets
    for item in env_secrets:
        assert isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]
    return [item["name"] for item in env_secrets]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    pairs = []
    for text in logical:
        instruction, _, rest = text.strip().partition(" ")
        pairs.append((instruction.upper(), rest.strip()))
    return pairs


def dockerfile_cmd() -> list[str]:
    cmds = [rest for instruction, rest in dockerfile_instructions() if instruction == "CMD"]
    assert len(cmds) == 1, "the Dockerfile needs exactly one CMD"
    cmd = json.loads(cmds[0])  # exec form: a JSON array
    assert isinstance(cmd, list) and all(isinstance(part, str) for part in cmd)
    return cmd


# --- Helm values ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return load_yaml(DEPLOY / "helm" / "values.yaml")


def test_helm_user_deployment_runs_the_code_server(helm: dict[str, Any]) -> None:
    user = helm["dagster-user-deployments"]
    assert user["enabled"] is True and user["enableSubchart"] is True
    deployment = user["deployments"][0]
    assert set(deployment) <= USER_DEPLOYMENT_KEYS, set(deployment) - USER_DEPLOYMENT_KEYS
    assert isinstance(deployment["name"], str) and re.fullmatch(r"[a-z0-9-]+", deployment["name"])
    image = deployment["image"]
    assert isinstance(image["repository"], str) and image["repository"]
    assert isinstance(image["tag"], str) and image["tag"], "quote the tag: YAML reads 0.10 as 0.1"
    assert image["pullPolicy"] in {"Always", "IfNotPresent", "Never"}
    assert deployment["port"] == CODE_SERVER_PORT
    # One of the two arg lists; codeServerArgs -> `dagster code-server start -h 0.0.0.0 -p <port>`.
    assert "dagsterApiGrpcArgs" not in deployment
    assert deployment["codeServerArgs"] == ["-m", MODULE]
    assert {"dixa-api-token", "conversation-assets-destination"} <= set(
        secret_names(deployment["envSecrets"])
    )
    assert isinstance(deployment.get("env", {}), dict)
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_helm_code_server_matches_the_image(helm: dict[str, Any]) -> None:
    cmd = dockerfile_cmd()
    deployment = helm["dagster-user-deployments"]["deployments"][0]
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert " ".join(deployment["codeServerArgs"]) in " ".join(cmd)
    assert ("EXPOSE", str(deployment["port"])) in dockerfile_instructions()


def test_helm_run_launcher_is_k8s_with_the_secrets(helm: dict[str, Any]) -> None:
    launcher = helm["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    assert set(config) <= K8S_RUN_LAUNCHER_KEYS, set(config) - K8S_RUN_LAUNCHER_KEYS
    assert isinstance(config["jobNamespace"], str) and config["jobNamespace"]
    assert config["loadInclusterConfig"] is True
    code_server_secrets = secret_names(
        helm["dagster-user-deployments"]["deployments"][0]["envSecrets"]
    )
    assert set(code_server_secrets) <= set(secret_names(config["envSecrets"]))
    assert isinstance(config.get("resources", {}), dict)


def test_helm_uses_an_external_postgres(helm: dict[str, Any]) -> None:
    postgresql = helm["postgresql"]
    assert set(postgresql) <= POSTGRESQL_KEYS, set(postgresql) - POSTGRESQL_KEYS
    assert postgresql["enabled"] is False
    for key in ("postgresqlHost", "postgresqlUsername", "postgresqlDatabase"):
        assert isinstance(postgresql[key], str) and postgresql[key], key
    assert isinstance(postgresql["service"]["port"], int)
    assert isinstance(postgresql["postgresqlParams"], dict)
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed.
    assert postgresql["postgresqlScheme"] == "postgresql+psycopg2"
    # The password comes from a secret we create, not from the chart.
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert isinstance(helm["global"]["postgresqlSecretName"], str)


def test_helm_queue_and_pools(helm: dict[str, Any]) -> None:
    coordinator = helm["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert set(queued) <= QUEUED_RUN_COORDINATOR_KEYS, set(queued) - QUEUED_RUN_COORDINATOR_KEYS

    concurrency = helm["concurrency"]
    assert set(concurrency) <= CONCURRENCY_KEYS
    assert concurrency["enabled"] is True
    # With `concurrency` on, run limits may live only under concurrency.runs: the chart fails on
    # both, and Dagster refuses run_coordinator limits next to `concurrency: pools:`.
    assert "maxConcurrentRuns" not in queued and "tagConcurrencyLimits" not in queued

    pools = concurrency["pools"]
    assert set(pools) <= CONCURRENCY_POOLS_KEYS
    assert pools["defaultLimit"] == 1, "DuckDB's pool must stay at 1: raise only dixa_postgres"
    assert pools["granularity"] == "run"

    runs = concurrency["runs"]
    assert set(runs) <= CONCURRENCY_RUNS_KEYS
    assert isinstance(runs["maxConcurrentRuns"], int) and runs["maxConcurrentRuns"] > 0
    for limit in runs["tagConcurrencyLimits"]:
        assert set(limit) <= TAG_LIMIT_KEYS
        assert isinstance(limit["key"], str) and isinstance(limit["limit"], int)
        assert limit["limit"] <= runs["maxConcurrentRuns"]


# --- Dagster instance configs -----------------------------------------------------------------


def validate_instance_config(path: Path, home: Path) -> dict[str, Any]:
    """Dagster's own validation of a dagster.yaml (schema + concurrency rules); no connection."""
    from dagster._core.instance.config import dagster_instance_config

    home.mkdir()
    shutil.copy(path, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))
    return dict(config)


def test_dagster_yaml_postgres_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = load_yaml(DEPLOY / "dagster.yaml")
    db = raw["storage"]["postgres"]["postgres_db"]
    env_names = {key: value["env"] for key, value in db.items() if isinstance(value, dict)}
    assert set(env_names) == {"username", "password", "hostname", "db_name", "port"}
    assert all(name.startswith("DAGSTER_PG_") for name in env_names.values())
    assert db["scheme"] == "postgresql+psycopg2"
    # The names must be the ones scripts/postgres-up.sh exports.
    up_script = (ROOT / "scripts/postgres-up.sh").read_text()
    exported = set(re.findall(r"\b(DAGSTER_PG_\w+)=", up_script))
    assert set(env_names.values()) == exported

    for name in env_names.values():
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    config = validate_instance_config(DEPLOY / "dagster.yaml", tmp_path / "home")
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    runs = config["concurrency"]["runs"]
    assert isinstance(runs["max_concurrent_runs"], int) and runs["max_concurrent_runs"] > 0
    assert "max_concurrent_runs" not in (raw["run_coordinator"].get("config") or {})


def test_dagster_local_yaml_is_the_embedded_default(tmp_path: Path) -> None:
    raw = load_yaml(DEPLOY / "dagster.local.yaml")
    assert "storage" not in raw, "SQLite under DAGSTER_HOME is Dagster's default"
    config = validate_instance_config(DEPLOY / "dagster.local.yaml", tmp_path / "home")
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert config["telemetry"] == {"enabled": False}


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_copies_files_that_exist() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    sources = []
    for instruction, rest in instructions:
        if instruction == "COPY":
            words = shlex.split(rest)
            assert not any(w.startswith("--from") for w in words), "no multi-stage COPY expected"
            sources += words[:-1]
    for required in (
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "conversation_assets",
        ".dlt/config.toml",
    ):
        assert required in sources, f"the Dockerfile does not COPY {required}"
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert not missing, f"COPY sources missing from the repo: {missing}"
    assert ".dlt/secrets.toml" not in sources, "secrets come from the environment, not the image"


def test_dockerfile_installs_from_the_lock_and_serves_the_definitions() -> None:
    runs = " ".join(rest for instruction, rest in dockerfile_instructions() if instruction == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    cmd = dockerfile_cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == MODULE
    assert cmd[cmd.index("-p") + 1] == str(CODE_SERVER_PORT)
    assert cmd[cmd.index("-h") + 1] == "0.0.0.0"
    assert (ROOT / (MODULE.replace(".", "/") + ".py")).is_file()


# --- Postgres scripts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script", ["scripts/postgres-up.sh", "scripts/postgres-down.sh", "deploy/check_image_layout.sh"]
)
def test_scripts_parse(script: str) -> None:
    path = ROOT / script
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in path.read_text()
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_postgres_up_prints_the_documented_variables() -> None:
    text = (ROOT / "scripts/postgres-up.sh").read_text()
    exported = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", text.split("cat <<EOF", 1)[1]))
    assert {
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USERNAME",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
        "DESTINATION__POSTGRES__CREDENTIALS",
    } <= exported
