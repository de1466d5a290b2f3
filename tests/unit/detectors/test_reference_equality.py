"""Each frozen scoring path equals its reference implementation (PyOD / sklearn / XGBoost)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD
from pyod.models.hbos import HBOS, get_optimal_n_bins
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from sklearn.ensemble import IsolationForest

from detectors.empirical import COPODDetector, ECODDetector
from detectors.histogram import HBOSDetector, birge_rozenblac_bins
from detectors.isolation import IForestDetector
from detectors.neighbours import KNNDetector, LOFDetector
from detectors.supervised import XGBoostDetector


def _data_dir() -> Path:
    env = os.environ.get("FRAUDLENS_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def mixed(seed: int = 0, n: int = 1500) -> np.ndarray:
    """Gaussian, rounded (ties), exponential (skewed) and a near-constant column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 1] = np.round(X[:, 1] * 2)
    X[:, 2] = rng.exponential(size=n)
    X[:, 3] = -rng.exponential(size=n)
    X[:, 5] = np.where(rng.random(n) < 0.97, 1.0, 2.0)
    return X


@pytest.fixture(scope="module", params=["mixed", "cardio"])
def train(request: pytest.FixtureRequest) -> np.ndarray:
    if request.param == "mixed":
        return mixed()
    path = _data_dir() / "adbench" / "6_cardio.npz"
    if not path.is_file():
        pytest.skip(f"ADBench cardio not found at {path}")
    with np.load(path) as npz:
        return np.asarray(npz["X"], dtype=np.float64)


@pytest.fixture(scope="module")
def new_rows(train: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    return train[rng.integers(0, len(train), 200)] + rng.normal(size=(200, train.shape[1])) * 0.5


@pytest.mark.parametrize(("ours", "ref"), [(ECODDetector, ECOD), (COPODDetector, COPOD)])
def test_empirical_training_scores_equal_pyod(ours: type, ref: type, train: np.ndarray) -> None:
    expected = ref().fit(train).decision_scores_
    det = ours().fit(train)
    np.testing.assert_allclose(det.decision_scores_, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(det.score_samples(train), expected, rtol=0, atol=1e-9)
    assert det.threshold_ == pytest.approx(ref().fit(train).threshold_, abs=1e-9)


def test_ecod_new_rows_use_the_training_ecdf(train: np.ndarray) -> None:
    det = ECODDetector().fit(train)
    x = train[:1].copy()
    x[0, 0] = train[:, 0].max() + 100.0  # beyond the training range
    # PyOD appends the row and recomputes: for one row far out that is the same tail
    # probability 1 / (n + 1) we freeze, so the two agree closely but not exactly.
    ref = ECOD().fit(train)
    assert det.score_samples(x)[0] == pytest.approx(ref.decision_function(x)[0], rel=0.05)
    assert np.isfinite(det.score_samples(x)).all()


@pytest.mark.parametrize("n_bins", [10, "auto"])
def test_hbos_equals_pyod_on_any_rows(
    n_bins: int | str, train: np.ndarray, new_rows: np.ndarray
) -> None:
    ref = HBOS(n_bins=n_bins).fit(train)
    det = HBOSDetector(n_bins=n_bins).fit(train)
    np.testing.assert_allclose(det.decision_scores_, ref.decision_scores_, rtol=0, atol=1e-9)
    far = new_rows * 10.0  # past the edges: the tol rule and the lowest density
    for X in (new_rows, far):
        np.testing.assert_allclose(
            det.score_samples(X), ref.decision_function(X), rtol=0, atol=1e-9
        )


@pytest.mark.parametrize(
    "column",
    [
        np.random.default_rng(1).normal(size=3000),
        np.random.default_rng(2).lognormal(sigma=2.0, size=20000),  # heavy tail
        np.round(np.random.default_rng(3).normal(size=8000) * 2),  # ties
        np.random.default_rng(4).integers(0, 3, 5000).astype(float),  # three values
        np.random.default_rng(5).standard_cauchy(10000),
        np.zeros(100),  # constant: np.histogram's +-0.5 range
        np.r_[np.zeros(900), np.arange(1.0, 101.0)],  # zero-inflated count
    ],
    ids=["normal", "lognormal", "rounded", "three-values", "cauchy", "constant", "zero-inflated"],
)
def test_auto_bins_equal_pyod(column: np.ndarray) -> None:
    assert birge_rozenblac_bins(column) == get_optimal_n_bins(column)


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_iforest_equals_sklearn(
    max_features: float, train: np.ndarray, new_rows: np.ndarray
) -> None:
    ref = IsolationForest(n_estimators=60, max_features=max_features, random_state=4).fit(train)
    det = IForestDetector(n_estimators=60, max_features=max_features, random_state=4).fit(train)
    np.testing.assert_allclose(det.decision_scores_, -ref.score_samples(train), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        det.score_samples(new_rows), -ref.score_samples(new_rows), rtol=0, atol=1e-9
    )


def test_iforest_is_pyod_minus_its_offset(train: np.ndarray) -> None:
    ref = IForest(n_estimators=60, random_state=4).fit(train)
    det = IForestDetector(n_estimators=60, random_state=4).fit(train)
    np.testing.assert_allclose(
        det.decision_scores_ + ref.detector_.offset_, ref.decision_scores_, rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@pytest.mark.parametrize("method", ["largest", "mean", "median"])
def test_knn_equals_pyod(
    method: str, algorithm: str, train: np.ndarray, new_rows: np.ndarray
) -> None:
    ref = KNN(method=method).fit(train)
    det = KNNDetector(method=method, algorithm=algorithm).fit(train)
    np.testing.assert_allclose(det.decision_scores_, ref.decision_scores_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        det.score_samples(new_rows), ref.decision_function(new_rows), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_lof_equals_pyod(algorithm: str, train: np.ndarray, new_rows: np.ndarray) -> None:
    ref = LOF().fit(train)
    det = LOFDetector(algorithm=algorithm).fit(train)
    np.testing.assert_allclose(det.decision_scores_, ref.decision_scores_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        det.score_samples(new_rows), ref.decision_function(new_rows), rtol=1e-9, atol=1e-9
    )


def test_xgboost_frozen_trees_equal_booster(train: np.ndarray, new_rows: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    y = (
        train[:, 0] + rng.normal(size=len(train)) * train[:, 0].std()
        > np.quantile(train[:, 0], 0.9)
    ).astype(int)
    X = train.copy()
    X[rng.random(X.shape) < 0.05] = np.nan  # default directions
    det = XGBoostDetector(n_estimators=80, n_jobs=1).fit(X, y)
    Xn = new_rows.copy()
    Xn[rng.random(Xn.shape) < 0.1] = np.nan
    for rows in (X, Xn):
        dm = xgb.DMatrix(rows, missing=np.nan)
        np.testing.assert_allclose(
            det.score_samples(rows), det.booster_.predict(dm), rtol=0, atol=2e-6
        )
        margin = det.booster_.predict(dm, output_margin=True)
        np.testing.assert_allclose(det.margin(rows), margin, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(det.reference_predict(rows), det.booster_.predict(dm), atol=1e-7)
    contribs = det.contributions(Xn)
    assert contribs.shape == (len(Xn), Xn.shape[1] + 1)
    np.testing.assert_allclose(contribs.sum(axis=1), det.margin(Xn), rtol=1e-4, atol=1e-3)
