"""Fixtures shared by the detector unit tests."""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import pytest

from detectors.base import BaseDetector


def _batch_equals_one_row_on_each_thread_count(det: BaseDetector, X: np.ndarray, step: int) -> None:
    """Every ``step``-th row scores the same to the last bit alone and inside the batch
    ``X``, with numba on one thread and on two."""
    one = np.array([det.score_samples(X[i : i + 1])[0] for i in range(0, len(X), step)])
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            assert np.array_equal(det.score_samples(X)[::step], one)
    finally:
        numba.set_num_threads(previous)


@pytest.fixture
def batch_equals_one_row() -> Callable[[BaseDetector, np.ndarray, int], None]:
    return _batch_equals_one_row_on_each_thread_count
