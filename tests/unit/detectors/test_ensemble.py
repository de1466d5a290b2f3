"""Tests for the unsupervised and few-label ensembles and the score normalisation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import detectors
from detectors.empirical import _EmpiricalTails
from detectors.ensemble import Ensemble, redundancy_weights
from detectors.normalisation import Z_FLOOR, Z_KNEE, compress_tail, fit_robust_scale, robust_z

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def seeded() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(1500, 4))
    anomalies = rng.normal(loc=4.0, size=(40, 4)) * rng.choice([-1.0, 1.0], size=(40, 4))
    X = np.vstack([normal, anomalies])
    y = np.r_[np.zeros(len(normal), int), np.ones(len(anomalies), int)]
    return X, y


@pytest.fixture(scope="module")
def fitted(seeded) -> Ensemble:
    return Ensemble().fit(seeded[0])


def test_robust_scale_ignores_heavy_tail():
    centre, scale = fit_robust_scale(np.r_[np.arange(100.0), 1e9])
    assert centre == pytest.approx(50.0)
    assert scale == pytest.approx(50.0)


def test_robust_scale_falls_back_when_iqr_is_zero():
    scores = np.r_[np.zeros(90), np.arange(1.0, 11.0)]
    centre, scale = fit_robust_scale(scores)
    assert centre == 0.0 and scale > 0


def test_robust_z_floors_and_fills_missing():
    z = robust_z(np.array([-100.0, 1.0, np.nan, 7.0, 9.0]), 1.0, 2.0)
    assert z.tolist() == [Z_FLOOR, 0.0, 0.0, 3.0, pytest.approx(Z_KNEE + np.log(2.0))]


def test_tail_compression_keeps_order_and_bounds_a_single_vote():
    z = np.array([0.0, 2.0, 3.0, 4.0, 10.0, 1e6])
    c = compress_tail(z)
    assert np.all(np.diff(c) > 0)
    np.testing.assert_array_equal(c[:3], z[:3])
    # one member a million IQRs out adds < 14 to a mean, not 250,000
    assert c[-1] < Z_KNEE + 14


def test_redundancy_weights_split_a_vote_between_near_copies():
    rng = np.random.default_rng(3)
    a, b, c = rng.normal(size=(3, 2000))
    w = redundancy_weights(np.column_stack([a, a + 0.01 * rng.normal(size=2000), b, c]))
    # the two copies of a share about one vote; b and c keep one each
    assert w[0] + w[1] == pytest.approx(w[2], rel=0.05)
    assert w[2] == pytest.approx(w[3], rel=0.05)
    assert w.sum() == pytest.approx(1.0)
    # a constant member (no ranking information) does not break the weights
    w = redundancy_weights(np.column_stack([a, np.zeros(2000)]))
    assert np.all(np.isfinite(w)) and w.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weighting must be one of"):
        Ensemble(weighting="max").fit(np.c_[a, b])


def test_build_by_name_and_registry():
    assert isinstance(detectors.build("ensemble"), Ensemble)
    assert detectors.build("ensemble", supervised=True).supervised is True


def test_fit_returns_self_and_sets_outputs(seeded):
    X, _ = seeded
    ens = Ensemble()
    assert ens.fit(X) is ens
    assert ens.decision_scores_.shape == (len(X),)
    assert ens.member_names_ == ["iforest", "ecod", "copod", "hbos", "knn"]
    assert np.all(ens.scales_ > 0)
    assert ens.weights_.shape == (5,) and ens.weights_.sum() == pytest.approx(1.0)
    assert np.all(ens.weights_ > 0)


def test_unsupervised_roc_floor_and_direction(seeded, fitted):
    X, y = seeded
    scores = fitted.score_samples(X)
    assert roc_auc_score(y, scores) > 0.95
    far = fitted.score_samples(np.full((1, 4), 8.0))[0]
    centre = fitted.score_samples(np.zeros((1, 4)))[0]
    assert far > fitted.decision_scores_.max() > centre


def test_score_is_weighted_mean_of_member_scores(seeded, fitted):
    X, _ = seeded
    members = fitted.member_scores(X[:50])
    stacked = np.column_stack([members[n] for n in fitted.member_names_])
    np.testing.assert_allclose(stacked @ fitted.weights_, fitted.score_samples(X[:50]))
    equal = Ensemble(weighting="equal").fit(X)
    np.testing.assert_allclose(equal.weights_, np.full(5, 0.2))
    z = np.column_stack(list(equal.member_scores(X[:50]).values()))
    np.testing.assert_allclose(z.mean(axis=1), equal.score_samples(X[:50]))
    # training scores are new-row scores, except where the KNN member's reference rows
    # leave themselves out at fit (a training row is never its own neighbour)
    knn = fitted.members_[fitted.member_names_.index("knn")]
    own = knn.score_samples(fitted._scaled_inputs(X)["robust"]) != knn.decision_scores_
    assert 0 < own.sum() <= knn.reference_.shape[0]
    np.testing.assert_allclose(
        fitted.score_samples(X)[~own], fitted.decision_scores_[~own], rtol=1e-9
    )
    assert np.all(fitted.decision_scores_[own] > fitted.score_samples(X)[own])


def test_one_row_equals_batch(seeded, fitted):
    X, _ = seeded
    batch = fitted.score_samples(X[:20])
    rows = np.array([fitted.score_samples(X[i : i + 1])[0] for i in range(20)])
    np.testing.assert_allclose(rows, batch, rtol=1e-12)


def test_members_score_as_alone_with_one_check_and_one_tail_pass(seeded, fitted, tmp_path):
    """The ensemble checks its input once and scores ECOD and COPOD (the same frozen tails) in
    one pass: each member's z-score is the one its own ``score_samples`` gives, bit for bit,
    for one row, a few and many, after a save and load too; a robust-scaled copy that
    overflows to infinity is refused as the member would refuse it."""
    X, _ = seeded
    names = fitted.member_names_
    assert fitted._tails_shared_with() == [
        names.index("ecod") if n in ("ecod", "copod") else None for n in names
    ]
    calls = []
    tails = _EmpiricalTails.tail_scores

    def counted(self, arr):
        calls.append(arr.shape)
        return tails(self, arr)

    def alone(ens, rows):
        scaled = ens._scaled_inputs(rows)
        raw = np.column_stack(
            [m.score_samples(scaled[ens.member_scaling_[j]]) for j, m in enumerate(ens.members_)]
        )
        return robust_z(ens._transform(raw), ens.centres_, ens.scales_)

    detectors.save(fitted, tmp_path / "ens")
    for ens in (fitted, detectors.load(tmp_path / "ens")):
        for rows in (X[:1], X[3:5], X):
            calls.clear()
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(_EmpiricalTails, "tail_scores", counted)
                z = ens._member_z(rows)
            assert calls == [rows.shape]  # ECOD's and COPOD's scores from one pass
            np.testing.assert_array_equal(z, alone(ens, rows))
    small = Ensemble(members=[{"detector": "knn", "scale": "robust"}]).fit(X * 1e-3)
    huge = X[:2] * 1e-3
    huge[1, 0] = 1e307  # finite, but infinite once divided by the column's spread
    assert np.isfinite(huge).all()
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=r"got \+/-inf in rows \[1\]"):
        small.score_samples(huge)


def test_frame_input_reordered_by_name(seeded):
    X, _ = seeded
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    ens = Ensemble().fit(frame)
    shuffled = frame[["d", "c", "b", "a"]]
    np.testing.assert_allclose(ens.score_samples(shuffled), ens.score_samples(frame))


def test_percentiles_in_unit_interval(seeded, fitted):
    X, _ = seeded
    p = fitted.unsupervised_percentiles(np.vstack([X[:10], np.full((1, 4), 9.0)]))
    assert np.all((p >= 0) & (p <= 1))
    assert p[-1] == 1.0


def test_custom_members_and_validation(seeded):
    X, _ = seeded
    ens = Ensemble(
        members=[
            {"detector": "ecod"},
            {"detector": "hbos", "name": "hbos20", "params": {"n_bins": 20}},
        ]
    )
    ens.fit(X)
    assert sorted(ens.member_scores(X[:3])) == ["ecod", "hbos20"]
    with pytest.raises(ValueError, match="duplicates"):
        Ensemble(members=[{"detector": "ecod"}, {"detector": "ecod"}]).fit(X)
    with pytest.raises(ValueError, match="unknown keys"):
        Ensemble(members=[{"detector": "ecod", "weight": 2}]).fit(X)
    with pytest.raises(ValueError, match="non-empty list"):
        Ensemble(members=[]).fit(X)
    with pytest.raises(ValueError, match="unsupervised detector"):
        Ensemble(members=[{"detector": "xgboost"}]).fit(X)
    with pytest.raises(ValueError, match=r"contamination must be in \(0, 0.5\], got 0.9"):
        Ensemble(contamination=0.9).fit(X)


def test_member_scale_and_transform_options(seeded, tmp_path):
    X, _ = seeded
    X = X.copy()
    X[:, 0] = np.exp(2.0 * X[:, 0])  # a heavy-tailed column
    ens = Ensemble(
        members=[
            {"detector": "knn", "scale": "robust", "transform": "log", "name": "robust"},
            {"detector": "knn", "scale": "standard", "name": "standard"},
            {"detector": "knn", "standardise": True, "name": "older_spelling"},
        ]
    ).fit(X)
    assert ens.member_scaling_ == ["robust", "standard", "standard"]
    assert ens.member_transforms_ == ["log", None, None]
    median = np.median(X, axis=0)
    iqr = np.percentile(X, 75, axis=0) - np.percentile(X, 25, axis=0)
    robust = ens.members_[0]
    np.testing.assert_allclose(robust.reference_, (X - median) / iqr)
    standard = ens.members_[1]
    np.testing.assert_allclose(standard.reference_, (X - X.mean(axis=0)) / X.std(axis=0))
    z = ens.member_scores(X[:30])
    np.testing.assert_array_equal(z["standard"], z["older_spelling"])
    raw = np.log(robust.score_samples((X[:30] - median) / iqr))
    expected = robust_z(raw, ens.centres_[0], ens.scales_[0])
    np.testing.assert_allclose(z["robust"], expected, rtol=1e-12)
    # a duplicated row is at distance 0 from its twin: the log stays finite
    twins = np.vstack([X, X[:5]])
    assert np.isfinite(Ensemble(members=ens.members).fit(twins).decision_scores_).all()
    detectors.save(ens, tmp_path / "ens")
    loaded = detectors.load(tmp_path / "ens")
    np.testing.assert_array_equal(loaded.score_samples(X), ens.score_samples(X))


def test_member_option_validation(seeded):
    X, _ = seeded
    with pytest.raises(ValueError, match="scale must be one of"):
        Ensemble(members=[{"detector": "knn", "scale": "minmax"}]).fit(X)
    with pytest.raises(ValueError, match="transform must be one of"):
        Ensemble(members=[{"detector": "knn", "transform": "sqrt"}]).fit(X)
    with pytest.raises(ValueError, match="use scale alone"):
        Ensemble(members=[{"detector": "knn", "standardise": True, "scale": "robust"}]).fit(X)


def test_ensemble_saved_before_scale_options_loads_as_it_was(seeded):
    X, _ = seeded
    ens = Ensemble(members=[{"detector": "ecod"}, {"detector": "knn", "scale": "standard"}])
    ens.fit(X)
    expected = ens.score_samples(X[:50])
    # what such a file held: standardised_ instead of the scale and transform lists
    for name in ("member_scaling_", "member_transforms_", "transform_floors_"):
        delattr(ens, name)
    ens.standardised_ = np.array([False, True])
    ens._restore()
    np.testing.assert_array_equal(ens.score_samples(X[:50]), expected)


def test_save_load_round_trip(tmp_path, seeded, fitted):
    X, _ = seeded
    detectors.save(fitted, tmp_path / "ens")
    loaded = detectors.load(tmp_path / "ens")
    assert isinstance(loaded, Ensemble)
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    assert loaded.member_names_ == fitted.member_names_


def _few_labels(y: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(y == 1)
    labels = np.zeros_like(y)
    labels[rng.choice(pos, max(1, int(share * len(pos))), replace=False)] = 1
    return labels


def test_supervised_needs_labels_and_checks_them(seeded):
    X, y = seeded
    with pytest.raises(ValueError, match="expected labels y"):
        Ensemble(supervised=True).fit(X)
    with pytest.raises(ValueError, match="got values"):
        Ensemble(supervised=True).fit(X, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="0 frauds"):
        Ensemble(supervised=True).fit(X, np.zeros_like(y))


def test_unlabelled_weight_power_zero_keeps_every_row(seeded):
    X, y = seeded
    labels = _few_labels(y, 0.25)
    ens = Ensemble(
        supervised=True, unlabelled_weight_power=0.0, xgboost_params={"n_estimators": 10}
    ).fit(X, labels)
    assert roc_auc_score(y, ens.decision_scores_) > 0.9


def test_supervised_few_labels_beats_its_unsupervised_part(seeded, tmp_path):
    X, y = seeded
    labels = _few_labels(y, 0.25)
    ens = Ensemble(supervised=True, xgboost_params={"n_estimators": 40, "n_jobs": 1}).fit(X, labels)
    rng = np.random.default_rng(1)
    test = np.vstack([rng.normal(size=(500, 4)), rng.normal(loc=4.0, size=(15, 4))])
    y_test = np.r_[np.zeros(500, int), np.ones(15, int)]
    supervised = ens.score_samples(test)
    assert average_precision_score(y_test, supervised) > 0.8
    assert set(ens.member_scores(test[:2])) == set(ens.member_names_)
    detectors.save(ens, tmp_path / "sup")
    np.testing.assert_allclose(
        detectors.load(tmp_path / "sup").score_samples(test), supervised, rtol=1e-6
    )


def _adbench(name: str) -> tuple[np.ndarray, np.ndarray]:
    base = Path(os.environ.get("FRAUDLENS_DATA_DIR", REPO.parent / "shared" / "data"))
    path = base / "adbench" / name
    if not path.is_file():
        pytest.skip(f"ADBench file {path} not available")
    with np.load(path) as d:
        return d["X"].astype(np.float64), d["y"].astype(int)


def test_roc_floor_on_real_data():
    X, y = _adbench("38_thyroid.npz")
    assert roc_auc_score(y, Ensemble().fit(X).decision_scores_) > 0.95


def test_quality_benchmark_quick_run():
    import json
    import subprocess
    import sys

    _adbench("38_thyroid.npz")
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "quality.py"),
            "--datasets",
            "38_thyroid",
            "--quick",
            "--synthetic-rows",
            "3000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout)
    entry = report["datasets"]["38_thyroid"]
    assert entry["unsupervised"]["detectors"]["ensemble"]["roc_auc"] > 0.9
    assert "ensemble_supervised" in entry["few_labels"]["detectors"]
    assert "checks" in report["summary"]
    synthetic = report["synthetic_claims"]
    assert synthetic["rows"] == 3000 and synthetic["rejected"] == 0
    assert synthetic["test_frauds"] > 0
    for section in ("claim_features", "claim_and_graph_features"):
        dets = synthetic[section]["detectors"]
        assert {"iforest", "ensemble", "xgboost", "ensemble_supervised"} <= set(dets)
        top = dets["ensemble"]["top_0.01"]
        assert 0.0 <= top["precision"] <= 1.0
        assert set(top["recall_by_typology"]) == set(synthetic["test_frauds_by_typology"])
    # with a few labels the supervised ensemble finds frauds at the 1% budget
    assert synthetic["claim_and_graph_features"]["detectors"]["ensemble_supervised"]["ap"] > 0.1


def test_a_few_rows_combine_to_the_bits_of_many(seeded, fitted) -> None:
    """Up to 16 rows are summed in Python floats, more with arrays: the same bits either way,
    infinities and the NaN they can make included."""
    from detectors.ensemble import _FEW_ROWS, _combine

    X, _ = seeded
    z = fitted._member_z(X[:200])
    z[3, 1] = np.inf
    z[4, [1, 2]] = [np.inf, -np.inf]
    with np.errstate(invalid="ignore"):  # inf - inf
        many = _combine(z, fitted.weights_)
    assert len(z) > _FEW_ROWS and np.isnan(many[4]) and many[3] == np.inf
    for start, n in ((0, 1), (3, 2), (0, _FEW_ROWS), (50, 7)):
        np.testing.assert_array_equal(_combine(z[start : start + n], fitted.weights_), many[start : start + n])
    np.testing.assert_array_equal(
        np.concatenate([fitted.score_samples(X[i : i + 1]) for i in range(40)]), fitted.score_samples(X[:40])
    )
