"""KNN and LOF outlier scores on a frozen reference sample (numba brute force or a KD-tree)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.neighbors import KDTree

from detectors import _kernels
from detectors.base import ArrayLike, BaseDetector

#: With ``algorithm="auto"``, reference sets up to this size (or 10+ columns, where a
#: KD-tree degrades to brute force anyway) are searched by the numba brute-force kernel.
BRUTE_MAX_REFERENCE = 5000


class _Neighbours(BaseDetector):
    """Shared fit for the neighbour detectors: impute, cap the reference sample, build a tree."""

    n_neighbors: int
    algorithm: str
    leaf_size: int
    max_fit_samples: int
    random_state: int | None

    def _check_common(self) -> None:
        self._check_contamination()
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be an int >= 1, got {self.n_neighbors!r}")
        if self.algorithm not in ("auto", "brute", "kd_tree"):
            raise ValueError(
                f"algorithm must be 'auto', 'brute' or 'kd_tree', got {self.algorithm!r}"
            )
        if not isinstance(self.max_fit_samples, int) or self.max_fit_samples < 2:
            raise ValueError(f"max_fit_samples must be an int >= 2, got {self.max_fit_samples!r}")

    def _fit_reference(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.int64] | None]:
        """Imputed training rows, and the rows of the reference subsample (None: all rows)."""
        arr = self._fit_fill_values(self._validate_fit_input(X))
        rows: NDArray[np.int64] | None = None
        if arr.shape[0] > self.max_fit_samples:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(arr.shape[0], size=self.max_fit_samples, replace=False))
            reference = arr[rows]
        else:
            reference = arr
        self.reference_ = np.ascontiguousarray(reference)
        self.n_neighbors_ = int(min(self.n_neighbors, self.reference_.shape[0] - 1))
        self._restore()
        return arr, rows

    def _restore(self) -> None:
        if not hasattr(self, "reference_"):
            return
        n_ref, n_features = self.reference_.shape
        brute = self.algorithm == "brute" or (
            self.algorithm == "auto" and (n_ref <= BRUTE_MAX_REFERENCE or n_features >= 10)
        )
        self._tree = None if brute else KDTree(self.reference_, leaf_size=self.leaf_size)
        # the brute-force kernel reads the reference column by column
        self._reference_t = np.ascontiguousarray(self.reference_.T)

    def _search(
        self, arr: NDArray[np.float64], k: int
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        if self._tree is None:
            return _kernels.knn_query(arr, self._reference_t, k)
        dist, idx = self._tree.query(arr, k=k)
        return dist, idx

    def _loo_neighbours(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Each reference row's k nearest other rows (itself left out, as sklearn does)."""
        dist, idx = self._search(self.reference_, self.n_neighbors_ + 1)
        return dist[:, 1:], idx[:, 1:]

    def _query(self, arr: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        return self._search(_kernels.impute(arr, self.fill_values_), self.n_neighbors_)


class KNNDetector(_Neighbours):
    """k-nearest-neighbour distance (Ramaswamy et al., 2000); for small data.

    The score is the Euclidean distance to the k-th nearest training row (``method=
    "largest"``), or the mean or median of the k distances; higher = more anomalous. Equal
    to PyOD's ``KNN``: training scores leave each row itself out, new rows are searched
    among the training rows. Above ``max_fit_samples`` training rows a seeded subsample is
    the reference set and ``decision_scores_`` are all training rows scored against it, a
    row of the sample leaving itself out as above.

    Parameters
    ----------
    n_neighbors : int, default 5
        k.
    method : {"largest", "mean", "median"}, default "largest"
        How the k distances become one score.
    algorithm : {"auto", "brute", "kd_tree"}, default "auto"
        Neighbour search: a numba brute-force kernel (``"auto"`` picks it for up to 5,000
        reference rows or 10+ columns) or scikit-learn's ``KDTree``.
    leaf_size : int, default 30
        KD-tree leaf size.
    max_fit_samples : int, default 20000
        Cap on the reference sample (search cost grows with it).
    random_state : int or None, default None
        Seed of the subsample.
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> det = KNNDetector().fit(X)
    >>> bool(det.score_samples(np.array([[5.0, 5.0]]))[0] > det.decision_scores_.max())
    True
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        method: str = "largest",
        algorithm: str = "auto",
        leaf_size: int = 30,
        max_fit_samples: int = 20000,
        random_state: int | None = None,
        contamination: float = 0.1,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.method = method
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.max_fit_samples = max_fit_samples
        self.random_state = random_state
        self.contamination = contamination

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Freeze the reference rows, build the KD-tree and score the training rows.

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
        self._check_common()
        if self.method not in ("largest", "mean", "median"):
            raise ValueError(f"method must be 'largest', 'mean' or 'median', got {self.method!r}")
        arr, rows = self._fit_reference(X)
        if rows is not None:
            # every training row against the reference sample, a reference row without itself
            dist, _ = self._search(arr, self.n_neighbors_ + 1)
            in_reference = np.zeros(arr.shape[0], dtype=bool)
            in_reference[rows] = True
            dist = np.where(in_reference[:, None], dist[:, 1:], dist[:, :-1])
            self._set_training_outputs(self._reduce(np.ascontiguousarray(dist)))
        else:
            self._set_training_outputs(self._reduce(self._loo_neighbours()[0]))
        return self

    def _reduce(self, dist: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.method == "largest":
            return np.ascontiguousarray(dist[:, -1])
        if self.method == "mean":
            return dist.mean(axis=1)
        return np.median(dist, axis=1)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Neighbour distance per row, higher = more anomalous.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Rows in the fitted column order; NaN is replaced by the training median.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._score(self._validate_score_input(X))

    def _score(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._reduce(self._query(arr)[0])

    score_validated = _score


class LOFDetector(_Neighbours):
    """Local Outlier Factor (Breunig et al., 2000); for small data.

    The score is the ratio of the neighbours' local reachability density to the row's own,
    about 1 for inliers, higher = more anomalous. Equal to PyOD's ``LOF`` (scikit-learn's
    ``LocalOutlierFactor(novelty=True)``): ``decision_scores_ == -negative_outlier_factor_``
    and new rows score as ``-score_samples``. The k-distances and densities of the training
    rows are frozen at fit. Euclidean distance only. Above ``max_fit_samples`` training rows
    a seeded subsample is the reference set and ``decision_scores_`` are all training rows
    scored against it.

    Parameters
    ----------
    n_neighbors : int, default 20
        k.
    algorithm : {"auto", "brute", "kd_tree"}, default "auto"
        Neighbour search: a numba brute-force kernel (``"auto"`` picks it for up to 5,000
        reference rows or 10+ columns) or scikit-learn's ``KDTree``.
    leaf_size : int, default 30
        KD-tree leaf size.
    max_fit_samples : int, default 20000
        Cap on the reference sample (search cost grows with it).
    random_state : int or None, default None
        Seed of the subsample.
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> det = LOFDetector().fit(X)
    >>> bool(det.score_samples(np.array([[5.0, 5.0]]))[0] > 2.0)
    True
    """

    def __init__(
        self,
        n_neighbors: int = 20,
        algorithm: str = "auto",
        leaf_size: int = 30,
        max_fit_samples: int = 20000,
        random_state: int | None = None,
        contamination: float = 0.1,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.max_fit_samples = max_fit_samples
        self.random_state = random_state
        self.contamination = contamination

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Freeze reference rows, their k-distances and densities; score the training rows.

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
        self._check_common()
        arr, rows = self._fit_reference(X)
        dist, idx = self._loo_neighbours()
        self.k_distance_ = np.ascontiguousarray(dist[:, -1])
        self.lrd_ = self._lrd(dist, idx)
        if rows is not None:
            self._set_training_outputs(self._score(arr))
        else:
            self._set_training_outputs(self.lrd_[idx].mean(axis=1) / self.lrd_)
        return self

    def _lrd(self, dist: NDArray[np.float64], idx: NDArray[np.int64]) -> NDArray[np.float64]:
        reach = np.maximum(dist, self.k_distance_[idx])
        return 1.0 / (reach.mean(axis=1) + 1e-10)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Local outlier factor per row, higher = more anomalous.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Rows in the fitted column order; NaN is replaced by the training median.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._score(self._validate_score_input(X))

    def _score(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        dist, idx = self._query(arr)
        return self.lrd_[idx].mean(axis=1) / self._lrd(dist, idx)

    score_validated = _score
