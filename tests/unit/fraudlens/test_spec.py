"""The record spec: every kind of bad record gives a named rejection, and nothing is dropped."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from fraudlens.spec import Claim, FileLevelError, RecordSpec, Rejection, SpecError, read_claims

GOOD = {
    "claim_id": "C1",
    "submitted_at": "2025-03-01T09:30:00Z",
    "program": "housing",
    "amount": 1200.5,
    "national_id": "123-45-6789",
    "full_name": "Ana Lopez",
    "date_of_birth": "1984-03-09",
    "address": "12 Oak Street",
    "bank_account": "000123456",
    "household_size": 3,
    "declared_income": 21000,
    "channel": "online",
    "region": "north",
    "citizenship": "citizen",
}


@pytest.fixture(scope="module")
def spec() -> RecordSpec:
    return RecordSpec.default()


def fields_of(r: Claim | Rejection) -> set[str]:
    assert isinstance(r, Rejection), r
    return {e.field for e in r.errors}


def test_good_record_becomes_a_claim(spec: RecordSpec) -> None:
    claim = spec.validate_record(GOOD)
    assert isinstance(claim, Claim)
    assert claim.amount == 1200.5 and claim.program == "housing"
    assert claim.timestamp.tzinfo is not None
    assert claim.identity["bank_account"] == "000123456"
    assert claim.protected["citizenship"] == "citizen"
    assert claim.numeric["dependents"] is None


@pytest.mark.parametrize(
    ("change", "field", "expected_part"),
    [
        ({"amount": -1}, "amount", ">= 0"),
        ({"amount": "lots"}, "amount", "a number"),
        ({"amount": float("inf")}, "amount", "a number"),
        ({"submitted_at": "31/02/2025"}, "submitted_at", "ISO 8601"),
        ({"submitted_at": None}, "submitted_at", "ISO 8601"),
        ({"program": "lottery"}, "program", "one of"),
        ({"household_size": 2.5}, "household_size", "an integer"),
        ({"household_size": 0}, "household_size", "[1, 30]"),
        ({"channel": None}, "channel", "one of"),
        ({"claim_id": ""}, "claim_id", "non-empty"),
        ({"bank_account": None}, "bank_account", "bank_account"),
        ({"citizenship": "martian"}, "citizenship", "one of"),
    ],
)
def test_each_bad_field_is_named(spec: RecordSpec, change: dict, field: str, expected_part: str) -> None:
    r = spec.validate_record({**GOOD, **change})
    assert fields_of(r) == {field}
    err = r.errors[0]  # type: ignore[union-attr]
    assert expected_part in err.expected


def test_every_bad_field_listed_at_once(spec: RecordSpec) -> None:
    r = spec.validate_record({**GOOD, "amount": -5, "submitted_at": "yesterday", "household_size": "two"})
    assert fields_of(r) == {"amount", "submitted_at", "household_size"}
    assert r.claim_id == "C1"  # type: ignore[union-attr]


def test_identity_values_are_masked_in_errors(spec: RecordSpec) -> None:
    r = spec.validate_record({**GOOD, "national_id": ["123-45-6789"]})
    assert isinstance(r, Rejection)
    assert "123-45-6789" not in r.reason
    assert "masked" in r.errors[0].got


def test_unknown_fields_ignored_or_rejected() -> None:
    raw = RecordSpec.default().raw
    assert isinstance(RecordSpec.default().validate_record({**GOOD, "extra": 1}), Claim)
    strict = RecordSpec.from_dict({**raw, "unknown_fields": "reject"})
    assert fields_of(strict.validate_record({**GOOD, "extra": 1})) == {"extra"}


def test_labels_and_protected_are_never_features(spec: RecordSpec) -> None:
    feats = set(spec.feature_columns)
    assert not feats & set(spec.protected)
    assert not feats & set(spec.labels)
    assert not feats & set(spec.identity)


def test_bad_spec_is_refused() -> None:
    raw = RecordSpec.default().raw
    with pytest.raises(SpecError, match="kind 'shoe_size'"):
        RecordSpec.from_dict({**raw, "identity": {"x": {"kind": "shoe_size"}}})
    with pytest.raises(SpecError, match="declared twice"):
        RecordSpec.from_dict({**raw, "protected": {"region": {}}})


CSV = """claim_id,submitted_at,program,amount,national_id,full_name,date_of_birth,address,bank_account,household_size,declared_income,channel,region
A1,2025-01-01T10:00:00Z,housing,100.0,111-22-3333,Ann Lee,1980-01-01,1 Main St,0012,2,1000,online,north
A2,2025-01-02T10:00:00Z,housing,abc,111-22-3334,Bob Ray,1981-01-01,2 Main St,0013,2,1000,online,north
A3,2025-02-30T10:00:00Z,housing,50,111-22-3335,Cy Doe,1982-01-01,3 Main St,0014,2,1000,online,north
A4,2025-01-03T10:00:00Z,housing,-20,111-22-3336,Di Fox,1983-01-01,4 Main St,0015,2,1000,online,north
A1,2025-01-04T10:00:00Z,housing,70,111-22-3337,Ed Kim,1984-01-01,5 Main St,0016,2,1000,online,north
A6,2025-01-05T10:00:00Z,tax_refund,300,111-22-3338,Flo Wu,1985-01-01,6 Main St,0017,3,2000,mail,south
"""


def test_file_with_bad_rows_reconciles(spec: RecordSpec, tmp_path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text(CSV)
    v = spec.validate_frame(read_claims(path, spec))
    assert v.n_in == 6 and len(v.accepted) == 2 and len(v.rejections) == 4
    by_row = {r.row: r for r in v.rejections}
    assert fields_of(by_row[1]) == {"amount"} and by_row[1].claim_id == "A2"
    assert fields_of(by_row[2]) == {"submitted_at"} and by_row[2].claim_id == "A3"
    assert fields_of(by_row[3]) == {"amount"} and by_row[3].claim_id == "A4"
    assert fields_of(by_row[4]) == {"claim_id"} and "duplicate" in by_row[4].errors[0].got
    assert list(v.accepted["claim_id"]) == ["A1", "A6"]
    # CSV identity columns stay text: leading zeros survive.
    assert v.accepted["bank_account"].iloc[0] == "0012"
    assert len(v.rejections_frame()) == 4


def test_missing_required_column_is_one_file_level_error(spec: RecordSpec) -> None:
    frame = pd.read_csv(io.StringIO(CSV), dtype=str).drop(columns=["amount"])
    with pytest.raises(FileLevelError, match="amount") as info:
        spec.validate_frame(frame)
    assert info.value.missing == ["amount"]


def test_frame_and_record_paths_agree(spec: RecordSpec) -> None:
    rng = np.random.default_rng(3)
    rows = []
    mutations = [
        {}, {"amount": -1}, {"amount": "x"}, {"household_size": 1.5}, {"program": "nope"},
        {"submitted_at": "not a date"}, {"full_name": None}, {"channel": ""}, {"dependents": -2},
        {"months_at_address": "7"}, {"citizenship": "x"}, {"region": None},
    ]
    for i in range(200):
        rows.append({**GOOD, "claim_id": f"R{i}", **mutations[rng.integers(len(mutations))]})
    frame = pd.DataFrame(rows)
    v = spec.validate_frame(frame)
    for i, rec in enumerate(rows):
        one = spec.validate_record({k: val for k, val in rec.items()})
        rej = [r for r in v.rejections if r.row == i]
        if isinstance(one, Rejection):
            assert rej and fields_of(rej[0]) == fields_of(one), (i, rec)
        else:
            assert not rej, (i, rej)
    assert len(v.accepted) + len(v.rejections) == len(rows)


SURROGATE = chr(0xD800)  # what JSON's "\\ud800" escape reads as: no UTF-8 store can hold it


@pytest.mark.parametrize("field", ["claim_id", "region", "full_name", "address", "typology", "program"])
def test_an_unpaired_surrogate_is_a_named_rejection(spec: RecordSpec, field: str) -> None:
    r = spec.validate_record({**GOOD, field: "x" + SURROGATE})
    assert fields_of(r) == {field}
    assert isinstance(r, Rejection)
    r.reason.encode("utf-8")  # the rejection itself can be stored and answered
    r.claim_id.encode("utf-8")
    if field == "claim_id":
        assert r.claim_id == "x\\ud800"
    assert isinstance(spec.validate_record({**GOOD, field: "Zoë" if field != "program" else "housing"}), Claim)


def test_an_unpaired_surrogate_in_a_frame_rejects_its_row(spec: RecordSpec) -> None:
    """A frame made in Python (object columns) can hold one; pandas' text columns cannot."""
    rows = [{**GOOD, "claim_id": f"S{i}"} for i in range(5)]
    rows[1]["region"] = SURROGATE
    rows[2]["claim_id"] = "S2" + SURROGATE
    rows[3]["full_name"] = SURROGATE + "Ana"
    rows[4]["typology"] = SURROGATE
    v = spec.validate_frame(pd.DataFrame(rows, dtype=object))
    assert list(v.accepted["claim_id"]) == ["S0"]
    assert [(r.row, fields_of(r)) for r in v.rejections] == [
        (1, {"region"}), (2, {"claim_id"}), (3, {"full_name"}), (4, {"typology"})]


def test_odd_values_in_a_python_frame_reject_their_rows(spec: RecordSpec) -> None:
    """A binary label of 1.5 (a TypeError in pandas before) and a numpy text holding a lone
    surrogate each reject their row, as the record check does."""
    rows = [{**GOOD, "claim_id": f"O{i}"} for i in range(3)]
    rows[1]["is_fraud"] = 1.5
    rows[2]["region"] = np.str_("north" + SURROGATE)
    v = spec.validate_frame(pd.DataFrame(rows, dtype=object))
    assert list(v.accepted["claim_id"]) == ["O0"]
    assert [(r.row, fields_of(r)) for r in v.rejections] == [(1, {"is_fraud"}), (2, {"region"})]


def test_a_value_nested_too_deep_to_write_is_a_named_rejection(spec: RecordSpec) -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    for field in ("claim_id", "amount", "full_name", "channel", "typology"):
        r = spec.validate_record({**GOOD, field: deep})
        assert fields_of(r) == {field} and "nested too deep" in r.errors[0].got  # type: ignore[union-attr]


def test_a_python_frame_of_mixed_values_is_checked_as_each_record_is(spec: RecordSpec) -> None:
    """In a column of Python objects (a frame made in Python, a Parquet list column), a list,
    a float or a bool where text is expected is rejected as the record check rejects it, not
    read as its text ("[1, 2]")."""
    mutations = [
        {}, {"region": [1, 2]}, {"full_name": ["Ana"]}, {"channel": 3.0}, {"claim_id": 4.5},
        {"claim_id": True}, {"region": True}, {"bank_account": 12345}, {"region": 7},
        {"address": {"street": "x"}}, {"claim_id": 17}, {"region": np.array(["a", "b"])},
        {"citizenship": np.int64(1)}, {"email": None},
    ]
    rows = [{**GOOD, "claim_id": f"M{i}", **m} for i, m in enumerate(mutations)]
    v = spec.validate_frame(pd.DataFrame(rows, dtype=object))
    for i, rec in enumerate(rows):
        one = spec.validate_record(rec)
        rej = [r for r in v.rejections if r.row == i]
        if isinstance(one, Rejection):
            assert rej and fields_of(rej[0]) == fields_of(one), (i, rec, rej)
        else:
            assert not rej, (i, rej)
    accepted = set(v.accepted["claim_id"])
    assert accepted == {"M0", "M7", "M8", "17", "M13"}
    assert len(v.accepted) + len(v.rejections) == len(rows)


def test_spec_hash_is_stable_and_changes_with_content() -> None:
    a = RecordSpec.default()
    b = RecordSpec.from_dict({**a.raw, "version": 2})
    assert a.hash == RecordSpec.default().hash != b.hash


@pytest.mark.parametrize(
    "when",
    [
        "2025-03-01T09:30:00Z", "2025-03-01T09:30:00+00:00", "2025-03-01 09:30:00", "2025-03-01T09:30",
        "2025-03-01T09:30:00.5-05:00", "2025-03-01T09:30:00.123456+05:30", " 2024-02-29T23:59:59+14:00 ",
        "1970-01-01T00:00:00-12:00", "2025-12-31T23:30:00-01:00",
    ],
)
def test_plain_iso_timestamps_parse_as_pandas_does(spec: RecordSpec, when: str) -> None:
    """The standard-library fast path gives the instant, zone and text pandas gives."""
    claim = spec.validate_record({**GOOD, "submitted_at": when})
    assert isinstance(claim, Claim)
    ts = pd.Timestamp(when.strip())
    expected = (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
    assert claim.timestamp == expected and str(claim.timestamp) == str(expected)
    assert claim.timestamp.utcoffset() is not None and claim.timestamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "when", ["2025-02-30T09:30:00Z", "2025-13-01T00:00", "9999-12-31T23:00:00-05:00", "2025-03-01T25:00"]
)
def test_impossible_timestamps_are_rejected_not_errors(spec: RecordSpec, when: str) -> None:
    out = spec.validate_record({**GOOD, "submitted_at": when})
    assert isinstance(out, Rejection) and [e.field for e in out.errors] == ["submitted_at"]


def test_core_columns_take_fraudlens_names_only_where_they_are_free() -> None:
    raw = RecordSpec.default().raw
    spec = RecordSpec.from_dict({**raw, "id": "case_ref", "amount": {**raw["amount"], "column": "claimed"}})
    frame = pd.DataFrame({"case_ref": ["A"], "submitted_at": ["t"], "program": ["housing"], "claimed": [1.0]})
    assert spec.with_core_names(frame).columns.tolist() == ["claim_id", "submitted_at", "program", "amount"]
    assert RecordSpec.default().with_core_names(frame) is frame  # nothing to rename: the same frame
    with pytest.raises(SpecError, match=r"columns \['amount'\] hold other fields"):
        spec.with_core_names(frame.assign(amount=2.0))
