"""The Scorer: one claim or a frame in, risk, decision, priority and reasons out; every decision logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from explain.reasons import (
    Reason,
    contributions_dict,
    merge_reasons,
    reasons_from_contributions,
    reasons_from_deviation,
)
from fraudlens.database import execute_raw
from fraudlens.jsontext import finite
from fraudlens.spec import Claim, Rejection
from scoring.bundle import Bundle, BundleError
from scoring.decision_log import DecisionLog
from scoring.policy import calibrate, percentile
from scoring.protocols import CaseSink, TransactionalCaseSink
from scoring.results import ClaimConflict, RecordRejected, ScoreResult

log = logging.getLogger(__name__)


class GraphState(Protocol):
    """What the Scorer needs of the identity graph (``graph.IdentityGraph`` provides it)."""

    @property
    def version(self) -> str: ...

    def add(self, claim: Any) -> dict[str, float]: ...

    def add_many(
        self, claims: Sequence[Any], conn: Any = None
    ) -> Sequence[dict[str, float] | Exception]: ...

    def writing(self) -> AbstractContextManager[Any]: ...

    def build(self, frame: pd.DataFrame) -> pd.DataFrame: ...

    def entity_of(self, claim_id: str) -> str | None: ...


@dataclass
class _Scores:
    """Scores of a matrix of claims, before explanation."""

    outlier: NDArray[np.float64]
    outlier_risk: NDArray[np.float64]
    supervised: NDArray[np.float64] | None
    risk: NDArray[np.float64]
    decision: NDArray[Any]
    priority: NDArray[np.int64]
    rules: NDArray[np.float64] | None


def score_matrix(bundle: Bundle, X: NDArray[np.float64]) -> _Scores:
    """Scores, risk and decisions for rows of a bundle's feature matrix (replay uses this alone)."""
    outlier = bundle.outlier.score_samples(X)
    outlier_risk = percentile(outlier, bundle.outlier_quantiles)
    supervised = None
    if bundle.supervised is not None:
        supervised = bundle.supervised.score_samples(np.column_stack([X, outlier_risk]))
        assert bundle.calibration is not None
        risk = calibrate(supervised, *bundle.calibration)
    else:
        risk = outlier_risk
    _refuse_non_finite(bundle, risk)
    decision, priority = bundle.policy.decide_many(risk)
    rules = None
    if bundle.rules is not None:
        # The rules score is reported, never part of risk; one row takes the scalar path.
        if X.shape[0] == 1:
            rules = np.array([cast(Any, bundle.rules).score_one(X[0])])
        else:
            rules = bundle.rules.score_samples(X)
    return _Scores(outlier, outlier_risk, supervised, risk, decision, priority, rules)


def _refuse_non_finite(bundle: Bundle, risk: NDArray[np.float64]) -> None:
    """Raise :class:`BundleError` when a risk is not a finite number: a model bug (percentile
    and calibration clip any finite or infinite score into [0, 1]; only NaN gets through).
    NaN compares below every threshold, so it would clear the claim unseen and log a risk
    that is no risk; the batch fails instead, before anything is decided, logged or opened."""
    if np.isfinite(risk).all():
        return
    bad = np.flatnonzero(~np.isfinite(risk))
    raise BundleError(
        f"bundle {bundle.version} gave a non-finite risk ({risk[bad[0]]}) for {bad.size} of "
        f"{risk.size} claims (rows {bad[:5].tolist()}); expected a number in [0, 1]"
    )


class Scorer:
    """Scores claims with one model bundle and one identity-graph state.

    Composed of parts, each testable alone: claim features (``bundle.features``), graph
    features (``graph``), the outlier detector, the supervised model, calibration and the
    policy. API, batch and stream drivers all call this object, so the same claim with the
    same bundle and graph state gets the same risk from each, bit for bit.
    """

    def __init__(
        self,
        bundle: Bundle,
        graph: GraphState | None,
        *,
        key: bytes,
        log: DecisionLog | None = None,
        sink: CaseSink | None = None,
    ) -> None:
        if bundle.graph_features and graph is None:
            raise BundleError(
                f"bundle {bundle.version} was trained with identity-graph features; "
                "pass the graph state to score with it"
            )
        self.bundle = bundle
        self.spec = bundle.spec
        self.graph = graph
        self.log = log
        self.sink = sink
        self._key = key
        self._lock = threading.Lock()
        self.names = bundle.feature_names
        self.supervised_names = [*self.names, "outlier_risk"]
        self._describe = _describer(bundle)
        # a micro-batch's cases and decision-log rows in one transaction, where they share it
        self._together = log is not None and (
            sink is None or (isinstance(sink, TransactionalCaseSink) and sink.engine is log.engine)
        )
        # ... and with the graph's rows too, on SQLite (one writer at a time anyway; on
        # PostgreSQL the graph's lock would be held while the batch is scored)
        self._one_transaction = (
            self._together
            and log is not None
            and graph is not None
            and bool(bundle.graph_features)
            and getattr(graph, "engine", None) is log.engine
            and log.engine.dialect.name == "sqlite"
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """Run every compiled path once, so no request pays numba's cache load or a first call."""
        X = self.bundle.feature_centre.reshape(1, -1).copy()
        s = self.score_matrix(X)
        self.explain_rows(X, s, np.array([0]))

    @classmethod
    def load(
        cls,
        bundle_dir: str | Path,
        state: GraphState | None,
        *,
        key: bytes,
        log: DecisionLog | None = None,
        sink: CaseSink | None = None,
    ) -> Scorer:
        return cls(Bundle.load(bundle_dir), state, key=key, log=log, sink=sink)

    @property
    def model_version(self) -> str:
        return self.bundle.version

    @property
    def graph_version(self) -> str:
        return self.graph.version if self.graph is not None else "none"

    # -- hashing -----------------------------------------------------------------------------
    def content_hash(self, claim: Claim) -> str:
        """Keyed hash of the claim's content (labels excluded): retries match, changes don't."""
        rec = self.spec.record_from_claim(claim)
        for c in self.spec.labels:
            rec.pop(c, None)
        canon = json.dumps(rec, sort_keys=True, default=str, separators=(",", ":")).encode()
        return hmac.new(self._key, canon, hashlib.sha256).hexdigest()

    # -- the model on a feature matrix -------------------------------------------------------------
    def score_matrix(self, X: NDArray[np.float64]) -> _Scores:
        """Scores, risk and decisions for rows of the model's feature matrix."""
        return score_matrix(self.bundle, X)

    def _detector_scores(self, s: _Scores, i: int) -> dict[str, float | None]:
        """Row ``i``'s detector scores; None for one that is not a finite number (a k-NN
        distance beyond float range makes the outlier score +inf), as the log stores it, so a
        retry answers what the first answer said."""
        d = {"outlier": float(s.outlier[i]), "outlier_risk": float(s.outlier_risk[i])}
        if s.supervised is not None:
            d["supervised"] = float(s.supervised[i])
        if s.rules is not None:
            d["rules"] = float(s.rules[i])
        return finite(d)

    def explain_rows(self, X: NDArray[np.float64], s: _Scores, rows: NDArray[np.int64]) -> dict[int, tuple[list[Reason], dict[str, Any]]]:
        """Reasons and explanation records for the given rows (flagged claims, or on demand)."""
        out: dict[int, tuple[list[Reason], dict[str, Any]]] = {}
        if len(rows) == 0:
            return out
        b = self.bundle
        Xr = X[rows]
        contrib = None
        if b.supervised is not None and hasattr(b.supervised, "contributions"):
            Xs = np.column_stack([Xr, s.outlier_risk[rows]])
            contrib = b.supervised.contributions(Xs)
        fired_reasons = _rules_reasons(b.rules, Xr, self.names) if b.rules is not None else None
        for k, i in enumerate(rows):
            x = Xr[k]
            rule_reasons = fired_reasons[k] if fired_reasons is not None else []
            if contrib is not None:
                xs = np.append(x, s.outlier_risk[i])
                model_reasons = reasons_from_contributions(
                    self.supervised_names, xs, contrib[k, :-1], self._describe
                )
                explanation = {
                    "method": "treeshap",
                    "model": "supervised",
                    "space": "log-odds",
                    "contributions": contributions_dict(self.supervised_names, contrib[k, :-1], contrib[k, -1]),
                }
            else:
                model_reasons = reasons_from_deviation(
                    self.names, x, b.feature_centre, b.feature_scale, self._describe
                )
                explanation = {
                    "method": "robust-deviation",
                    "model": "outlier",
                    "note": "features furthest from their training median, in IQR units; "
                    "not an exact share of the outlier score",
                    "deviations": {r.code: r.contribution for r in model_reasons},
                }
            out[int(i)] = (merge_reasons(rule_reasons, model_reasons), explanation)
        return out

    # -- one claim -----------------------------------------------------------------------------
    def validate(self, record: Mapping[str, Any]) -> Claim:
        result = self.spec.validate_record(record)
        if isinstance(result, Rejection):
            raise RecordRejected(result)
        return result

    def score_one(self, record: Mapping[str, Any] | Claim, source: str = "api") -> ScoreResult:
        """Score one record (validated here); retries return the logged answer.

        Raises :class:`RecordRejected` for a bad record and :class:`ClaimConflict` when the id
        was scored before with different content.
        """
        claim = record if isinstance(record, Claim) else self.validate(record)
        (result,) = self.score_many([claim], source)
        if isinstance(result, ClaimConflict):
            raise result
        return result

    def score_many(
        self, claims: Sequence[Claim], source: str = "api"
    ) -> list[ScoreResult | ClaimConflict]:
        """Score validated claims together (the API's micro-batches); one answer per claim.

        Each claim gets what :meth:`score_one` would give it had the claims come one by one in
        event-time order: the graph takes them in that order, and every model step is
        element-wise, so a row's scores do not depend on its batch. A claim logged before (or
        twice in ``claims``) returns the logged answer; the same id with different content gets
        a :class:`ClaimConflict` in its place. The graph rows of the batch are written in one
        transaction; its decision-log rows and the cases of its flagged claims in another (when
        the case sink shares the log's database; else the cases commit first, then the log).
        """
        digests = [self.content_hash(c) for c in claims]
        out: list[ScoreResult | ClaimConflict | None] = [None] * len(claims)
        # on SQLite the retry look-up, the graph's rows, the log and the cases share one
        # connection and transaction (the look-up reads before the first write)
        writing = (
            cast(GraphState, self.graph).writing() if self._one_transaction else nullcontext(None)
        )
        with self._lock:
            with writing as conn:
                ids = [c.claim_id for c in claims]
                logged = self.log.existing(ids, conn) if self.log is not None else {}
                first: dict[str, int] = {}
                repeats: list[tuple[int, int]] = []
                for k, c in enumerate(claims):
                    prev = logged.get(c.claim_id)
                    if prev is not None:
                        out[k] = _logged_answer(prev, digests[k])
                    elif c.claim_id in first:
                        repeats.append((k, first[c.claim_id]))
                    else:
                        first[c.claim_id] = k
                new = list(first.values())
                scored = (
                    self._score_new_claims(claims, digests, new, out, source, conn) if new else None
                )
            if scored is not None:
                self._finish_batch(claims, digests, scored, out, source)
            for k, j in repeats:  # the same id twice in one batch: the first one's answer
                done = out[j]
                same = digests[k] == digests[j] and not isinstance(done, ClaimConflict)
                out[k] = done if same else ClaimConflict(claims[k].claim_id)
        return cast(list[ScoreResult | ClaimConflict], out)  # every slot is set

    def _finish_batch(
        self,
        claims: Sequence[Claim],
        digests: list[str],
        scored: tuple[list[int], NDArray[np.float64], list[ScoreResult], list[ScoreResult] | None],
        out: list[ScoreResult | ClaimConflict | None],
        source: str,
    ) -> None:
        """Put the scored claims' answers in ``out``, writing their log rows and cases apart
        first when they could not be written with the batch (another worker got to some, or
        the case sink does not share the log's transaction)."""
        new, X, plain, results = scored
        already: dict[str, dict[str, Any]] = {}
        if results is None:  # cases and log apart (see _log_together)
            assert self.log is not None
            # Written together, the batch failed on a claim another worker logged after the
            # retry look-up: the ones logged get the logged answer and no case of their own.
            # Apart, the look-up before scoring covered the batch.
            if self._together:
                already = self.log.existing([claims[k].claim_id for k in new])
            todo = [i for i, k in enumerate(new) if claims[k].claim_id not in already]
            batch = [claims[new[i]] for i in todo]
            opened = self._with_cases(batch, [plain[i] for i in todo])
            rows = [
                self._log_row(c, digests[new[i]], X[i], r, source)
                for i, c, r in zip(todo, batch, opened, strict=True)
            ]
            if rows:  # another worker may log some of them between the look-up and this write
                already.update(self.log.append_new(rows))
            results = list(plain)
            for i, r in zip(todo, opened, strict=True):
                results[i] = r
        for k, result in zip(new, results, strict=True):
            prev = already.get(claims[k].claim_id)
            out[k] = result if prev is None else _logged_answer(prev, digests[k])

    def _score_new_claims(
        self,
        claims: Sequence[Claim],
        digests: list[str],
        new: list[int],
        out: list[ScoreResult | ClaimConflict | None],
        source: str,
        conn: Connection | None,
    ) -> tuple[list[int], NDArray[np.float64], list[ScoreResult], list[ScoreResult] | None] | None:
        """Graph, models and explanations for the claims at ``new``, then their cases and log
        rows written together (in ``conn``, the graph's transaction, when given).

        Returns None when nothing is left to log; else the positions scored, their feature
        rows, their results without cases, and the results as logged (None when the log and
        cases could not be written together: the caller writes them apart).
        """
        x_claim = self.bundle.features.transform_claims([claims[k] for k in new])
        if self.graph is not None and self.bundle.graph_features:
            added = self.graph.add_many([claims[k] for k in new], conn)
            keep = [i for i, g in enumerate(added) if isinstance(g, dict)]
            for i, g in enumerate(added):
                if not isinstance(g, dict):  # the graph holds this id with other content
                    out[new[i]] = ClaimConflict(claims[new[i]].claim_id)
            names = self.bundle.graph_features
            row = itemgetter(*names) if len(names) > 1 else (lambda g: (g[names[0]],))
            x_graph = np.array(
                [row(cast(dict[str, float], added[i])) for i in keep], dtype=np.float64
            ).reshape(len(keep), len(names))
            new = [new[i] for i in keep]
            X = np.hstack([x_claim[keep], x_graph])
        else:
            X = x_claim
        if not new:
            return None
        s = self.score_matrix(X)
        explained = self.explain_rows(X, s, np.flatnonzero(s.decision == "review"))
        scored_at = datetime.now(UTC).isoformat()
        batch = [claims[k] for k in new]
        plain = [self._result(c, s, i, explained, scored_at) for i, c in enumerate(batch)]
        if self.log is None:
            for k, result in zip(new, self._with_cases(batch, plain), strict=True):
                out[k] = result
            return None
        logged = self._log_together(batch, [digests[k] for k in new], X, plain, source, conn)
        return new, X, plain, logged

    def _log_together(
        self,
        claims: Sequence[Claim],
        digests: Sequence[str],
        X: NDArray[np.float64],
        results: list[ScoreResult],
        source: str,
        conn: Connection | None = None,
    ) -> list[ScoreResult] | None:
        """Open the flagged claims' cases and log every claim in one transaction (a savepoint
        of ``conn`` when given).

        Returns the results with their case ids; None, with nothing written, when the case
        sink cannot share the decision log's transaction, or when another worker logged or
        opened one of these claims meanwhile (the caller then writes them apart).
        """
        if not self._together:
            return None
        assert self.log is not None
        try:
            with (
                self.log.engine.begin() if conn is None else _savepoint(conn)
            ) as tx:
                sink = cast(TransactionalCaseSink | None, self.sink)
                out = self._with_cases(
                    claims, results, None if sink is None else partial(sink.open_cases_in, tx)
                )
                self.log.write(
                    tx,
                    [self._log_row(c, digests[i], X[i], out[i], source) for i, c in enumerate(claims)],
                )
        except IntegrityError:
            return None
        return out

    # -- a frame -------------------------------------------------------------------------------
    def score_frame(self, frame: pd.DataFrame, source: str = "batch") -> pd.DataFrame:
        """Score every row of a frame; one output row per input row, in input order.

        Output columns: ``row``, ``claim_id``, ``status`` (``scored``, ``retry`` or
        ``rejected``), ``risk``, ``decision``, ``priority``, ``reasons`` (JSON), ``case_id``,
        ``rejection`` (JSON list of bad fields). A missing required column raises
        :class:`fraudlens.spec.FileLevelError` before anything is scored.
        """
        validated = self.spec.validate_frame(frame)
        acc = validated.accepted
        n_in = len(frame)
        cols: dict[str, list[Any]] = {
            "claim_id": [None] * n_in,
            "status": ["rejected"] * n_in,
            "risk": [np.nan] * n_in,
            "decision": [None] * n_in,
            "priority": [None] * n_in,
            "reasons": [None] * n_in,
            "case_id": [None] * n_in,
            "rejection": [None] * n_in,
        }
        for r in validated.rejections:
            assert r.row is not None  # frame rejections always carry their row
            cols["claim_id"][r.row] = r.claim_id
            cols["rejection"][r.row] = json.dumps([e.as_dict() for e in r.errors])
        positions = validated.accepted_rows()  # each accepted row's input position
        claims = [self.spec.claim_from_row(rec) for rec in acc.to_dict("records")]
        digests = [self.content_hash(c) for c in claims]

        with self._lock:
            logged = self.log.existing([c.claim_id for c in claims]) if self.log is not None else {}
            new_idx: list[int] = []
            for k, (c, d) in enumerate(zip(claims, digests, strict=True)):
                pos = int(positions[k])
                cols["claim_id"][pos] = c.claim_id
                prev = logged.get(c.claim_id)
                if prev is None:
                    new_idx.append(k)
                elif prev["content_hash"] != d:
                    cols["rejection"][pos] = json.dumps(
                        [{"field": self.spec.id_column, "expected": "identical content for a scored id",
                          "got": "different content (conflict)"}]
                    )
                else:
                    _put(cols, pos, "retry", result_from_log(prev))
            if new_idx:
                results = self._score_new(
                    acc.iloc[new_idx].reset_index(drop=True),
                    [claims[k] for k in new_idx],
                    [digests[k] for k in new_idx],
                    source,
                )
                for k, result in zip(new_idx, results, strict=True):
                    _put(cols, int(positions[k]), "scored", result)
        out = pd.DataFrame({"row": np.arange(n_in), **cols})
        out["risk"] = out["risk"].astype("float64")
        out["priority"] = out["priority"].astype("Int64")
        return out

    def _score_new(
        self, frame: pd.DataFrame, claims: list[Claim], digests: list[str], source: str
    ) -> list[ScoreResult]:
        x_claim = self.bundle.features.transform(frame).to_numpy(dtype=np.float64)
        if self.graph is not None and self.bundle.graph_features:
            g = self.graph.build(self.spec.with_core_names(frame))
            g = g.loc[frame[self.spec.id_column].to_numpy(), self.bundle.graph_features]
            X = np.hstack([x_claim, g.to_numpy(dtype=np.float64)])
        else:
            X = x_claim
        s = self.score_matrix(X)
        flagged = np.flatnonzero(s.decision == "review")
        explained = self.explain_rows(X, s, flagged)
        scored_at = datetime.now(UTC).isoformat()
        results = self._results(claims, s, explained, scored_at)
        if self.log is not None:
            self.log.append(
                [
                    self._log_row(claim, digests[k], X[k], result, source)
                    for k, (claim, result) in enumerate(zip(claims, results, strict=True))
                ]
            )
        return results

    def _results(
        self,
        claims: Sequence[Claim],
        s: _Scores,
        explained: dict[int, tuple[list[Reason], dict[str, Any]]],
        scored_at: str,
    ) -> list[ScoreResult]:
        """Results for scored claims (row ``k`` of ``s`` is ``claims[k]``), with their cases."""
        results = [self._result(c, s, k, explained, scored_at) for k, c in enumerate(claims)]
        return self._with_cases(claims, results)

    def _with_cases(
        self,
        claims: Sequence[Claim],
        results: list[ScoreResult],
        open_cases: Callable[[list[dict[str, Any]]], list[str]] | None = None,
    ) -> list[ScoreResult]:
        """``results`` with case ids: the flagged claims' cases opened together, by
        ``open_cases`` (default: the sink's ``open_cases``, in its own transaction)."""
        flagged = [k for k, r in enumerate(results) if r.decision == "review"]
        if open_cases is None and self.sink is not None:
            open_cases = self.sink.open_cases
        if open_cases is None or not flagged:
            return results
        results = list(results)
        case_ids = open_cases([_case(claims[k], results[k]) for k in flagged])
        for k, case_id in zip(flagged, case_ids, strict=True):
            results[k] = replace(results[k], case_id=case_id)
        return results

    def _result(
        self,
        claim: Claim,
        s: _Scores,
        k: int,
        explained: dict[int, tuple[list[Reason], dict[str, Any]]],
        scored_at: str,
    ) -> ScoreResult:
        """The result for row ``k`` of scored claims (its case comes in :meth:`_results`)."""
        reasons, explanation = explained.get(k, ([], None))
        return ScoreResult(
            claim_id=claim.claim_id,
            risk=float(s.risk[k]),
            risk_kind=self.bundle.policy.risk_kind,
            decision=str(s.decision[k]),
            priority=int(s.priority[k]),
            model_version=self.model_version,
            graph_version=self.graph_version,
            detector_scores=self._detector_scores(s, k),
            reasons=[r.as_dict() for r in reasons],
            explanation=explanation,
            entity_id=self.graph.entity_of(claim.claim_id) if self.graph is not None else None,
            scored_at=scored_at,
        )

    def _log_row(
        self, claim: Claim, digest: str, x: NDArray[np.float64], result: ScoreResult, source: str
    ) -> dict[str, Any]:
        return {
            "claim_id": claim.claim_id,
            "content_hash": digest,
            "event_time": claim.timestamp,
            "scored_at": datetime.fromisoformat(result.scored_at) if result.scored_at else datetime.now(UTC),
            "source": source,
            "program": claim.program,
            "amount": claim.amount,
            "model_version": result.model_version,
            "graph_version": result.graph_version,
            "entity_id": result.entity_id,
            "features": x,  # cleaned and encoded by the log, with the batch's other rows
            "risk": result.risk,
            "risk_kind": result.risk_kind,
            "decision": result.decision,
            "priority": result.priority,
            "detector_scores": result.detector_scores,
            "reasons": result.reasons,
            "explanation": result.explanation,
            "protected": {k: v for k, v in claim.protected.items() if v is not None},
            "case_id": result.case_id,
        }


@contextmanager
def _savepoint(conn: Connection) -> Iterator[Connection]:
    """``conn`` inside a savepoint: rolled back to it, and the error raised, if the block fails.

    The same statements as ``conn.begin_nested()`` sends, without building and compiling its
    savepoint clauses per call (about 5% of a micro-batch's CPU on SQLite in a py-spy profile;
    no saving stood out of the noise when base and new were timed alternately).
    """
    execute_raw(conn, "SAVEPOINT fraudlens_log")
    try:
        yield conn
    except BaseException:
        execute_raw(conn, "ROLLBACK TO SAVEPOINT fraudlens_log")
        execute_raw(conn, "RELEASE SAVEPOINT fraudlens_log")
        raise
    execute_raw(conn, "RELEASE SAVEPOINT fraudlens_log")


def result_from_log(row: Mapping[str, Any]) -> ScoreResult:
    """The answer given for a logged claim (what a retry returns)."""
    scored_at = row["scored_at"]
    return ScoreResult(
        claim_id=row["claim_id"],
        risk=float(row["risk"]),
        risk_kind=row["risk_kind"],
        decision=row["decision"],
        priority=int(row["priority"]),
        model_version=row["model_version"],
        graph_version=row["graph_version"],
        detector_scores=dict(row["detector_scores"]),
        reasons=list(row["reasons"]),
        explanation=row["explanation"],
        case_id=row["case_id"],
        entity_id=row["entity_id"],
        scored_at=_utc_iso(scored_at),
        replayed=True,
    )


def _utc_iso(when: Any) -> str:
    """A logged time in the form the first answer gave it (SQLite returns it without a zone)."""
    if not isinstance(when, datetime):
        return str(when)
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).isoformat()


def _logged_answer(row: Mapping[str, Any], digest: str) -> ScoreResult | ClaimConflict:
    """What a claim already in the decision log gets: its logged answer, or a conflict."""
    if row["content_hash"] != digest:
        return ClaimConflict(row["claim_id"])
    return result_from_log(row)


def _put(cols: dict[str, list[Any]], pos: int, status: str, result: ScoreResult) -> None:
    cols["status"][pos] = status
    cols["risk"][pos] = result.risk
    cols["decision"][pos] = result.decision
    cols["priority"][pos] = result.priority
    cols["reasons"][pos] = json.dumps(result.reasons)
    cols["case_id"][pos] = result.case_id


def _case(claim: Claim, result: ScoreResult) -> dict[str, Any]:
    """The review-queue case of a flagged claim."""
    return {
        "claim_id": claim.claim_id,
        "event_time": claim.timestamp,
        "program": claim.program,
        "amount": claim.amount,
        "risk": result.risk,
        "risk_kind": result.risk_kind,
        "priority": result.priority,
        "model_version": result.model_version,
        "graph_version": result.graph_version,
        "entity_id": result.entity_id,
        "reasons": result.reasons,
        "explanation": result.explanation,
        "detector_scores": result.detector_scores,
    }


def _rules_reasons(rules: Any, X: NDArray[np.float64], names: list[str]) -> list[list[Reason]]:
    """Reasons of the red-flag rules that fired, per row (stated policy, shown first)."""
    fired = rules.fired_matrix(X)
    out: list[list[Reason]] = []
    for k in range(X.shape[0]):
        record = dict(zip(names, X[k].tolist(), strict=True))
        out.append(
            [
                Reason(
                    code=f"rule:{rule.id}",
                    sentence=rule.render_reason(record),
                    contribution=float(rule.weight),
                    source="rule",
                )
                for j, rule in enumerate(rules.rules_)
                if fired[k, j]
            ]
        )
    return out


def _describer(bundle: Bundle) -> Any:
    graph_desc: dict[str, str] = dict(bundle.manifest.get("graph_descriptions", {}))

    def describe(name: str) -> str:
        if name == "outlier_risk":
            return "how unusual the claim is overall (outlier percentile)"
        if name in graph_desc:
            return graph_desc[name]
        return bundle.features.describe(name)

    return describe
