"""What scoring one claim returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fraudlens.spec import Rejection


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring one claim.

    ``risk`` is in [0, 1]: a calibrated probability when the bundle has a supervised model,
    otherwise the claim's outlier-score percentile among training claims (``risk_kind`` says
    which). ``decision`` is ``clear`` or ``review``: fraudlens never denies a claim; a flagged
    claim goes to a human. A detector score that is not a finite number (an outlier distance
    beyond float range) is None, as JSON null in the answer and the decision log.
    """

    claim_id: str
    risk: float
    risk_kind: str
    decision: str
    priority: int
    model_version: str
    graph_version: str
    detector_scores: dict[str, float | None]
    reasons: list[dict[str, Any]]
    explanation: dict[str, Any] | None = None
    case_id: str | None = None
    entity_id: str | None = None
    scored_at: str | None = None
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim_id": self.claim_id,
            "risk": self.risk,
            "risk_kind": self.risk_kind,
            "decision": self.decision,
            "priority": self.priority,
            "reasons": self.reasons,
            "model_version": self.model_version,
            "graph_version": self.graph_version,
            "detector_scores": self.detector_scores,
            "explanation": self.explanation,
            "case_id": self.case_id,
            "scored_at": self.scored_at,
        }


class RecordRejected(ValueError):
    """The record failed validation; ``rejection`` names every bad field."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"claim {rejection.claim_id!r} rejected: {rejection.reason}")
        self.rejection = rejection


class ClaimConflict(ValueError):
    """The claim id was already scored with different content."""

    def __init__(self, claim_id: str) -> None:
        super().__init__(
            f"claim {claim_id!r} was already scored with different content; "
            "a resubmission must be identical, a new claim needs a new id"
        )
        self.claim_id = claim_id
