"""The decision log's own insert stores what SQLAlchemy's plain insert stores, on each backend."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Table, create_engine, insert, select
from sqlalchemy.exc import IntegrityError

from scoring.decision_log import DecisionLog, _clean, decision_log, metadata

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_engine")
    return create_engine(f"sqlite:///{tmp_path / 'log.db'}")


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


def _reference(engine) -> Table:
    """A copy of the log's table that SQLAlchemy's plain insert writes (as the log once did)."""
    ref = decision_log.to_metadata(metadata.__class__(), name="decision_log_ref")
    for ix in list(ref.indexes):
        ref.indexes.discard(ix)
    ref.create(engine)
    return ref


def _raw(engine, table: str) -> list[tuple]:
    """Every stored value as the database holds it (SQLite: with its storage class)."""
    cols = [c.name for c in decision_log.columns]
    if engine.dialect.name == "sqlite":
        exprs = [e for c in cols for e in (c, f"typeof({c})")]
    else:
        exprs = [f"{c}::text" for c in cols]
    with engine.connect() as conn:
        return list(
            conn.exec_driver_sql(f"SELECT {', '.join(exprs)} FROM {table} ORDER BY claim_id")
        )


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
