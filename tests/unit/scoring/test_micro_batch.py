"""Micro-batches: claims scored together get exactly what they get one by one; nothing is lost."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from scoring.batching import MicroBatcher
from scoring.decision_log import DecisionLog
from scoring.results import ClaimConflict


@pytest.fixture()
def fresh(copy_home):
    """``fresh(name)`` -> a Scorer on a fresh copy of the trained home, and the new claims."""
    return lambda name: copy_home(name)[2:]


def _comparable(r):
    """The answer without when it was made, its case id and the graph state it was made on
    (the state after its batch: the graph takes a batch in one transaction)."""
    d = r.as_dict()
    for k in ("scored_at", "case_id", "graph_version"):
        d.pop(k)
    return d


def test_micro_batches_equal_one_at_a_time(fresh) -> None:
    one, new = fresh("one")
    many, _ = fresh("many")
    sample = new.iloc[:240].reset_index(drop=True)
    claims = [one.validate(r) for r in sample.to_dict("records")]
    # one by one in event-time order (ties by claim id): the order the graph takes a batch in
    order = sorted(range(len(claims)), key=lambda k: (claims[k].timestamp, claims[k].claim_id))
    singles = {claims[k].claim_id: one.score_one(claims[k]) for k in order}
    rng = np.random.default_rng(3)
    got = {}
    start = 0
    while start < len(claims):
        size = int(rng.integers(1, 40))
        group = claims[start : start + size]
        shuffled = [group[k] for k in rng.permutation(len(group))]
        for c, r in zip(shuffled, many.score_many(shuffled), strict=True):
            got[c.claim_id] = r
        start += size
    assert got.keys() == singles.keys()
    for cid, r in got.items():
        assert _comparable(r) == _comparable(singles[cid]), cid
    assert one.graph_version == many.graph_version
    assert many.log.count() == one.log.count()
    flagged = [r for r in got.values() if r.decision == "review"]
    assert flagged and all(r.case_id for r in flagged)


def test_repeats_conflicts_and_logged_retries_in_one_batch(fresh) -> None:
    scorer, new = fresh("s")
    recs = new.iloc[300:306].to_dict("records")
    a, b, c = (scorer.validate(r) for r in recs[:3])
    before = scorer.log.count()  # the session's home may hold other tests' decisions
    logged = scorer.score_one(a)
    changed_a = scorer.validate({**recs[0], "amount": recs[0]["amount"] + 1})
    changed_b = scorer.validate({**recs[1], "amount": recs[1]["amount"] + 1})
    out = scorer.score_many([a, b, changed_a, b, changed_b, c])
    assert out[0].replayed and out[0].risk == logged.risk  # logged before: the logged answer
    assert isinstance(out[2], ClaimConflict)  # logged before with other content
    assert out[3] == out[1] and not out[1].replayed  # twice in the batch: one answer
    assert isinstance(out[4], ClaimConflict)  # twice in the batch with other content
    assert out[5].claim_id == c.claim_id
    assert scorer.log.count() - before == 3  # a, b, c


def test_a_history_claim_with_other_content_is_a_conflict(fresh, trained) -> None:
    """The graph holds the training history: resubmitting one of those ids with other content
    is the client's conflict (409), not a server error."""
    scorer, _ = fresh("h")
    _, history, _ = trained
    rec = history.iloc[10].to_dict()
    old = scorer.validate(rec)
    other = scorer.validate({**rec, "amount": rec["amount"] + 7})
    fine, conflict = scorer.score_many([old, other])
    assert not isinstance(fine, ClaimConflict) or fine.claim_id == rec["claim_id"]
    with pytest.raises(ClaimConflict):
        scorer.score_one(other)
    assert isinstance(conflict, ClaimConflict)


def test_a_row_logged_by_another_worker_meanwhile_is_kept(fresh) -> None:
    scorer, new = fresh("w")
    rec = new.iloc[400].to_dict()
    first = scorer.score_one(rec)
    row = scorer.log.get(rec["claim_id"])
    other = DecisionLog(scorer.log.engine)
    fresh = {**row, "claim_id": "NEW-ROW"}
    already = other.append_new([fresh, row])  # the second row exists: written one by one
    assert set(already) == {rec["claim_id"]} and already[rec["claim_id"]]["risk"] == first.risk
    assert other.get("NEW-ROW") is not None


def test_batcher_groups_concurrent_requests(fresh) -> None:
    scorer, new = fresh("b")
    claims = [scorer.validate(r) for r in new.iloc[500:560].to_dict("records")]
    sizes: list[int] = []
    busy: list[float] = []
    before = scorer.log.count()  # the session's home may hold other tests' decisions
    batcher = MicroBatcher(lambda: scorer, max_batch=16, observe=sizes.append, busy=busy.append)

    async def main():
        return await asyncio.gather(
            *(batcher.score(c) for c in claims), batcher.score(claims[0]), return_exceptions=True
        )

    start = time.perf_counter()
    results = asyncio.run(main())
    elapsed = time.perf_counter() - start
    assert len(busy) == len(sizes) and all(s > 0 for s in busy) and sum(busy) <= elapsed
    assert [r.claim_id for r in results[:-1]] == [c.claim_id for c in claims]
    assert results[-1].as_dict() == results[0].as_dict()  # the same claim twice: the same answer
    assert sum(sizes) == len(claims) + 1 and max(sizes) == 16 and len(sizes) == 4
    assert scorer.log.count() - before == len(claims)


def test_batcher_passes_conflicts_and_failures_to_each_caller(fresh) -> None:
    scorer, new = fresh("f")
    rec = new.iloc[600].to_dict()
    claim = scorer.validate(rec)
    scorer.score_one(claim)
    changed = scorer.validate({**rec, "amount": rec["amount"] + 1})
    batcher = MicroBatcher(lambda: scorer)

    async def one(c):
        return await batcher.score(c)

    with pytest.raises(ClaimConflict):
        asyncio.run(one(changed))

    class Broken:
        def score_many(self, claims, source):
            raise RuntimeError("database down")

    busy: list[float] = []
    broken = MicroBatcher(lambda: Broken(), busy=busy.append)  # type: ignore[arg-type, return-value]

    async def two():
        return await asyncio.gather(broken.score(claim), broken.score(claim), return_exceptions=True)

    assert [type(r) for r in asyncio.run(two())] == [RuntimeError, RuntimeError]
    assert len(busy) == 1  # a failed batch's time counts too
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        MicroBatcher(lambda: scorer, max_batch=0)


def _transactions(engine):
    """Record, per committed transaction, the tables it inserted into (a list of sets).

    Read from SQLite's own trace of what each pooled connection runs (the implicit BEGIN and
    the COMMIT included), so statements sent on the driver's cursor are seen as well.
    """
    from sqlalchemy import event

    done: list[set[str]] = []
    open_: dict[int, set[str]] = {}
    traced = []

    def tracer(key: int):
        def trace(statement: str) -> None:
            words = statement.split()
            head = words[0].upper() if words else ""
            if head == "INSERT" and len(words) > 2 and words[1].upper() == "INTO":
                open_.setdefault(key, set()).add(words[2].strip('"'))
            elif head in ("COMMIT", "END"):
                done.append(open_.pop(key, set()))
            elif head == "ROLLBACK" and (len(words) == 1 or words[1].upper() != "TO"):
                open_.pop(key, None)

        return trace

    def on_checkout(dbapi_conn, _record, _proxy) -> None:
        dbapi_conn.set_trace_callback(tracer(id(dbapi_conn)))
        traced.append(dbapi_conn)

    def stop() -> None:
        event.remove(engine, "checkout", on_checkout)
        for c in traced:
            c.set_trace_callback(None)

    event.listen(engine, "checkout", on_checkout)
    return done, stop


def test_a_batch_logs_and_opens_its_cases_in_one_transaction(fresh) -> None:
    """On SQLite the graph's rows commit in that transaction too: one commit a batch."""
    scorer, new = fresh("t")
    claims = [scorer.validate(r) for r in new.iloc[:200].to_dict("records")]
    done, stop = _transactions(scorer.log.engine)
    try:
        results = scorer.score_many(claims)
    finally:
        stop()
    flagged = [r for r in results if r.decision == "review"]
    assert flagged and all(r.case_id for r in flagged)
    writes = [t for t in done if t]
    assert len(writes) == 1 and {"cases", "case_events", "decision_log", "graph_claims"} <= writes[0]
    for r in flagged:  # the logged row names the case the answer names
        assert scorer.log.get(r.claim_id)["case_id"] == r.case_id
        assert scorer.sink.by_claim(r.claim_id).id == r.case_id


def test_batches_share_one_held_connection_on_sqlite(fresh) -> None:
    """The retry look-up reads on the batch's own connection, before its first write, and on
    SQLite the graph holds that connection from one batch to the next: after the first batch,
    none takes a connection from the pool (each checkout cost about 4 % of a 10-claim batch's
    CPU, and handing the connection back and taking it again 5-7 % of a 1-2 claim batch's)."""
    from sqlalchemy import event

    scorer, new = fresh("c")
    claims = [scorer.validate(r) for r in new.iloc[:30].to_dict("records")]
    scorer.score_many(claims[20:])
    checkouts: list[int] = []
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    event.listen(scorer.log.engine, "checkout", listener)
    try:
        results = scorer.score_many(claims[:20])
        again = scorer.score_many(claims[:5])  # retries only: answered from the log
    finally:
        event.remove(scorer.log.engine, "checkout", listener)
    assert checkouts == []
    assert all(a.replayed and a.risk == r.risk for a, r in zip(again, results[:5], strict=True))


def test_a_claim_logged_by_another_worker_during_a_batch_gets_the_logged_answer(fresh, monkeypatch) -> None:
    """Another worker logs a claim after this batch looked (the shared transaction then fails
    on it): nothing of the batch is half written, the batch is written apart, and that claim
    gets the logged answer and keeps its one case."""
    scorer, new = fresh("r")
    recs = new.iloc[:200].to_dict("records")
    claims = [scorer.validate(r) for r in recs]
    first = scorer.score_many(claims[:100])
    k = next(i for i, r in enumerate(first) if r.decision == "review")
    n_cases, n_logged = scorer.sink.count(), scorer.log.count()
    monkeypatch.setattr(scorer.log, "existing", lambda ids, conn=None: {})  # the check sees nothing yet
    again = scorer.score_many([claims[k], *claims[100:]])
    assert again[0].replayed and again[0].risk == first[k].risk and again[0].case_id == first[k].case_id
    fresh_flagged = [r for r in again[1:] if r.decision == "review"]
    assert not any(r.replayed for r in again[1:]) and all(r.case_id for r in fresh_flagged)
    assert scorer.log.count() - n_logged == 100
    assert scorer.sink.count() - n_cases == len(fresh_flagged)


def test_a_batch_that_fails_after_the_graph_leaves_nothing_behind(fresh, monkeypatch) -> None:
    """The graph's rows share the batch's transaction: a failure in the log write rolls them
    back too, the graph's index is reloaded to match, and the batch can be sent again."""
    from sqlalchemy import text

    scorer, new = fresh("f")
    claims = [scorer.validate(r) for r in new.iloc[:40].to_dict("records")]

    def count() -> int:
        with scorer.log.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM graph_claims")).scalar_one())

    before, n_logged = count(), scorer.log.count()
    real = scorer.log.write

    def broken(conn, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(scorer.log, "write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        scorer.score_many(claims)
    assert count() == before and scorer.log.count() == n_logged
    assert all(scorer.graph.entity_of(c.claim_id) is None for c in claims)
    monkeypatch.setattr(scorer.log, "write", real)
    results = scorer.score_many(claims)
    assert not any(r.replayed for r in results)
    assert count() == before + 40 and scorer.log.count() == n_logged + 40


def test_a_claim_logged_meanwhile_as_clear_gets_no_case_even_if_flagged_now(fresh, monkeypatch) -> None:
    """Another worker logs claims after this batch's retry look-up (here: as clear, and one with
    other content). The batch's shared write fails on them and is written apart: they get the
    logged answer, or a conflict, and no case of their own, even when this worker flags them."""
    probe, new = fresh("gp")
    recs = new.iloc[:120].to_dict("records")
    flagged = [r for r, res in zip(recs, probe.score_many([probe.validate(r) for r in recs]), strict=True)
               if res.decision == "review"]
    assert len(flagged) >= 2
    scorer, _ = fresh("g")
    same, changed = (scorer.validate(r) for r in flagged[:2])
    template = {**probe.log.get(same.claim_id), "decision": "clear", "priority": 3, "case_id": None,
                "reasons": [], "explanation": None}
    scorer.log.append([
        {**template, "claim_id": same.claim_id, "content_hash": scorer.content_hash(same)},
        {**template, "claim_id": changed.claim_id, "content_hash": "0" * 64},
    ])
    real = scorer.log.existing
    calls: list[int] = []

    def before_the_other_worker(ids, conn=None):  # the look-up ran before those rows came
        calls.append(1)
        return {} if len(calls) == 1 else real(ids, conn)

    monkeypatch.setattr(scorer.log, "existing", before_the_other_worker)
    other = scorer.validate(recs[-1])
    n_cases, n_logged = scorer.sink.count(), scorer.log.count()
    out = scorer.score_many([same, changed, other])
    assert len(calls) >= 2  # the look-up, then the written-apart path's
    assert out[0].replayed and out[0].decision == "clear" and out[0].case_id is None
    assert isinstance(out[1], ClaimConflict)
    assert not out[2].replayed and scorer.log.get(other.claim_id) is not None
    assert scorer.sink.by_claim(same.claim_id) is None and scorer.sink.by_claim(changed.claim_id) is None
    assert scorer.log.count() - n_logged == 1
    assert scorer.sink.count() - n_cases == (1 if out[2].decision == "review" else 0)
