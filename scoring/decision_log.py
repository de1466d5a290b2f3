"""The decision log: every scored claim, with what is needed to replay its decision."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
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
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from fraudlens.database import RowEncoder, execute_raw, insert_rows, placeholder, select_in_sql

metadata = MetaData()

decision_log = Table(
    "decision_log",
    metadata,
    Column("claim_id", String(128), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False, index=True),
    Column("source", String(16), nullable=False),
    Column("program", String(64), nullable=False),
    Column("amount", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("graph_version", String(64), nullable=False),
    Column("entity_id", String(64)),
    Column("features", JSON, nullable=False),
    Column("risk", Float, nullable=False),
    Column("risk_kind", String(16), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("detector_scores", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("explanation", JSON),
    Column("protected", JSON),
    Column("case_id", String(64)),
)

#: Indexes the log had before 2026-12-07, dropped where found (:meth:`DecisionLog.__init__`).
#: Each took a page of every micro-batch's commit (about 4 % of a 2-claim batch's CPU for the
#: three), for columns of a few values each, where a read by time (``scored_at``) then a
#: filter serves an auditor's query as well.
_DROPPED_INDEXES = (
    "ix_decision_log_program",
    "ix_decision_log_model_version",
    "ix_decision_log_decision",
)


def _clean(values: Sequence[float]) -> list[float | None]:
    """JSON has no NaN: missing feature values are stored as null."""
    return [None if (v is None or not math.isfinite(v)) else float(v) for v in values]


def _clean_all(features: list[Any]) -> list[list[float | None]]:
    """:func:`_clean` of every row; one array pass when the rows are float arrays alike."""
    arrays = all(isinstance(f, np.ndarray) and f.ndim == 1 for f in features)
    if features and arrays and len({len(f) for f in features}) == 1:
        X = np.asarray(features, dtype=np.float64)
        out: list[list[float | None]] = X.tolist()
        for i, j in zip(*np.nonzero(~np.isfinite(X)), strict=True):
            out[i][j] = None
        return out
    return [_clean(f) for f in features]


#: Ids in one ``IN (...)`` look-up (below SQLite's 999 parameters).
_IN_CHUNK = 500


class DecisionLog:
    """Append-only record of decisions in the database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)
        found = {ix["name"] for ix in inspect(engine).get_indexes("decision_log")}
        if found & set(_DROPPED_INDEXES):
            with engine.begin() as conn:
                for name in _DROPPED_INDEXES:
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        self._encode = RowEncoder(
            decision_log, engine.dialect, defaults={"scored_at": lambda: datetime.now(UTC)}
        )

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows in one transaction; the number written."""
        with self.engine.begin() as conn:
            return self.write(conn, rows)

    def write(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows inside the caller's transaction ``conn`` (a micro-batch's cases share it).

        ``features`` may be a sequence or a 1-d float array; non-finite values are stored as
        null, there and in every other JSON column (:data:`fraudlens.jsontext.json_text`). The
        values are stored exactly as SQLAlchemy's ``insert`` on an engine of
        :func:`fraudlens.database.make_engine` would store them (same JSON text, same datetime
        form), in one multi-row statement without per-row bind processing; a column missing
        from a row is stored as SQL NULL, as there.
        """
        batch = list(rows)
        if batch:
            features = _clean_all([r["features"] for r in batch])
            insert_rows(conn, decision_log, self._encode(batch, replace={"features": features}))
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

    def existing(
        self, claim_ids: Sequence[str], conn: Connection | None = None
    ) -> dict[str, dict[str, Any]]:
        """Logged decisions for any of ``claim_ids`` (retries in a batch), read on ``conn`` when
        given (a micro-batch's own transaction), else on a connection of its own.

        Most batches hold no retry: the ids are looked up first (a narrow read of the primary
        key), and full rows are read only for the ids found.
        """
        if conn is None:
            with self.engine.connect() as own:
                return self.existing(claim_ids, own)
        out: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(claim_ids))
        mark = placeholder(conn)
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            sql = select_in_sql("decision_log", ("claim_id",), "claim_id", mark, len(chunk))
            found = [r[0] for r in execute_raw(conn, sql, tuple(chunk), fetch=True)]
            if found:
                rows = select(decision_log).where(decision_log.c.claim_id.in_(found))
                out.update((r.claim_id, dict(r._mapping)) for r in conn.execute(rows))
        return out

    def count(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decision_log)).scalar_one())
