"""Replay: reload the bundle that made a logged decision, rescore its logged features, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from scoring.bundle import Bundle
from scoring.decision_log import DecisionLog
from scoring.scorer import score_matrix


def replay_decision(engine: Engine, bundles_root: Path, claim_id: str) -> dict[str, Any]:
    """Rescore a logged claim from its logged feature vector with its own bundle.

    Needs no graph state and no raw identity values: the decision log holds the feature vector
    (graph features included) and the bundle version. ``reproduced`` is true when risk and
    decision are equal bit for bit.
    """
    row = DecisionLog(engine).get(claim_id)
    if row is None:
        raise KeyError(f"claim {claim_id!r} is not in the decision log")
    bundle = Bundle.load(bundles_root / row["model_version"])
    x = np.array([[np.nan if v is None else v for v in row["features"]]], dtype=np.float64)
    scores = score_matrix(bundle, x)
    risk = float(scores.risk[0])
    decision = str(scores.decision[0])
    return {
        "claim_id": claim_id,
        "model_version": row["model_version"],
        "graph_version": row["graph_version"],
        "logged": {"risk": row["risk"], "decision": row["decision"], "priority": row["priority"]},
        "replayed": {"risk": risk, "decision": decision, "priority": int(scores.priority[0])},
        "reproduced": risk == row["risk"] and decision == row["decision"],
    }
