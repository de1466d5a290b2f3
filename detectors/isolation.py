"""Isolation Forest fitted by scikit-learn, its trees flattened into arrays scored by numba."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from detectors import _kernels
from detectors.base import ArrayLike, BaseDetector


def average_path_length(n: NDArray[Any]) -> NDArray[np.float64]:
    """Expected path length of an unsuccessful BST search among ``n`` points, ``c(n)``.

    Parameters
    ----------
    n : array of int
        Node sizes.

    Returns
    -------
    ndarray of float64
        ``0`` for ``n <= 1``, ``1`` for ``n == 2``, else ``2 H(n-1) - 2 (n-1) / n``.
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    m = n[big]
    out[big] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return out


class IForestDetector(BaseDetector):
    """Isolation Forest (Liu et al., 2008), scored by a flattened-tree numba kernel.

    Fitting runs scikit-learn's ``IsolationForest``; its trees are then copied into
    contiguous arrays (feature, threshold, children, leaf path length) and the sklearn model
    is dropped. The score is ``2 ** (-mean path length / c(max_samples))`` in (0, 1],
    higher = more anomalous: exactly ``-IsolationForest.score_samples(X)``. PyOD's
    ``IForest.decision_function`` is the same score plus sklearn's ``offset_`` (a constant
    we do not add). Feature values are rounded to float32 before comparing, as sklearn does.

    Parameters
    ----------
    n_estimators : int, default 100
        Trees.
    max_samples : int, float or "auto", default "auto"
        Rows drawn per tree (``"auto"``: ``min(256, n_rows)``).
    max_features : int or float, default 1.0
        Columns drawn per tree.
    bootstrap : bool, default False
        Draw rows with replacement.
    random_state : int or None, default None
        Seed.
    n_jobs : int or None, default None
        Threads for fitting (scoring uses numba's threads).
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> det = IForestDetector(random_state=0).fit(X)
    >>> bool(det.score_samples(np.array([[6.0, 6.0, 6.0]]))[0] > det.decision_scores_.max())
    True
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        max_features: int | float = 1.0,
        bootstrap: bool = False,
        random_state: int | None = None,
        n_jobs: int | None = None,
        contamination: float = 0.1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.contamination = contamination

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Grow the trees, flatten them and score the training rows.

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
        model = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            bootstrap=self.bootstrap,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(arr)
        self._freeze(model, arr.shape[1])
        self._restore()
        self._set_training_outputs(self._score(arr))
        return self

    def _freeze(self, model: IsolationForest, n_features: int) -> None:
        feature, threshold, left, right, value, roots = [], [], [], [], [], []
        start = 0
        subsampled = any(len(f) != n_features for f in model.estimators_features_) or (
            model.bootstrap_features
        )
        for est, features in zip(model.estimators_, model.estimators_features_, strict=True):
            tree = est.tree_
            leaf = tree.children_left < 0
            cols = np.asarray(features) if subsampled else np.arange(n_features)
            feature.append(np.where(leaf, 0, cols[np.maximum(tree.feature, 0)]))
            threshold.append(tree.threshold.astype(np.float64))
            left.append(np.where(leaf, -1, tree.children_left + start))
            right.append(np.where(leaf, -1, tree.children_right + start))
            depth = tree.compute_node_depths().astype(np.float64)
            value.append(depth + average_path_length(tree.n_node_samples) - 1.0)
            roots.append(start)
            start += tree.node_count
        self.tree_roots_ = np.asarray(roots, dtype=np.int64)
        self.tree_feature_ = np.concatenate(feature).astype(np.int32)
        self.tree_threshold_ = np.concatenate(threshold)
        self.tree_left_ = np.concatenate(left).astype(np.int32)
        self.tree_right_ = np.concatenate(right).astype(np.int32)
        self.tree_value_ = np.concatenate(value)
        self.max_samples_ = int(model.max_samples_)
        self.path_denominator_ = float(
            len(model.estimators_) * average_path_length(np.array([self.max_samples_]))[0]
        )

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Outlier score per row in (0, 1], higher = more anomalous.

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
        """Lay the frozen trees out for the fixed-depth walk (derived, so not saved)."""
        if not hasattr(self, "tree_roots_"):
            return
        # (roots, depths, feature, threshold, child, value), as isolation_rows takes them
        self._walk = _kernels.isolation_layout(
            self.tree_roots_,
            self.tree_left_,
            self.tree_right_,
            self.tree_feature_,
            self.tree_threshold_,
            self.tree_value_,
        )

    def _score(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        depths = _kernels.run_rows(
            _kernels.isolation_rows,
            _kernels.isolation_rows_parallel,
            arr.shape[0],
            arr,
            self.fill_values_,
            *self._walk,
        )
        if self.path_denominator_ == 0.0:  # one training row per tree: sklearn's convention
            return np.ones_like(depths)
        return np.power(2.0, -depths / self.path_denominator_)

    score_validated = _score
