"""The Detector contract, run over every learned detector in the registry."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import detectors
from detectors import BaseDetector, NotFittedError, check_is_fitted
from detectors.registry import get_class, registered

#: Not learned from data: the red-flag rules have their own tests.
NOT_LEARNED = {"rules"}

#: Small settings so the suite stays fast; every other parameter is the default.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "iforest": {"n_estimators": 50, "random_state": 0},
    "xgboost": {"n_estimators": 40, "n_jobs": 1},
    "knn": {"random_state": 0},
    "lof": {"random_state": 0},
}

N_FEATURES = 5


def planted(seed: int, n_in: int = 600, n_out: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inliers and outliers planted 4-7 standard deviations out on every column."""
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(n_in, N_FEATURES))
    outliers = rng.uniform(4.0, 7.0, size=(n_out, N_FEATURES)) * rng.choice(
        [-1, 1], size=(n_out, N_FEATURES)
    )
    X = np.vstack([inliers, outliers])
    y = np.r_[np.zeros(n_in, dtype=int), np.ones(n_out, dtype=int)]
    order = rng.permutation(len(y))
    return X[order], y[order]


def _names() -> list[Any]:
    params = []
    for name in registered():
        if name in NOT_LEARNED:
            continue
        try:
            get_class(name)
        except ImportError as exc:
            params.append(pytest.param(name, marks=pytest.mark.skip(reason=f"{name}: {exc}")))
            continue
        params.append(name)
    return params


def make(name: str) -> BaseDetector:
    return detectors.build(name, **FAST_PARAMS.get(name, {}))


def fit(det: BaseDetector, X: Any, y: np.ndarray) -> BaseDetector:
    return det.fit(X, y) if det.supervised else det.fit(X)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    X, y = planted(0)
    X_test, y_test = planted(1)
    columns = [f"f{i}" for i in range(N_FEATURES)]
    return {"X": X, "y": y, "X_test": X_test, "y_test": y_test, "columns": columns}


_FITTED: dict[str, BaseDetector] = {}


@pytest.fixture(params=_names())
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fitted(name: str, data: dict[str, Any]) -> BaseDetector:
    if name not in _FITTED:
        frame = pd.DataFrame(data["X"], columns=data["columns"])
        _FITTED[name] = fit(make(name), frame, data["y"])
    return _FITTED[name]


def test_build_makes_an_unfitted_detector(name: str) -> None:
    det = make(name)
    assert isinstance(det, BaseDetector)
    with pytest.raises(NotFittedError):
        check_is_fitted(det)


def test_clone_has_the_same_params_and_is_unfitted(fitted: BaseDetector) -> None:
    copy = fitted.clone()
    assert type(copy) is type(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.score_samples(np.zeros((1, N_FEATURES)))


def test_fit_returns_self_and_fitted_attributes_end_in_underscore(
    name: str, data: dict[str, Any]
) -> None:
    det = make(name)
    before = set(vars(det))
    assert fit(det, data["X"], data["y"]) is det
    added = set(vars(det)) - before
    public = [a for a in added if not a.startswith("_")]
    assert public, "fit set no public fitted attribute"
    assert all(a.endswith("_") for a in public), sorted(public)
    for attr in ("decision_scores_", "threshold_", "labels_", "n_features_in_"):
        assert hasattr(det, attr), attr
    assert det.decision_scores_.shape == (len(data["y"]),)
    assert set(np.unique(det.labels_)) <= {0, 1}


def test_scores_have_one_finite_value_per_row(fitted: BaseDetector, data: dict[str, Any]) -> None:
    scores = fitted.score_samples(data["X_test"])
    assert scores.shape == (len(data["y_test"]),)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert np.isfinite(fitted.decision_scores_).all()


def test_planted_outliers_score_higher(fitted: BaseDetector, data: dict[str, Any]) -> None:
    assert roc_auc_score(data["y"], fitted.decision_scores_) >= 0.9
    assert roc_auc_score(data["y_test"], fitted.score_samples(data["X_test"])) >= 0.9


def test_frame_and_array_in_fitted_order_agree(fitted: BaseDetector, data: dict[str, Any]) -> None:
    frame = pd.DataFrame(data["X_test"], columns=data["columns"])
    from_array = fitted.score_samples(data["X_test"])
    np.testing.assert_array_equal(fitted.score_samples(frame), from_array)
    shuffled = frame[list(reversed(data["columns"]))]
    np.testing.assert_array_equal(fitted.score_samples(shuffled), from_array)


def test_wrong_column_count_is_a_clear_error(fitted: BaseDetector) -> None:
    with pytest.raises(ValueError, match=f"{N_FEATURES} columns"):
        fitted.score_samples(np.zeros((3, N_FEATURES + 1)))


def test_missing_fitted_column_is_a_clear_error(fitted: BaseDetector, data: dict[str, Any]) -> None:
    frame = pd.DataFrame(data["X_test"], columns=data["columns"]).drop(columns="f2")
    with pytest.raises(ValueError, match="f2"):
        fitted.score_samples(frame)


def test_one_row_equals_the_same_row_in_a_batch(fitted: BaseDetector, data: dict[str, Any]) -> None:
    batch = fitted.score_samples(data["X_test"])
    for i in (0, 7, len(batch) - 1):
        one = fitted.score_samples(data["X_test"][i : i + 1])
        assert one.shape == (1,)
        assert one[0] == batch[i]
    assert fitted.score_samples(data["X_test"][3])[0] == batch[3]  # a 1-D row


def test_large_batch_equals_small_batches(fitted: BaseDetector) -> None:
    # Past the parallel threshold the kernels run multi-threaded: same numbers required.
    X = np.random.default_rng(5).normal(size=(6000, N_FEATURES))
    whole = fitted.score_samples(X)
    parts = np.concatenate([fitted.score_samples(X[i : i + 500]) for i in range(0, 6000, 500)])
    np.testing.assert_array_equal(whole, parts)


def test_save_load_round_trip_scores_identically(
    fitted: BaseDetector, data: dict[str, Any], tmp_path: Any
) -> None:
    paths = detectors.save(fitted, tmp_path / "det")
    assert paths and all(p.is_file() for p in paths)
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in paths)
    loaded = detectors.load(tmp_path / "det")
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.decision_scores_, fitted.decision_scores_)
    np.testing.assert_array_equal(
        loaded.score_samples(data["X_test"]), fitted.score_samples(data["X_test"])
    )
    frame = pd.DataFrame(data["X_test"], columns=data["columns"])
    np.testing.assert_array_equal(loaded.score_samples(frame), fitted.score_samples(frame))


def test_unfitted_save_load_round_trip(name: str, tmp_path: Any) -> None:
    det = make(name)
    detectors.save(det, tmp_path)
    loaded = detectors.load(tmp_path)
    assert loaded.get_params() == det.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)


def test_scoring_before_fit_raises_not_fitted(name: str) -> None:
    with pytest.raises(NotFittedError):
        make(name).score_samples(np.zeros((2, N_FEATURES)))


def test_missing_values_are_accepted(name: str, data: dict[str, Any]) -> None:
    X = data["X"].copy()
    rng = np.random.default_rng(3)
    X[rng.random(X.shape) < 0.1] = np.nan
    det = fit(make(name), X, data["y"])
    assert np.isfinite(det.decision_scores_).all()
    X_test = data["X_test"].copy()
    X_test[0, :] = np.nan
    X_test[1, 2] = np.nan
    scores = det.score_samples(X_test)
    assert np.isfinite(scores).all()
    assert roc_auc_score(data["y_test"][2:], scores[2:]) >= 0.85


def test_infinite_values_are_refused(fitted: BaseDetector) -> None:
    X = np.zeros((2, N_FEATURES))
    X[1, 1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        fitted.score_samples(X)


def test_scoring_from_several_threads_at_once(fitted: BaseDetector) -> None:
    X = np.random.default_rng(9).normal(size=(5000, N_FEATURES))
    expected = fitted.score_samples(X)
    one_rows = [fitted.score_samples(X[i : i + 1])[0] for i in range(50)]
    errors: list[BaseException] = []
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        try:
            if k % 2:
                results[k] = fitted.score_samples(X)
            else:
                results[k] = np.array([fitted.score_samples(X[i : i + 1])[0] for i in range(50)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k, got in results.items():
        np.testing.assert_array_equal(got, expected if k % 2 else np.array(one_rows))
