"""XGBoost on investigator labels, its trees flattened for numba scoring, TreeSHAP on demand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np
import xgboost as xgb
from numpy.typing import NDArray

from detectors import _kernels, _treeshap
from detectors.base import ArrayLike, BaseDetector, check_is_fitted

MODEL_FILE = "model.ubj"


def _labels(y: Any, n_rows: int) -> NDArray[np.float64]:
    if y is None:
        raise ValueError("XGBoostDetector is supervised: fit(X, y) needs y (0/1 labels), got None")
    arr = np.asarray(y, dtype=np.float64).ravel()
    if arr.shape[0] != n_rows:
        raise ValueError(f"y must have one label per row of X ({n_rows}), got {arr.shape[0]}")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"y must hold 0/1 labels, got {np.unique(np.asarray(y).ravel()[bad])[:5].tolist()}"
        )
    return arr


class XGBoostDetector(BaseDetector):
    """Gradient-boosted trees (XGBoost) on labelled claims; the score is P(fraud).

    ``fit(X, y)`` trains a ``binary:logistic`` booster with the ``hist`` tree method. With
    ``balance="auto"`` positives are up-weighted by ``scale_pos_weight = n_neg / n_pos``, so
    a rare class cannot collapse the model to a constant; the score is then a probability
    under that balanced weighting (monotone in the true one, not calibrated: calibration is
    the scoring policy's job). Higher = more likely fraud. NaN is XGBoost's missing value:
    it follows each split's learned default direction (no imputation).

    The trees are read from the booster's JSON model into flat arrays and scored by a numba
    kernel: equal to ``Booster.predict`` within float32 rounding (leaf values are summed in
    float64, XGBoost sums in float32), about 10x faster for one row. ``contributions`` gives
    exact TreeSHAP values from the same arrays (another numba kernel, equal to XGBoost's
    ``pred_contribs`` within float32 rounding). Saved in XGBoost's own ``.ubj`` format.

    Parameters
    ----------
    n_estimators : int, default 300
        Boosting rounds.
    max_depth : int, default 6
        Tree depth.
    learning_rate : float, default 0.1
        Shrinkage.
    subsample, colsample_bytree : float, default 0.8
        Row and column sampling per tree.
    min_child_weight : float, default 1.0
        Minimum hessian per leaf.
    reg_lambda : float, default 1.0
        L2 penalty on leaf weights.
    balance : "auto", "none" or float, default "auto"
        ``scale_pos_weight``: ``n_neg / n_pos`` (``"auto"``), 1 (``"none"``) or the number.
    min_positives : int, default 10
        Fewer positive labels than this is an error.
    random_state : int, default 0
        Seed.
    n_jobs : int or None, default None
        XGBoost threads for fitting (``None``: all cores).
    contamination : float, default 0.1
        Share of training rows above ``threshold_`` (PyOD compatibility only).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)); y = (X[:, 0] > 1.2).astype(int)
    >>> det = XGBoostDetector(n_estimators=20).fit(X, y)
    >>> bool(det.score_samples(np.array([[3.0, 0.0, 0.0]]))[0] > 0.5)
    True
    """

    supervised = True
    _unsaved_attrs = ("booster_",)

    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        balance: str | float = "auto",
        min_positives: int = 10,
        random_state: int = 0,
        n_jobs: int | None = None,
        contamination: float = 0.1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.balance = balance
        self.min_positives = min_positives
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.contamination = contamination

    def _scale_pos_weight(self, n_pos: int, n_neg: int) -> float:
        if self.balance == "auto":
            return n_neg / n_pos
        if self.balance == "none":
            return 1.0
        if isinstance(self.balance, int | float) and self.balance > 0:
            return float(self.balance)
        raise ValueError(
            f"balance must be 'auto', 'none' or a positive number, got {self.balance!r}"
        )

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Train the booster on labelled rows and freeze its trees.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Training rows; NaN is missing.
        y : array of shape (n_rows,)
            1 = fraud (confirmed by an investigator), 0 = not.

        Returns
        -------
        self
        """
        self._check_contamination()
        if not isinstance(self.n_estimators, int) or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be an int >= 1, got {self.n_estimators!r}")
        arr = self._validate_fit_input(X)
        labels = _labels(y, arr.shape[0])
        n_pos = int(labels.sum())
        n_neg = int(labels.shape[0] - n_pos)
        if n_pos < self.min_positives or n_neg < 1:
            raise ValueError(
                f"y must hold at least {self.min_positives} positive and 1 negative labels "
                f"(min_positives), got {n_pos} positive and {n_neg} negative"
            )
        scale_pos_weight = self._scale_pos_weight(n_pos, n_neg)
        params: dict[str, Any] = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "scale_pos_weight": scale_pos_weight,
            "seed": self.random_state,
            "verbosity": 0,
        }
        if self.n_jobs is not None:
            params["nthread"] = self.n_jobs
        dtrain = xgb.DMatrix(arr, label=labels, missing=np.nan)
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators)
        self.booster_.set_param("nthread", "1")  # only reference_predict/_contributions use it
        self.scale_pos_weight_ = scale_pos_weight
        self.n_positives_ = n_pos
        self._freeze()
        self._set_training_outputs(self._score(arr))
        return self

    def _freeze(self) -> None:
        model = json.loads(self.booster_.save_raw(raw_format="json"))
        learner = model["learner"]
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            raise ValueError(f"expected a binary:logistic booster, got {objective!r}")
        trees = learner["gradient_booster"]["model"]["trees"]
        feature, threshold, left, right, default_left, value, roots = [], [], [], [], [], [], []
        cover = []
        start = 0
        for tree in trees:
            if any(tree["split_type"]):
                raise ValueError("categorical splits are not supported; encode categories first")
            lc = np.asarray(tree["left_children"], dtype=np.int64)
            rc = np.asarray(tree["right_children"], dtype=np.int64)
            cond = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
            leaf = lc < 0
            feature.append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
            threshold.append(np.where(leaf, 0.0, cond))
            value.append(np.where(leaf, cond, 0.0))
            left.append(np.where(leaf, -1, lc + start))
            right.append(np.where(leaf, -1, rc + start))
            default_left.append(np.asarray(tree["default_left"], dtype=bool))
            cover.append(np.asarray(tree["sum_hessian"], dtype=np.float32).astype(np.float64))
            roots.append(start)
            start += lc.shape[0]
        self.tree_roots_ = np.asarray(roots, dtype=np.int64)
        self.tree_feature_ = np.concatenate(feature).astype(np.int32)
        self.tree_threshold_ = np.concatenate(threshold)
        self.tree_left_ = np.concatenate(left).astype(np.int32)
        self.tree_right_ = np.concatenate(right).astype(np.int32)
        self.tree_default_left_ = np.concatenate(default_left)
        self.tree_value_ = np.concatenate(value)
        self.tree_cover_ = np.concatenate(cover)
        base_score = np.float32(
            learner["learner_model_param"]["base_score"].strip("[]").split(",")[0]
        )
        self.base_margin_ = float(np.log(base_score / (1.0 - base_score)))
        self._prepare_explanations()

    def _prepare_explanations(self) -> None:
        """TreeSHAP's row-independent parts: bias, cover fractions, deepest level."""
        expected, self._shap_fraction, self._shap_max_depth = _treeshap.tree_expectations(
            self.tree_roots_, self.tree_left_, self.tree_right_, self.tree_value_, self.tree_cover_
        )
        self._shap_bias = self.base_margin_ + float(expected.sum())

    def _restore(self) -> None:
        if not hasattr(self, "booster_"):
            return
        if hasattr(self, "tree_cover_"):
            self._prepare_explanations()
        else:  # saved before tree_cover_ existed: the booster holds the cover
            self._freeze()

    def margin(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log-odds per row (XGBoost's ``output_margin``), from the frozen trees.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Rows in the fitted column order; NaN is missing.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._margin(self._validate_score_input(X))

    def _margin(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        total = _kernels.run_rows(
            _kernels.tree_sum_rows,
            _kernels.tree_sum_rows_parallel,
            arr.shape[0],
            arr,
            _NO_FILL,
            self.tree_roots_,
            self.tree_feature_,
            self.tree_threshold_,
            self.tree_left_,
            self.tree_right_,
            self.tree_default_left_,
            self.tree_value_,
            True,
            False,
        )
        return total + self.base_margin_

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """P(fraud) per row in [0, 1] (under the training class weighting), higher = riskier.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Rows in the fitted column order; NaN is missing.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._score(self._validate_score_input(X))

    def _score(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        return 1.0 / (1.0 + np.exp(-self._margin(arr)))

    score_validated = _score

    def contributions(self, X: ArrayLike) -> NDArray[np.float64]:
        """Exact TreeSHAP contributions in margin (log-odds) space, from the frozen trees.

        The path-dependent algorithm XGBoost's ``pred_contribs`` runs (Lundberg et al. 2018,
        Algorithm 2), in numba and float64 (:mod:`detectors._treeshap`): equal to
        :meth:`reference_contributions` within float32 rounding, without its ``DMatrix``.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Rows in the fitted column order; NaN is missing.

        Returns
        -------
        ndarray of shape (n_rows, n_features + 1)
            One column per feature, then the bias (the expected margin: the base margin plus
            each tree's cover-weighted mean leaf value); each row sums to :meth:`margin`.
        """
        # Contiguous: the kernel is compiled (and warmed up) for C-order rows only.
        arr = np.ascontiguousarray(self._validate_score_input(X))
        return _treeshap.tree_shap_rows(  # type: ignore[no-any-return]
            arr,
            self.tree_roots_,
            self.tree_feature_,
            self.tree_threshold_,
            self.tree_left_,
            self.tree_right_,
            self.tree_default_left_,
            self.tree_value_,
            self._shap_fraction,
            self._shap_max_depth,
            self._shap_bias,
        )

    def reference_contributions(self, X: ArrayLike) -> NDArray[np.float64]:
        """XGBoost's own ``pred_contribs``, one thread (the reference :meth:`contributions` matches)."""
        arr = self._validate_score_input(X)
        # One OpenMP thread: on a few rows XGBoost's thread pool costs more than it saves
        # (measured: 1 row, 300 trees: 48 ms p50 on all threads of a loaded 2-core machine,
        # 2.2 ms on one).
        dmatrix = xgb.DMatrix(arr, missing=np.nan, nthread=1)
        contribs = self.booster_.predict(dmatrix, pred_contribs=True)
        return np.asarray(contribs, dtype=np.float64)

    def _save_extra(self, directory: Path) -> list[Path]:
        if not hasattr(self, "booster_"):
            return []
        path = directory / MODEL_FILE
        self.booster_.save_model(str(path))
        return [path]

    def _load_extra(self, directory: Path) -> None:
        path = directory / MODEL_FILE
        if path.is_file():
            self.booster_ = xgb.Booster()
            self.booster_.load_model(str(path))
            self.booster_.set_param("nthread", "1")

    def reference_predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """XGBoost's own ``inplace_predict`` (the slow reference the frozen path matches)."""
        check_is_fitted(self)
        arr = self._validate_score_input(X)
        return np.asarray(self.booster_.inplace_predict(arr, missing=np.nan), dtype=np.float64)


_NO_FILL = np.zeros(1, dtype=np.float64)
