"""Scenarios for the oracle test: conversation histories as Hypothesis strategies, and a runner.

A :class:`Scenario` is what the API holds at first, the updates that land between two requests,
the batch size and bounds, and the partition runs (in order, re-runs included). The runner
serves it from the sandbox (:class:`ScriptedData`), loads the partitions with the project's
pipeline (or the Dagster asset), and after every run compares every table with the oracle.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dlt.pipeline import trace as dlt_trace
from hypothesis import strategies as st

from conversation_assets.dixa.windows import format_ms, request_windows, to_ms
from conversation_assets_tests.support import oracle
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.oracle import Finding, Record
from dixa_sandbox import ScriptedData, Update

MONTHS: tuple[str, ...] = ("2024-01-01", "2024-02-01", "2024-03-01")
START_MS = to_ms(date(2024, 1, 1))
END_MS = to_ms(date(2024, 4, 1))  # the last partition's end; the sandbox clock is later
#: An undeclared field whose type changes (an integer, then 4.5 or "high").
TYPE_CHANGING_FIELD = "priority_level"
FIRST_ID = 7001  # ids an error message cannot name by accident


def requests_per_run(month: str, batch_size: int) -> int:
    window = month_window(month)
    return len(list(request_windows(window.start_ms, window.end_ms, batch_size)))


def edges(batch_size: int) -> list[int]:
    """Partition edges and request edges (every ``batch_size`` days from a month's start)."""
    found = set()
    for month in MONTHS:
        window = month_window(month)
        for request in request_windows(window.start_ms, window.end_ms, batch_size):
            found |= {request.start_ms, request.end_ms}
    return sorted(found)


def bucket(updated_at: int) -> int:
    """The partition a timestamp belongs to: 0-2, or -1 before and 3 after the loaded range."""
    if updated_at < START_MS:
        return -1
    return sum(updated_at >= month_window(month).end_ms for month in MONTHS)


@dataclass
class Scenario:
    """A history of the API's data and the runs that load it."""

    batch_size: int
    bounds: str
    initial: list[Record]
    updates: list[Update]
    runs: list[str]
    final_order: list[str]
    versions: list[Record] = field(repr=False, default_factory=list)
    name: str = ""  # for the hand-made cases: what they reproduce

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints a falsifying example: the readable timeline."""
        printer.text(f"Scenario(\n{self.timeline()}\n)")

    def timeline(self) -> str:
        """A readable account: when each version exists, and the runs."""
        lines = [f"{self.name}: " if self.name else ""]
        lines[0] += f"batch_size={self.batch_size} bounds={self.bounds}"
        for record in self.initial:
            lines.append(f"  initially  {_describe(record)}")
        for update in self.updates:
            lines.append(f"  after request {update.after_request}: {_describe(update.record)}")
        lines.append(f"  runs {self.runs}, then final pass {self.final_order}")
        return "\n".join(lines)


def _describe(record: Record) -> str:
    rest = {k: v for k, v in record.items() if k not in ("id", "updated_at")}
    return f"id={record['id']} updated_at={format_ms(record['updated_at'])} {rest}"


# -- strategies ----------------------------------------------------------------------------------

WORDS = st.sampled_from(["a", "b", "ü", "x y"])


def _array(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.lists(item, max_size=3))


RATING = st.fixed_dictionaries(
    {"rating_score": st.one_of(st.none(), st.integers(1, 5)), "rating_type": WORDS},
    optional={"rating_agent_id": WORDS},
)
TAG_INFO = st.fixed_dictionaries(
    {"id": WORDS, "name": WORDS, "is_deactivated": st.booleans()}, optional={"color": WORDS}
)
CUSTOM_FIELD = st.fixed_dictionaries(
    {
        "attribute_id": WORDS,
        "value": st.one_of(st.none(), WORDS, st.lists(WORDS, max_size=3), st.booleans()),
    },
    optional={"label": WORDS},
)
BODY = st.fixed_dictionaries(
    {
        "status": st.one_of(st.none(), WORDS),
        "tags": _array(WORDS),
        "ratings": _array(RATING),
        "tags_info": _array(TAG_INFO),
        "custom_fields": _array(CUSTOM_FIELD),
    },
    optional={
        "requester_additional_emails": _array(WORDS),
        "closed_at": st.integers(0, 2**40),
        "surprise": WORDS,  # a new top-level key
        TYPE_CHANGING_FIELD: st.sampled_from([3, 7, 4.5, "high"]),
    },
)


def scenario_frame(
    draw: st.DrawFn, max_runs: int
) -> tuple[int, str, st.SearchStrategy[int], list[str], int]:
    """What every generated history draws first: a batch size, the API's bound semantics,
    instants (on request edges +-1 ms, or anywhere around the loaded months), the months the
    runs load, and how many requests those runs make."""
    batch_size = draw(st.integers(1, 31))
    bounds = draw(st.sampled_from(["exclusive", "inclusive"]))
    on_edges = st.builds(
        lambda edge, offset: edge + offset,
        st.sampled_from(edges(batch_size)),
        st.sampled_from([-1, 0, 1]),
    )
    instants = st.one_of(on_edges, st.integers(START_MS - 2, END_MS + 1))
    runs = draw(st.lists(st.sampled_from(MONTHS), min_size=1, max_size=max_runs))
    total_requests = sum(requests_per_run(month, batch_size) for month in runs)
    return batch_size, bounds, instants, runs, total_requests


@st.composite
def scenarios(draw: st.DrawFn, max_ids: int = 5, max_runs: int = 3) -> Scenario:
    """Histories of up to ``max_ids`` conversations, loaded by up to ``max_runs`` runs first."""
    batch_size, bounds, instants, runs, total_requests = scenario_frame(draw, max_runs)
    initial: list[Record] = []
    updates: list[Update] = []
    versions: list[Record] = []
    for number in range(draw(st.integers(1, max_ids))):
        times = sorted(draw(st.lists(instants, min_size=1, max_size=3, unique=True)))
        # Only the first version may lie outside the loaded range: a later one outside it
        # would leave an earlier, loaded version behind that no partition replaces.
        times = times[:1] + [t for t in times[1:] if START_MS <= t < END_MS]
        records = [
            {"id": FIRST_ID + number, "updated_at": t, **draw(BODY, label="body")} for t in times
        ]
        versions += records
        duplicate = (
            len(records) > 1 and bucket(times[0]) == bucket(times[1]) and draw(st.booleans())
        )
        served_together = 2 if duplicate else 1
        initial += records[:served_together]
        later = records[served_together:]
        at = sorted(
            draw(
                st.lists(
                    st.integers(1, total_requests + 1), min_size=len(later), max_size=len(later)
                )
            )
        )
        updates += [Update(k, record) for k, record in zip(at, later, strict=True)]
    final_order = draw(st.permutations(MONTHS))
    return Scenario(batch_size, bounds, initial, updates, runs, list(final_order), versions)


# -- observing which load path ran -----------------------------------------------------------


class ExtractFormats:
    """A dlt tracking module (``dlt.pipeline.trace.TRACKING_MODULES``, "plug in your own").

    Notes the file format of every data file the *extract* step wrote: dlt writes records
    handed to its normalizer as ``typed-jsonl`` and Arrow tables as ``parquet``, so this tells
    which path really ran, also inside a Dagster run.
    """

    def __init__(self) -> None:
        self.formats: set[str] = set()

    def on_start_trace(self, *args: Any) -> None:
        pass

    def on_start_trace_step(self, *args: Any) -> None:
        pass

    def on_end_trace(self, *args: Any) -> None:
        pass

    def on_end_trace_step(self, trace: Any, step: Any, pipeline: Any, info: Any, *_: Any) -> None:
        if step.step != "extract" or info is None:
            return
        for metrics in info.metrics.values():
            for item in metrics:
                for name in item["job_metrics"]:
                    table, _, file_format = name.split(".")[:3]
                    if not table.startswith("_dlt"):
                        self.formats.add(file_format)


#: The extract-step file format each path writes.
PATH_FORMATS = {"json": "typed-jsonl", "arrow": "parquet"}


@contextmanager
def observing_extract() -> Iterator[ExtractFormats]:
    spy = ExtractFormats()
    dlt_trace.TRACKING_MODULES.append(spy)
    try:
        yield spy
    finally:
        dlt_trace.TRACKING_MODULES.remove(spy)


@contextmanager
def environment(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    """Set (and remove) environment variables for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in (*values, *remove)}
    os.environ.update(values)
    for name in remove:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- running and judging -------------------------------------------------------------------------

#: Runs one partition; returns the error text of a failed run, or None.
RunPartition = Callable[[str, int], str | None]


class OracleFailure(AssertionError):
    """The destination differs from the oracle; the message lists the findings by class."""


def accepted_failure(error: str, versions: list[Record]) -> bool:
    """A run may fail on a type change if its error names the conversation and the field."""
    changed = [r for r in versions if isinstance(r.get(TYPE_CHANGING_FIELD), (str, float))]
    return TYPE_CHANGING_FIELD in error and any(str(r["id"]) in error for r in changed)


def run_scenario(
    scenario: Scenario,
    data: ScriptedData,
    served: Callable[[], set[tuple[Any, Any]]],
    run_partition: RunPartition,
    fetch: oracle.Fetch,
) -> int:
    """Every run of ``scenario``, judged by the oracle; returns the number of runs.

    After each run: every root row is a version the API served, and every table holds exactly
    that version's rows; a failed run committed nothing. After the final pass (pending updates
    applied, every partition re-run): every table equals the oracle of the API's final data.
    """
    by_version = {(r["id"], r["updated_at"]): r for r in scenario.versions}
    failed: dict[str, str] = {}
    plan = [(month, False) for month in scenario.runs]
    plan += [(month, True) for month in scenario.final_order]
    for number, (month, final) in enumerate(plan):
        if final and number == len(scenario.runs):
            data.apply_all()
        before = oracle.read_raw(fetch)
        error = run_partition(month, number)
        after = oracle.read_raw(fetch)
        findings: list[Finding] = []
        if error is not None:
            if oracle.snapshot(after) != oracle.snapshot(before):
                findings.append(Finding("failed run committed rows", "*", error[:300]))
            if not accepted_failure(error, scenario.versions):
                findings.append(Finding("run failed", "*", _gist(error)))
            if final:
                failed[month] = error
        findings += consistent(oracle.keyed(after), by_version, served())
        raise_findings(
            findings, scenario, f"run {number + 1} ({month}{', final pass' if final else ''})"
        )
    final_versions = oracle.newest_versions(data.records, START_MS, END_MS)
    skipped = {r["id"] for r in final_versions if MONTHS[bucket(r["updated_at"])] in failed}
    loaded = oracle.keyed(oracle.read_raw(fetch))
    findings = oracle.compare(
        loaded, oracle.expected_tables(final_versions), only_keys=lambda k: k[0] not in skipped
    )
    if not failed:
        ever = [by_version[pair] for pair in served() if pair in by_version]
        findings += oracle.compare_columns(loaded, oracle.column_bounds(final_versions, ever))
    raise_findings(findings, scenario, "after the final pass")
    return len(plan)


def consistent(
    loaded: oracle.Loaded, by_version: dict[tuple[Any, Any], Record], served: set
) -> list[Finding]:
    """Each root row is a served version, and all tables hold exactly those versions' rows."""
    findings = []
    versions = []
    for _key, row in loaded.rows.get(oracle.ROOT, []):
        pair = (row.get("id"), row.get("updated_at"))
        if pair not in by_version or pair not in served:
            findings.append(Finding("root row of no served version", oracle.ROOT, f"{row}"))
        else:
            versions.append(by_version[pair])
    return findings + oracle.compare(loaded, oracle.expected_tables(versions))


def _gist(error: str) -> str:
    """The lines of an error text that say what went wrong (not the stack frames)."""
    lines = [line for line in error.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith((" ", "Traceback", "Stack Trace"))]
    if len(said) > 14:
        said = [*said[:10], "...", *said[-4:]]
    return "\n".join(line[:300] for line in said)


def raise_findings(findings: list[Finding], scenario: Any, when: str) -> None:
    """Fail with the findings and the scenario's timeline (any scenario with ``timeline()``)."""
    if findings:
        kinds = sorted({finding.kind for finding in findings})
        listed = "\n".join(f"  {finding}" for finding in findings[:40])
        raise OracleFailure(
            f"{when}: {len(findings)} finding(s) of class {kinds}\n{listed}\n"
            f"scenario:\n{scenario.timeline()}"
        )


# -- hand-made cases: the reproductions of issue 10, run first every time ------------------------

DAY_MS = 86_400_000
FEB_1 = month_window("2024-02-01").start_ms


def _case(
    name: str,
    initial: list[Record],
    updates: tuple[Update, ...] = (),
    batch_size: int = 31,
    bounds: str = "exclusive",
    runs: tuple[str, ...] = ("2024-01-01",),
) -> Scenario:
    versions = [*initial, *(update.record for update in updates)]
    return Scenario(
        batch_size, bounds, initial, list(updates), list(runs), list(MONTHS), versions, name
    )


def _version(number: int, updated_at: int, **fields: Any) -> Record:
    return {"id": FIRST_ID + number, "updated_at": updated_at, **fields}


_ARRAYS = {
    "tags": ["a"],
    "ratings": [{"rating_score": 1}],
    "tags_info": [{"id": "t"}],
    "custom_fields": [{"attribute_id": "x", "value": ["p"]}],
}

ISSUE_CASES: tuple[Scenario, ...] = (
    _case(
        "on a request edge, in both answers (inclusive)",
        [_version(0, FEB_1 - 1, tags=["a"], ratings=[{"rating_score": 5}])],
        bounds="inclusive",
    ),
    _case(
        "updated between two requests of one run",
        [_version(0, START_MS + 2 * DAY_MS, tags=["old"], custom_fields=[{"value": "v"}])],
        (Update(1, _version(0, START_MS + 16 * DAY_MS, tags=["new"], custom_fields=[])),),
        batch_size=7,
    ),
    _case(
        "one id twice in one answer",
        [_version(0, START_MS + 5, tags=["old"]), _version(0, START_MS + 9, tags=["new"])],
    ),
    _case(
        "new keys inside array items",
        [
            _version(
                0,
                START_MS + 5,
                ratings=[{"rating_score": 1, "rating_agent_id": "agent"}],
                tags_info=[{"id": "t", "color": "red"}],
                custom_fields=[{"attribute_id": "x", "label": "L"}],
            )
        ],
    ),
    _case(
        "an integer field arrives as 4.5 in a later run",
        [_version(0, START_MS + 5, priority_level=3), _version(1, FEB_1 + 5, priority_level=4.5)],
        runs=("2024-01-01", "2024-02-01"),
    ),
    _case(
        "an integer field arrives as 'high' in a later run (atomicity)",
        [
            _version(0, START_MS + 5, priority_level=3, **_ARRAYS),
            _version(1, FEB_1 + 5, priority_level="high", **_ARRAYS),
        ],
        runs=("2024-01-01", "2024-02-01"),
    ),
    _case(
        "an integer field arrives as 'high' in a later request of the same run",
        [
            _version(0, START_MS + 6 * DAY_MS, priority_level=7),
            _version(1, START_MS + 20 * DAY_MS, priority_level="high"),
        ],
        batch_size=3,
    ),
    _case(
        "an integer and 'high' in one answer",
        [
            _version(0, START_MS + 5, priority_level=3),
            _version(1, START_MS + 6, priority_level="high"),
        ],
    ),
    _case(
        "a custom field's value is true",
        [_version(0, START_MS + 5, custom_fields=[{"attribute_id": "x", "value": True}])],
    ),
)
