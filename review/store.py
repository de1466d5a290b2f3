"""The review queue in the database: the CaseSink the Scorer writes to, and case transitions."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fraudlens.database import RowEncoder, execute_raw, insert_rows, placeholder, select_in_sql
from review.models import DISPOSITIONS, TRANSITIONS, Base, Case, CaseEvent

CASES = cast(Table, Case.__table__)
CASE_EVENTS = cast(Table, CaseEvent.__table__)
#: The columns of a new case event (``id``: the database's).
EVENT_COLUMNS = tuple(c.name for c in CASE_EVENTS.columns if c.name != "id")


def _case_row(case_id: str, case: dict[str, Any]) -> dict[str, Any]:
    """The ``cases`` row of a new case (status, created_at: the table's defaults)."""
    return {
        "id": case_id,
        "claim_id": case["claim_id"],
        "event_time": case["event_time"],
        "priority": int(case["priority"]),
        "risk": float(case["risk"]),
        "risk_kind": case["risk_kind"],
        "program": case["program"],
        "amount": float(case["amount"]),
        "model_version": case["model_version"],
        "graph_version": case["graph_version"],
        "entity_id": case.get("entity_id"),
        "reasons": case["reasons"],
        "explanation": case.get("explanation"),
        "detector_scores": case["detector_scores"],
    }


class TransitionError(ValueError):
    """A case cannot move to the requested status."""


class ReviewStore:
    """Cases and their events. Implements ``scoring.protocols.CaseSink``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        Base.metadata.create_all(engine)
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._encode_case = RowEncoder(CASES, engine.dialect)
        self._encode_event = RowEncoder(CASE_EVENTS, engine.dialect, EVENT_COLUMNS)

    # -- CaseSink --------------------------------------------------------------------------
    def open_case(self, case: dict[str, Any]) -> str:
        """Open a case for a flagged claim; a retried claim returns its existing case id."""
        return self.open_cases([case])[0]

    def open_cases(self, cases: Sequence[dict[str, Any]]) -> list[str]:
        """Open cases for flagged claims in one transaction; case ids in order.

        A claim that has a case already (a retry, or another worker's) keeps it. When another
        worker opens one of the same claims meanwhile, the cases are opened one by one instead.
        """
        try:
            with self.engine.begin() as conn:
                return self.open_cases_in(conn, cases)
        except IntegrityError:  # another worker opened one of them first
            if len(cases) == 1:
                with self.engine.connect() as conn:
                    again = conn.scalar(select(Case.id).where(Case.claim_id == cases[0]["claim_id"]))
                if again is None:
                    raise
                return [again]
            return [self.open_cases([case])[0] for case in cases]

    def open_cases_in(self, conn: Connection, cases: Sequence[dict[str, Any]]) -> list[str]:
        """Open cases for flagged claims inside the caller's transaction ``conn``; ids in order.

        The Scorer writes a micro-batch's cases and its decision-log rows in one transaction
        this way. A claim that has a case already keeps it. If another worker opens one of
        the same claims meanwhile, the insert raises ``IntegrityError``: the caller rolls back
        and calls :meth:`open_cases`, which sorts it out.
        """
        ids = list(dict.fromkeys(c["claim_id"] for c in cases))
        if not ids:
            return []
        sql = select_in_sql("cases", ("claim_id", "id"), "claim_id", placeholder(conn), len(ids))
        found: dict[str, str] = dict(execute_raw(conn, sql, tuple(ids), fetch=True))
        new_cases: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        out: list[str] = []
        for case in cases:
            case_id = found.get(case["claim_id"])
            if case_id is None:
                case_id = "K" + secrets.token_hex(6)
                found[case["claim_id"]] = case_id
                new_cases.append(_case_row(case_id, case))
                events.append({
                    "case_id": case_id, "actor": "fraudlens", "kind": "opened", "note": None,
                    "detail": {"risk": float(case["risk"]), "model_version": case["model_version"]},
                })
            out.append(case_id)
        if new_cases:  # as insert(CASES) and insert(CASE_EVENTS) store them, in less time
            insert_rows(conn, CASES, self._encode_case(new_cases))
            insert_rows(conn, CASE_EVENTS, self._encode_event(events), columns=EVENT_COLUMNS)
        return out

    # -- reading ---------------------------------------------------------------------------
    def queue(self, status: str | None = "open", limit: int = 100, offset: int = 0) -> list[Case]:
        """Cases by priority (1 first), then risk (highest first)."""
        with self.sessions() as s:
            q = select(Case)
            if status:
                q = q.where(Case.status == status)
            q = q.order_by(Case.priority, Case.risk.desc(), Case.created_at).limit(limit).offset(offset)
            return list(s.scalars(q))

    def get(self, case_id: str) -> Case | None:
        with self.sessions() as s:
            return s.get(Case, case_id)

    def by_claim(self, claim_id: str) -> Case | None:
        with self.sessions() as s:
            return s.scalar(select(Case).where(Case.claim_id == claim_id))

    def events(self, case_id: str) -> list[CaseEvent]:
        with self.sessions() as s:
            return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))

    def count(self, status: str | None = None) -> int:
        from sqlalchemy import func

        with self.sessions() as s:
            q = select(func.count()).select_from(Case)
            if status:
                q = q.where(Case.status == status)
            return int(s.scalar(q) or 0)

    def confirmed_fraud_entities(self) -> list[str]:
        """The entity ids of the cases investigators closed as confirmed fraud (each once,
        sorted): the seeds of the identity graph's proximity to fraud."""
        q = (
            select(Case.entity_id)
            .where(Case.status == "closed", Case.disposition == "confirmed_fraud")
            .where(Case.entity_id.is_not(None))
            .distinct()
        )
        with self.sessions() as s:
            return sorted(str(e) for e in s.scalars(q))

    # -- investigator actions --------------------------------------------------------------
    def transition(
        self,
        case_id: str,
        actor: str,
        to: str,
        disposition: str | None = None,
        note: str | None = None,
    ) -> Case:
        """Move a case to ``to``; closing needs a disposition, which becomes a training label."""
        with self.sessions() as s, s.begin():
            case = self._locked(s, case_id)
            if to not in TRANSITIONS.get(case.status, frozenset()):
                allowed = ", ".join(sorted(TRANSITIONS.get(case.status, frozenset()))) or "nothing"
                raise TransitionError(f"case {case_id} is {case.status}; it can move to {allowed}, not {to}")
            if to == "closed":
                if disposition not in DISPOSITIONS:
                    raise TransitionError(
                        f"closing case {case_id} needs a disposition, one of {', '.join(DISPOSITIONS)}; "
                        f"got {disposition!r}"
                    )
                case.disposition = disposition
            previous = case.status
            case.status = to
            if to == "in_review":
                case.assignee = actor
            s.add(CaseEvent(case_id=case_id, actor=actor, kind="status",
                            detail={"from": previous, "to": to, "disposition": disposition}, note=note))
        return case

    def _locked(self, s: Session, case_id: str) -> Case:
        q = select(Case).where(Case.id == case_id)
        if self.engine.dialect.name == "postgresql":
            q = q.with_for_update()
        case = s.scalar(q)
        if case is None:
            raise KeyError(f"no case {case_id}")
        return case
