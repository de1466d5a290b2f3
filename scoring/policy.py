"""The scoring policy: scores to risk in [0, 1], risk to a decision and a queue priority."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Decision = Literal["clear", "review"]
RiskKind = Literal["percentile", "probability"]

#: Quantiles of training scores kept to turn a score into its percentile.
N_QUANTILES = 1001
#: Up to this many claims, :meth:`Policy.decide_many` decides claim by claim.
_FEW = 16


def fit_percentiles(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """The score quantiles that :func:`percentile` interpolates (fitted on training scores)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size < 2 or not np.isfinite(scores).all():
        raise ValueError(f"need at least 2 finite training scores, got {scores.size}")
    return np.quantile(scores, np.linspace(0.0, 1.0, N_QUANTILES))


def percentile(scores: NDArray[np.float64], quantiles: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each score's percentile (0..1) in the training distribution.

    >>> q = fit_percentiles(np.arange(101.0))
    >>> percentile(np.array([-5.0, 50.0, 1e9]), q).round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    # np.interp needs increasing x; ties in quantiles are fine (it takes the right-most).
    return np.interp(np.asarray(scores, dtype=np.float64), quantiles, _grid(len(quantiles)))


@lru_cache(maxsize=8)
def _grid(n: int) -> NDArray[np.float64]:
    """``n`` evenly spaced levels from 0 to 1 (made once: a scored batch of one claim spent
    as long making them as interpolating)."""
    grid = np.linspace(0.0, 1.0, n)
    grid.setflags(write=False)
    return grid


def fit_isotonic(
    p: NDArray[np.float64], y: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Isotonic calibration of probabilities ``p`` against labels ``y``, as interpolation points."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return np.asarray(iso.X_thresholds_, dtype=np.float64), np.asarray(iso.y_thresholds_, dtype=np.float64)


def calibrate(p: NDArray[np.float64], xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.float64]:
    """Apply fitted isotonic points (piecewise linear, clipped at the ends)."""
    return np.interp(np.asarray(p, dtype=np.float64), xs, ys)


@dataclass(frozen=True)
class Policy:
    """Thresholds fitted at training.

    A claim with ``risk >= threshold`` goes to ``review`` (never to denial: a human decides);
    ``risk >= urgent`` gets priority 1, other reviews priority 2, clear claims priority 3.
    """

    risk_kind: RiskKind
    threshold: float
    urgent: float
    basis: str

    def __post_init__(self) -> None:
        """Refuse a policy no rule could follow: an unknown risk kind, a threshold that is not
        a number, or urgent claims below the review threshold (urgent ones would be cleared)."""
        if self.risk_kind not in ("percentile", "probability"):
            raise ValueError(f"risk_kind must be 'percentile' or 'probability', got {self.risk_kind!r}")
        if not (np.isfinite(self.threshold) and np.isfinite(self.urgent)):
            raise ValueError(f"threshold and urgent must be finite, got {self.threshold} and {self.urgent}")
        if self.urgent < self.threshold:
            raise ValueError(
                f"urgent ({self.urgent}) must be at least the review threshold ({self.threshold}): "
                "an urgent claim is one flagged for review first"
            )

    def decide(self, risk: float) -> tuple[Decision, int]:
        if risk >= self.urgent:
            return "review", 1
        if risk >= self.threshold:
            return "review", 2
        return "clear", 3

    def decide_many(self, risk: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[np.int64]]:
        if risk.shape[0] <= _FEW:  # a micro-batch: plain comparisons beat the arrays
            t, u = self.threshold, self.urgent
            values = risk.tolist()
            return (
                np.array(["review" if r >= t else "clear" for r in values], dtype=object),
                np.array([1 if r >= u else 2 if r >= t else 3 for r in values], dtype=np.int64),
            )
        decision = np.where(risk >= self.threshold, "review", "clear").astype(object)
        priority = np.where(risk >= self.urgent, 1, np.where(risk >= self.threshold, 2, 3))
        return decision, priority.astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        return cls(
            risk_kind=d["risk_kind"],
            threshold=float(d["threshold"]),
            urgent=float(d["urgent"]),
            basis=str(d["basis"]),
        )


def fit_policy(
    risk: NDArray[np.float64],
    risk_kind: RiskKind,
    review_rate: float,
    y: NDArray[np.int64] | None = None,
    target_precision: float | None = None,
) -> Policy:
    """Fit the review threshold on held-out (later) claims.

    By capacity: the threshold flags ``review_rate`` of claims. With labels and a
    ``target_precision``: the lowest threshold whose precision on the held-out claims reaches
    the target, but never flagging more than capacity. ``urgent`` is the top quarter of flags.
    """
    if not 0 < review_rate <= 0.5:
        raise ValueError(f"review_rate must be in (0, 0.5], got {review_rate}")
    risk = np.asarray(risk, dtype=np.float64)
    threshold = float(np.quantile(risk, 1.0 - review_rate))
    basis = f"capacity: flag {review_rate:.2%} of held-out claims"
    if target_precision is not None and y is not None and y.sum() > 0:
        order = np.argsort(-risk, kind="stable")
        hits = np.cumsum(y[order])
        precision = hits / np.arange(1, len(order) + 1)
        max_n = max(1, int(review_rate * len(risk)))
        ok = np.flatnonzero(precision[:max_n] >= target_precision)
        if ok.size:
            threshold = float(risk[order][ok[-1]])
            basis = f"precision >= {target_precision:.0%} on held-out claims, within capacity"
    flagged = risk[risk >= threshold]
    urgent = float(np.quantile(flagged, 0.75)) if flagged.size else threshold
    return Policy(risk_kind=risk_kind, threshold=threshold, urgent=max(urgent, threshold), basis=basis)
