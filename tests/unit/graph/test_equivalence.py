"""Batch and incremental paths agree on synthetic claims: hashes, entities, features, rings.

A chunked build into a SQLite file nobody else has open skips the write-ahead log (at the end).
"""

import logging
import sqlite3
from contextlib import closing

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from fraudlens.spec import Claim
from fraudlens.synth import generate
from graph import GRAPH_FEATURES, IdentityGraph, identity, store
from graph import index as graph_index
from graph.identity import ClaimConflictError
from graph.index import GraphIndex
from graph.resolution import block_keys

KEY = b"equivalence-key-equivalence-key!"
COLUMNS = {
    "national_id": "national_id",
    "full_name": "name",
    "date_of_birth": "dob",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "bank_account": "bank_account",
    "device_id": "device_id",
    "ip": "ip",
}


def _claim(r, columns=COLUMNS):
    values = {c: (None if r[c] is None or r[c] != r[c] else str(r[c])) for c in columns}
    return Claim(
        r["claim_id"],
        r["submitted_at"].to_pydatetime(),
        r["program"],
        float(r["amount"]),
        values,
        {},
        {},
    )


def _rows(graph, table):
    """A stored table's rows, sorted, without the sequence number of the write."""
    with graph.engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM {table}")
        keep = [i for i, c in enumerate(result.keys()) if c != "seq"]
        return sorted(tuple(r[i] for i in keep) for r in result)


def test_batch_and_incremental_agree_on_synthetic_claims():
    X = generate(1500, seed=5)
    batch = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    F = batch.build(X)
    inc = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    hashed = batch.hash_frame(X)
    ordered = X.sort_values(["submitted_at", "claim_id"], kind="stable").to_dict("records")
    for r, h in zip(ordered, hashed, strict=True):
        assert inc.hash_claim(_claim(r)) == h  # vectorised and scalar hashing agree
        f = inc.add(_claim(r))
        assert np.array_equal(
            np.array([f[n] for n in GRAPH_FEATURES]), F.loc[r["claim_id"]].to_numpy()
        )
    assert [inc.entity_of(c) for c in X["claim_id"]] == [batch.entity_of(c) for c in X["claim_id"]]
    assert inc.version == batch.version
    assert inc.rings(100) == batch.rings(100)
    assert len(batch.index.entities) < len(X)  # repeat claimants were resolved to one entity


def test_two_columns_of_one_kind_agree_batch_and_incremental():
    """A spec with two columns of one kind (a second phone, some of them another applicant's)
    takes the general path for keys by kind and blocking keys; the usual one-column-per-kind
    layout takes the short path, with the same keys."""
    X = generate(900, seed=19)
    rng = np.random.default_rng(3)
    second = X["phone"].sample(frac=1, random_state=1).to_numpy()
    X["phone_2"] = np.where(rng.random(len(X)) < 0.3, second, None)
    columns = {**COLUMNS, "phone_2": "phone"}
    batch = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, columns)
    F = batch.build(X)
    assert batch.index._single_slots is None and batch.index._block_slots is None
    inc = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, columns)
    ordered = X.sort_values(["submitted_at", "claim_id"], kind="stable").to_dict("records")
    for r in ordered:
        f = inc.add(_claim(r, columns))
        assert np.array_equal(
            np.array([f[n] for n in GRAPH_FEATURES]), F.loc[r["claim_id"]].to_numpy()
        )
    assert [inc.entity_of(c) for c in X["claim_id"]] == [batch.entity_of(c) for c in X["claim_id"]]
    assert F["phone_entities_90d"].max() > 0  # the second phones link applicants
    usual = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    assert usual.index._single_slots is not None
    index = usual.index
    hashed = usual.hash_frame(X)
    short = [index.keys_by_kind(x.keys) for x in hashed]
    short_blocks = [index._block_keys(x.keys, k) for x, k in zip(hashed, short, strict=True)]
    index._single_slots = index._block_slots = None  # the general paths, same index
    assert [index.keys_by_kind(x.keys) for x in hashed] == short
    assert [block_keys(k) for k in short] == short_blocks
    assert any(short_blocks)


def test_the_short_paths_of_one_column_per_kind_give_the_general_paths_features(monkeypatch):
    """The usual layout's short paths (keys by kind, blocking keys and the keys other entities
    share, all from the slots) give the features and entities of the general paths."""
    X = generate(3000, seed=23)
    short = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    F1 = short.build(X)
    init = GraphIndex.__init__

    def general(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._single_slots = self._block_slots = None

    monkeypatch.setattr(GraphIndex, "__init__", general)
    slow = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    assert slow.index._single_slots is None
    F2 = slow.build(X)
    assert np.array_equal(F1.to_numpy(), F2.to_numpy())
    assert (F1["group_size"] > 1).any()  # groups were formed through shared values
    assert [short.entity_of(c) for c in X["claim_id"]] == [slow.entity_of(c) for c in X["claim_id"]]


@pytest.mark.parametrize("where", ["file", "memory"])
def test_chunked_build_equals_one_chunk(monkeypatch, tmp_path, where):
    """A build of several chunks (each after the first hashed in a helper process, each written
    in bulk: by the helper into a SQLite file, else by the build itself) gives the features,
    entities and stored state of a one-chunk build."""
    X = generate(1200, seed=11)
    one = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    F1 = one.build(X)
    monkeypatch.setattr(identity, "BUILD_CHUNK", 250)
    hashed, written = [], []
    send = identity.BuildHelper.send

    def counted(self, part, rows=None, *, commit=False):
        hashed.append(None if part is None else len(part))
        written.append(None if rows is None else len(rows.claims.seq))
        return send(self, part, rows, commit=commit)

    monkeypatch.setattr(identity.BuildHelper, "send", counted)
    url = f"sqlite:///{tmp_path / 'chunked.db'}" if where == "file" else "sqlite://"
    engine = sa.create_engine(url)
    chunked = IdentityGraph.open(engine, KEY, COLUMNS)
    F2 = chunked.build(X)
    assert np.array_equal(F1.to_numpy(), F2.to_numpy())
    assert [one.entity_of(c) for c in X["claim_id"]] == [
        chunked.entity_of(c) for c in X["claim_id"]
    ]
    # the first chunk's worth in doubling sizes, the last chunk's in halves
    sizes = [15, 16, 31, 63, 125, 250, 250, 200, 125, 63, 31, 16, 15]
    assert identity.build_chunks(len(X), 250, 250 // 16) == sizes
    assert hashed == [*sizes[1:], None] + ([None] if where == "file" else [])
    if where == "file":
        # the helper wrote every chunk, the growing ones' together after them, and the last
        # with the commit
        assert written == [None, None, None, None, None, sum(sizes[:5]), *sizes[5:]]
    else:
        assert written == [None] * len(sizes)
    assert chunked._sketcher.names == one._sketcher.names
    assert chunked._sketcher.variants == one._sketcher.variants
    for table in ("graph_claims", "graph_names", "graph_tokens", "graph_entities"):
        assert _rows(chunked, table) == _rows(one, table), table
    reopened = IdentityGraph.open(engine, KEY)  # replayed from the stored rows
    assert reopened.version == chunked.version == one.version
    assert np.array_equal(reopened.build(X).to_numpy(), F1.to_numpy())
    assert reopened.rings(100) == one.rings(100)


def test_chunked_build_over_known_and_repeated_claims(monkeypatch, tmp_path):
    """A chunked build of a shuffled frame that holds claims the graph has already and a claim
    twice gives the features and stored rows of one-chunk builds: the claim rows a chunk writes
    are made from its columns, with the known and repeated claims left out."""
    X = generate(1200, seed=17).sample(frac=1.0, random_state=3)
    again = X.iloc[[5]]
    later = pd.concat([X.iloc[400:], again])  # 200 known claims, and one claim twice
    one = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    F1 = [one.build(X.iloc[:600]), one.build(later)]
    monkeypatch.setattr(identity, "BUILD_CHUNK", 250)
    chunked = IdentityGraph.open(sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}"), KEY, COLUMNS)
    F2 = [chunked.build(X.iloc[:600]), chunked.build(later)]
    for a, b in zip(F1, F2, strict=True):
        assert a.index.equals(b.index)  # the input's order
        assert np.array_equal(a.to_numpy(), b.to_numpy())
    assert list(F2[1].index) == [str(c) for c in later["claim_id"]]
    assert np.array_equal(F2[1].iloc[-1].to_numpy(), F2[0].loc[str(again["claim_id"].iloc[0])])
    for table in ("graph_claims", "graph_entities", "graph_names", "graph_tokens"):
        assert _rows(chunked, table) == _rows(one, table), table


def test_failed_helper_leaves_the_graph_as_it_was(monkeypatch, tmp_path):
    """When the helper fails on a chunk, the build raises, nothing is stored and the index is
    the store's again: a second build gives a one-chunk build's features."""
    X = generate(900, seed=13)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'failed.db'}")
    g = IdentityGraph.open(engine, KEY, COLUMNS)
    g.build(X.iloc[:100])
    before = g.version
    monkeypatch.setattr(identity, "BUILD_CHUNK", 300)
    send = identity.BuildHelper.send
    failed = []

    def broken(self, part, rows=None, *, commit=False):
        if rows is not None and not failed:  # the first rows written, the next chunk unhashable
            failed.append(len(rows.claims.seq))
            part = part.drop(columns=["email"])
        return send(self, part, rows, commit=commit)

    monkeypatch.setattr(identity.BuildHelper, "send", broken)
    with pytest.raises(RuntimeError, match="helper process failed: KeyError"):
        g.build(X.iloc[100:])
    assert failed == [sum(identity.build_chunks(800, 300, 300 // 16)[:5])]  # the growing chunks'
    assert g.version == before and g.entity_of(X["claim_id"].iloc[150]) is None
    with engine.connect() as conn:  # what the helper wrote was rolled back
        assert conn.exec_driver_sql("SELECT count(*) FROM graph_claims").scalar() == 100
    monkeypatch.setattr(identity.BuildHelper, "send", send)
    F = g.build(X.iloc[100:])
    one = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    one.build(X.iloc[:100])
    monkeypatch.setattr(identity, "BUILD_CHUNK", 10_000)
    assert np.array_equal(F.to_numpy(), one.build(X.iloc[100:]).to_numpy())


def test_build_failing_between_requests_leaves_the_file_as_it_was(monkeypatch, tmp_path):
    """A build that fails in its own process while the helper waits for the next request (the
    helper then sees its input close, with rows written and not committed): the helper rolls
    them back before it lets the file go, and the file is whole, in the write-ahead log, with
    the claims it had."""
    X = generate(900, seed=19)
    path = tmp_path / "stopped.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    g = IdentityGraph.open(engine, KEY, COLUMNS)
    g.build(X.iloc[:100])
    monkeypatch.setattr(identity, "BUILD_CHUNK", 300)
    concat = store.concat_rows
    calls = []

    def stop_second(parts):
        calls.append(len(parts))
        if len(calls) == 2:  # the growing chunks' rows were written; nothing committed
            raise OSError("the build stops here")
        return concat(parts)

    monkeypatch.setattr(store, "concat_rows", stop_second)
    with pytest.raises(OSError, match="the build stops here"):
        g.build(X.iloc[100:])
    assert calls == [5, 1]
    with closing(sqlite3.connect(path)) as raw:  # another process's view of the file
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT count(*) FROM graph_claims").fetchone() == (100,)
    assert not (tmp_path / "stopped.db-journal").exists()
    monkeypatch.setattr(store, "concat_rows", concat)
    F = g.build(X.iloc[100:])
    one = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    one.build(X.iloc[:100])
    assert np.array_equal(F.to_numpy(), one.build(X.iloc[100:]).to_numpy())


def test_micro_batches_equal_the_batch_build():
    """``add_many`` on shuffled micro-batches (the API's path) gives the batch build's features;
    a repeated claim is added once, and a conflicting one is refused alone."""
    X = generate(1200, seed=11)
    batch = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    F = batch.build(X)
    online = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    ordered = X.sort_values(["submitted_at", "claim_id"], kind="stable").to_dict("records")
    rng = np.random.default_rng(0)
    start = 0
    while start < len(ordered):
        size = int(rng.integers(1, 24))
        group = [_claim(r) for r in ordered[start : start + size]]
        rng.shuffle(group)  # arrival order inside a micro-batch is not event-time order
        got = online.add_many([*group, group[0]])
        assert got[-1] == got[0]  # the same claim twice: one answer
        for c, f in zip(group, got, strict=False):
            assert np.array_equal(
                np.array([f[n] for n in GRAPH_FEATURES]), F.loc[c.claim_id].to_numpy()
            )
        start += size
    assert online.version == batch.version
    assert [online.entity_of(c) for c in X["claim_id"]] == [
        batch.entity_of(c) for c in X["claim_id"]
    ]
    first = _claim(ordered[0])
    changed = Claim(
        first.claim_id,
        first.timestamp,
        first.program,
        first.amount + 1.0,
        dict(first.identity),
        {},
        {},
    )
    fresh = _claim({**ordered[1], "claim_id": "NEW-1"})
    conflict, ok = online.add_many([changed, fresh])
    assert isinstance(conflict, ClaimConflictError)
    assert isinstance(ok, dict) and online.entity_of("NEW-1") is not None


ROLLBACK = "written with the rollback journal"


def _journal_mode(path):
    with closing(sqlite3.connect(path)) as conn:  # closed: an open one keeps the log in use
        return conn.execute("PRAGMA journal_mode").fetchone()[0]


def _beside(path, suffix):
    return path.with_name(path.name + suffix)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(identity, "BUILD_CHUNK", 300)


@pytest.fixture
def one_chunk_features():
    X = generate(3000, seed=23)
    one = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    return X, one.build(X).to_numpy()


def _locked(path):
    """Whether another connection is kept from reading ``path`` (it does not wait)."""
    with closing(sqlite3.connect(path, timeout=0)) as conn:
        try:
            conn.execute("SELECT count(*) FROM graph_meta").fetchone()
        except sqlite3.OperationalError:  # database is locked
            return True
    return False


def _files_while_writing(monkeypatch, path, fail_at=None):
    """Patch the helper's requests: before each one that carries rows, note which journal
    files lie beside ``path`` (from the second on, the helper has written rows) and whether
    another connection can read it; at the ``fail_at``-th, send a chunk the helper cannot
    hash."""
    seen, send = [], identity.BuildHelper.send

    def noting(self, part, rows=None, *, commit=False):
        if rows is not None:
            files = {s for s in ("-journal", "-wal") if _beside(path, s).exists()}
            seen.append((files, _locked(path)))
        if fail_at is not None and len(seen) == fail_at:
            part = part.drop(columns=["phone"])
        return send(self, part, rows, commit=commit)

    monkeypatch.setattr(identity.BuildHelper, "send", noting)
    return seen


def test_build_into_a_file_nobody_has_open_skips_the_log(
    small_chunks, one_chunk_features, monkeypatch, tmp_path, caplog
):
    """The helper writes the pages once, straight into the file, under the rollback journal
    (no write-ahead log while it writes); the file is in write-ahead log mode again after the
    commit, and the graph reopened from it is the same."""
    X, F1 = one_chunk_features
    path = tmp_path / "bulk.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    g = IdentityGraph.open(engine, KEY, COLUMNS)
    assert _journal_mode(path) == "wal"
    seen = _files_while_writing(monkeypatch, path)
    with caplog.at_level(logging.INFO, logger="graph.identity"):
        F2 = g.build(X).to_numpy()
    assert ROLLBACK in caplog.text
    assert len(seen) >= 3 and all(files == {"-journal"} for files, _ in seen[1:])
    assert all(locked for _, locked in seen)  # held alone from the start: no reader holds it up
    assert np.array_equal(F1, F2)
    assert _journal_mode(path) == "wal"
    reopened = IdentityGraph.open(engine, KEY)
    assert reopened.version == g.version
    assert np.array_equal(reopened.build(X).to_numpy(), F1)  # every claim known, as stored


def test_build_beside_another_open_connection_keeps_the_log(
    small_chunks, one_chunk_features, monkeypatch, tmp_path, caplog
):
    """A file another connection has open (a server's, say) keeps its write-ahead log, so
    that connection can read while the build writes; nothing waits for it."""
    X, F1 = one_chunk_features
    path = tmp_path / "shared.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    g = IdentityGraph.open(engine, KEY, COLUMNS)
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT count(*) FROM graph_claims").fetchone() == (0,)
        seen = _files_while_writing(monkeypatch, path)
        with caplog.at_level(logging.INFO, logger="graph.identity"):
            F2 = g.build(X).to_numpy()
        assert ROLLBACK not in caplog.text
        assert len(seen) >= 3 and all(entry == ({"-wal"}, False) for entry in seen)
        assert np.array_equal(F1, F2)
        assert reader.execute("SELECT count(*) FROM graph_claims").fetchone() == (len(X),)
    finally:
        reader.close()
    assert _journal_mode(path) == "wal"


def test_failed_build_without_the_log_rolls_back_and_restores_it(
    small_chunks, monkeypatch, tmp_path
):
    """A helper that fails while writing with the rollback journal leaves the file as it was
    before the build, in write-ahead log mode."""
    X = generate(1000, seed=29)
    path = tmp_path / "failed.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    g = IdentityGraph.open(engine, KEY, COLUMNS)
    g.build(X.iloc[:100])
    seen = _files_while_writing(monkeypatch, path, fail_at=2)
    with pytest.raises(RuntimeError, match="helper process failed: KeyError"):
        g.build(X.iloc[100:])
    assert seen == [(set(), True), ({"-journal"}, True)]  # a chunk written, rollback journal
    assert _journal_mode(path) == "wal"
    assert not _beside(path, "-journal").exists()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM graph_claims").fetchone() == (100,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_stored_features_grow_a_block_at_a_time_and_are_never_copied(monkeypatch, tmp_path):
    """The stored features grow by blocks (4 rows here, 65,536 in use): rows on both sides of
    each block's end keep the features their claims were given, whether built, added one by one
    or read back from the store, and a block once made stays the same array."""
    X = generate(300, seed=7)
    F = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS).build(X)
    monkeypatch.setattr(graph_index, "_BLOCK_BITS", 2)
    monkeypatch.setattr(graph_index, "_BLOCK", 4)
    monkeypatch.setattr(graph_index, "_IN_BLOCK", 3)
    built = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS).build(X)
    pd.testing.assert_frame_equal(built, F)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    inc = IdentityGraph.open(engine, KEY, COLUMNS)
    ordered = X.sort_values(["submitted_at", "claim_id"], kind="stable").to_dict("records")
    inc.add(_claim(ordered[0]))
    first_block = inc.index._blocks[0]
    for r in ordered[1:]:
        inc.add(_claim(r))
    assert inc.index._blocks[0] is first_block and len(inc.index._blocks) == 75
    ids = [r["claim_id"] for r in ordered]
    expected = F.loc[ids].to_numpy()
    index = inc.index
    assert np.array_equal(np.stack([index.claim_features(c) for c in ids]), expected)
    assert np.array_equal(index.feature_range(3, 13), expected[3:13])
    shuffled = np.random.default_rng(1).permutation(len(ids))
    assert np.array_equal(index.feature_rows(shuffled), expected[shuffled])
    again = IdentityGraph.open(engine, KEY, COLUMNS)  # replayed from the store
    assert np.array_equal(np.stack([again.index.claim_features(c) for c in ids]), expected)
