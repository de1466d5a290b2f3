"""The decision log's (and the review queue's) own inserts store what SQLAlchemy's plain insert
stores, on each backend; the log's reads."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Column, MetaData, Table, insert, select
from sqlalchemy.exc import IntegrityError

from fraudlens.database import make_engine
from review.store import CASE_EVENTS, CASES, ReviewStore, _case_row
from scoring.decision_log import DecisionLog, _clean, decision_log

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_engine")
    return make_engine(f"sqlite:///{tmp_path / 'log.db'}")


def _rows() -> list[dict[str, Any]]:
    """Rows with what makes encoding differ: NaN, arrays, zones, numpy scalars, unicode, nulls."""
    plus2 = timezone(timedelta(hours=2))
    base: dict[str, Any] = {
        "content_hash": "h" * 64,
        "source": "api",
        "program": "housing",
        "amount": 120.5,
        "model_version": "m1",
        "graph_version": "g1",
        "entity_id": "E1",
        "risk": 0.25,
        "risk_kind": "percentile",
        "decision": "clear",
        "priority": 3,
        "detector_scores": {"outlier": 0.125, "supervised": 1e-7},
        "reasons": [],
        "explanation": None,
        "protected": {"sex": "F"},
        "case_id": None,
    }
    return [
        base
        | {
            "claim_id": "C1",
            "event_time": datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            "scored_at": datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC),
            "features": np.array([1.0, np.nan, np.inf, -0.1, 1e20, 3.0]),
        },
        base
        | {
            "claim_id": "C2",
            "event_time": datetime(2025, 1, 2, 3, 4, 5, tzinfo=plus2),
            "scored_at": datetime(2025, 6, 1, 0, 0, 0, 999999, tzinfo=plus2),
            "features": [1, None, float("nan"), 2.5, -math.inf, 0.0],
            "amount": 7,
            "risk": np.float64(0.875),
            "decision": "review",
            "priority": 1,
            "detector_scores": {"outlier": np.float64(2.0) / 3},
            "reasons": [{"code": "r1", "sentence": "Montant élevé — 3× la médiane"}],
            "explanation": {"base": 0.1, "top": [["amount", 0.5], ["phone", -0.25]], "ok": True},
            "protected": {},
            "case_id": "K7",
            "entity_id": None,
        },
        base
        | {
            "claim_id": "C3",
            "event_time": datetime(2024, 12, 31, 23, 59, 59),  # naive
            "scored_at": datetime(2025, 1, 1),
            "features": np.array([0.5, 0.25, 0.125, 0.0625, 0.03125, 1 / 3]),
        },
    ]


def _reference(engine, table: Table = decision_log) -> Table:
    """A copy of ``table`` (no foreign keys, no indexes) that SQLAlchemy's plain insert writes."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, default=c.default)
        for c in table.c
    ]
    ref = Table(f"{table.name}_ref", MetaData(), *columns)
    ref.create(engine)
    return ref


def _raw(engine, table: str, columns: Table = decision_log) -> list[tuple]:
    """Every stored value as the database holds it (SQLite: with its storage class)."""
    cols = [c.name for c in columns.c]
    if engine.dialect.name == "sqlite":
        exprs = [e for c in cols for e in (c, f"typeof({c})")]
    else:
        exprs = [f"{c}::text" for c in cols]
    key = "claim_id" if "claim_id" in cols else "case_id"
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(f"SELECT {', '.join(exprs)} FROM {table} ORDER BY {key}"))


def test_stored_content_is_what_sqlalchemy_stores(engine) -> None:
    log, ref = DecisionLog(engine), _reference(engine)
    rows = _rows()
    with engine.begin() as conn:
        assert log.write(conn, rows) == len(rows)
        conn.execute(insert(ref), [r | {"features": _clean(r["features"])} for r in rows])
    assert _raw(engine, "decision_log") == _raw(engine, "decision_log_ref")
    with engine.connect() as conn:
        expected = [dict(r._mapping) for r in conn.execute(select(ref).order_by(ref.c.claim_id))]
    assert [log.get(r["claim_id"]) for r in rows] == expected
    assert expected[1]["features"] == [1.0, None, None, 2.5, None, 0.0]


def test_absent_columns_are_null_and_scored_at_is_now(engine) -> None:
    log, ref = DecisionLog(engine), _reference(engine)
    row = {k: v for k, v in _rows()[0].items() if k not in ("scored_at", "explanation", "case_id")}
    before = datetime.now(UTC)
    log.append([row])
    with engine.begin() as conn:
        conn.execute(
            insert(ref), [row | {"features": _clean(row["features"]), "scored_at": before}]
        )
    got, want = _raw(engine, "decision_log")[0], _raw(engine, "decision_log_ref")[0]
    at = [c.name for c in decision_log.columns].index("scored_at")
    at *= 2 if engine.dialect.name == "sqlite" else 1  # SQLite: (value, storage class) pairs
    # all but the time of writing; an absent explanation is SQL NULL there too, not JSON 'null'
    assert got[:at] + got[at + 1 :] == want[:at] + want[at + 1 :]
    scored_at = log.get("C1")["scored_at"]
    assert (scored_at.replace(tzinfo=UTC) if scored_at.tzinfo is None else scored_at) >= before


def test_duplicates_raise_integrity_error_and_unknown_columns_are_refused(engine) -> None:
    log = DecisionLog(engine)
    log.append(_rows())
    with pytest.raises(IntegrityError):
        log.append(_rows()[:1])
    assert log.append_new(_rows()[1:]).keys() == {"C2", "C3"}
    with pytest.raises(ValueError, match="got \\['colour'\\]"):
        log.append([_rows()[0] | {"claim_id": "C4", "colour": "red"}])
    assert log.count() == 3


def test_existing_reads_full_rows_of_the_logged_ids_only(engine) -> None:
    log = DecisionLog(engine)
    assert log.existing(["C1", "C2"]) == {}
    log.append(_rows()[:2])
    found = log.existing(["C9", "C2", "C1", "C2"])
    assert found == {"C1": log.get("C1"), "C2": log.get("C2")}
    many = [f"X{i}" for i in range(1200)] + ["C2"]
    assert list(log.existing(many)) == ["C2"]


def test_cases_and_their_events_are_stored_as_sqlalchemy_stores_them(engine) -> None:
    """All but the times of writing (the columns' defaults) and the events' own ids."""
    store = ReviewStore(engine)
    cases = [
        r | {"priority": np.int64(2), "explanation": r["explanation"] or None} for r in _rows()
    ]
    ref_cases, ref_events = _reference(engine, CASES), _reference(engine, CASE_EVENTS)
    with engine.begin() as conn:
        ids = store.open_cases_in(conn, cases)
        assert store.open_cases_in(conn, cases[:1]) == ids[:1]  # a case is opened once
        conn.execute(insert(ref_cases), [_case_row(i, c) for i, c in zip(ids, cases, strict=True)])
        detail = [{"risk": float(c["risk"]), "model_version": "m1"} for c in cases]
        events = [
            {"case_id": i, "actor": "fraudlens", "kind": "opened", "note": None, "detail": d}
            for i, d in zip(ids, detail, strict=True)
        ]
        conn.execute(insert(ref_events), events)
    for table, ref, skip in (
        (CASES, ref_cases, {"created_at"}),
        (CASE_EVENTS, ref_events, {"id", "at"}),
    ):
        got, want = _raw(engine, table.name, table), _raw(engine, ref.name, table)
        keep = [
            k
            for k, c in enumerate(table.c)
            for k in ([2 * k, 2 * k + 1] if engine.dialect.name == "sqlite" else [k])
            if c.name not in skip
        ]
        assert [[r[k] for k in keep] for r in got] == [[r[k] for k in keep] for r in want]
        assert [len(r) for r in got] == [len(r) for r in want]
    assert store.by_claim("C2").status == "open" and store.by_claim("C2").created_at is not None
    assert [e.detail for e in store.events(ids[0])] == [detail[0]]


def _strict(text: str) -> Any:
    """``json.loads`` refusing the NaN / Infinity tokens, which are not JSON."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _non_finite_rows() -> list[dict[str, Any]]:
    """Rows with NaN and +/-inf in every JSON column a score can put them in."""
    row = _rows()[1]
    return [
        row
        | {
            "claim_id": "N1",
            "detector_scores": {"outlier": math.inf, "outlier_risk": 1.0, "supervised": math.nan},
            "reasons": [{"code": "r1", "sentence": "s", "contribution": -math.inf, "value": None}],
            "explanation": {"contributions": {"amount_log": np.float64("nan"), "(base)": -2.5}},
        },
        row | {"claim_id": "N2", "detector_scores": {"outlier": -math.inf}, "explanation": None},
    ]


def test_non_finite_json_values_are_stored_as_null(engine) -> None:
    """PostgreSQL's json type refuses NaN and Infinity (SQLite stored the bare tokens): both
    backends store null, the log's own insert as SQLAlchemy's plain insert does."""
    log, ref = DecisionLog(engine), _reference(engine)
    rows = _non_finite_rows()
    with engine.begin() as conn:
        log.write(conn, rows)
        conn.execute(insert(ref), [r | {"features": _clean(r["features"])} for r in rows])
    assert _raw(engine, "decision_log") == _raw(engine, "decision_log_ref")
    json_columns = ["detector_scores", "reasons", "explanation"]
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            f"SELECT {', '.join(json_columns)} FROM decision_log ORDER BY claim_id"
        ).all()
    first = dict(zip(json_columns, stored[0], strict=True))
    if engine.dialect.name == "sqlite":  # PostgreSQL's driver parses json itself
        first = {k: _strict(v) for k, v in first.items()}
    assert first == {
        "detector_scores": {"outlier": None, "outlier_risk": 1.0, "supervised": None},
        "reasons": [{"code": "r1", "sentence": "s", "contribution": None, "value": None}],
        "explanation": {"contributions": {"amount_log": None, "(base)": -2.5}},
    }
    assert log.get("N2")["detector_scores"] == {"outlier": None}


def test_cases_store_non_finite_json_values_as_null(engine) -> None:
    store = ReviewStore(engine)
    ref = _reference(engine, CASES)
    cases = _non_finite_rows()
    with engine.begin() as conn:
        ids = store.open_cases_in(conn, cases)
        conn.execute(insert(ref), [_case_row(i, c) for i, c in zip(ids, cases, strict=True)])
    at = [c.name for c in CASES.c].index("created_at")
    skip = {2 * at, 2 * at + 1} if engine.dialect.name == "sqlite" else {at}
    got, want = _raw(engine, "cases", CASES), _raw(engine, ref.name, CASES)
    assert [[v for k, v in enumerate(r) if k not in skip] for r in got] == [
        [v for k, v in enumerate(r) if k not in skip] for r in want
    ]
    case = store.by_claim("N1")
    assert case.detector_scores == {"outlier": None, "outlier_risk": 1.0, "supervised": None}
    assert case.explanation == {"contributions": {"amount_log": None, "(base)": -2.5}}


def test_a_log_made_with_the_older_indexes_drops_them_and_keeps_its_rows(engine) -> None:
    """Until 2026-12-07 the log also indexed program, model version and decision (a page of
    every batch's commit each): opening such a log drops those three, once, and keeps the
    rows, the claim id key and the index by time scored."""
    from sqlalchemy import inspect

    log = DecisionLog(engine)
    rows = _rows()
    log.append(rows)
    with engine.begin() as conn:  # the log as it was made before
        for column in ("program", "model_version", "decision"):
            conn.exec_driver_sql(f"CREATE INDEX ix_decision_log_{column} ON decision_log ({column})")

    def indexes() -> set[str]:
        return {ix["name"] for ix in inspect(engine).get_indexes("decision_log")}

    assert {"ix_decision_log_program", "ix_decision_log_decision"} < indexes()
    again = DecisionLog(engine)
    assert indexes() == {"ix_decision_log_scored_at"}
    assert [again.get(r["claim_id"])["risk"] for r in rows] == [r["risk"] for r in rows]
    with pytest.raises(IntegrityError):  # the claim id is still the key
        again.append(rows[:1])
    DecisionLog(engine)  # nothing left to drop
    assert indexes() == {"ix_decision_log_scored_at"}
