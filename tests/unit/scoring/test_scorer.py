"""The Scorer: one at a time equals a frame bit for bit; every decision logged and replayable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from review.store import ReviewStore
from scoring.bundle import Bundle, BundleError
from scoring.decision_log import DecisionLog
from scoring.replay import replay_decision
from scoring.results import ClaimConflict, RecordRejected


@pytest.fixture()
def two(copy_home):
    return copy_home("a"), copy_home("b")


def test_one_at_a_time_equals_frame(two) -> None:
    (_, _, one, new), (_, _, many, _) = two
    sample = new.iloc[:300].reset_index(drop=True)
    singles = [one.score_one(rec, source="stream") for rec in sample.to_dict("records")]
    frame = many.score_frame(sample)
    assert (frame["status"] == "scored").all()
    np.testing.assert_array_equal(frame["risk"].to_numpy(), np.array([r.risk for r in singles]))
    assert frame["decision"].tolist() == [r.decision for r in singles]
    assert one.graph_version == many.graph_version


def test_every_decision_logged_and_replayed(two) -> None:
    (s, engine, scorer, new), _ = two
    sample = new.iloc[300:500].reset_index(drop=True)
    out = scorer.score_frame(sample)
    log = DecisionLog(engine)
    assert log.count() >= len(sample)
    for cid in out["claim_id"].iloc[::40]:
        row = log.get(cid)
        assert row is not None and len(row["features"]) == len(scorer.names)
        result = replay_decision(engine, s.bundles_root, cid)
        assert result["reproduced"], result
    flagged = out[out["decision"] == "review"]
    assert (flagged["case_id"].notna()).all()
    assert ReviewStore(engine).count() >= len(flagged)


def test_frame_accounts_for_every_row(two) -> None:
    (_, _, scorer, new), _ = two
    sample = new.iloc[500:520].reset_index(drop=True).copy()
    sample["amount"] = sample["amount"].astype(object)
    sample.loc[3, "amount"] = "bad"
    sample.loc[7, "claim_id"] = sample.loc[6, "claim_id"]
    out = scorer.score_frame(sample)
    assert len(out) == len(sample)
    assert out.loc[3, "status"] == "rejected" and "amount" in out.loc[3, "rejection"]
    assert out.loc[7, "status"] == "rejected" and "duplicate" in out.loc[7, "rejection"]
    assert (out["status"] == "scored").sum() == len(sample) - 2
    again = scorer.score_frame(sample)
    assert (again.loc[out["status"] == "scored", "status"] == "retry").all()
    np.testing.assert_array_equal(again["risk"].to_numpy(), out["risk"].to_numpy())


def test_retry_conflict_and_rejection(two) -> None:
    (_, _, scorer, new), _ = two
    rec = new.iloc[600].to_dict()
    first = scorer.score_one(rec)
    assert scorer.score_one(rec).risk == first.risk
    with pytest.raises(ClaimConflict):
        scorer.score_one({**rec, "amount": rec["amount"] + 1})
    with pytest.raises(RecordRejected) as info:
        scorer.score_one({**rec, "claim_id": "X1", "household_size": -4})
    assert info.value.rejection.errors[0].field == "household_size"


def test_tampered_bundle_is_refused(trained, tmp_path) -> None:
    settings, _, _ = trained
    version = (settings.bundles_root / "CURRENT").read_text()
    dst = tmp_path / version
    shutil.copytree(settings.bundles_root / version, dst)
    path = dst / "features.json"
    path.write_text(path.read_text().replace("amount_log", "amount_lag", 1))
    with pytest.raises(BundleError, match="features.json"):
        Bundle.load(dst)


def test_a_bundle_with_a_policy_no_rule_could_follow_is_refused(trained, tmp_path) -> None:
    """A hand-edited manifest whose urgent level is below its review threshold does not load:
    the error names the bundle and the policy."""
    import json

    from scoring.bundle import MANIFEST

    settings, _, _ = trained
    version = (settings.bundles_root / "CURRENT").read_text()
    dst = tmp_path / version
    shutil.copytree(settings.bundles_root / version, dst)
    manifest = json.loads((dst / MANIFEST).read_text())
    manifest["policy"]["urgent"] = manifest["policy"]["threshold"] / 2
    (dst / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"policy refused: urgent .* must be at least the review threshold"):
        Bundle.load(dst)


def test_manifest_records_what_auditors_need(trained) -> None:
    settings, _, _ = trained
    b = Bundle.load(settings.bundles_root / (settings.bundles_root / "CURRENT").read_text())
    m = b.manifest
    for key in ("version", "created", "data_fingerprint", "feature_names", "spec_hash", "libraries",
                "metrics", "policy", "artifacts"):
        assert key in m
    assert not set(m["feature_names"]) & set(m["protected_attributes"])
    assert "per_group" in m["metrics"] and "citizenship" in m["metrics"]["per_group"]
    assert isinstance(pd.Timestamp(m["created"]), pd.Timestamp)


def _stored_json(engine, column: str, claim_id: str):
    """A decision-log JSON column as stored, parsed refusing NaN / Infinity (not JSON)."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    with engine.connect() as conn:
        text = conn.exec_driver_sql(
            f"SELECT {column} FROM decision_log WHERE claim_id = ?", (claim_id,)
        ).scalar_one()
    return json.loads(text, parse_constant=refuse)


def test_an_infinite_outlier_score_is_none_and_a_retry_answers_the_same(two) -> None:
    """An amount of 1e300 is a valid claim whose k-NN distance overflows: the outlier score is
    +inf (outlier risk 1). The answer says None for it, the log holds null, a retry (read back
    from the log) gets the same answer."""
    (_, engine, scorer, new), _ = two
    rec = {**new.iloc[610].to_dict(), "amount": 1e300}
    first = scorer.score_one(rec)
    assert first.detector_scores["outlier"] is None
    assert first.detector_scores["outlier_risk"] == 1.0 and 0.0 <= first.risk <= 1.0
    again = scorer.score_one(rec)
    assert again.replayed and again.as_dict() == first.as_dict()
    assert _stored_json(engine, "detector_scores", first.claim_id)["outlier"] is None
    frame = scorer.score_frame(pd.DataFrame([{**rec, "claim_id": "HUGE-FRAME"}]))
    assert frame.loc[0, "status"] == "scored" and 0.0 <= frame.loc[0, "risk"] <= 1.0


def test_a_non_finite_risk_is_refused_before_anything_is_decided(two, monkeypatch) -> None:
    """A NaN risk is a model bug: it would compare below every threshold and clear the claim.
    The Scorer raises instead; nothing is logged and no case opened."""
    (_, _, scorer, new), _ = two
    n_logged, n_cases = scorer.log.count(), scorer.sink.count()
    xs, ys = scorer.bundle.calibration
    monkeypatch.setattr(scorer.bundle, "calibration", (xs, np.full_like(ys, np.nan)))
    with pytest.raises(BundleError, match="non-finite risk"):
        scorer.score_one(new.iloc[620].to_dict())
    with pytest.raises(BundleError, match="non-finite risk"):
        scorer.score_frame(new.iloc[621:625].reset_index(drop=True))
    assert (scorer.log.count(), scorer.sink.count()) == (n_logged, n_cases)
