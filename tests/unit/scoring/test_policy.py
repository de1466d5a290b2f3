"""The policy: percentiles, calibration and thresholds fitted on held-out claims."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.policy import Policy, calibrate, fit_isotonic, fit_percentiles, fit_policy, percentile


def test_percentile_is_monotone_and_bounded() -> None:
    rng = np.random.default_rng(0)
    q = fit_percentiles(rng.standard_cauchy(10_000))
    s = np.sort(rng.standard_cauchy(500))
    p = percentile(s, q)
    assert np.all(np.diff(p) >= 0) and p.min() >= 0 and p.max() <= 1


def test_capacity_threshold_flags_the_review_rate() -> None:
    risk = np.linspace(0, 1, 10_001)
    pol = fit_policy(risk, "percentile", 0.02)
    assert abs(np.mean(risk >= pol.threshold) - 0.02) < 0.001
    assert pol.urgent >= pol.threshold
    assert pol.decide(0.999) == ("review", 1)
    assert pol.decide(pol.threshold) == ("review", 2)
    assert pol.decide(0.1) == ("clear", 3)


def test_target_precision_never_exceeds_capacity() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(5000) < 0.05).astype(np.int64)
    risk = np.clip(y * 0.5 + rng.random(5000) * 0.6, 0, 1)
    pol = fit_policy(risk, "probability", 0.03, y=y, target_precision=0.9)
    flagged = risk >= pol.threshold
    assert flagged.mean() <= 0.031
    assert y[flagged].mean() >= 0.9
    assert "precision" in pol.basis


def test_bad_review_rate() -> None:
    with pytest.raises(ValueError, match=r"review_rate must be in \(0, 0.5\], got 0.7"):
        fit_policy(np.arange(10.0), "percentile", 0.7)


def test_isotonic_calibration_is_monotone() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(2000)
    y = (rng.random(2000) < p**2).astype(np.int64)
    xs, ys = fit_isotonic(p, y)
    out = calibrate(np.sort(p), xs, ys)
    assert np.all(np.diff(out) >= -1e-12) and out.min() >= 0 and out.max() <= 1


def test_policy_round_trip() -> None:
    pol = Policy("percentile", 0.98, 0.995, "capacity")
    assert Policy.from_dict(pol.to_dict()) == pol
    d, pr = pol.decide_many(np.array([0.5, 0.985, 0.999]))
    assert d.tolist() == ["clear", "review", "review"] and pr.tolist() == [3, 2, 1]


def test_a_micro_batch_is_decided_as_a_large_batch() -> None:
    """Up to 16 claims are decided claim by claim (cheaper than the arrays for a micro-batch):
    the same decisions, priorities and types as the array path, on and around each threshold."""
    pol = Policy("probability", 0.5, 0.8, "capacity")
    edges = np.array([0.0, 0.4999999, 0.5, 0.5000001, 0.79999, 0.8, 0.9, 1.0])
    risk = np.random.default_rng(3).permutation(np.tile(edges, 4))  # 32: the array path
    big_d, big_p = pol.decide_many(risk)
    assert big_d.dtype == object and big_p.dtype == np.int64
    for n in (1, 2, 5, 16):
        d, p = pol.decide_many(risk[:n])
        assert d.dtype == object and p.dtype == np.int64
        assert d.tolist() == big_d[:n].tolist() and p.tolist() == big_p[:n].tolist()
    assert [pol.decide(r) for r in edges] == list(zip(*pol.decide_many(edges), strict=True))


def test_a_policy_no_rule_could_follow_is_refused() -> None:
    """A hand-made policy with urgent below the review threshold would give an urgent priority
    to claims it clears (and the scalar and array rules would disagree on them): refused, by
    name, as are thresholds that are not numbers and unknown risk kinds. fit_policy never makes
    one."""
    with pytest.raises(ValueError, match=r"urgent \(0.8\) must be at least the review threshold \(0.9\)"):
        Policy("probability", 0.9, 0.8, "hand-made: urgent below the threshold")
    with pytest.raises(ValueError, match="finite"):
        Policy("probability", float("nan"), 0.9, "hand-made")
    with pytest.raises(ValueError, match="risk_kind"):
        Policy("odds", 0.5, 0.9, "hand-made")  # type: ignore[arg-type]
    pol = Policy("probability", 0.9, 0.9, "urgent at the threshold")  # allowed: every flag urgent
    assert pol.decide_many(np.array([0.89, 0.9]))[1].tolist() == [3, 1]
    rng = np.random.default_rng(4)
    fitted = fit_policy(rng.random(500), "probability", 0.001)  # one flag: urgent = threshold
    assert fitted.urgent >= fitted.threshold
