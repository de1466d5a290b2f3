"""Robust, frozen normalisation of detector scores so that members on different scales combine."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["Z_FLOOR", "Z_KNEE", "compress_tail", "fit_robust_scale", "robust_z"]

#: Robust z-scores below this are clipped: "very normal" by one member must not cancel a
#: strong flag by another.
Z_FLOOR = -5.0
#: Above this many IQRs a robust z-score grows only logarithmically: one member's extreme
#: vote (distances are unbounded, isolation depths are not) must not outvote the others;
#: the order of rows is kept (no ties at a hard cap).
Z_KNEE = 3.0


def fit_robust_scale(scores: NDArray[np.float64]) -> tuple[float, float]:
    """Centre (median) and scale (interquartile range) of training scores.

    Heavy tails do not move either statistic, unlike mean and standard deviation. When the
    IQR is zero (more than half the scores tied, e.g. a histogram detector on discrete
    data) the scale falls back to the 5-95% range, then the standard deviation, then 1.

    Parameters
    ----------
    scores : ndarray of shape (n_rows,)
        One detector's training scores; non-finite values are ignored.

    Returns
    -------
    (centre, scale) : tuple of float
        ``scale > 0``.

    Examples
    --------
    >>> fit_robust_scale(np.array([1.0, 2.0, 3.0, 4.0, 1000.0]))
    (3.0, 2.0)
    """
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError(f"expected finite training scores, got {scores.size} non-finite")
    q05, q25, q50, q75, q95 = np.percentile(finite, [5, 25, 50, 75, 95])
    for scale in (q75 - q25, (q95 - q05) / 3.0, float(np.std(finite))):
        if scale > 0 and np.isfinite(scale):
            return float(q50), float(scale)
    return float(q50), 1.0


def compress_tail(z: NDArray[np.float64], knee: float = Z_KNEE) -> NDArray[np.float64]:
    """``z`` unchanged up to ``knee``, then ``knee + log(1 + z - knee)``: strictly increasing,
    so the order of rows is kept, but a huge value counts little more than a large one.

    Examples
    --------
    >>> compress_tail(np.array([-1.0, 3.0, 3.0 + np.e - 1.0])).tolist()
    [-1.0, 3.0, 4.0]
    """
    excess = np.maximum(z - knee, 0.0)
    return np.where(z > knee, knee + np.log1p(excess), z)


def robust_z(
    scores: NDArray[np.float64],
    centre: float | NDArray[np.float64],
    scale: float | NDArray[np.float64],
) -> NDArray[np.float64]:
    """``(scores - centre) / scale`` with the frozen training statistics, floored at
    :data:`Z_FLOOR` and log-compressed above :data:`Z_KNEE` (:func:`compress_tail`); NaN
    (a member that cannot score a row) becomes 0 (the training median); +inf stays +inf.

    Parameters
    ----------
    scores : ndarray
        Raw scores, shape (n_rows,) or (n_rows, n_members) with per-member ``centre`` and
        ``scale`` arrays.
    centre, scale : float or ndarray
        From :func:`fit_robust_scale`.

    Returns
    -------
    ndarray
        Normalised scores, higher = more anomalous.
    """
    z = (np.asarray(scores, dtype=np.float64) - centre) / scale
    z = np.where(np.isnan(z), 0.0, z)
    with np.errstate(invalid="ignore"):
        return compress_tail(np.maximum(z, Z_FLOOR))
