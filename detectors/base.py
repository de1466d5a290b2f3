"""The Detector contract: scikit-learn shaped, PyOD's score direction (higher = more anomalous)."""

from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Self, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

ArrayLike: TypeAlias = pd.DataFrame | NDArray[Any]


class NotFittedError(RuntimeError):
    """Raised when a detector is used before ``fit``."""


class BaseDetector(ABC):
    """Base of every fraudlens detector.

    Parameters are ``__init__`` keywords stored unchanged and validated in ``fit``; fitted
    state ends in ``_``. ``score_samples`` returns one score per row, **higher means more
    anomalous**. ``decision_scores_`` holds the training scores; ``threshold_`` and
    ``labels_`` follow PyOD (``contamination`` quantile) for compatibility only: the decision
    threshold belongs to the scoring policy.
    """

    #: True for detectors that learn from labels (``fit`` needs ``y``).
    supervised: bool = False

    contamination: float = 0.1

    #: Fitted attributes that :func:`detectors.save` skips: ``_save_extra`` writes them or
    #: ``_restore`` rebuilds them.
    _unsaved_attrs: tuple[str, ...] = ()

    # -- parameters (sklearn's get_params / set_params / clone) ------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; expected one of {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def clone(self) -> Self:
        """An unfitted copy with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting and scoring -----------------------------------------------------------------
    @abstractmethod
    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Learn from ``X`` (and ``y`` for supervised detectors); returns ``self``."""

    @abstractmethod
    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """One score per row of ``X``; higher means more anomalous."""

    def score_validated(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        """:meth:`score_samples` of rows checked as it checks them already (a 2-D float64
        array of the fitted width, no infinity): an ensemble checks its input once for all its
        members. The same scores, bit for bit; a detector without a faster way checks again."""
        return self.score_samples(arr)

    def _check_contamination(self) -> None:
        """Refuse a ``contamination`` outside (0, 0.5] (PyOD's range), naming what arrived."""
        if not 0.0 < self.contamination <= 0.5:
            raise ValueError(f"contamination must be in (0, 0.5], got {self.contamination!r}")

    def _set_training_outputs(self, scores: NDArray[np.float64]) -> None:
        """Set ``decision_scores_``, ``threshold_`` and ``labels_`` from training scores."""
        self.decision_scores_ = np.asarray(scores, dtype=np.float64)
        self.threshold_ = float(np.quantile(self.decision_scores_, 1.0 - self.contamination))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    def _fit_fill_values(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        """Freeze ``fill_values_`` (training median per column) and return ``arr`` imputed.

        A column that is entirely missing gets 0.0.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fill = np.nanmedian(arr, axis=0)
        self.fill_values_ = np.where(np.isnan(fill), 0.0, fill).astype(np.float64)
        mask = np.isnan(arr)
        if not mask.any():
            return arr
        return np.where(mask, self.fill_values_[np.newaxis, :], arr)

    # -- persistence hooks (see detectors.persistence) ---------------------------------------
    def _save_extra(self, directory: Path) -> list[Path]:
        """Write fitted state that is not a plain array or JSON value; return the paths."""
        return []

    def _load_extra(self, directory: Path) -> None:
        """Read what :meth:`_save_extra` wrote."""
        return None

    def _restore(self) -> None:
        """Rebuild derived, unsaved state (e.g. a search tree) after loading."""
        return None

    # -- column handling ---------------------------------------------------------------------
    def _validate_fit_input(self, X: ArrayLike) -> NDArray[np.float64]:
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            arr = X.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(X, dtype=np.float64)
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-dimensional, got shape {arr.shape}")
        if arr.shape[0] < 2:
            raise ValueError(f"X must have at least 2 rows to fit, got {arr.shape[0]}")
        if arr.shape[1] < 1:
            raise ValueError(f"X must have at least 1 column, got shape {arr.shape}")
        _reject_infinite(arr)
        self.n_features_in_ = arr.shape[1]
        return arr

    def _validate_score_input(self, X: ArrayLike) -> NDArray[np.float64]:
        """``X`` as a 2-D float64 array in the fitted column order (NaN kept: missing)."""
        check_is_fitted(self)
        if type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2:
            arr = X  # the fast path: no copy, no conversion
        elif isinstance(X, pd.DataFrame):
            names = getattr(self, "feature_names_in_", None)
            if names is not None:
                missing = [c for c in names if c not in X.columns]
                if missing:
                    raise ValueError(f"X is missing fitted columns {missing}")
                X = X.loc[:, list(names)]
            arr = X.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(X, dtype=np.float64)
            if arr.ndim == 1:
                arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have {self.n_features_in_} columns in the fitted order, got shape {arr.shape}"
            )
        _reject_infinite(arr)
        return arr


def _reject_infinite(arr: NDArray[np.float64]) -> None:
    if np.isinf(arr).any():
        rows = np.unique(np.nonzero(np.isinf(arr))[0])[:5].tolist()
        raise ValueError(f"X must hold finite numbers or NaN (missing), got +/-inf in rows {rows}")


def check_is_fitted(detector: BaseDetector) -> None:
    """Raise :class:`NotFittedError` unless ``detector`` has been fitted."""
    if not hasattr(detector, "n_features_in_"):
        raise NotFittedError(f"{type(detector).__name__} is not fitted yet; call fit(X) first")
