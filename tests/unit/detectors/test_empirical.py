"""ECOD and COPOD's frozen tails: the guide-table lookup, one pass for both, one row = batch."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import _kernels
from detectors.empirical import COPODDetector, ECODDetector


def skewed(seed: int = 0, n: int = 5000) -> np.ndarray:
    """Log-normal (crowded buckets), rounded (ties), tiny-range and constant columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 0] = np.exp(2.0 * X[:, 0])
    X[:, 1] = np.round(X[:, 1] * 3)
    X[:, 2] = 1e-12 * X[:, 2]
    X[:, 4] = 7.0
    return X


def queries(train: np.ndarray, seed: int = 1) -> np.ndarray:
    """Training values themselves, their neighbours in floating point, and values beyond the range."""
    rng = np.random.default_rng(seed)
    rows = train[rng.integers(0, len(train), 3000)]
    return np.vstack(
        [
            rows,
            np.nextafter(rows, np.inf),
            np.nextafter(rows, -np.inf),
            rows + rng.normal(size=rows.shape) * train.std(axis=0),
            train.min(axis=0) - 1.0,
            train.max(axis=0) + 1.0,
        ]
    )


@pytest.mark.parametrize("values_per_bucket", [1, 4, 64])
def test_guide_lookup_is_exactly_searchsorted(values_per_bucket: int) -> None:
    train = skewed()
    X = queries(train)
    for j in range(train.shape[1]):
        u = np.unique(train[:, j])
        span = float(u[-1] - u[0])
        n_buckets = u.shape[0] // values_per_bucket + 1 if span > 0 else 1
        scale = n_buckets / span if span > 0 else 0.0
        starts = _kernels.guide_starts(u, float(u[0]), scale, n_buckets)
        assert starts[0] == 0 and starts[-1] == u.shape[0]
        for v in X[:, j]:
            b = _kernels.bucket(v, float(u[0]), scale, n_buckets)
            k = starts[b] + np.searchsorted(u[starts[b] : starts[b + 1]], v, side="right")
            assert k == np.searchsorted(u, v, side="right")


def _reference_scores(det: ECODDetector, X: np.ndarray, copod: bool) -> np.ndarray:
    """The per-value formula with a plain binary search over each sorted column."""
    n = float(det.n_train_)
    floor = 1.0 / (n + 1.0)
    out = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        lo, hi = det.offsets_[j], det.offsets_[j + 1]
        u, c = det.values_[lo:hi], det.cum_counts_[lo:hi]
        k = np.searchsorted(u, X[:, j], side="right")
        le = np.where(k > 0, c[np.maximum(k - 1, 0)], 0.0)
        equal = (k > 0) & (u[np.maximum(k - 1, 0)] == X[:, j])
        lt = np.where(equal, np.where(k > 1, c[np.maximum(k - 2, 0)], 0.0), le)
        left = -np.log(np.maximum(le / n, floor))
        right = -np.log(np.maximum((n - lt) / n, floor))
        skew = left * det.coef_left_[j] + right * det.coef_right_[j]
        tail = (left + right) / 2.0 if copod else np.maximum(left, right)
        out += np.maximum(skew, tail)
    return out


@pytest.mark.parametrize("cls", [ECODDetector, COPODDetector])
def test_scores_equal_the_plain_search(cls: type) -> None:
    train = skewed()
    det = cls().fit(train)
    X = queries(train)
    np.testing.assert_allclose(
        det.score_samples(X), _reference_scores(det, X, cls is COPODDetector), rtol=1e-12, atol=0
    )


def test_one_pass_gives_both_scores_bit_for_bit() -> None:
    train = skewed()
    X = queries(train)
    ecod, copod = ECODDetector().fit(train), COPODDetector().fit(train)
    both = ecod.tail_scores(X)
    assert np.array_equal(both[:, 0], ecod.score_samples(X))
    assert np.array_equal(both[:, 1], copod.score_samples(X))
    assert ecod.same_tails(copod)
    assert not ecod.same_tails(ECODDetector().fit(train[:-1]))


@pytest.mark.parametrize("cls", [ECODDetector, COPODDetector])
def test_one_row_equals_batch_on_one_and_two_threads(cls: type, batch_equals_one_row) -> None:
    train = skewed(n=3000)
    det = cls().fit(train)
    X = queries(train)[: _kernels.PARALLEL_MIN_ROWS + 500]
    assert X.shape[0] >= _kernels.PARALLEL_MIN_ROWS  # the parallel kernel is exercised
    batch_equals_one_row(det, X, 97)
