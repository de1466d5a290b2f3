"""XGBoostDetector: label checks, class balancing and its own save format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import detectors
from detectors.supervised import MODEL_FILE, XGBoostDetector


def rare(n: int = 4000, n_pos: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.zeros(n, dtype=int)
    pos = rng.choice(n, n_pos, replace=False)
    y[pos] = 1
    X[pos, 0] += 2.5
    return X, y


def test_fit_needs_labels() -> None:
    with pytest.raises(ValueError, match="needs y"):
        XGBoostDetector().fit(np.zeros((20, 2)))


def test_labels_must_be_binary() -> None:
    with pytest.raises(ValueError, match="0/1 labels, got \\[2.0\\]"):
        XGBoostDetector().fit(np.zeros((20, 2)), np.r_[np.zeros(19), 2])


def test_too_few_positives_is_a_clear_error() -> None:
    X, y = rare(n_pos=5)
    with pytest.raises(ValueError, match="at least 10 positive .* got 5 positive"):
        XGBoostDetector().fit(X, y)


def test_auto_balance_sets_scale_pos_weight_and_ranks_the_rare_class() -> None:
    X, y = rare()
    det = XGBoostDetector(n_estimators=60, n_jobs=1).fit(X, y)
    assert det.scale_pos_weight_ == pytest.approx((len(y) - y.sum()) / y.sum())
    assert det.n_positives_ == 30
    X_test, y_test = rare(seed=1)
    scores = det.score_samples(X_test)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert np.ptp(scores) > 0.5  # not a constant
    assert roc_auc_score(y_test, scores) >= 0.85


def test_balance_none_and_number() -> None:
    X, y = rare()
    assert XGBoostDetector(n_estimators=5, balance="none").fit(X, y).scale_pos_weight_ == 1.0
    assert XGBoostDetector(n_estimators=5, balance=3.0).fit(X, y).scale_pos_weight_ == 3.0
    with pytest.raises(ValueError, match="balance must be"):
        XGBoostDetector(balance="yes").fit(X, y)


def test_saved_in_xgboost_format_not_pickle(tmp_path: Path) -> None:
    X, y = rare()
    det = XGBoostDetector(n_estimators=20, n_jobs=1).fit(X, y)
    paths = detectors.save(det, tmp_path)
    assert (tmp_path / MODEL_FILE) in paths
    loaded = detectors.load(tmp_path)
    np.testing.assert_array_equal(loaded.contributions(X[:10]), det.contributions(X[:10]))
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


def test_loads_a_save_from_before_tree_cover(tmp_path: Path) -> None:
    X, y = rare()
    det = XGBoostDetector(n_estimators=20, n_jobs=1).fit(X, y)
    detectors.save(det, tmp_path)
    # What a save looked like before explanations needed the cover: no tree_cover_ anywhere.
    manifest = json.loads((tmp_path / "detector.json").read_text())
    del manifest["fitted"]["tree_cover_"]
    (tmp_path / "detector.json").write_text(json.dumps(manifest))
    with np.load(tmp_path / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != "tree_cover_"}
    np.savez(tmp_path / "arrays.npz", **arrays)
    loaded = detectors.load(tmp_path)
    np.testing.assert_array_equal(loaded.tree_cover_, det.tree_cover_)
    np.testing.assert_array_equal(loaded.contributions(X[:10]), det.contributions(X[:10]))
