"""A local Dagster deployment for tests and benchmarks: a fresh ``DAGSTER_HOME`` and the processes.

``make_dagster_home`` copies ``deploy/dagster.local.yaml`` (queued runs, pools of limit 1 per run)
and creates its SQLite storage; :class:`DagsterDeployment` starts ``dagster-webserver``,
``dagster-daemon`` (or ``dagster dev``, both in one) on ``workspace.yaml``, talks to the webserver
through :class:`~.graphql.DagsterGraphQL`, and waits while watching the processes: a process
that dies fails the wait at once, with the tails of every log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dagster import DagsterInstance

from conversation_assets_tests.support.graphql import (
    BACKFILL_FAILED,
    BACKFILL_SUCCEEDED,
    RUN_FINISHED,
    DagsterGraphQL,
    Run,
)
from conversation_assets_tests.support.processes import (
    ManagedProcess,
    free_port,
    start_process,
    stop_process,
    venv_executable,
    wait_for,
    wait_for_http,
)

T = TypeVar("T")

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOCAL_INSTANCE_CONFIG = PROJECT_DIR / "deploy" / "dagster.local.yaml"
WORKSPACE = PROJECT_DIR / "workspace.yaml"

#: Bounded waits on a busy 2-core machine: processes coming up, and runs or backfills finishing.
STARTUP_TIMEOUT = 120.0
RUNS_TIMEOUT = 600.0


def duckdb_pool() -> str:
    """The Dagster pool the DuckDB loads take turns in (imported here: the module reads env)."""
    from conversation_assets.defs.assets import pool_name

    return pool_name("duckdb")


def make_dagster_home(parent: Path, config: Path = LOCAL_INSTANCE_CONFIG) -> Path:
    """``parent/dagster_home`` holding ``config`` as ``dagster.yaml``, its storage created.

    The storage is created here, before any Dagster process starts: started together on an empty
    home, the webserver, the daemon and their code servers race to create the SQLite schemas, and
    one of them may fail with alembic's "Version table 'alembic_version' has more than one head
    present". (``dagster dev`` avoids it the same way: it opens the instance before its children.)
    """
    home = parent / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_bytes(config.read_bytes())
    with DagsterInstance.from_config(str(home)):
        pass
    return home


def default_pool_limit(home: Path) -> int | None:
    """The instance's default pool limit (``concurrency: pools: default_limit``)."""
    with DagsterInstance.from_config(str(home)) as instance:
        return instance.get_concurrency_config().pool_config.default_pool_limit


def webserver_command(port: int) -> list[str]:
    """``dagster-webserver`` on ``127.0.0.1:port``, serving ``workspace.yaml``."""
    return [
        venv_executable("dagster-webserver"),
        *("-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)),
    ]


def daemon_command() -> list[str]:
    """``dagster-daemon run`` on ``workspace.yaml`` (schedules, sensors, backfills, run queue)."""
    return [venv_executable("dagster-daemon"), "run", "-w", str(WORKSPACE)]


def dev_command(port: int) -> list[str]:
    """``dagster dev``: the webserver on ``127.0.0.1:port`` and the daemon, in one process."""
    return [
        venv_executable("dagster"),
        *("dev", "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)),
    ]


@dataclass
class DagsterDeployment:
    """Dagster processes on one ``DAGSTER_HOME``; ``env`` must name it as ``DAGSTER_HOME``.

    ``processes`` may already hold others (a sandbox): their logs are shown and their death is
    noticed the same way.
    """

    env: dict[str, str]
    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    webserver_url: str = ""

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def graphql(self) -> DagsterGraphQL:
        assert self.webserver_url, "no webserver started"
        return DagsterGraphQL(self.webserver_url)

    def start(self, name: str, args: list[str]) -> ManagedProcess:
        """Start ``args`` in the project folder with the deployment's environment."""
        process = start_process(name, args, env=self.env, cwd=PROJECT_DIR, log_dir=self.log_dir)
        self.processes.append(process)
        return process

    def start_webserver(self, wait: bool = True) -> None:
        """Start ``dagster-webserver`` on a free port; with ``wait``, wait until it has loaded."""
        port = free_port()
        self.start("webserver", webserver_command(port))
        self.webserver_url = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_until_loaded()

    def start_daemon(self) -> None:
        """Start ``dagster-daemon`` (it is stopped with the others)."""
        self.start("daemon", daemon_command())

    def start_dev(self) -> None:
        """Start ``dagster dev`` on a free port; wait until its code location has loaded."""
        port = free_port()
        self.start("dev", dev_command(port))
        self.webserver_url = f"http://127.0.0.1:{port}"
        self.wait_until_loaded()

    def wait_until_loaded(self) -> None:
        """Wait for the webserver to answer, then for the project's code location to load."""
        wait_for_http(
            f"{self.webserver_url}/server_info",
            timeout=STARTUP_TIMEOUT,
            watch=self.processes,
            describe=self.logs,
        )
        self.wait_for(self.graphql.location_loaded, "the code location to load", STARTUP_TIMEOUT)

    def stop(self) -> None:
        """Stop every process, newest first."""
        while self.processes:
            stop_process(self.processes.pop())

    def logs(self) -> str:
        """The tails of every process's log, for failure messages."""
        return "\n".join(process.log_tail() for process in self.processes)

    def wait_for(self, condition: Callable[[], T | None], what: str, timeout: float) -> T:
        """:func:`~.processes.wait_for` that fails early if a process dies, showing the logs."""
        return wait_for(
            condition, what=what, timeout=timeout, watch=self.processes, describe=self.logs
        )

    def set_pool_limit(self, pool: str, limit: int) -> None:
        """Give ``pool`` an explicit limit (the UI's Deployment > Concurrency > "Add pool limit").

        Needed with Dagster 1.13.27: the run queue writes a pool's ``default_limit`` to storage
        only in the dequeue pass that first sees the pool, after it has read the configured
        pools, so that pass launches every queued run of the pool at once (for DuckDB: three
        writers, lock errors). A limit of 0 holds every run of the pool in the queue.
        """
        self.graphql.set_pool_limit(pool, limit)

    def wait_for_backfill(self, backfill_id: str) -> dict[str, object]:
        """Poll the backfill until it has finished; its final ``status`` (and ``error``)."""

        def finished() -> dict[str, object] | None:
            backfill = self.graphql.backfill(backfill_id)
            done = backfill["status"] in BACKFILL_SUCCEEDED | BACKFILL_FAILED
            return backfill if done else None

        return self.wait_for(finished, f"backfill {backfill_id} to finish", RUNS_TIMEOUT)

    def wait_for_runs(self, run_ids: list[str]) -> list[Run]:
        """Poll until every run in ``run_ids`` has finished; the runs."""

        def finished() -> list[Run] | None:
            runs = self.graphql.runs({"runIds": run_ids})
            done = len(runs) == len(run_ids) and all(r["status"] in RUN_FINISHED for r in runs)
            return runs if done else None

        return self.wait_for(finished, f"runs {run_ids} to finish", RUNS_TIMEOUT)


@contextmanager
def dagster_deployment(
    env: dict[str, str],
    log_dir: Path,
    *,
    daemon: bool = True,
    processes: list[ManagedProcess] | None = None,
) -> Iterator[DagsterDeployment]:
    """The webserver (loaded) and, with ``daemon``, the daemon; every process stopped on exit.

    The DuckDB pool gets an explicit limit of 1 (see :meth:`DagsterDeployment.set_pool_limit`).
    """
    deployment = DagsterDeployment(
        env=env, log_dir=log_dir, processes=[] if processes is None else processes
    )
    try:
        deployment.start_webserver(wait=False)
        if daemon:
            deployment.start_daemon()
        deployment.wait_until_loaded()
        deployment.set_pool_limit(duckdb_pool(), 1)
        yield deployment
    finally:
        deployment.stop()
