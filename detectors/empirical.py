"""ECOD and COPOD with empirical tail probabilities frozen at fit (PyOD's formulas)."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy.stats import skew

from detectors import _kernels
from detectors.base import ArrayLike, BaseDetector

#: Guide tables hold one bucket per this many unique training values of a column.
VALUES_PER_BUCKET = 4


class _EmpiricalTails(BaseDetector):
    """Shared fit and frozen scoring for ECOD and COPOD."""

    _copod: bool = False

    def __init__(self, contamination: float = 0.1) -> None:
        self.contamination = contamination

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Freeze each column's empirical distribution and score the training rows.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Training rows; NaN means missing and is replaced by the column's training median.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self
        """
        self._check_contamination()
        arr = self._fit_fill_values(self._validate_fit_input(X))
        n_rows, n_features = arr.shape
        values: list[NDArray[np.float64]] = []
        cum: list[NDArray[np.float64]] = []
        for j in range(n_features):
            uniq, counts = np.unique(arr[:, j], return_counts=True)
            values.append(uniq.astype(np.float64))
            cum.append(np.cumsum(counts).astype(np.float64))
        self.values_ = np.concatenate(values)
        self.cum_counts_ = np.concatenate(cum)
        self.offsets_ = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int64)
        self.n_train_ = int(n_rows)
        self._restore()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sign = np.sign(skew(arr, axis=0))
        sign = np.where(np.isnan(sign), 0.0, sign)  # a constant column has no skew
        self.coef_left_ = (-np.sign(sign - 1.0)).astype(np.float64)
        self.coef_right_ = np.sign(sign + 1.0).astype(np.float64)
        self._set_training_outputs(self._score(arr))
        return self

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Outlier score per row, higher = more anomalous (sum of per-column tail scores).

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Rows in the fitted column order; NaN is replaced by the training median.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._score(self._validate_score_input(X))

    def _restore(self) -> None:
        """Build the guide tables (derived from ``values_``, so not saved)."""
        if not hasattr(self, "values_"):
            return
        n_columns = self.offsets_.shape[0] - 1
        guides = []
        self._guide_lo = np.zeros(n_columns)
        self._guide_scale = np.zeros(n_columns)
        for j in range(n_columns):
            u = self.values_[self.offsets_[j] : self.offsets_[j + 1]]
            span = float(u[-1] - u[0])
            n_buckets = 1
            if np.isfinite(span) and span > 0:
                n_buckets = u.shape[0] // VALUES_PER_BUCKET + 1
                self._guide_lo[j] = u[0]
                self._guide_scale[j] = n_buckets / span
            guides.append(
                _kernels.guide_starts(u, self._guide_lo[j], self._guide_scale[j], n_buckets)
            )
        self._guide = np.concatenate(guides)
        self._guide_offsets = np.concatenate([[0], np.cumsum([len(g) for g in guides])]).astype(
            np.int64
        )

    def tail_scores(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        """ECOD (column 0) and COPOD (column 1) scores of validated rows, in one pass.

        Both read the same frozen distributions; an ensemble holding an ECOD and a COPOD
        fitted on the same rows scores both members with one call.
        """
        return _kernels.run_rows(
            _kernels.tails_rows,
            _kernels.tails_rows_parallel,
            arr.shape[0],
            arr,
            self.fill_values_,
            self.values_,
            self.cum_counts_,
            self.offsets_,
            self._guide,
            self._guide_offsets,
            self._guide_lo,
            self._guide_scale,
            float(self.n_train_),
            1.0 / (self.n_train_ + 1.0),
            self.coef_left_,
            self.coef_right_,
        )

    def same_tails(self, other: _EmpiricalTails) -> bool:
        """Whether ``other`` froze exactly the same distributions (fitted on the same rows)."""
        names = ("fill_values_", "values_", "cum_counts_", "offsets_", "coef_left_", "coef_right_")
        return self.n_train_ == other.n_train_ and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in names
        )

    def _score(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.ascontiguousarray(self.tail_scores(arr)[:, self.tail_column])

    score_validated = _score

    @property
    def tail_column(self) -> int:
        """This detector's column of :meth:`tail_scores` (0 ECOD, 1 COPOD)."""
        return int(self._copod)


class ECODDetector(_EmpiricalTails):
    """ECOD: Empirical-Cumulative-distribution-based Outlier Detection (Li et al., 2022).

    Per column, the left and right tail probabilities of a value under the **training**
    empirical distribution, ``-log`` of each, and the column's skewness picks the tail; the
    score is the sum over columns. Higher = more anomalous. On the training rows the scores
    equal PyOD's ``ECOD().fit(X).decision_scores_``.

    Deliberate differences from PyOD at scoring time: PyOD appends the new rows to the
    training data and recomputes every distribution and the skewness (about 0.7 s per call);
    here they are frozen at fit. A value beyond the training range gets tail probability
    ``1 / (n_train + 1)`` (what PyOD gives one such row), never 0. A constant column counts
    as unskewed (PyOD returns NaN scores).

    Parameters
    ----------
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> det = ECODDetector().fit(X)
    >>> bool(det.score_samples(np.array([[8.0, 8.0, 8.0]]))[0] > det.decision_scores_.max())
    True
    """

    _copod = False


class COPODDetector(_EmpiricalTails):
    """COPOD: Copula-Based Outlier Detection (Li et al., 2020).

    Like :class:`ECODDetector` (same frozen training distributions, same deliberate
    differences from PyOD), but a column's score is the larger of the skew-chosen tail and
    the mean of both tails. Higher = more anomalous. On the training rows the scores equal
    PyOD's ``COPOD().fit(X).decision_scores_``.

    Parameters
    ----------
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> det = COPODDetector().fit(X)
    >>> det.score_samples(X[:2]).shape
    (2,)
    """

    _copod = True
