"""The oracle itself: expected tables from versions, stable keys, and what it calls a finding."""

from conversation_assets_tests.support import oracle
from conversation_assets_tests.support.oracle import ROOT, Finding, Loaded

RECORD = {
    "id": 7,
    "updated_at": 100,
    "status": True,  # a declared text column: stored as str()
    "surprise": 4.5,
    "tags": ["a", "b"],
    "ratings": None,
    "tags_info": [],
    "custom_fields": [{"attribute_id": "x", "value": ["p", "q"]}, {"value": 5, "label": "L"}],
}


def test_a_record_becomes_its_rows_keyed_by_id_and_positions() -> None:
    tables = oracle.flatten(RECORD)
    assert tables[ROOT] == {(7,): {"id": 7, "updated_at": 100, "status": "True", "surprise": 4.5}}
    assert tables[f"{ROOT}__tags"] == {(7, 0): {"value": "a"}, (7, 1): {"value": "b"}}
    assert tables[f"{ROOT}__custom_fields"] == {
        (7, 0): {"attribute_id": "x"},
        (7, 1): {"value": "5", "label": "L"},
    }
    assert tables[f"{ROOT}__custom_fields__value"] == {
        (7, 0, 0): {"value": "p"},
        (7, 0, 1): {"value": "q"},
    }
    assert f"{ROOT}__ratings" not in tables and f"{ROOT}__tags_info" not in tables


def test_newest_version_per_id_inside_the_range() -> None:
    records = [
        {"id": 1, "updated_at": 5},
        {"id": 1, "updated_at": 9},
        {"id": 2, "updated_at": 10},  # the range's end: excluded
        {"id": 3, "updated_at": 2},
    ]
    newest = oracle.newest_versions(records, 3, 10)
    assert newest == [{"id": 1, "updated_at": 9}]


def raw_tables() -> dict[str, list[dict]]:
    """RECORD as dlt writes it, variant column and random row ids included."""
    return {
        ROOT: [
            {"id": 7, "updated_at": 100, "status": "True", "surprise__v_double": 4.5,
             "surprise": None, "_dlt_id": "r", "_dlt_load_id": "l"},
        ],
        f"{ROOT}__tags": [
            {"value": "a", "_dlt_id": "t0", "_dlt_parent_id": "r", "_dlt_root_id": "r",
             "_dlt_list_idx": 0},
            {"value": "b", "_dlt_id": "t1", "_dlt_parent_id": "r", "_dlt_root_id": "r",
             "_dlt_list_idx": 1},
        ],
        f"{ROOT}__custom_fields": [
            {"attribute_id": "x", "_dlt_id": "c0", "_dlt_parent_id": "r", "_dlt_root_id": "r",
             "_dlt_list_idx": 0},
            {"value": "5", "label": "L", "_dlt_id": "c1", "_dlt_parent_id": "r",
             "_dlt_root_id": "r", "_dlt_list_idx": 1},
        ],
        f"{ROOT}__custom_fields__value": [
            {"value": "p", "_dlt_id": "v0", "_dlt_parent_id": "c0", "_dlt_root_id": "r",
             "_dlt_list_idx": 0},
            {"value": "q", "_dlt_id": "v1", "_dlt_parent_id": "c0", "_dlt_root_id": "r",
             "_dlt_list_idx": 1},
        ],
    }  # fmt: skip


def kinds(findings: list[Finding]) -> list[str]:
    return sorted(finding.kind for finding in findings)


def test_a_faithful_load_has_no_findings() -> None:
    loaded = oracle.keyed(raw_tables())
    assert oracle.compare(loaded, oracle.expected_tables([RECORD])) == []
    bounds = oracle.column_bounds([RECORD], [RECORD])
    assert oracle.compare_columns(loaded, bounds) == []


def test_duplicates_orphans_lost_values_and_extra_columns_are_findings() -> None:
    raw = raw_tables()
    tags = raw[f"{ROOT}__tags"]
    tags.append(dict(tags[0], _dlt_id="t0-again"))  # the same item twice
    tags.append(dict(tags[0], _dlt_id="x", _dlt_root_id="gone", _dlt_parent_id="gone"))
    raw[ROOT][0].update(surprise=4, surprise__v_double=None)  # 4.5 cut to 4
    raw[f"{ROOT}__custom_fields"][1]["_dlt_deleted"] = None  # a column, no value
    loaded = oracle.keyed(raw)
    findings = oracle.compare(loaded, oracle.expected_tables([RECORD]))
    assert kinds(findings) == ["duplicate rows", "orphan", "value differs"]
    bounds = oracle.column_bounds([RECORD], [RECORD])
    assert kinds(oracle.compare_columns(loaded, bounds)) == ["extra column"]


def test_missing_rows_and_stale_children_are_findings() -> None:
    raw = raw_tables()
    del raw[f"{ROOT}__custom_fields__value"]
    newer = dict(RECORD, tags=["a"], custom_fields=[{"attribute_id": "x", "value": ["p", "q"]}])
    findings = oracle.compare(oracle.keyed(raw), oracle.expected_tables([newer]))
    assert kinds(findings) == ["extra row", "extra row", "missing row", "missing row"]


def test_same_value_accepts_lossless_forms_only() -> None:
    assert oracle.same_value(5.0, 5)
    assert oracle.same_value("4.5", 4.5)  # a text column made by an earlier string
    assert not oracle.same_value(4, 4.5)
    assert not oracle.same_value('"high"', "high")
    assert not oracle.same_value("true", True)
    assert not oracle.same_value(1, True)


def test_an_empty_table_still_shows_its_columns() -> None:
    raw = raw_tables()
    raw[f"{ROOT}__ratings"] = oracle.RawTable(["rating_score", "_dlt_deleted", "_dlt_id"], [])
    loaded = oracle.keyed(raw)
    assert loaded.columns[f"{ROOT}__ratings"] == {"rating_score", "_dlt_deleted"}
    gone = dict(RECORD, ratings=[{"rating_score": 1}])
    bounds = oracle.column_bounds([RECORD], [RECORD, gone])
    assert kinds(oracle.compare_columns(loaded, bounds)) == ["extra column"]


def test_snapshot_ignores_row_order() -> None:
    first = {"t": [{"a": 1}, {"a": 2}]}
    assert oracle.snapshot(first) == oracle.snapshot({"t": [{"a": 2}, {"a": 1}]})
    assert oracle.snapshot(first) != oracle.snapshot({"t": [{"a": 1}]})


def test_only_keys_restricts_the_comparison() -> None:
    loaded = Loaded(rows={ROOT: [((1,), {"id": 1})]}, columns={}, findings=[])
    expected = {ROOT: {(2,): {"id": 2}}}
    assert oracle.compare(loaded, expected, only_keys=lambda key: key[0] == 3) == []
