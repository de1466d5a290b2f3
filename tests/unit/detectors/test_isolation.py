"""IForest's fixed-depth walk over breadth-first trees: same scores as scikit-learn, any batch."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from detectors import _kernels
from detectors.isolation import IForestDetector
from detectors.persistence import load, save


def data(seed: int = 0, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 1] = np.round(X[:, 1])  # ties: thresholds between equal float32 values
    X[:, 2] = np.exp(X[:, 2])
    return X


def test_layout_puts_children_side_by_side_and_leaves_on_themselves() -> None:
    det = IForestDetector(n_estimators=5, random_state=0).fit(data())
    _, _, _, threshold, child, _ = det._walk
    leaf = np.isinf(threshold)
    assert np.array_equal(child[leaf], np.flatnonzero(leaf))
    internal = np.flatnonzero(~leaf)
    assert (child[internal] > internal).all()  # breadth-first: children come later
    assert len(np.unique(child[internal])) == len(internal)  # each pair used once


@pytest.mark.parametrize("max_samples", ["auto", 1000])
def test_walk_equals_sklearn_with_missing_values(max_samples: int | str) -> None:
    X = data()
    det = IForestDetector(n_estimators=30, max_samples=max_samples, random_state=3).fit(X)
    ref = IsolationForest(n_estimators=30, max_samples=max_samples, random_state=3).fit(X)
    new = data(seed=1, n=500) * 2.0
    new[::7, 0] = np.nan
    imputed = np.where(np.isnan(new), det.fill_values_, new)
    np.testing.assert_allclose(det.score_samples(new), -ref.score_samples(imputed), rtol=1e-12)


def test_constant_columns_give_one_leaf_trees() -> None:
    X = np.ones((300, 3))
    det = IForestDetector(n_estimators=4, random_state=0).fit(X)
    assert (det._walk[1] == 0).all()
    np.testing.assert_allclose(
        det.score_samples(X[:3]),
        -IsolationForest(n_estimators=4, random_state=0).fit(X).score_samples(X[:3]),
    )


def test_one_row_equals_batch_on_one_and_two_threads(tmp_path, batch_equals_one_row) -> None:
    det = IForestDetector(n_estimators=50, random_state=0).fit(data())
    X = data(seed=2, n=_kernels.PARALLEL_MIN_ROWS + 300)
    batch_equals_one_row(det, X, 89)
    save(det, tmp_path / "iforest")
    assert np.array_equal(load(tmp_path / "iforest").score_samples(X), det.score_samples(X))
