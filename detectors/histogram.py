"""HBOS with its bin edges and log densities frozen at fit (PyOD's scores, numba scoring)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from pyod.models.hbos import HBOS

from detectors import _kernels
from detectors.base import ArrayLike, BaseDetector


class HBOSDetector(BaseDetector):
    """HBOS: Histogram-Based Outlier Score (Goldstein and Dengel, 2012).

    One histogram per column; a row's score is minus the sum over columns of
    ``log2(density + alpha)`` of its bin. Higher = more anomalous. Fitting runs PyOD's
    ``HBOS`` once and freezes its ``bin_edges_`` and ``hist_`` as flat arrays; scoring is a
    numba kernel with PyOD's rules (a value beyond the edges by at most ``tol`` bin widths
    takes the edge bin, further out the column's lowest density), so scores equal PyOD's
    ``decision_function`` on any rows.

    Parameters
    ----------
    n_bins : int or "auto", default 10
        Bins per column (``"auto"``: PyOD's Birge-Rozenblac choice per column).
    alpha : float, default 0.1
        Added to densities before the log, so an empty bin stays finite.
    tol : float, default 0.5
        How far (in bin widths) beyond the edges a value still takes the edge bin.
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> det = HBOSDetector().fit(X)
    >>> bool(det.score_samples(np.array([[9.0, 0.0, 0.0]]))[0] > np.median(det.decision_scores_))
    True
    """

    def __init__(
        self,
        n_bins: int | str = 10,
        alpha: float = 0.1,
        tol: float = 0.5,
        contamination: float = 0.1,
    ) -> None:
        self.n_bins = n_bins
        self.alpha = alpha
        self.tol = tol
        self.contamination = contamination

    def _check_params(self) -> None:
        self._check_contamination()
        if isinstance(self.n_bins, str):
            if self.n_bins != "auto":
                raise ValueError(f"n_bins must be an int >= 2 or 'auto', got {self.n_bins!r}")
        elif not isinstance(self.n_bins, int | np.integer) or self.n_bins < 2:
            raise ValueError(f"n_bins must be an int >= 2 or 'auto', got {self.n_bins!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not 0.0 < self.tol < 1.0:
            raise ValueError(f"tol must be in (0, 1), got {self.tol!r}")

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Build the histograms and score the training rows.

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
        self._check_params()
        arr = self._fit_fill_values(self._validate_fit_input(X))
        ref = HBOS(n_bins=self.n_bins, alpha=self.alpha, tol=self.tol).fit(arr)
        if isinstance(ref.bin_edges_, list):  # "auto": ragged, one array per column
            edges = [np.asarray(e, dtype=np.float64) for e in ref.bin_edges_]
            hists = [np.asarray(h, dtype=np.float64) for h in ref.hist_]
        else:
            edges = [ref.bin_edges_[:, j].astype(np.float64) for j in range(arr.shape[1])]
            hists = [ref.hist_[:, j].astype(np.float64) for j in range(arr.shape[1])]
        log_density = [np.log2(h + self.alpha) for h in hists]
        self.edges_ = np.concatenate(edges)
        self.edge_offsets_ = np.concatenate([[0], np.cumsum([len(e) for e in edges])]).astype(
            np.int64
        )
        self.log_density_ = np.concatenate(log_density)
        self.density_offsets_ = np.concatenate(
            [[0], np.cumsum([len(d) for d in log_density])]
        ).astype(np.int64)
        self.min_log_density_ = np.array([d.min() for d in log_density], dtype=np.float64)
        self._set_training_outputs(self._score(arr))
        return self

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Outlier score per row, higher = more anomalous.

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
        return _kernels.run_rows(
            _kernels.hbos_rows,
            _kernels.hbos_rows_parallel,
            arr.shape[0],
            arr,
            self.fill_values_,
            self.edges_,
            self.edge_offsets_,
            self.log_density_,
            self.density_offsets_,
            self.min_log_density_,
            float(self.tol),
        )
