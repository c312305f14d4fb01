"""Benchmark the project's load paths against the seed's rest_api config and a DuckDB floor.

    cd /work/main && UV_PYTHON_DOWNLOADS=never uv run python benchmarks/run.py
    uv run python benchmarks/run.py --sizes 50000,200000,1000000 --repeat 3
    uv run python benchmarks/run.py --sizes 2000 --repeat 1 \
        --contenders project_pipeline,duckdb_floor --out /tmp/bench
    uv run python benchmarks/run.py --backfill     # 12 monthly partitions through the daemon
    uv run python benchmarks/run.py --backfill --pools 1,3 --first-byte-seconds 5 --bandwidth-mb 5

Every contender downloads the identical body: the sandbox API runs as a subprocess on a free
loopback port with ``--cache-dir``, and one pre-warm request writes the cache file before any
timing. Each contender runs as its own subprocess (own session) with a fresh DuckDB file in a
temporary folder; a thread of this driver samples the RSS of the contender's whole process tree
every 50 ms and kills the tree when it passes ``--memory-limit-gb``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import duckdb
import requests

from conversation_assets.config import MAX_BATCH_SIZE_DAYS
from conversation_assets.dixa.windows import Window, request_windows, to_ms
from dixa_sandbox import SandboxData

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent

TOKEN = "benchmark-token-4f7e"
SEED = 7
DATA_START = date(2023, 1, 1)
#: The single-window contenders load April 2024 (30 days: one request at batch size 31).
WINDOW_START, WINDOW_END = date(2024, 4, 1), date(2024, 5, 1)
PARTITION_KEY = "2024-04-01"
PROJECT_START_DATE = "2024-01-01"
#: The sandbox clock: after the window, so the window is complete.
SANDBOX_NOW = "2024-05-02T00:00:00+00:00"
PROJECT_TABLE = "dixa.conversation_export"
SEED_TABLE = "seed_rest_api_dataset.conversation_export"
FLOOR_TABLE = "main.conversation_export"
BASELINE = "project_dagster"

BACKFILL_YEAR = 2023
BACKFILL_NOW = "2024-01-02T00:00:00+00:00"
BACKFILL_JOB = "dixa_conversation_export_job"
DEFINITIONS_MODULE = "conversation_assets.definitions"

SAMPLE_SECONDS = 0.05
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
GB = 1024 * MB
#: Variables of the caller's shell that would change what a contender does.
STRIPPED_ENV_PREFIXES = (
    "DIXA_",
    "DESTINATION",
    "DAGSTER_",
    "RUNTIME__",
    "EXTRACT__",
    "NORMALIZE__",
    "LOAD__",
    "DATA_WRITER__",
    "SOURCES__",
)

SEED_NOTES = (
    "seed_rest_api: the seed's `data_selector: \"data\"` finds nothing in the API's root array "
    '(dlt 1.31 loads 0 conversations without an error), so the benchmark uses `"$"`.',
    "seed_rest_api: the seed's `error_handler` block is not a dlt key: not applied.",
    "seed_rest_api: dlt's defaults (insert_values into DuckDB, default writer settings and "
    "normalize workers); run in an empty working folder so `.dlt/config.toml` does not apply; "
    "only telemetry is switched off.",
)
FLOOR_NOTE = (
    "duckdb_floor: one table with LIST/STRUCT columns (no child tables, no merge): the floor, "
    "not a like-for-like load."
)


# -- machine -----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """Cores, RAM, CPU model, Python and the versions of the libraries under test."""
    model = "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_kb = 0
    with suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    versions = {}
    for name in ("dlt", "dagster", "dagster-dlt", "duckdb"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cores": os.cpu_count(),
        "ram_gb": round(ram_kb / 1024 / 1024, 1),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git": git_state(),
    }


def git_state() -> dict[str, Any]:
    """The commit and the files changed in the work tree (others edit the package meanwhile)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "changed_files": changed}


# -- memory of a process tree -------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the sampler needs."""

    pid: int
    ppid: int
    session: int
    rss_bytes: int
    name: str = ""


def read_proc_stats() -> list[ProcStat]:
    """One ``/proc/PID/stat`` reading of every process (those that vanish meanwhile are left)."""
    stats = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                text = handle.read().decode(errors="replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        # After "pid (comm) ": state ppid pgrp session ... rss is field 24 of the whole line.
        rss = int(fields[21]) * PAGE_SIZE
        name = text[text.find("(") + 1 : text.rfind(")")]
        stats.append(ProcStat(int(entry), int(fields[1]), int(fields[3]), rss, name))
    return stats


def tree_members(root: int, stats: Sequence[ProcStat]) -> list[ProcStat]:
    """``root`` and its descendants, plus anything left in its session (a re-parented orphan)."""
    children: dict[int, list[ProcStat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    found = {stat.pid: stat for stat in stats if stat.pid == root or stat.session == root}
    stack, seen = [root], {root}
    while stack:
        for child in children.get(stack.pop(), []):
            if child.pid not in seen:
                seen.add(child.pid)
                found[child.pid] = child
                stack.append(child.pid)
    return list(found.values())


def kill_tree(root: int) -> None:
    """SIGKILL the contender's session (its process group) and any descendant outside it."""
    pids = [stat.pid for stat in tree_members(root, read_proc_stats())]
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class TreeWatch(threading.Thread):
    """Samples the RSS of a process tree every ``interval`` s; kills it past ``limit_bytes``."""

    def __init__(self, root: int, limit_bytes: int | None, interval: float = SAMPLE_SECONDS):
        super().__init__(name=f"tree-watch-{root}", daemon=True)
        self.root = root
        self.limit_bytes = limit_bytes
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        #: ``name:MB`` of each process at the peak: a short-lived fork shows up here.
        self.peak_members: list[str] = []
        self.samples = 0
        self.killed = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            if self.killed:
                return
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        """One reading of the tree; kill it when it is over the limit."""
        members = tree_members(self.root, read_proc_stats())
        total = sum(stat.rss_bytes for stat in members)
        self.samples += 1
        if total > self.peak_bytes:
            self.peak_bytes, self.peak_processes = total, len(members)
            self.peak_members = [f"{m.name}:{m.rss_bytes // MB}" for m in members]
        if self.limit_bytes is not None and total > self.limit_bytes:
            self.killed = True
            kill_tree(self.root)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# -- the sandbox API ----------------------------------------------------------------------------

_LOG_LINE = re.compile(r"sandbox: GET (?P<target>\S+) (?P<status>\d+) (?P<bytes>\d+)B")


@dataclass
class Served:
    """What the sandbox answered to export requests (read from its log)."""

    requests: int = 0
    statuses: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)


class Sandbox:
    """The sandbox API as a subprocess on a free loopback port, with an answer cache."""

    def __init__(
        self,
        per_day: int,
        now: str,
        cache_dir: Path,
        log_path: Path,
        array_repeat: int = 1,
        extra_args: Sequence[str] = (),
    ):
        self.extra_args = list(extra_args)
        self.per_day = per_day
        self.array_repeat = array_repeat
        self.now = now
        self.cache_dir = cache_dir
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self._log: TextIO | None = None
        self._log_offset = 0

    def __enter__(self) -> Sandbox:
        self._log = self.log_path.open("w")
        command = [
            sys.executable, "-m", "dixa_sandbox", "--host", "127.0.0.1",
            "--port", "0", "--per-day", str(self.per_day), "--data-start",
            DATA_START.isoformat(), "--seed", str(SEED), "--now", self.now,
            "--cache-dir", str(self.cache_dir), "--array-repeat", str(self.array_repeat),
            *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, "DIXA_API_TOKEN": TOKEN}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the sandbox did not start: {line!r}, see {self.log_path}")
        self.url = line.split()[-1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    @property
    def export_url(self) -> str:
        return self.url + "conversation_export"

    def prewarm(self, params: dict[str, int]) -> int:
        """Ask for ``params`` once so the cache file exists; return the body's size in bytes."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        size = 0
        with requests.get(
            self.export_url, params=params, headers=headers, stream=True, timeout=3600
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_content(1 << 20):
                size += len(chunk)
        # The sandbox logs a request just after its last byte: wait for that line, so that it
        # is not counted as the first contender's.
        deadline = time.monotonic() + 10
        while not self.served_since_last().requests and time.monotonic() < deadline:
            time.sleep(0.05)
        return size

    def served_since_last(self) -> Served:
        """Export requests logged since the last call (the sandbox logs once a request ends)."""
        served = Served()
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._log_offset += len(complete)
        text = complete.decode(errors="replace")
        for match in _LOG_LINE.finditer(text):
            if "/conversation_export" not in match["target"]:
                continue
            served.requests += 1
            served.statuses.append(int(match["status"]))
            served.bytes.append(int(match["bytes"]))
            served.targets.append(match["target"])
        return served


def now_ms(text: str) -> int:
    """An ISO timestamp with offset in ms since the epoch."""
    return to_ms(datetime.fromisoformat(text).astimezone(UTC))


def expected_conversations(per_day: int, window: Window, sandbox_now: str) -> int:
    """How many conversations the sandbox has in ``window`` (current versions, half-open)."""
    data = SandboxData(per_day=per_day, data_start=DATA_START, seed=SEED)
    return len(data.expected_ids(window.start_ms, window.end_ms, now_ms(sandbox_now)))


def calibrate(size: int, window: Window, sandbox_now: str) -> tuple[int, int]:
    """``(per_day, conversations)`` so that ``window`` holds about ``size`` conversations.

    Starts at ``size / days`` and corrects once or twice for the second versions that move into
    the window from earlier months.
    """
    days = (window.end_ms - window.start_ms) / 86_400_000
    per_day = max(1, round(size / days))
    count = expected_conversations(per_day, window, sandbox_now)
    for _ in range(2):
        better = max(1, round(per_day * size / max(count, 1)))
        if better == per_day:
            break
        per_day, count = better, expected_conversations(better, window, sandbox_now)
    return per_day, count


# -- contenders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One size: the sandbox serving it and the window every contender loads."""

    size: int
    per_day: int
    conversations: int
    base_url: str
    window: Window
    body_bytes: int

    @property
    def params(self) -> dict[str, int]:
        return self.window.query_params


@dataclass(frozen=True)
class Invocation:
    """How to start a contender and where to count what it loaded."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    database: Path
    table: str


def clean_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without settings that would change a contender, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(STRIPPED_ENV_PREFIXES)
    }
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**env, "TMPDIR": str(tmp), **extra}


def project_env(case: Case, workdir: Path, database: Path) -> dict[str, str]:
    """The DIXA_* settings and DuckDB destination of the project's two paths."""
    return clean_env(
        workdir,
        DIXA_API_TOKEN=TOKEN,
        DIXA_BASE_URL=case.base_url,
        DIXA_START_DATE=PROJECT_START_DATE,
        DESTINATION__DUCKDB__CREDENTIALS=str(database),
        DIXA_DLT_RUNS_DIR=str(workdir / "dlt_runs"),
    )


def dagster_home(workdir: Path) -> Path:
    """A fresh DAGSTER_HOME with the project's local instance config."""
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    return home


#: ``--fresh-instance``: time the first run on a new DAGSTER_HOME (its SQLite storage created by
#: the timed run) instead of a run on an instance that exists, as every run after the first.
FRESH_INSTANCE = False


def create_instance_storage(home: Path) -> None:
    """Create the instance's SQLite storage (runs, event-log index, schedules), untimed."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)


def venv_tool(name: str) -> str:
    """A console script of the driver's environment (the same venv as the driver)."""
    return str(VENV_BIN / name) if (VENV_BIN / name).exists() else name


def project_dagster(case: Case, workdir: Path) -> Invocation:
    """One partition materialized through Dagster's CLI (in process, no daemon)."""
    database = workdir / "conversations.duckdb"
    env = project_env(case, workdir, database)
    home = dagster_home(workdir)
    env["DAGSTER_HOME"] = str(home)
    if not FRESH_INSTANCE:
        create_instance_storage(home)
    argv = [
        venv_tool("dagster"), "asset", "materialize", "-m", DEFINITIONS_MODULE,
        "--select", "dixa/conversation_export", "--partition", PARTITION_KEY,
    ]  # fmt: skip
    return Invocation(argv, env, ROOT, database, PROJECT_TABLE)


def project_pipeline(case: Case, workdir: Path) -> Invocation:
    """The same window through ``python -m conversation_assets.load`` (no Dagster)."""
    database = workdir / "conversations.duckdb"
    argv = [
        sys.executable, "-m", "conversation_assets.load",
        "--start", WINDOW_START.isoformat(), "--end", WINDOW_END.isoformat(),
    ]  # fmt: skip
    return Invocation(argv, project_env(case, workdir, database), ROOT, database, PROJECT_TABLE)


def seed_rest_api(case: Case, workdir: Path) -> Invocation:
    """The seed's rest_api configuration with dlt's defaults, from an empty working folder."""
    database = workdir / "seed.duckdb"
    cwd = workdir / "cwd"
    cwd.mkdir()
    env = clean_env(workdir, DIXA_API_TOKEN=TOKEN, RUNTIME__DLTHUB_TELEMETRY="false")
    argv = [
        sys.executable, str(BENCH_DIR / "seed_rest_api.py"), "--base-url", case.base_url,
        "--after", str(case.params["updated_after"]),
        "--before", str(case.params["updated_before"]),
        "--database", str(database), "--pipelines-dir", str(workdir / "pipelines"),
    ]  # fmt: skip
    return Invocation(argv, env, cwd, database, SEED_TABLE)


def duckdb_floor(case: Case, workdir: Path) -> Invocation:
    """The same body streamed to a file and loaded with DuckDB's ``read_json``."""
    database = workdir / "floor.duckdb"
    env = clean_env(workdir, DIXA_API_TOKEN=TOKEN)
    argv = [
        sys.executable, str(BENCH_DIR / "duckdb_floor.py"),
        "--url", case.base_url + "conversation_export",
        "--after", str(case.params["updated_after"]),
        "--before", str(case.params["updated_before"]),
        "--body", str(workdir / "body.json"), "--database", str(database),
    ]  # fmt: skip
    return Invocation(argv, env, workdir, database, FLOOR_TABLE)


def on_the_arrow_path(
    contender: Callable[[Case, Path], Invocation],
) -> Callable[[Case, Path], Invocation]:
    """The same contender with ``DIXA_EXTRACT_FORMAT=arrow`` (the default is dlt's normalizer)."""

    def arrow_contender(case: Case, workdir: Path) -> Invocation:
        invocation = contender(case, workdir)
        return replace(invocation, env={**invocation.env, "DIXA_EXTRACT_FORMAT": "arrow"})

    arrow_contender.__doc__ = f"{contender.__doc__} (Arrow path)"
    return arrow_contender


CONTENDERS: dict[str, Callable[[Case, Path], Invocation]] = {
    "project_dagster": project_dagster,
    "project_pipeline": project_pipeline,
    "project_dagster_arrow": on_the_arrow_path(project_dagster),
    "project_pipeline_arrow": on_the_arrow_path(project_pipeline),
    "seed_rest_api": seed_rest_api,
    "duckdb_floor": duckdb_floor,
}


# -- one run ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One (size, contender, repeat) measurement."""

    size: int
    contender: str
    repeat: int
    status: str  # ok | failed | killed | skipped
    reason: str = ""
    seconds: float | None = None
    inner_seconds: float | None = None
    peak_rss_bytes: int | None = None
    peak_members: list[str] = field(default_factory=list)
    peak_processes: int | None = None
    samples: int | None = None
    expected_rows: int | None = None
    rows: int | None = None
    rows_ok: bool | None = None
    returncode: int | None = None
    requests: int | None = None
    same_body: bool | None = None
    details: dict[str, Any] | None = None
    #: The machine's 1-minute load average just before the run: others' work skews timings.
    load_before: float | None = None
    log_tail: list[str] | None = None


def count_rows(database: Path, table: str) -> tuple[int | None, str]:
    """Rows of ``table`` in ``database``, or ``None`` and why not."""
    if not database.exists():
        return None, f"no database file {database.name}"
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            row = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    except duckdb.Error as error:
        return None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return (int(row[0]) if row else 0), ""


def dataset_counts(database: Path) -> dict[str, int]:
    """Rows per table of the ``dixa`` dataset (dlt's own tables left out), plus distinct ids."""
    if not database.exists():
        return {}
    with duckdb.connect(str(database), read_only=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dixa' "
                "AND table_name NOT LIKE '_dlt%' ORDER BY table_name"
            ).fetchall()
        ]
        counts = {
            name: connection.execute(f"SELECT COUNT(*) FROM dixa.{name}").fetchone()[0]
            for name in names
        }
        if "conversation_export" in names:
            (distinct,) = connection.execute(
                f"SELECT COUNT(DISTINCT id) FROM {PROJECT_TABLE}"
            ).fetchone()
            counts["distinct ids"] = distinct
    return counts


def tail(path: Path, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of a log file."""
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def bench_details(stdout: Path) -> dict[str, Any] | None:
    """The ``BENCH {json}`` line a contender script printed, if any."""
    for line in reversed(tail(stdout, 50)):
        if line.startswith("BENCH "):
            with suppress(ValueError):
                return json.loads(line[6:])
    return None


_STEP_SUCCESS = re.compile(
    r'STEP_SUCCESS - Finished execution of step "(?P<step>[^"]+)" in (?P<t>\S+)\.'
)
_LOAD_SECONDS = re.compile(r"retries, (?P<t>[0-9.]+) s;")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def dagster_duration(text: str) -> float:
    """Seconds of a Dagster duration such as ``786ms``, ``8.19s`` or ``1m0s``."""
    return sum(
        float(number) * _UNIT_SECONDS[unit]
        for number, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", text)
    )


def inner_timing(contender: str, workdir: Path) -> tuple[float | None, dict[str, Any]]:
    """The contender's own time for the load, without interpreter start-up and orchestration.

    ``project_dagster``: the asset step's duration from Dagster's log (all steps are listed in
    the details); ``project_pipeline``: the seconds ``conversation_assets.load`` prints; the two
    scripts: what they print on their ``BENCH`` line.
    """
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    if contender.startswith("project_dagster"):
        text = stderr.read_text(errors="replace") + stdout.read_text(errors="replace")
        steps = {m["step"]: dagster_duration(m["t"]) for m in _STEP_SUCCESS.finditer(text)}
        return steps.get("dixa_conversation_export"), {"step_seconds": steps}
    if contender.startswith("project_pipeline"):
        match = _LOAD_SECONDS.search(stdout.read_text(errors="replace"))
        return (float(match["t"]) if match else None), {}
    details = bench_details(stdout) or {}
    if contender == "duckdb_floor" and "load_seconds" in details:
        return details["download_seconds"] + details["load_seconds"], details
    return details.get("seconds"), details


def execute(
    invocation: Invocation, workdir: Path, limit_bytes: int | None, timeout: float
) -> tuple[int, TreeWatch, float, str]:
    """Run one contender under the watch; return (exit code, watch, seconds, kill reason)."""
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            invocation.argv,
            cwd=invocation.cwd,
            env=invocation.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        watch = TreeWatch(process.pid, limit_bytes)
        watch.start()
        reason = ""
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            reason = f"killed: timeout after {timeout:g} s"
            kill_tree(process.pid)
            process.wait()
        seconds = time.monotonic() - started
        watch.stop()
        kill_tree(process.pid)  # anything the contender left running in its session
    if watch.killed:
        reason = f"killed: over {limit_bytes / GB:g} GB" if limit_bytes else "killed"
    return process.returncode, watch, seconds, reason


def run_one(
    case: Case,
    contender: str,
    repeat: int,
    sandbox: Sandbox,
    limit_bytes: int | None,
    timeout: float,
    keep: bool,
    scratch: Path,
) -> RunResult:
    """Run ``contender`` once on ``case`` in a fresh folder and check what it loaded."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{contender}-{case.size}-", dir=scratch))
    result = RunResult(case.size, contender, repeat, "ok", expected_rows=case.conversations)
    result.load_before = round(os.getloadavg()[0], 2)
    try:
        invocation = CONTENDERS[contender](case, workdir)
        returncode, watch, seconds, killed = execute(invocation, workdir, limit_bytes, timeout)
        served = sandbox.served_since_last()
        result.seconds = round(seconds, 3)
        result.peak_rss_bytes, result.peak_processes = watch.peak_bytes, watch.peak_processes
        result.peak_members = watch.peak_members
        result.samples, result.returncode = watch.samples, returncode
        result.requests = served.requests
        result.same_body = served.requests > 0 and all(
            status == 200 and size == case.body_bytes
            for status, size in zip(served.statuses, served.bytes, strict=True)
        )
        result.inner_seconds, result.details = inner_timing(contender, workdir)
        if killed:
            result.status, result.reason = "killed", killed
        elif returncode != 0:
            result.status, result.reason = "failed", f"exit code {returncode}"
        if result.status == "failed":
            result.log_tail = tail(workdir / "stderr.log") or tail(workdir / "stdout.log")
        if result.status != "ok":
            return result
        rows, why = count_rows(invocation.database, invocation.table)
        result.rows = rows
        result.rows_ok = rows == case.conversations
        if rows is None:
            result.reason = why
        if not result.rows_ok:
            result.log_tail = tail(workdir / "stderr.log") or tail(workdir / "stdout.log")
        return result
    finally:
        if keep:
            print(f"    kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# -- aggregation and output ---------------------------------------------------------------------


@dataclass
class Summary:
    """The repeats of one (size, contender), reduced to what the table shows."""

    size: int
    conversations: int
    contender: str
    runs: int
    ok_runs: int
    status: str
    median_seconds: float | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    median_inner_seconds: float | None = None
    conversations_per_second: float | None = None
    peak_rss_mb: float | None = None
    ratio_vs_baseline: float | None = None
    rows_ok: bool | None = None
    rows_seen: list[int | None] = field(default_factory=list)
    same_body: bool | None = None


def summarize(results: Sequence[RunResult], cases: dict[int, Case]) -> list[Summary]:
    """Median/min/max seconds and the highest peak RSS over the repeats of each pair."""
    summaries: list[Summary] = []
    keys = list(dict.fromkeys((r.size, r.contender) for r in results))
    for size, contender in keys:
        runs = [r for r in results if r.size == size and r.contender == contender]
        ok = [r for r in runs if r.status == "ok"]
        conversations = cases[size].conversations
        not_ok = [r for r in runs if r.status != "ok"]
        status = "ok" if not not_ok else f"{not_ok[0].reason or not_ok[0].status}"
        if ok and not_ok:
            status = f"{len(ok)} of {len(runs)} ok; {status}"
        summary = Summary(size, conversations, contender, len(runs), len(ok), status)
        timed = [r.seconds for r in ok if r.seconds is not None]
        if timed:
            summary.median_seconds = round(statistics.median(timed), 2)
            summary.min_seconds, summary.max_seconds = min(timed), max(timed)
            summary.conversations_per_second = round(conversations / statistics.median(timed))
        inner = [r.inner_seconds for r in ok if r.inner_seconds is not None]
        if inner:
            summary.median_inner_seconds = round(statistics.median(inner), 2)
        peaks = [r.peak_rss_bytes for r in runs if r.peak_rss_bytes]
        if peaks:
            summary.peak_rss_mb = round(max(peaks) / MB)
        if ok:
            summary.rows_ok = all(r.rows_ok for r in ok)
            summary.rows_seen = [r.rows for r in ok]
            summary.same_body = all(r.same_body for r in ok)
        summaries.append(summary)
    for summary in summaries:
        base = next(
            (s for s in summaries if s.size == summary.size and s.contender == BASELINE), None
        )
        if base and base.median_seconds and summary.median_seconds:
            summary.ratio_vs_baseline = round(summary.median_seconds / base.median_seconds, 2)
    return summaries


def rows_cell(summary: Summary) -> str:
    """``yes``, or a loud ``**NO**`` with what was counted."""
    if summary.rows_ok is None:
        return "-"
    if summary.rows_ok and summary.same_body:
        return "yes"
    if summary.rows_ok:
        return "yes (**body differed**)"
    seen = ", ".join("?" if n is None else f"{n:,}" for n in summary.rows_seen)
    return f"**NO: {seen} of {summary.conversations:,}**"


TABLE_COLUMNS = (
    ("size", "---:"),
    ("contender", "---"),
    ("median s", "---:"),
    ("min-max s", "---:"),
    ("inner s", "---:"),
    ("conversations/s", "---:"),
    ("peak RSS MB", "---:"),
    (f"s vs {BASELINE}", "---:"),
    ("rows ok?", "---"),
)


def table_cells(s: Summary) -> list[str]:
    """One row of the table; a contender with no successful run shows why in ``median s``."""
    peak = "" if s.peak_rss_mb is None else f"{s.peak_rss_mb:,.0f}"
    if s.median_seconds is None:
        return [f"{s.size:,}", s.contender, s.status, "", "", "", peak, "", rows_cell(s)]
    assert s.min_seconds is not None and s.max_seconds is not None
    inner = "" if s.median_inner_seconds is None else f"{s.median_inner_seconds:.1f}"
    ratio = "-" if s.ratio_vs_baseline is None else f"{s.ratio_vs_baseline:.2f}x"
    rows = rows_cell(s) if s.status == "ok" else f"{rows_cell(s)} ({s.status})"
    return [
        f"{s.size:,}",
        s.contender,
        f"{s.median_seconds:.1f}",
        f"{s.min_seconds:.1f}-{s.max_seconds:.1f}",
        inner,
        f"{s.conversations_per_second:,.0f}",
        peak,
        ratio,
        rows,
    ]


def markdown_table(summaries: Sequence[Summary]) -> str:
    """The results table in GitHub markdown."""
    lines = [
        "| " + " | ".join(name for name, _ in TABLE_COLUMNS) + " |",
        "|" + "|".join(align for _, align in TABLE_COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(table_cells(s)) + " |" for s in summaries]
    return "\n".join(lines)


def report_markdown(
    meta: dict[str, Any], cases: dict[int, Case], summaries: Sequence[Summary]
) -> str:
    """The whole markdown report: table, sizes, machine, command and notes."""
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        f"# Benchmark {meta['started_at']}",
        "",
        markdown_table(summaries),
        "",
        f"Median of {meta['repeat']} run(s) per row, wall seconds of the contender's process "
        "from start to exit (interpreter start-up and imports included); min-max over the runs; "
        "inner s = the load's own time as the contender reports it (project_dagster: the asset "
        "step alone; project_pipeline: the time `conversation_assets.load` prints); "
        "conversations/s = conversations / median s; peak RSS = the highest sum of RSS over "
        "the contender's process tree (sampled every 50 ms) in any run; "
        f"s vs {BASELINE} = median s / {BASELINE}'s median s.",
        "",
        f"Sizes (window April 2024, one request; sandbox clock {SANDBOX_NOW}, seed {SEED}, "
        f"arrays repeated {meta['array_repeat']}x):",
        "",
    ]
    for case in cases.values():
        lines.append(
            f"- {case.size:,}: {case.conversations:,} conversations (per_day {case.per_day:,}), "
            f"body {case.body_bytes / MB:,.0f} MB"
        )
    lines += [
        "",
        f"Machine: {machine['cores']} cores, {machine['ram_gb']} GB RAM, {machine['cpu_model']}; "
        f"Python {machine['python']}; {versions}; git {machine['git']['commit']} "
        f"({len(machine['git']['changed_files'])} changed files in the work tree).",
        "",
        f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s in all).",
        "",
        f"Load average (1/5/15 min) at start {meta['load_average_at_start']}, at end "
        f"{meta['load_average_at_end']}; each run's 1-minute load before it is in the JSON "
        "(`load_before`): anything else running on the machine skews the timings.",
        "",
        "Notes:",
        "",
        *[f"- {note}" for note in meta["notes"]],
    ]
    return "\n".join(lines) + "\n"


def write_results(out: Path, stem: str, markdown: str, raw: dict[str, Any]) -> None:
    """``{stem}.md`` and ``{stem}.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")


# -- the single-window benchmark ----------------------------------------------------------------


def plan_skip(contender: str, size: int, args: argparse.Namespace) -> str:
    """Why ``contender`` is not run at ``size`` (empty: it runs)."""
    if contender == "seed_rest_api" and size > args.seed_max_size:
        return (
            f"skipped: above {args.seed_max_size:,} (dlt's rest_api holds the whole body many "
            "times over: 14.9 GB measured at 50,000); raise --seed-max-size to try"
        )
    return ""


@contextmanager
def scratch_dir(keep: bool) -> Iterator[Path]:
    """A temporary folder for the cache, logs and contender folders."""
    path = Path(tempfile.mkdtemp(prefix="conversation-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_sizes(args: argparse.Namespace, scratch: Path) -> tuple[dict[int, Case], list[RunResult]]:
    """Every (size, contender) ``--repeat`` times, contenders interleaved within a repeat.

    A contender killed for memory is not run again at that size or any larger one.
    """
    window = Window(to_ms(WINDOW_START), to_ms(WINDOW_END))
    cache_dir = args.cache_dir or scratch / "cache"
    limit = int(args.memory_limit_gb * GB) if args.memory_limit_gb else None
    cases: dict[int, Case] = {}
    results: list[RunResult] = []
    given_up: dict[str, str] = {}  # contender -> why it is not run any more
    for size in args.sizes:
        per_day, conversations = calibrate(size, window, SANDBOX_NOW)
        log_path = scratch / f"sandbox-{size}.log"
        with Sandbox(per_day, SANDBOX_NOW, cache_dir, log_path, args.array_repeat) as sandbox:
            body_bytes = sandbox.prewarm(window.query_params)
            case = Case(size, per_day, conversations, sandbox.url, window, body_bytes)
            cases[size] = case
            print(
                f"size {size:,}: {conversations:,} conversations (per_day {per_day}), "
                f"body {body_bytes / MB:,.0f} MB, sandbox {sandbox.url}",
                flush=True,
            )
            for contender in args.contenders:
                reason = plan_skip(contender, size, args) or given_up.get(contender, "")
                if reason:
                    results.append(RunResult(size, contender, 1, "skipped", reason))
                    print(f"  {contender}: {reason}", flush=True)
            for repeat in range(1, args.repeat + 1):
                for contender in args.contenders:
                    if plan_skip(contender, size, args) or contender in given_up:
                        continue
                    result = run_one(
                        case, contender, repeat, sandbox, limit, args.timeout, args.keep, scratch
                    )
                    results.append(result)
                    print_result(result)
                    if result.status == "killed":
                        given_up[contender] = f"skipped: {result.reason} at {size:,}"
    return cases, results


def print_result(result: RunResult) -> None:
    """One progress line per run."""
    peak = f"{(result.peak_rss_bytes or 0) / MB:,.0f} MB"
    rows = "" if result.rows is None else f", rows {result.rows:,}/{result.expected_rows:,}"
    mark = "" if result.rows_ok in (True, None) else "  <<< ROW COUNT MISMATCH"
    status = result.status if not result.reason else f"{result.status} ({result.reason})"
    print(
        f"  [{result.repeat}] {result.contender}: {status}, {result.seconds} s, peak {peak}"
        f"{rows}, {result.requests} request(s){mark}",
        flush=True,
    )
    for line in result.log_tail or []:
        print(f"      | {line}", flush=True)


def single_window_benchmark(args: argparse.Namespace, command: str) -> int:
    """Run the sizes, write ``latest.md``/``latest.json``; exit 1 on a failure or mismatch."""
    started_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = machine_info()
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    with scratch_dir(args.keep) as scratch:
        cases, results = run_sizes(args, scratch)
    order = {name: i for i, name in enumerate(CONTENDERS)}
    results.sort(key=lambda r: (r.size, order[r.contender], r.repeat))
    summaries = summarize(results, cases)
    notes: list[str] = []
    if any(r.contender == "seed_rest_api" for r in results):
        notes += SEED_NOTES
    if any(r.contender == "duckdb_floor" for r in results):
        notes.append(FLOOR_NOTE)
    if any(r.contender == "project_dagster" for r in results):
        notes.append(
            "project_dagster: `dagster asset materialize` (no daemon) runs the asset and the "
            "checks Dagster selects with it, in one process (the project's in-process "
            "executor); every step's seconds are in the JSON (`details.step_seconds`). "
            + (
                "Each run on a new DAGSTER_HOME: it creates the SQLite storage "
                "(`--fresh-instance`)."
                if FRESH_INSTANCE
                else "The DAGSTER_HOME's SQLite storage exists before the timed run, as for "
                "every run but an instance's first (`--fresh-instance` times that one)."
            )
        )
    meta = {
        "started_at": started_at,
        "command": command,
        "repeat": args.repeat,
        "array_repeat": args.array_repeat,
        "memory_limit_gb": args.memory_limit_gb,
        "machine": machine,
        "total_seconds": round(time.monotonic() - started, 1),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "notes": notes,
    }
    markdown = report_markdown(meta, cases, summaries)
    raw = {
        **meta,
        "window": {"start": WINDOW_START, "end": WINDOW_END, "sandbox_now": SANDBOX_NOW},
        "cases": [asdict(case) for case in cases.values()],
        "summaries": [asdict(s) for s in summaries],
        "runs": [asdict(r) for r in results],
    }
    write_results(args.out, "latest", markdown, raw)
    print("\n" + markdown)
    print(f"written: {args.out / 'latest.md'} and {args.out / 'latest.json'}")
    bad = [r for r in results if r.status == "failed" or r.rows_ok is False]
    bad += [r for r in results if r.status == "ok" and r.same_body is False]
    for r in bad:
        print(
            f"!!! {r.contender} at {r.size:,} (run {r.repeat}): {r.status} {r.reason} "
            f"rows {r.rows} of {r.expected_rows}, same body: {r.same_body}",
            file=sys.stderr,
        )
    return 1 if bad else 0


# -- backfill through the daemon ----------------------------------------------------------------


def month_window(year: int, month: int) -> Window:
    """The half-open window of a calendar month (UTC)."""
    following = date(year + month // 12, month % 12 + 1, 1)
    return Window(to_ms(date(year, month, 1)), to_ms(following))


@dataclass
class BackfillOutcome:
    """What the daemon did with the backfill, read from the instance and the daemon's tree."""

    launched_at: float  # epoch seconds, just before `dagster job backfill`
    records: list[Any]  # the backfill's RunRecords
    other_runs: list[str]  # job names of runs launched meanwhile that are not the backfill's
    peak_rss_bytes: int
    killed: bool


def wait_for_daemon(instance: Any, process: subprocess.Popen[bytes], timeout: float) -> float:
    """Block until the daemon's backfill and run-queue daemons have sent a heartbeat."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with {process.returncode}")
        beats = instance.get_daemon_heartbeats()
        if {"BACKFILL", "QUEUED_RUN_COORDINATOR"} <= set(beats):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"dagster-daemon sent no heartbeat in {timeout:g} s")


def wait_for_runs(
    instance: Any, backfill_id: str, count: int, timeout: float, watch: TreeWatch
) -> list[Any]:
    """Poll the backfill's runs until ``count`` of them have finished (or it times out)."""
    from dagster import RunsFilter

    deadline = time.monotonic() + timeout
    done_states = {"SUCCESS", "FAILURE", "CANCELED"}
    reported = 0
    while True:
        records = instance.get_run_records(
            filters=RunsFilter(tags={"dagster/backfill": backfill_id})
        )
        finished = [r for r in records if r.dagster_run.status.value in done_states]
        if len(finished) > reported:
            reported = len(finished)
            print(f"  {reported}/{count} runs finished", flush=True)
        if len(finished) >= count or watch.killed or time.monotonic() > deadline:
            return list(records)
        time.sleep(1.0)


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon's session, give it 30 s, then kill whatever is left of it."""
    with suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        daemon.wait(timeout=30)
    kill_tree(daemon.pid)
    daemon.wait()


def run_backfill(
    env: dict[str, str], home: Path, keys: Sequence[str], log: Path, args: argparse.Namespace
) -> BackfillOutcome:
    """Start ``dagster-daemon``, launch the backfill, and wait for its runs to finish."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    limit = int(args.memory_limit_gb * GB) if args.memory_limit_gb else None
    with log.open("wb") as daemon_log:
        daemon = subprocess.Popen(
            [venv_tool("dagster-daemon"), "run", "-m", DEFINITIONS_MODULE],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=daemon_log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        watch = TreeWatch(daemon.pid, limit)
        watch.start()
        try:
            print(f"  daemon ready in {wait_for_daemon(instance, daemon, 300):.1f} s", flush=True)
            launched_at = time.time()
            command = [
                venv_tool("dagster"), "job", "backfill", "-m", DEFINITIONS_MODULE,
                "-j", BACKFILL_JOB, "--partitions", ",".join(keys), "--noprompt",
            ]  # fmt: skip
            launched = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            backfills = instance.get_backfills()
            if launched.returncode != 0 or not backfills:
                raise RuntimeError(f"dagster job backfill failed: {launched.stderr[-2000:]}")
            backfill_id = backfills[0].backfill_id
            print(f"  backfill {backfill_id} launched", flush=True)
            records = wait_for_runs(instance, backfill_id, len(keys), args.timeout, watch)
            others = [
                record.dagster_run.job_name
                for record in instance.get_run_records()
                if record.dagster_run.tags.get("dagster/backfill") != backfill_id
                and record.create_timestamp.timestamp() >= launched_at
            ]
        finally:
            watch.stop()
            stop_daemon(daemon)
    return BackfillOutcome(launched_at, records, others, watch.peak_bytes, watch.killed)


def run_timeline(intervals: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """How long at least one run was running, the most runs at once, and the idle gaps.

    A gap is the time from the end of every earlier run to the start of the next one: the
    daemon's own overhead between two partitions when the runs go one at a time.
    """
    busy, covered_to, running, most, gaps = 0.0, float("-inf"), 0, 0, []
    for start, end in sorted(intervals):
        if covered_to != float("-inf") and start >= covered_to:
            gaps.append(start - covered_to)
        busy += max(0.0, end - max(start, covered_to))
        covered_to = max(covered_to, end)
    for _, change in sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals]):
        running += change
        most = max(most, running)
    return {
        "busy_seconds": round(busy, 1),
        "max_concurrent_runs": most,
        "gaps_between_runs": len(gaps),
        "median_gap_seconds": round(statistics.median(gaps), 1) if gaps else None,
    }


_ERROR_LINE = re.compile(r"^([\w.]+(?:Exception|Error)): (.{0,240})", re.MULTILINE)


def distinct_errors(log: Path, limit: int = 5) -> list[str]:
    """The first few distinct exception lines of a log (for a failed run's reason)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = dict.fromkeys(f"{m[1]}: {m[2]}" for m in _ERROR_LINE.finditer(text))
    return list(found)[:limit]


def run_table(records: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per backfill run, in start order: partition, status and timings."""
    rows = []
    for record in sorted(records, key=lambda r: r.start_time or 0):
        run = record.dagster_run
        timed = record.start_time is not None and record.end_time is not None
        rows.append(
            {
                "partition": run.tags.get("dagster/partition"),
                "run_id": run.run_id,
                "status": run.status.value,
                "queued_at": record.create_timestamp.timestamp(),
                "start_time": record.start_time,
                "end_time": record.end_time,
                "seconds": round(record.end_time - record.start_time, 2) if timed else None,
            }
        )
    return rows


def backfill_summary(
    outcome: BackfillOutcome,
    expected: dict[str, int],
    rows: int | None,
    errors: list[str],
    pool: int = 1,
) -> dict[str, Any]:
    """Total wall time vs the runs' own time, concurrency, memory, row count and problems."""
    runs = run_table(outcome.records)
    timed = [(r["start_time"], r["end_time"]) for r in runs if r["seconds"] is not None]
    total = max(end for _, end in timed) - outcome.launched_at if timed else None
    run_sum = sum(end - start for start, end in timed) if timed else None
    timeline = run_timeline(timed)
    problems = [
        f"run {r['run_id']} for {r['partition']}: {r['status']}"
        for r in runs
        if r["status"] != "SUCCESS"
    ]
    if len(runs) < len(expected):
        problems.append(f"only {len(runs)} of {len(expected)} runs were launched")
    if outcome.killed:
        problems.append("killed: the daemon's tree went over the memory limit")
    if timeline["max_concurrent_runs"] > pool:
        problems.append(
            f"up to {timeline['max_concurrent_runs']} backfill runs ran at once, although the "
            f"instance's pool limit is {pool}"
        )
    conversations = sum(expected.values())
    if rows != conversations:
        problems.append(f"rows {rows} of {conversations} in {PROJECT_TABLE}")
    partitions = len(expected)
    return {
        "pool": pool,
        "partitions": partitions,
        "conversations": conversations,
        "conversations_by_partition": expected,
        "runs_finished": len(timed),
        "total_wall_seconds": None if total is None else round(total, 1),
        "sum_run_seconds": None if run_sum is None else round(run_sum, 1),
        "overhead_seconds_per_partition": (
            None if total is None or run_sum is None else round((total - run_sum) / partitions, 1)
        ),
        "first_run_started_after_seconds": (
            round(min(start for start, _ in timed) - outcome.launched_at, 1) if timed else None
        ),
        **timeline,
        "peak_rss_mb": round(outcome.peak_rss_bytes / MB),
        "other_runs_meanwhile": {
            name: outcome.other_runs.count(name) for name in sorted(set(outcome.other_runs))
        },
        "rows": rows,
        "rows_ok": rows == conversations,
        "problems": problems,
        "errors_in_daemon_log": errors,
        "runs": runs,
    }


def latency_args(args: argparse.Namespace) -> list[str]:
    """The sandbox's latency model from the options (empty: the sandbox answers at once)."""
    extra = []
    if args.first_byte_seconds:
        extra += ["--first-byte-seconds", f"{args.first_byte_seconds:g}"]
    if args.bandwidth_mb:
        extra += ["--bandwidth-mb", f"{args.bandwidth_mb:g}"]
    if args.rate_limit:
        extra += ["--rate-limit", str(args.rate_limit)]
    return extra


def backfill_with_pool(
    pool: int,
    args: argparse.Namespace,
    scratch: Path,
    cache_dir: Path,
    per_day: int,
    expected: dict[str, int],
) -> tuple[dict[str, Any], dict[str, int]]:
    """One backfill of the 12 months with the pool limit ``pool``, on a fresh instance, file
    and sandbox (the rate limiter starts empty); its summary and rows per table."""
    workdir = scratch / f"backfill-pool-{pool}"
    workdir.mkdir()
    log = scratch / f"sandbox-pool-{pool}.log"
    with Sandbox(per_day, BACKFILL_NOW, cache_dir, log, extra_args=latency_args(args)) as sandbox:
        database = workdir / "conversations.duckdb"
        home = dagster_home(workdir)
        env = clean_env(
            workdir,
            DAGSTER_HOME=str(home),
            DIXA_API_TOKEN=TOKEN,
            DIXA_BASE_URL=sandbox.url,
            DIXA_START_DATE=f"{BACKFILL_YEAR}-01-01",
            DESTINATION__DUCKDB__CREDENTIALS=str(database),
            DIXA_DLT_RUNS_DIR=str(workdir / "dlt_runs"),
            # Its catch-up runs of the wall clock's month are not part of the backfill.
            DIXA_FRESHNESS_SENSOR="off",
        )
        # As the README says for a new instance: Dagster 1.13.27 ignores default_limit for
        # the first runs of a pool it has not seen yet.
        subprocess.run(
            [str(VENV_BIN / "dagster"), "instance", "concurrency", "set", "dixa_duckdb", str(pool)],
            env=env,
            check=True,
            capture_output=True,
        )
        print(f"pool {pool}: sandbox {sandbox.url} {' '.join(latency_args(args))}", flush=True)
        outcome = run_backfill(env, home, list(expected), workdir / "daemon.log", args)
        served = sandbox.served_since_last()
    rows, _ = count_rows(database, PROJECT_TABLE)
    counts = dataset_counts(database)
    summary = backfill_summary(
        outcome, expected, rows, distinct_errors(workdir / "daemon.log"), pool
    )
    summary["requests"] = served.requests
    summary["refused_429"] = served.statuses.count(429)
    if counts.get("distinct ids") != sum(expected.values()):
        summary["problems"].append(f"distinct ids {counts.get('distinct ids')}")
    return summary, counts


def backfill_benchmark(args: argparse.Namespace, command: str) -> int:
    """12 monthly partitions through ``dagster-daemon``, once per pool limit in ``--pools``."""
    started_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = machine_info()
    windows = {f"{BACKFILL_YEAR}-{m:02d}-01": month_window(BACKFILL_YEAR, m) for m in range(1, 13)}
    per_day = max(1, round(args.backfill_per_month * 12 / 365))
    data = SandboxData(per_day=per_day, data_start=DATA_START, seed=SEED)
    clock = now_ms(BACKFILL_NOW)
    expected = {
        key: len(data.expected_ids(w.start_ms, w.end_ms, clock)) for key, w in windows.items()
    }
    summaries: list[dict[str, Any]] = []
    counts: dict[int, dict[str, int]] = {}
    with scratch_dir(args.keep) as scratch:
        cache_dir = args.cache_dir or scratch / "cache"
        # The cache is written by a sandbox without the latency model: the runs' sandboxes
        # (with it) replay the same bytes.
        with Sandbox(per_day, BACKFILL_NOW, cache_dir, scratch / "sandbox.log") as sandbox:
            # The project's own request windows: a 31-day month takes two requests.
            body_bytes = [
                sandbox.prewarm(request.query_params)
                for w in windows.values()
                for request in request_windows(w.start_ms, w.end_ms, MAX_BATCH_SIZE_DAYS)
            ]
        print(
            f"backfill: {len(windows)} partitions of {BACKFILL_YEAR}, "
            f"{sum(expected.values()):,} conversations (per_day {per_day}), "
            f"{sum(body_bytes) / MB:,.0f} MB in {len(body_bytes)} requests; pools {args.pools}",
            flush=True,
        )
        for pool in args.pools:
            summary, counts[pool] = backfill_with_pool(
                pool, args, scratch, cache_dir, per_day, expected
            )
            summaries.append(summary)
    reference = counts[args.pools[0]]
    for summary in summaries:
        if counts[summary["pool"]] != reference:
            summary["problems"].append(
                f"rows per table differ from pool {args.pools[0]}: {counts[summary['pool']]}"
            )
    meta = {
        "started_at": started_at,
        "command": command,
        "per_day": per_day,
        "sandbox_now": BACKFILL_NOW,
        "latency": latency_args(args),
        "body_mb": round(sum(body_bytes) / MB),
        "requests_per_backfill": len(body_bytes),
        "machine": machine,
        "total_seconds": round(time.monotonic() - started, 1),
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "rows_by_table": reference,
    }
    markdown = backfill_markdown(meta, summaries)
    write_results(args.out, "backfill", markdown, {**meta, "summaries": summaries})
    print("\n" + markdown)
    print(f"written: {args.out / 'backfill.md'} and {args.out / 'backfill.json'}")
    problems = [p for summary in summaries for p in summary["problems"]]
    for problem in problems:
        print(f"!!! {problem}", file=sys.stderr)
    return 1 if problems else 0


def backfill_markdown(meta: dict[str, Any], summaries: Sequence[dict[str, Any]]) -> str:
    """The backfill report: one line per pool limit, then one line per run."""
    machine = meta["machine"]
    first = summaries[0]
    lines = [
        f"# Backfill benchmark {meta['started_at']}",
        "",
        f"Latency model: {' '.join(meta['latency']) or 'off'}; {meta['body_mb']:,} MB in "
        f"{meta['requests_per_backfill']} requests.",
        "",
        "| pool | partitions | conversations | total wall s | vs first | sum of run s "
        "| overhead s/partition | first run after s | median gap s | most runs at once "
        "| requests (429) | peak RSS MB | rows ok? |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        rows = "yes" if s["rows_ok"] and not s["problems"] else f"**NO: {s['rows']}**"
        speedup = (
            f"{first['total_wall_seconds'] / s['total_wall_seconds']:.2f}x"
            if s["total_wall_seconds"] and first["total_wall_seconds"]
            else ""
        )
        lines.append(
            f"| {s['pool']} | {s['partitions']} | {s['conversations']:,} "
            f"| {s['total_wall_seconds']} | {speedup} | {s['sum_run_seconds']} "
            f"| {s['overhead_seconds_per_partition']} "
            f"| {s['first_run_started_after_seconds']} | {s['median_gap_seconds']} "
            f"| {s['max_concurrent_runs']} | {s['requests']} ({s['refused_429']}) "
            f"| {s['peak_rss_mb']:,} | {rows} |"
        )
    lines += [
        "",
        "Total wall = from launching `dagster job backfill` to the end of the last run; vs first "
        "= the first pool's total wall / this one's; sum of run s = the runs' own start-to-end "
        "times from their run records; overhead = (total wall - sum of run s) / partitions, "
        "meaningful only when the runs did not overlap (most runs at once = 1); median gap = "
        "from the end of one run to the start of the next where no run was running; requests "
        "= export requests the sandbox answered (429: refused by its rate limit); peak RSS = "
        "the daemon's whole process tree (code server and run workers included). Rows ok = "
        "the root table holds each expected id once and every table has the same row count "
        f"in every pool: {meta['rows_by_table']}.",
    ]
    for s in summaries:
        lines += [
            "",
            f"Pool {s['pool']}:",
            "",
            "| partition | status | run s |",
            "|---|---|---:|",
            *[f"| {r['partition']} | {r['status']} | {r['seconds']} |" for r in s["runs"]],
        ]
        if s["other_runs_meanwhile"]:
            lines += ["", f"Other runs launched meanwhile: {s['other_runs_meanwhile']}."]
        if s["problems"]:
            lines += ["", "Problems:", "", *[f"- **{p}**" for p in s["problems"]]]
        if s["errors_in_daemon_log"]:
            errors = s["errors_in_daemon_log"]
            lines += ["", "Errors in the daemon's log:", "", *[f"- `{e}`" for e in errors]]
    lines += [
        "",
        f"Machine: {machine['cores']} cores, {machine['ram_gb']} GB RAM, {machine['cpu_model']}; "
        f"git {machine['git']['commit']}; load average at end {meta['load_average_at_end']}.",
        "",
        f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s in all).",
    ]
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    """``50000,200000`` -> ``[50000, 200000]``."""
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive whole numbers")
    return sizes


def parse_contenders(text: str) -> list[str]:
    """A comma-separated subset of the contenders, kept in the table's order."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown contender(s) {unknown}; choose from {', '.join(CONTENDERS)}"
        )
    return [name for name in CONTENDERS if name in names]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("50000,200000"),
        help="conversations in the window, comma-separated (default 50000,200000)",
    )
    parser.add_argument(
        "--contenders",
        type=parse_contenders,
        default=list(CONTENDERS),
        help=f"subset of {', '.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per (size, contender); the table shows the median (default 3)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=16.0,
        help="kill a contender whose process tree RSS passes this (0: no limit)",
    )
    parser.add_argument(
        "--array-repeat",
        type=int,
        default=1,
        help="repeat every array of a record N times (child rows: ~8.7 a conversation at 1)",
    )
    parser.add_argument(
        "--seed-max-size",
        type=int,
        default=200_000,
        help="skip seed_rest_api above this size (default 200000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds before a contender (or the whole backfill) is killed",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for latest.md/latest.json (default benchmarks/results)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="keep the sandbox's answer cache here across runs (default: temp)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folders (logs, DuckDB files) for inspection",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="instead: 12 monthly partitions of 2023 through dagster-daemon",
    )
    parser.add_argument(
        "--backfill-per-month",
        type=int,
        default=50_000,
        help="conversations per month in --backfill mode (default 50000)",
    )
    parser.add_argument(
        "--fresh-instance",
        action="store_true",
        help="project_dagster: time the first run on a new DAGSTER_HOME (storage created in it)",
    )
    parser.add_argument(
        "--pools",
        type=parse_sizes,
        default=[1],
        help="--backfill: the pool limits to compare, comma-separated (e.g. 1,3; default 1)",
    )
    parser.add_argument(
        "--first-byte-seconds",
        type=float,
        default=0.0,
        help="--backfill: the sandbox waits this long before each answer (default 0)",
    )
    parser.add_argument(
        "--bandwidth-mb",
        type=float,
        default=0.0,
        help="--backfill: MB/s of each answer's body (default 0: unlimited)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="--backfill: export requests a minute the sandbox allows (default 0: no limit)",
    )
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the chosen benchmark."""
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    raw_argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/run.py", *raw_argv])
    global FRESH_INSTANCE
    FRESH_INSTANCE = args.fresh_instance
    if args.backfill:
        return backfill_benchmark(args, command)
    return single_window_benchmark(args, command)


if __name__ == "__main__":
    sys.exit(main())
