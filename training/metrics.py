"""Quality and fairness metrics measured on held-out claims."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, roc_auc_score


def ranking_metrics(
    y: NDArray[np.int64], risk: NDArray[np.float64], policy_threshold: float | None
) -> dict[str, Any]:
    """ROC-AUC, average precision, precision at the top 1%, and precision/recall of the flags.

    >>> m = ranking_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), 0.5)
    >>> m["roc_auc"], m["precision"], m["recall"]
    (1.0, 1.0, 1.0)
    """
    y = np.asarray(y, dtype=np.int64)
    out: dict[str, Any] = {"n": int(len(y)), "n_positive": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(roc_auc_score(y, risk))
        out["average_precision"] = float(average_precision_score(y, risk))
        k = max(1, int(0.01 * len(y)))
        top = np.argsort(-risk, kind="stable")[:k]
        out["precision_at_1pct"] = float(y[top].mean())
    if policy_threshold is not None:
        flagged = risk >= policy_threshold
        tp = int((flagged & (y == 1)).sum())
        out["flagged"] = int(flagged.sum())
        out["precision"] = float(tp / flagged.sum()) if flagged.sum() else 0.0
        out["recall"] = float(tp / y.sum()) if y.sum() else 0.0
    return out


def group_error_rates(
    groups: NDArray[Any], y: NDArray[np.int64], flagged: NDArray[np.bool_]
) -> dict[str, dict[str, float | int]]:
    """Per group: claims, flag rate, false-positive rate (innocent claims flagged), recall.

    The false-positive rate per group is what the Dutch childcare-benefits scandal hid: it is
    measured here for every protected attribute and written to the bundle's manifest.

    >>> r = group_error_rates(np.array(["a", "a", "b", "b"]), np.array([0, 1, 0, 0]),
    ...                       np.array([True, True, False, True]))
    >>> r["a"]["false_positive_rate"], r["b"]["false_positive_rate"]
    (1.0, 0.5)
    """
    out: dict[str, dict[str, float | int]] = {}
    for g in sorted({str(v) for v in groups}):
        m = groups == g
        innocent = m & (y == 0)
        fraud = m & (y == 1)
        out[g] = {
            "n": int(m.sum()),
            "flag_rate": float(flagged[m].mean()) if m.any() else 0.0,
            "false_positive_rate": float(flagged[innocent].mean()) if innocent.any() else 0.0,
            "recall": float(flagged[fraud].mean()) if fraud.any() else 0.0,
        }
    return out
