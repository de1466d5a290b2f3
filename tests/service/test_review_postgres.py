"""The review queue, decision log and API keys on a real PostgreSQL (skips, or fails under CI, without it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from review.keys import SqlKeyStore
from review.store import ReviewStore, TransitionError
from scoring.decision_log import DecisionLog

pytestmark = pytest.mark.service


@pytest.fixture()
def engine(postgres_engine):
    return postgres_engine


def _case(claim_id: str) -> dict:
    return {
        "claim_id": claim_id, "event_time": datetime(2025, 1, 1, tzinfo=UTC), "program": "housing",
        "amount": 100.0, "risk": 0.9, "risk_kind": "probability", "priority": 1, "model_version": "m1",
        "graph_version": "g1", "entity_id": "E1", "reasons": [{"code": "x", "sentence": "s"}],
        "explanation": None, "detector_scores": {"outlier": 1.0},
    }


def test_case_sink_is_idempotent_and_transitions_are_checked(engine) -> None:
    store = ReviewStore(engine)
    a = store.open_case(_case("C1"))
    assert store.open_case(_case("C1")) == a
    assert store.count() == 1
    with pytest.raises(TransitionError, match="needs a disposition"):
        store.transition(a, "inv1", "closed")
    store.transition(a, "inv1", "in_review")
    case = store.transition(a, "inv1", "closed", disposition="not_fraud", note="family shares the account")
    assert case.status == "closed" and case.disposition == "not_fraud"
    assert [e.kind for e in store.events(a)] == ["opened", "status", "status"]


def test_decision_log_round_trip(engine) -> None:
    log = DecisionLog(engine)
    log.append([{
        "claim_id": "C9", "content_hash": "h" * 64, "event_time": datetime(2025, 1, 1, tzinfo=UTC),
        "source": "api", "program": "housing", "amount": 10.0, "model_version": "m1", "graph_version": "g1",
        "entity_id": None, "features": [1.0, float("nan")], "risk": 0.25, "risk_kind": "percentile",
        "decision": "clear", "priority": 3, "detector_scores": {"outlier": 0.1}, "reasons": [],
        "explanation": None, "protected": {"sex": "F"}, "case_id": None,
    }])
    row = log.get("C9")
    assert row["features"] == [1.0, None] and row["risk"] == 0.25
    assert set(log.existing(["C9", "C10"])) == {"C9"}


def test_api_keys_hashed_and_revocable(engine) -> None:
    keys = SqlKeyStore(engine)
    key_id, secret = keys.create("portal", ["score"])
    assert keys.verify(secret).scopes == frozenset({"score"})
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_hash FROM api_keys")).scalar_one()
    assert secret not in stored
    assert keys.revoke(key_id) and keys.verify(secret) is None


def test_cases_opened_together_and_a_race_keeps_one_case(engine, monkeypatch) -> None:
    """A micro-batch's cases open in one transaction; a claim another worker opened meanwhile
    keeps that worker's case (the batch falls back to one by one)."""
    import fraudlens.database as database

    store, other = ReviewStore(engine), ReviewStore(engine)
    first = store.open_case(_case("B0"))
    ids = store.open_cases([_case("B1"), _case("B0"), _case("B2"), _case("B1")])
    assert ids[1] == first and ids[0] == ids[3] and len(set(ids)) == 3
    raced: list[str] = []
    execute = database.execute_raw

    def meanwhile(conn, statement, *args, **kwargs):
        # another worker opens B4 after this batch looked for existing cases, before it inserts
        if not raced and statement.lstrip().upper().startswith("INSERT INTO CASES"):
            raced.append("")
            raced[0] = other.open_case(_case("B4"))
        return execute(conn, statement, *args, **kwargs)

    monkeypatch.setattr(database, "execute_raw", meanwhile)
    got = store.open_cases([_case("B3"), _case("B4")])
    monkeypatch.undo()
    assert raced and got[1] == raced[0] and store.count() == 5


def test_a_non_finite_score_is_logged_as_null_and_retried_alike(engine, trained, tmp_path) -> None:
    """PostgreSQL's json type refuses NaN and Infinity, which json.dumps writes by default:
    a claim whose outlier score is +inf (an amount of 1e300 overflows the k-NN distance)
    failed its whole micro-batch's write. Now its log row and case hold null, and a retry
    (read back from the log) gets the same answer."""
    import shutil

    import graph
    from fraudlens.database import make_engine
    from fraudlens.settings import load_settings
    from scoring.bundle import Bundle
    from scoring.scorer import Scorer

    settings, _, new = trained
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    s = load_settings(None, home=home, demo=True)
    bundle = Bundle.load(s.bundles_root / (s.bundles_root / "CURRENT").read_text())
    state = graph.IdentityGraph.open(make_engine(s.db_url), s.identity_key(), bundle.spec.identity_kinds)
    log, store = DecisionLog(engine), ReviewStore(engine)
    scorer = Scorer(bundle, state, key=s.identity_key(), log=log, sink=store)
    rec = {**new.iloc[630].to_dict(), "claim_id": "PG-HUGE", "amount": 1e300}
    first = scorer.score_one(rec)
    assert first.detector_scores["outlier"] is None and first.decision == "review"
    again = scorer.score_one(rec)
    assert again.replayed and again.as_dict() == first.as_dict()
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT detector_scores::text FROM decision_log WHERE claim_id = 'PG-HUGE'")
        ).scalar_one()
    assert json.loads(stored)["outlier"] is None  # JSON null, which PostgreSQL's json type takes
    case = store.by_claim("PG-HUGE")
    assert case.id == first.case_id and case.detector_scores["outlier"] is None
