"""The decision log: every scored claim, with what is needed to replay its decision."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

decision_log = Table(
    "decision_log",
    metadata,
    Column("claim_id", String(128), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False, index=True),
    Column("source", String(16), nullable=False),
    Column("program", String(64), nullable=False, index=True),
    Column("amount", Float, nullable=False),
    Column("model_version", String(64), nullable=False, index=True),
    Column("graph_version", String(64), nullable=False),
    Column("entity_id", String(64)),
    Column("features", JSON, nullable=False),
    Column("risk", Float, nullable=False),
    Column("risk_kind", String(16), nullable=False),
    Column("decision", String(8), nullable=False, index=True),
    Column("priority", Integer, nullable=False),
    Column("detector_scores", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("explanation", JSON),
    Column("protected", JSON),
    Column("case_id", String(64)),
)


def _clean(values: Sequence[float]) -> list[float | None]:
    """JSON has no NaN: missing feature values are stored as null."""
    return [None if (v is None or not math.isfinite(v)) else float(v) for v in values]


class DecisionLog:
    """Append-only record of decisions in the database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows in one transaction; the number written."""
        with self.engine.begin() as conn:
            return self.write(conn, rows)

    def write(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows inside the caller's transaction ``conn`` (a micro-batch's cases share it)."""
        batch = []
        for r in rows:
            r = dict(r)
            r["features"] = _clean(r["features"])
            r.setdefault("scored_at", datetime.now(UTC))
            batch.append(r)
        if batch:
            conn.execute(insert(decision_log), batch)
        return len(batch)

    def append_new(self, rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Append rows whose claims are not logged yet, in one transaction.

        Another worker may log the same claim between a check and this write. Then the batch
        is written row by row instead, and each row already logged is left as it is.

        Returns
        -------
        dict
            The logged rows (claim id -> row) of the claims that were logged already.
        """
        try:
            self.append(rows)
            return {}
        except IntegrityError:
            pass
        already: dict[str, dict[str, Any]] = {}
        for row in rows:
            try:
                self.append([row])
            except IntegrityError:
                found = self.get(row["claim_id"])
                if found is None:  # the conflict was not about this claim id
                    raise
                already[row["claim_id"]] = found
        return already

    def set_case(self, claim_id: str, case_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(decision_log).where(decision_log.c.claim_id == claim_id).values(case_id=case_id)
            )

    def get(self, claim_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(decision_log).where(decision_log.c.claim_id == claim_id)).first()
        return None if row is None else dict(row._mapping)

    def existing(self, claim_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Logged decisions for any of ``claim_ids`` (retries in a batch)."""
        out: dict[str, dict[str, Any]] = {}
        ids = list(claim_ids)
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 5000):
                chunk = ids[i : i + 5000]
                for row in conn.execute(select(decision_log).where(decision_log.c.claim_id.in_(chunk))):
                    out[row.claim_id] = dict(row._mapping)
        return out

    def count(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decision_log)).scalar_one())
