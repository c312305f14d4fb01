"""Scenarios for the message oracle (issue 12): histories of scripted messages, and a runner.

Messages do not change once written, so a history is simpler than a conversation's, and the
judgement after every run can be exact: the message tables must hold, per id, the newest
version (by ``created_at``) that a successful run was served inside its own partition's window,
and nothing else. What a history holds:

- string ids, some of them numeric-looking (``"07"`` and ``"7"`` are two messages) or non-ASCII;
- ``created_at`` on and next to (+-1 ms) partition and request edges, or anywhere from just
  before the first partition to just after the last;
- the same id twice in one answer: an identical copy, or two versions of one partition (the
  newer ``created_at`` wins, as the merge's ``dedup_sort`` says);
- late messages: served only after some requests (``Update``), even into a window already read;
- new keys at the top level, new arrays of objects (whose items carry optional keys of their
  own, and an array inside: a grandchild table), and new arrays of strings;
- random batch sizes, bound semantics, partition orders and re-runs, and either value of
  ``DIXA_EXTRACT_FORMAT`` (messages take dlt's normalizer whatever it says).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from conversation_assets.dixa.windows import format_ms
from conversation_assets_tests.support import oracle
from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.messages import message_tables
from conversation_assets_tests.support.oracle import MESSAGE_ROOT, Finding, Record
from conversation_assets_tests.support.oracle_scenarios import (
    END_MS,
    MONTHS,
    START_MS,
    OracleFailure,
    RunPartition,
    bucket,
    raise_findings,
    scenario_frame,
)
from dixa_sandbox import SandboxServer, ScriptedData, Update

CURSOR = "created_at"
ENDPOINT = "message_export"
#: Prefixes of the generated ids (a number follows): numeric-looking, plain, non-ASCII, spaced.
ID_PREFIXES = ("", "0", "msg-", "ü-", "a b ")


@dataclass
class MessageScenario:
    """A history of the API's messages and the runs that load it."""

    batch_size: int
    bounds: str
    initial: list[Record]
    updates: list[Update]
    runs: list[str]
    final_order: list[str]
    extract_format: str = "json"
    name: str = ""  # for the hand-made cases: what they show
    #: Ids some run must receive twice (two answers, or one answer twice): the case happened.
    served_twice: tuple[str, ...] = ()
    #: Ids some run must receive outside the window of the request that asked.
    served_outside: tuple[str, ...] = ()

    @property
    def versions(self) -> list[Record]:
        return [*self.initial, *(update.record for update in self.updates)]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints a falsifying example: the readable timeline."""
        printer.text(f"MessageScenario(\n{self.timeline()}\n)")

    def timeline(self) -> str:
        lines = [f"{self.name}: " if self.name else ""]
        lines[0] += (
            f"batch_size={self.batch_size} bounds={self.bounds} "
            f"DIXA_EXTRACT_FORMAT={self.extract_format}"
        )
        lines += [f"  initially  {describe(record)}" for record in self.initial]
        lines += [
            f"  after request {update.after_request}: {describe(update.record)}"
            for update in self.updates
        ]
        lines.append(f"  runs {self.runs}, then final pass {self.final_order}")
        return "\n".join(lines)


def describe(record: Record) -> str:
    rest = {k: v for k, v in record.items() if k not in ("id", CURSOR)}
    for key, value in rest.items():
        if isinstance(value, str) and len(value) > 40:
            rest[key] = f"{value[:20]}...({len(value)} characters)"
    return f"id={record['id']!r} {CURSOR}={format_ms(record[CURSOR])} {rest}"


# -- strategies ----------------------------------------------------------------------------------

WORDS = st.sampled_from(["a", "b", "ü", "x y", "📦", ""])
TEXTS = st.one_of(
    st.none(),
    WORDS,
    st.sampled_from(["Zoë from Ærøskøbing 😅", "ご注文ありがとうございます。", "line\nbreak"]),
    st.integers(1, 3).map(lambda n: "Hej, jeg har ikke modtaget min pakke endnu 📦. " * 40 * n),
)


def _strings(item: st.SearchStrategy[Any] = WORDS) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.lists(item, max_size=3))


REACTION = st.fixed_dictionaries(
    {"emoji": WORDS},
    optional={"by": WORDS, "count": st.integers(0, 9), "users": st.lists(WORDS, max_size=2)},
)
BODY = st.fixed_dictionaries(
    {
        "csid": st.integers(1, 50),
        "text": TEXTS,
        "direction": st.sampled_from(["inbound", "outbound", None]),
        "to": _strings(),
        "cc": _strings(),
        "attached_files": _strings(),
    },
    optional={
        "bcc": _strings(),
        "duration": st.one_of(st.none(), st.integers(0, 3600)),
        "is_automated_message": st.one_of(st.none(), st.booleans()),
        "author_name": WORDS,
        "surprise": WORDS,  # a new top-level key
        "reactions": _strings(REACTION),  # a new array of objects with keys of their own
        "labels": _strings(),  # a new array of strings
    },
)


@st.composite
def message_scenarios(draw: st.DrawFn, max_ids: int = 6, max_runs: int = 3) -> MessageScenario:
    """Histories of up to ``max_ids`` messages, loaded by up to ``max_runs`` runs first."""
    batch_size, bounds, instants, runs, total_requests = scenario_frame(draw, max_runs)
    initial: list[Record] = []
    updates: list[Update] = []
    for number in range(draw(st.integers(1, max_ids))):
        key = f"{draw(st.sampled_from(ID_PREFIXES), label='id prefix')}{number}"
        created = draw(instants, label="created_at")
        record = {"id": key, CURSOR: created, **draw(BODY, label="body")}
        kind = draw(st.sampled_from(["once", "once", "late", "copy", "two versions"]))
        if kind == "late":  # served only after some requests, whatever its window
            after = draw(st.integers(1, total_requests + 1), label="arrives after request")
            updates.append(Update(after, record, endpoint=ENDPOINT))
            continue
        initial.append(record)
        if kind == "copy":
            initial.append(dict(record))
        elif kind == "two versions":  # another version in the same partition
            other = draw(instants.filter(lambda t, c=created: t != c and bucket(t) == bucket(c)))
            initial.append({"id": key, CURSOR: other, **draw(BODY, label="body")})
    order = draw(st.permutations(range(len(initial))), label="answer order")
    final_order = draw(st.permutations(MONTHS))
    extract_format = draw(st.sampled_from(["json", "arrow"]))
    return MessageScenario(
        batch_size,
        bounds,
        [initial[i] for i in order],
        updates,
        runs,
        list(final_order),
        extract_format,
    )


# -- running and judging -------------------------------------------------------------------------


@dataclass
class Served:
    """What the sandbox served, per run: ``(id, created_at)`` pairs from a request on."""

    server: SandboxServer
    seen: int = field(default=0)

    def since_last(self) -> list[tuple[tuple[Any, Any], bool]]:
        """Each pair served since the last call, and whether it lies in its request's own
        window: the client asks ``created_after = start - 1 ms``, ``created_before = end`` for
        ``[start, end)`` and keeps only that (``dixa.inside``). Under inclusive bounds a message
        on ``start - 1 ms`` is also in the next answer, which leaves it to its own request."""
        requests = self.server.requests[self.seen :]
        self.seen = len(self.server.requests)
        found = []
        for request in requests:
            after, before = (int(request.query[f"created_{side}"]) for side in ("after", "before"))
            found += [
                (pair, isinstance(pair[1], int) and after < pair[1] < before)
                for pair in request.served
            ]
        return found

    def ever(self) -> set[tuple[Any, Any]]:
        return {pair for request in self.server.requests for pair in request.served}


def newest(records: list[Record]) -> list[Record]:
    """Per id the version with the newest ``created_at`` (the merge's ``dedup_sort``)."""
    return oracle.newest_versions(records, START_MS, END_MS, cursor=CURSOR)


def judge(loaded: oracle.Loaded, expected: list[Record]) -> list[Finding]:
    return oracle.compare(loaded, oracle.expected_tables(expected, MESSAGE_ROOT))


def run_message_scenario(
    scenario: MessageScenario,
    data: ScriptedData,
    server: SandboxServer,
    run_partition: RunPartition,
    fetch: oracle.Fetch,
) -> int:
    """Every run of ``scenario``, judged by the oracle; returns the number of runs.

    After each run: every message table holds exactly, per id, the newest version served to a
    successful run inside the window of the request that served it and of the run's partition
    (nothing of a failed run; no run may fail). After the final pass (late messages all out,
    every partition re-run): exactly the newest version of every message of the loaded months,
    with the columns they fill.
    """
    by_version = {(r["id"], r[CURSOR]): r for r in scenario.versions}
    served = Served(server)
    twice: set[Any] = set()
    outside: set[Any] = set()
    loaded_versions: dict[tuple[Any, Any], Record] = {}
    plan = [(month, False) for month in scenario.runs]
    plan += [(month, True) for month in scenario.final_order]
    for number, (month, final) in enumerate(plan):
        if final and number == len(scenario.runs):
            data.apply_all()
        before = message_tables(oracle.read_raw(fetch))
        error = run_partition(month, number)
        after = message_tables(oracle.read_raw(fetch))
        this_run = served.since_last()
        ids = [key for (key, _), _ in this_run]
        twice |= {key for key in ids if ids.count(key) > 1}
        outside |= {key for (key, _), inside in this_run if not inside}
        findings: list[Finding] = []
        if error is not None:
            findings.append(Finding("run failed", "*", error[-2000:]))
            if oracle.snapshot(after) != oracle.snapshot(before):
                findings.append(Finding("failed run committed rows", "*", error[:300]))
        else:
            window = month_window(month)
            for pair, in_its_request in this_run:
                if pair not in by_version:
                    findings.append(Finding("served a record of no version", "*", f"{pair}"))
                elif in_its_request and pair[1] in window:
                    loaded_versions[pair] = by_version[pair]
        findings += judge(oracle.keyed(after), newest(list(loaded_versions.values())))
        raise_findings(
            findings, scenario, f"run {number + 1} ({month}{', final pass' if final else ''})"
        )
    final = newest(data.messages)
    loaded = oracle.keyed(message_tables(oracle.read_raw(fetch)))
    findings = judge(loaded, final)
    ever = [by_version[pair] for pair in served.ever() if pair in by_version]
    findings += oracle.compare_columns(loaded, oracle.column_bounds(final, ever, MESSAGE_ROOT))
    if missed := set(scenario.served_twice) - twice:
        findings.append(Finding("the case did not happen", "*", f"never served twice: {missed}"))
    if missed := set(scenario.served_outside) - outside:
        findings.append(Finding("the case did not happen", "*", f"never served outside: {missed}"))
    raise_findings(findings, scenario, "after the final pass")
    return len(plan)


# -- hand-made cases, run first every time ------------------------------------------------------

DAY_MS = 86_400_000
FEB_1 = month_window("2024-02-01").start_ms
MAR_1 = month_window("2024-03-01").start_ms


def _message(key: str, created_at: int, **fields: Any) -> Record:
    return {"id": key, CURSOR: created_at, "csid": 1, **fields}


def _case(
    name: str,
    initial: list[Record],
    updates: tuple[Update, ...] = (),
    batch_size: int = 31,
    bounds: str = "exclusive",
    runs: tuple[str, ...] = ("2024-01-01",),
    served_twice: tuple[str, ...] = (),
    served_outside: tuple[str, ...] = (),
) -> MessageScenario:
    return MessageScenario(
        batch_size,
        bounds,
        initial,
        list(updates),
        list(runs),
        list(MONTHS),
        name=name,
        served_twice=served_twice,
        served_outside=served_outside,
    )


#: Partition and request edges (one-day requests) and the milliseconds next to them.
EDGE_INSTANTS = (
    *(START_MS, START_MS + 1, START_MS + DAY_MS - 1, START_MS + DAY_MS),
    *(FEB_1 - 1, FEB_1, FEB_1 + 1, MAR_1 - 1, MAR_1, END_MS - 1, END_MS),
)
_ARRAYS = {"to": ["x@example.com", "y@example.com"], "cc": ["c"], "attached_files": ["f.pdf"]}

CASES: tuple[MessageScenario, ...] = (
    _case(
        "on the last millisecond of January, in both of its answers (inclusive)",
        [_message("m0", FEB_1 - 1, **_ARRAYS), _message("m1", FEB_1, to=["next month"])],
        bounds="inclusive",
        served_twice=("m0",),
    ),
    _case(
        "on partition and request edges and next to them, one-day requests (inclusive)",
        [_message(f"e{number}", at, to=[str(number)]) for number, at in enumerate(EDGE_INSTANTS)],
        batch_size=1,
        bounds="inclusive",
        runs=("2024-02-01", "2024-01-01"),
        served_twice=("e2",),  # START + 1 day - 1 ms: where the first one-day request ends
    ),
    _case(
        "one id twice in one answer: the newer version wins",
        [
            _message("d", START_MS + 9, text="new", to=["new"]),
            _message("d", START_MS + 5, text="old", to=["old", "older"], cc=["gone"]),
        ],
        served_twice=("d",),
    ),
    _case(
        "an identical message twice in one answer",
        [_message("c", START_MS + 5, **_ARRAYS), _message("c", START_MS + 5, **_ARRAYS)],
        served_twice=("c",),
    ),
    _case(
        "numeric-looking string ids stay text: '07' and '7' are two messages",
        [_message("07", START_MS + 5, text="first"), _message("7", START_MS + 6, text="second")],
    ),
    _case(
        "new keys at the top level and inside array items, with an array inside",
        [
            _message(
                "n",
                START_MS + 5,
                surprise="yes",
                labels=["l1", "l2"],
                reactions=[{"emoji": "👍", "by": "ann", "users": ["u1", "u2"]}, {"emoji": "🎉"}],
            ),
            _message("o", FEB_1 + 5, reactions=[{"emoji": "x", "count": 3, "extra": "z"}]),
        ],
        runs=("2024-01-01", "2024-02-01"),
    ),
    _case(
        "a late message in a window the same run already read",
        [_message("early", START_MS + 2 * DAY_MS, text="first")],
        (Update(2, _message("late", START_MS + DAY_MS, text="late"), endpoint=ENDPOINT),),
        batch_size=7,
    ),
    _case(
        # Found by the generated histories: the message is in the second answer only (its
        # created_after is the first window's last millisecond), which leaves it to the first
        # request; the next run of February loads it.
        "a late message on a request's last millisecond, served by the next answer (inclusive)",
        [_message("early", FEB_1 + 5)],
        (Update(1, _message("late", FEB_1 + 12 * DAY_MS - 2, to=["t"]), endpoint=ENDPOINT),),
        batch_size=12,
        bounds="inclusive",
        runs=("2024-02-01",),
        served_outside=("late",),
    ),
    _case(
        "null, empty and missing arrays, and null scalars",
        [
            _message("z", START_MS + 5, to=None, cc=[], bcc=None, text=None, duration=None),
            _message("y", START_MS + 6, is_automated_message=False, duration=0, text=""),
        ],
    ),
)


def runner_with_path_check(
    run: RunPartition, formats: Callable[[], set[str]], expected: str
) -> RunPartition:
    """``run``, then fail unless the extract step wrote only ``expected`` files (dlt's
    normalizer writes ``typed-jsonl``, the Arrow path ``parquet``)."""

    def checked(month: str, number: int) -> str | None:
        error = run(month, number)
        if formats() - {expected}:
            raise OracleFailure(f"messages were extracted as {sorted(formats())}, not {expected}")
        return error

    return checked
