"""The oracle of issue 10: the tables a load must produce, computed from the API's data alone.

Pure and independent of the project's load code: a conversation record becomes one root row and
one row per array item, exactly as the README describes (``Arrays become child tables``). Rows
carry *stable keys* instead of dlt's row ids, so that any load path can be compared with it:

- root ``conversation_export``: ``(id,)``;
- ``conversation_export__<array>``: ``(id, index)``;
- ``conversation_export__<array>__<key>`` (an array inside an item): ``(id, index, index)``.

Messages (issue 12) flatten the same way under their own root, ``message_export`` (pass
``root=MESSAGE_ROOT``; their cursor is ``created_at``); :func:`keyed` knows both roots.

A row is a dict of its non-null values (a null and an absent column are the same thing).
:func:`compare` lists every difference between a destination and the oracle as a
:class:`Finding` whose ``kind`` names the failure class.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conversation_assets.dixa.schema import (
    INTEGER_FIELDS,
    MESSAGE_BOOLEAN_FIELDS,
    MESSAGE_INTEGER_FIELDS,
    MESSAGE_STRING_ARRAY_FIELDS,
    MESSAGE_STRING_FIELDS,
    RATING_INTEGER_FIELDS,
    RATING_STRING_FIELDS,
    STRING_ARRAY_FIELDS,
    STRING_FIELDS,
)

ROOT = "conversation_export"
MESSAGE_ROOT = "message_export"
#: The root tables: a row of one is keyed by its ``id``, its child rows by their position.
ROOTS = (ROOT, MESSAGE_ROOT)
Record = dict[str, Any]
Key = tuple[Any, ...]
Row = dict[str, Any]
Tables = dict[str, dict[Key, Row]]

#: Columns the API declares as text: a number or boolean arriving there is stored as
#: dlt's normalizer stores it, ``str(value)`` (seen on the JSON path: ``True`` -> ``'True'``).
TEXT_COLUMNS: dict[str, frozenset[str]] = {
    ROOT: frozenset(STRING_FIELDS),
    **{f"{ROOT}__{name}": frozenset({"value"}) for name in STRING_ARRAY_FIELDS},
    f"{ROOT}__ratings": frozenset(RATING_STRING_FIELDS),
    f"{ROOT}__tags_info": frozenset({"id", "name"}),
    f"{ROOT}__custom_fields": frozenset({"attribute_id", "identifier", "value", "data_type"}),
    f"{ROOT}__custom_fields__value": frozenset({"value"}),
    MESSAGE_ROOT: frozenset(MESSAGE_STRING_FIELDS),
    **{f"{MESSAGE_ROOT}__{name}": frozenset({"value"}) for name in MESSAGE_STRING_ARRAY_FIELDS},
}
#: Every column the API's catalogue declares (``dixa/schema.py``, the API's documented fields):
#: a destination may have them before any value arrives.
DECLARED_COLUMNS: dict[str, frozenset[str]] = {
    **TEXT_COLUMNS,
    ROOT: frozenset(STRING_FIELDS + INTEGER_FIELDS),
    f"{ROOT}__ratings": frozenset(RATING_STRING_FIELDS + RATING_INTEGER_FIELDS),
    f"{ROOT}__tags_info": frozenset({"id", "name", "is_deactivated"}),
    f"{ROOT}__custom_fields": TEXT_COLUMNS[f"{ROOT}__custom_fields"] | {"archived"},
    MESSAGE_ROOT: frozenset(
        MESSAGE_STRING_FIELDS + MESSAGE_INTEGER_FIELDS + MESSAGE_BOOLEAN_FIELDS
    ),
}
#: dlt's bookkeeping columns: the linkage is compared through the stable keys instead.
LINKAGE = frozenset({"_dlt_id", "_dlt_load_id", "_dlt_root_id", "_dlt_parent_id", "_dlt_list_idx"})
_VARIANT = re.compile(r"^(?P<base>.+)__v_[a-z_]+$")


@dataclass(frozen=True)
class Finding:
    """One difference between a destination and the oracle."""

    kind: str
    table: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.table}: {self.detail}"


# -- the oracle ------------------------------------------------------------------------------


def flatten(record: Record, root: str = ROOT) -> Tables:
    """One record's rows in every table (tables without rows are left out); ``root`` is its
    root table (``ROOT`` for a conversation, ``MESSAGE_ROOT`` for a message)."""
    tables: Tables = {root: {(record["id"],): _scalars(root, record)}}
    for name, items in record.items():
        if not isinstance(items, list):
            continue
        table = f"{root}__{name}"
        for index, item in enumerate(items):
            key = (record["id"], index)
            if not isinstance(item, dict):
                tables.setdefault(table, {})[key] = _scalars(table, {"value": item})
                continue
            tables.setdefault(table, {})[key] = _scalars(table, item)
            for inner, values in item.items():
                if isinstance(values, list):
                    grandchild = f"{table}__{inner}"
                    for position, value in enumerate(values):
                        row = _scalars(grandchild, {"value": value})
                        tables.setdefault(grandchild, {})[(*key, position)] = row
    return tables


def _scalars(table: str, values: Mapping[str, Any]) -> Row:
    text = TEXT_COLUMNS.get(table, frozenset())
    return {
        name: str(value) if name in text and not isinstance(value, str) else value
        for name, value in values.items()
        if value is not None and not isinstance(value, (list, dict))
    }


def expected_tables(records: Iterable[Record], root: str = ROOT) -> Tables:
    """The tables holding exactly ``records`` (one version per id)."""
    tables: Tables = {}
    for record in records:
        for name, rows in flatten(record, root).items():
            tables.setdefault(name, {}).update(rows)
    return tables


def newest_versions(
    records: Iterable[Record], start_ms: int, end_ms: int, cursor: str = "updated_at"
) -> list[Record]:
    """Per id the newest version, kept when its ``cursor`` lies in ``[start_ms, end_ms)``."""
    newest: dict[Any, Record] = {}
    for record in records:
        current = newest.get(record["id"])
        if current is None or record[cursor] > current[cursor]:
            newest[record["id"]] = record
    return [r for r in newest.values() if start_ms <= r[cursor] < end_ms]


def column_bounds(
    now: Iterable[Record], ever: Iterable[Record], root: str = ROOT
) -> dict[str, tuple[set[str], set[str]]]:
    """Per table ``(required, allowed)`` data columns.

    Required: every column with a value in ``now`` (the final data). Allowed: those plus every
    column with a value in any version ``ever`` served, plus the declared columns (dlt may
    keep a column that no current row fills).
    """
    bounds: dict[str, tuple[set[str], set[str]]] = {}
    for records, slot in ((now, 0), (ever, 1)):
        for record in records:
            for table, rows in flatten(record, root).items():
                entry = bounds.setdefault(table, (set(), set(DECLARED_COLUMNS.get(table, ()))))
                for row in rows.values():
                    entry[slot].update(row)
    for required, allowed in bounds.values():
        allowed |= required
    return bounds


# -- reading a destination -------------------------------------------------------------------

Fetch = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


class RawTable(list[Row]):
    """A table's rows as read, and its ``columns`` (known even when it has no rows)."""

    def __init__(self, columns: list[str], rows: list[Row]):
        super().__init__(rows)
        self.columns = columns


def read_raw(fetch: Fetch, schema: str = "dixa") -> dict[str, list[Row]]:
    """Every data table of ``schema`` as it is (all columns, nulls included)."""
    _, names = fetch(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = '{schema}' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'"
    )
    tables = {}
    for (name,) in names:
        columns, rows = fetch(f'SELECT * FROM {schema}."{name}"')
        tables[name] = RawTable(columns, [dict(zip(columns, row, strict=True)) for row in rows])
    return tables


def snapshot(raw: dict[str, list[Row]]) -> dict[str, list[str]]:
    """``raw`` in a comparable form: each table's rows sorted (to compare before and after)."""
    return {name: sorted(repr(sorted(row.items())) for row in rows) for name, rows in raw.items()}


@dataclass
class Loaded:
    """A destination's tables with stable keys (several rows may share a key: a finding)."""

    rows: dict[str, list[tuple[Key, Row]]]
    columns: dict[str, set[str]]
    findings: list[Finding]


def keyed(raw: dict[str, list[Row]]) -> Loaded:
    """Map dlt's linkage (``_dlt_id``/``_dlt_parent_id``/``_dlt_list_idx``) to stable keys.

    Variant columns (``name__v_text``) are folded into ``name``; a child row whose parent or
    root is missing is an ``orphan`` finding.
    """
    findings: list[Finding] = []
    keys: dict[Any, Key] = {}  # _dlt_id -> stable key, filled from the root downwards
    rows: dict[str, list[tuple[Key, Row]]] = {}
    columns: dict[str, set[str]] = {}
    for name in sorted(raw, key=lambda table: table.count("__")):
        present = set(getattr(raw[name], "columns", ())) - LINKAGE
        for row in raw[name]:
            values, folding = _fold(row)
            present |= {column for column in row if column not in LINKAGE}
            findings += [Finding("two values in a variant pair", name, f) for f in folding]
            if name in ROOTS:
                key: Key = (row.get("id"),)
            else:
                parent = keys.get(row.get("_dlt_parent_id"))
                root = keys.get(row.get("_dlt_root_id"))
                if parent is None or root is None:
                    findings.append(Finding("orphan", name, f"row without its parent/root: {row}"))
                    continue
                key = (*parent, row.get("_dlt_list_idx"))
            keys.setdefault(row.get("_dlt_id"), key)
            rows.setdefault(name, []).append((key, values))
        columns[name] = {_base(column) for column in present}
    return Loaded(rows, columns, findings)


def _base(column: str) -> str:
    match = _VARIANT.match(column)
    return match["base"] if match else column


def _fold(row: Row) -> tuple[Row, list[str]]:
    values: Row = {}
    problems = []
    for column, value in row.items():
        if column in LINKAGE or value is None:
            continue
        base = _base(column)
        if base in values:
            problems.append(f"{base}: {values[base]!r} and {value!r}")
        values[base] = value
    return values, problems


# -- comparing ---------------------------------------------------------------------------------


def same_value(actual: Any, expected: Any) -> bool:
    """Equal, or the same value in the column type dlt chose for the first value it saw.

    An integer may sit in a double column (5.0) and any scalar in a text column as ``str()``
    (dlt's coercion when the column was created by a string first); 4.5 stored as 4, or
    ``"high"`` stored as ``'"high"'``, is not the same value.
    """
    if type(actual) is type(expected) or {type(actual), type(expected)} <= {int, float}:
        return actual == expected
    return (
        isinstance(actual, str)
        and not isinstance(expected, (dict, list))
        and (actual == str(expected))
    )


def compare(
    loaded: Loaded,
    expected: Tables,
    only_keys: Callable[[Key], bool] = lambda key: True,
) -> list[Finding]:
    """Every row difference between ``loaded`` and ``expected`` (rows whose key passes)."""
    findings = list(loaded.findings)
    for table in sorted(set(expected) | set(loaded.rows)):
        actual = [(k, r) for k, r in loaded.rows.get(table, []) if only_keys(k)]
        wanted = {k: r for k, r in expected.get(table, {}).items() if only_keys(k)}
        counts = Counter(key for key, _ in actual)
        for key, count in sorted(counts.items(), key=repr):
            if count > 1:
                findings.append(Finding("duplicate rows", table, f"key {key}: {count} rows"))
        for key, row in actual:
            if key not in wanted:
                findings.append(Finding("extra row", table, f"key {key}: {row}"))
            elif problems := _row_differences(row, wanted[key]):
                findings.append(Finding("value differs", table, f"key {key}: {problems}"))
        for key in sorted(wanted.keys() - counts.keys(), key=repr):
            findings.append(Finding("missing row", table, f"key {key}: {wanted[key]}"))
    return findings


def _row_differences(actual: Row, expected: Row) -> str:
    names = sorted(actual.keys() | expected.keys())
    return "; ".join(
        f"{name}: got {actual.get(name)!r}, want {expected.get(name)!r}"
        for name in names
        if not same_value(actual.get(name), expected.get(name))
    )


def compare_columns(
    loaded: Loaded, bounds: Mapping[str, tuple[set[str], set[str]]]
) -> list[Finding]:
    """Each table's data columns (variants folded) between the required and allowed sets."""
    findings = []
    for table, (required, allowed) in sorted(bounds.items()):
        present = loaded.columns.get(table, set()) - LINKAGE
        if missing := required - present:
            findings.append(Finding("missing column", table, ", ".join(sorted(missing))))
        if extra := present - allowed:
            findings.append(Finding("extra column", table, ", ".join(sorted(extra))))
    return findings
