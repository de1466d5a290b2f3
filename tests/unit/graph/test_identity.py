"""The identity graph: resolution, history, batch == incremental, idempotency, persistence."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from fraudlens.spec import Claim
from graph import GRAPH_FEATURES, AllowList, ClaimConflictError, IdentityGraph, KeyMismatchError

KEY = b"unit-test-key-unit-test-key-0123"
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
T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)


def row(
    cid,
    day,
    name,
    dob,
    address,
    bank,
    *,
    nid=None,
    phone=None,
    email=None,
    device=None,
    ip=None,
    program="housing",
    amount=100.0,
):
    return {
        "claim_id": cid,
        "submitted_at": T0 + timedelta(days=day),
        "program": program,
        "amount": amount,
        "national_id": nid,
        "full_name": name,
        "date_of_birth": dob,
        "phone": phone,
        "email": email,
        "address": address,
        "bank_account": bank,
        "device_id": device,
        "ip": ip,
    }


def fixture_rows():
    """Hand-made claims: one person with typos, a merge, a ring, a family, a care home."""
    rows = [
        # Ana: three claims, formatting and a typo differ, same national id on two
        row(
            "a1",
            0,
            "Ana Lopez",
            "1980-03-04",
            "12 North Main Street, Apt 4",
            "111-222",
            nid="123-45-6789",
            phone="(415) 555-0101",
            program="housing",
            amount=500.0,
        ),
        row(
            "a2",
            10,
            "LOPEZ, Ana",
            "03/04/1980",
            "12 N Main St #4",
            "111222",
            phone="415.555.0101",
            program="unemployment",
            amount=300.0,
        ),
        row(
            "a3",
            40,
            "Anna Lopez",
            "1980-03-04",
            "12 n main st unit 4",
            "111222",
            nid="123456789",
            amount=200.0,
        ),
        # Bo: two records that look like two people until a third links them
        row("b1", 1, "Bo Chen", "1975-07-07", "9 Elm Road", "B-1", email="bo@x.org"),
        row("b2", 2, "Bo Chen", "1975-07-07", "77 Oak Avenue", "B-2", nid="234-56-7890"),
        row("b3", 30, "Bo Chen", "1975-07-07", "9 Elm Rd", "B-2", nid="234567890"),
        # a ring: four invented people, four addresses, one bank account and one device
        *[
            row(
                f"r{i}",
                50 + 3 * i,
                f"Ringo Member{chr(65 + i)}",
                f"199{i}-01-0{i + 1}",
                f"{100 + i} Fake Street",
                "RING-ACCT",
                device="dev-ring",
                ip=f"198.51.100.{i + 1}",
                program="small_business_grant",
                amount=2500.0,
            )
            for i in range(4)
        ],
        # a family: three adults at one address sharing one account and one phone
        *[
            row(
                f"f{i}",
                60 + i,
                f"{first} Okafor",
                f"19{70 + i}-05-05",
                "5 Family Close",
                "FAM-ACCT",
                phone="(415) 555-0199",
            )
            for i, first in enumerate(["Ada", "Obi", "Ngozi"])
        ],
        # a care home (allow-listed): six residents, one address, the home's tablet
        *[
            row(
                f"c{i}",
                70 + i,
                f"Resident Number{chr(65 + i)}",
                f"193{i}-02-02",
                "1 Care Home Lane",
                f"CH-{i}",
                device="carehome-tablet",
            )
            for i in range(6)
        ],
    ]
    return rows


def frame(rows):
    X = pd.DataFrame(rows)
    X["submitted_at"] = pd.to_datetime(X["submitted_at"], utc=True)
    return X


def claim(r):
    identity = {c: r[c] for c in COLUMNS}
    return Claim(r["claim_id"], r["submitted_at"], r["program"], r["amount"], identity, {}, {})


ALLOW = AllowList(values={"address": ["1 Care Home Lane"], "device_id": ["carehome-tablet"]})


def open_graph(url="sqlite://", key=KEY, **kw):
    engine = sa.create_engine(url)
    return IdentityGraph.open(engine, key, COLUMNS, allow_list=ALLOW, **kw)


@pytest.fixture()
def built():
    g = open_graph()
    F = g.build(frame(fixture_rows()))
    return g, F


def test_build_returns_features_per_claim(built):
    g, F = built
    assert list(F.columns) == GRAPH_FEATURES
    assert F.dtypes.unique().tolist() == [np.dtype("float64")]
    assert F.index.name == "claim_id" and list(F.index) == [r["claim_id"] for r in fixture_rows()]


def test_one_person_despite_formatting_and_typos(built):
    g, F = built
    assert g.entity_of("a1") == g.entity_of("a2") == g.entity_of("a3")
    assert F.loc["a1", "entity_claims_90d"] == 0
    assert F.loc["a2", "entity_claims_30d"] == 1 and F.loc["a2", "entity_amount_30d"] == 500.0
    # a3 is 40 days after a1 and 30 after a2: a1 is outside 30 days, both inside 90
    assert F.loc["a3", "entity_claims_30d"] == 1
    assert F.loc["a3", "entity_claims_90d"] == 2 and F.loc["a3", "entity_programs_90d"] == 2


def test_merge_keeps_the_older_id_and_aliases_resolve(built):
    g, _ = built
    assert g.entity_of("b1") == g.entity_of("b2") == g.entity_of("b3")
    old = g.index.resolve(g.index.claim_entity[g.index.claim_row["b1"]])
    assert g.entity_of("b1") == f"E{old:016x}"  # b1 created the surviving (older) entity
    assert any(g.index.resolve(a) == old for a in g.index.alias)


def test_ring_found_family_and_care_home_not(built):
    g, F = built
    rings = g.rings()
    assert len(rings) == 1
    ring = rings[0]
    assert ring["n_members"] == 4 and ring["pattern"] == "ring"
    assert set(ring["members"]) == {g.entity_of(f"r{i}") for i in range(4)}
    assert set(ring["shared_kinds"]) == {"bank_account", "device_id"}
    assert all(v["value"].split(":")[0] in ring["shared_kinds"] for v in ring["shared"])
    assert F.loc["r3", "in_ring"] == 1 and F.loc["r3", "group_size"] == 4
    assert F.loc["r3", "bank_account_entities"] == 4
    assert F.loc["f2", "in_ring"] == 0 and F.loc["f2", "bank_account_entities"] == 3
    assert F.loc["c5", "in_ring"] == 0 and F.loc["c5", "address_entities_90d"] == 0  # allow-listed


def test_batch_and_incremental_give_identical_features():
    rows = fixture_rows()
    batch = open_graph()
    F = batch.build(frame(rows))
    inc = open_graph()
    ordered = sorted(rows, key=lambda r: (r["submitted_at"], r["claim_id"]))
    for r in ordered:
        f = inc.add(claim(r))
        assert np.array_equal(
            np.array([f[n] for n in GRAPH_FEATURES]), F.loc[r["claim_id"]].to_numpy()
        )
    assert [inc.entity_of(r["claim_id"]) for r in rows] == [
        batch.entity_of(r["claim_id"]) for r in rows
    ]
    assert inc.version == batch.version
    assert inc.rings() == batch.rings()


def test_add_is_idempotent_and_refuses_changed_content(built):
    g, _ = built
    new = row("n1", 90, "Ringo MemberZ", "1999-09-09", "999 Fake Street", "RING-ACCT")
    first = g.add(claim(new))
    version = g.version
    assert g.add(claim(new)) == first
    assert g.version == version
    changed = dict(new, amount=999.0)
    with pytest.raises(
        ClaimConflictError, match="n1: expected the content it was first added with"
    ):
        g.add(claim(changed))


def test_features_lookup_writes_nothing_and_predicts_add(built):
    g, _ = built
    new = row("n2", 91, "Ringo MemberY", "1998-08-08", "998 Fake Street", "RING-ACCT")
    version = g.version
    predicted = g.features(claim(new))
    assert g.version == version and g.entity_of("n2") is None
    assert g.add(claim(new)) == predicted
    assert predicted["group_size"] == 5 and predicted["in_ring"] == 1


def test_point_in_time_later_claims_do_not_change_stored_features(built):
    g, F = built
    g.add(claim(row("a4", 45, "Ana Lopez", "1980-03-04", "12 North Main Street, Apt 4", "111-222")))
    assert g.features(claim(fixture_rows()[0])) == F.loc["a1"].to_dict()
    # a late claim (event time before a3) counts by event time, not by arrival
    late = g.add(claim(row("a0", -5, "Ana Lopez", "1980-03-04", "12 N Main St Apt 4", "111222")))
    assert late["entity_claims_90d"] == 0


def test_state_persists_and_a_second_process_sees_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    rows = fixture_rows()
    a = open_graph(url)
    F = a.build(frame(rows))
    b = open_graph(url)
    assert b.version == a.version
    for r in rows:
        assert b.entity_of(r["claim_id"]) == a.entity_of(r["claim_id"])
        assert b.features(claim(r)) == F.loc[r["claim_id"]].to_dict()
    # a claim added through one process is seen by the other before it adds its own
    fa = a.add(claim(row("x1", 95, "Ringo MemberQ", "1990-10-10", "1 Q St", "RING-ACCT")))
    fb = b.add(claim(row("x2", 96, "Ringo MemberR", "1990-11-11", "2 R St", "RING-ACCT")))
    assert fb["group_size"] == fa["group_size"] + 1
    assert a.sync() and a.version == b.version
    assert a.rings() == b.rings()


def test_loading_the_index_runs_no_collections_and_freezes_it(tmp_path, monkeypatch):
    """Opening a graph (and reloading it after a failed write) makes its in-memory index with
    garbage collection off, then freezes it, and leaves collection as it found it, on error too."""
    import gc

    url = f"sqlite:///{tmp_path / 'g.db'}"
    open_graph(url).build(frame(fixture_rows()))
    seen: list[bool] = []
    real_sync = IdentityGraph.sync

    def sync(self):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return real_sync(self)

    monkeypatch.setattr(IdentityGraph, "sync", sync)
    gc.unfreeze()
    try:
        assert gc.isenabled()
        g = open_graph(url)
        assert seen == [False] and gc.isenabled() and gc.get_freeze_count() > 0
        gc.unfreeze()
        g._reload()
        assert seen == [False, False] and gc.isenabled() and gc.get_freeze_count() > 0

        def failing(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("database gone")

        monkeypatch.setattr(IdentityGraph, "sync", failing)
        with pytest.raises(RuntimeError, match="database gone"):
            g._reload()
        assert gc.isenabled()
    finally:
        gc.unfreeze()  # a test process keeps nothing frozen


def test_wrong_key_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    open_graph(url).build(frame(fixture_rows()[:2]))
    with pytest.raises(KeyMismatchError, match="rebuild the graph after a key rotation"):
        open_graph(url, key=b"another-key-another-key-another-k")


def test_missing_columns_are_named():
    g = open_graph()
    with pytest.raises(ValueError, match=r"must have columns \['bank_account'\]"):
        g.build(frame(fixture_rows()).drop(columns=["bank_account"]))


def test_neighbourhood_masks_values_and_shows_the_ring(built):
    import json

    g, _ = built
    n = g.neighbourhood("r0")
    json.dumps(n)
    assert n["entity_id"] == g.entity_of("r0") and n["ring_id"] == g.rings()[0]["ring_id"]
    entities = [x for x in n["nodes"] if x["type"] == "entity"]
    assert len(entities) == 4 and all(x["in_ring"] for x in entities)
    kinds = {e["type"] for e in n["edges"]}
    assert {"shares_bank_account", "shares_device_id", "uses"} <= kinds
    assert sorted(c["claim_id"] for c in n["claims"]) == ["r0", "r1", "r2", "r3"]
    text = json.dumps(n)
    assert "RING" not in text and "Fake" not in text and "dev-ring" not in text
    assert g.neighbourhood("r0", max_nodes=2)["truncated"]
    with pytest.raises(KeyError, match="expected the id of a claim in the identity graph"):
        g.neighbourhood("nope")


def test_fraud_proximity_is_point_in_time(built):
    g, _ = built
    before = g.version
    as_of = T0 + timedelta(days=80)
    n = g.refresh_fraud_proximity([g.entity_of("r0")], as_of)
    assert n >= 4 and g.version != before
    early = row("p1", 79, "Ringo MemberP", "1991-01-01", "5 P St", "RING-ACCT")
    late = row("p2", 81, "Ringo MemberR", "1992-02-02", "6 P St", "RING-ACCT")
    assert g.add(claim(early))["fraud_proximity"] == 0.0
    f = g.add(claim(late))
    assert 0 < f["fraud_proximity"] <= 1 and f["fraud_proximity_age_days"] == pytest.approx(1.0)


def test_a_proximity_refresh_by_another_process_reaches_a_running_graph(tmp_path):
    """A server's graph sees the daily refresh another process made (the refresh command)
    from its next add on, without a restart and without new claims from elsewhere."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    serving = open_graph(url)
    serving.build(frame(fixture_rows()))
    refresher = open_graph(url)
    as_of = T0 + timedelta(days=80)
    refresher.refresh_fraud_proximity([refresher.entity_of("r0")], as_of)
    late = row("p3", 81, "Ringo MemberS", "1993-03-03", "7 P St", "RING-ACCT")
    f = serving.add(claim(late))
    assert 0 < f["fraud_proximity"] <= 1 and f["fraud_proximity_age_days"] == pytest.approx(1.0)
    assert serving.version.split("-p")[1] == refresher.version.split("-p")[1] == "1"
    later = row("p4", 82, "Ringo MemberT", "1994-04-04", "8 P St", "RING-ACCT")
    (g,) = serving.add_many([claim(later)])
    assert isinstance(g, dict) and 0 < g["fraud_proximity"] <= 1


def test_sqlite_writes_share_a_held_connection_and_a_failure_gives_it_back(tmp_path):
    """On SQLite, write transactions (add_many's, a Scorer's batches) run on one connection
    held between them; a transaction
    that fails gives it back (the index is reloaded from the store), and the next write takes
    a fresh one; a second thread writing meanwhile gets its own from the pool."""
    import threading

    url = f"sqlite:///{tmp_path / 'g.db'}"
    g = open_graph(url)
    rows = fixture_rows()
    g.add_many([claim(rows[0])])
    first = g._writer
    g.add_many([claim(rows[1])])
    assert first is not None and g._writer is first  # held from one write to the next
    version = g.version
    with pytest.raises(RuntimeError, match="boom"), g.writing() as conn:
        g.add_many([claim(rows[2])], conn)
        raise RuntimeError("boom")
    assert g._writer is None and first.closed and g.version == version  # rolled back, reloaded
    g.add_many([claim(rows[2])])
    assert g._writer is not None and g._writer is not first
    seen: list[object] = []
    with g.writing() as mine:  # this thread holds it; another thread writes meanwhile
        worker = threading.Thread(target=lambda: seen.append(g.add_many([claim(rows[3])])))
        worker.start()
        assert mine is g._writer
    worker.join(timeout=30)
    assert seen and g.n_claims == 4 and open_graph(url).version == g.version
    held = g._writer
    g._release_writer()  # before a build's helper opens the file alone
    assert g._writer is None and held is not None and held.closed


def as_claim(r):
    """A claim from a row of fraudlens.synth.generate."""
    identity = {c: (None if r[c] != r[c] else str(r[c])) for c in COLUMNS}
    ts = r["submitted_at"].to_pydatetime()
    return Claim(r["claim_id"], ts, r["program"], float(r["amount"]), identity, {}, {})


def test_two_writers_of_one_sqlite_file_take_turns_and_agree(tmp_path):
    """Two graphs on one SQLite file (a server and a batch job, each its own process) adding
    claims at the same time: each waits for the other's commit and loads its rows before it
    writes, so every claim lands once and both end with the same state. Without the writers'
    lock file a writer planned on state read before the other's commit."""
    import threading

    from fraudlens.database import make_engine
    from fraudlens.synth import generate

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    X = generate(700, seed=5)
    rest = X.iloc[400:].to_dict("records")
    a = IdentityGraph.open(make_engine(url), KEY, COLUMNS)
    a.build(X.iloc[:400])
    b = IdentityGraph.open(make_engine(url), KEY, COLUMNS)

    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(g, rows, size):
        try:
            start.wait()
            for i in range(0, len(rows), size):
                with g.writing() as conn:
                    g.add_many([as_claim(r) for r in rows[i : i + size]], conn)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(a, rest[0::2], 3)),
        threading.Thread(target=work, args=(b, rest[1::2], 2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for g in (a, b):
        g.sync()
    assert a.version == b.version == f"g{len(X)}-p0"
    ids = [r["claim_id"] for r in rest]
    assert [a.entity_of(i) for i in ids] == [b.entity_of(i) for i in ids]
    assert [a.features(as_claim(r)) for r in rest] == [b.features(as_claim(r)) for r in rest]
    with a.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM graph_claims").scalar() == len(X)
    for g in (a, b):
        g.engine.dispose()


def test_the_sqlite_writers_lock_is_only_taken_where_it_is_given_back(tmp_path):
    """store.lock on a SQLite file outside store.transaction() (or IdentityGraph.writing())
    would hold the writers' lock file past the commit: refused, by name."""
    from graph import store

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.begin() as conn, pytest.raises(RuntimeError, match="store.transaction"):
        store.lock(conn)
    with store.transaction(engine) as conn:
        store.lock(conn)
        assert (tmp_path / "g.db-graph.lock").exists()
    # given back: another descriptor takes it at once
    import fcntl
    import os

    fd = os.open(tmp_path / "g.db-graph.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    engine.dispose()


@pytest.mark.parametrize("with_helper", [False, True], ids=["one process", "helper writes"])
def test_a_build_and_another_writer_of_one_sqlite_file_take_turns(tmp_path, monkeypatch, with_helper):
    """A build holds the writers' lock of a SQLite file from its first read of the state to its
    last commit, its helper process writing under it: a writer that comes in after that read
    waits for the build, then adds its claim on top. Before, it wrote in between and the build
    failed on graph_claims.seq."""
    import threading
    import time

    import graph.identity as identity_module
    from fraudlens.database import make_engine
    from fraudlens.synth import generate

    if with_helper:
        monkeypatch.setattr(identity_module, "BUILD_CHUNK", 200)  # a build of several chunks
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    X = generate(600, seed=5)
    a = IdentityGraph.open(make_engine(url), KEY, COLUMNS)
    a.build(X.iloc[:100])
    b = IdentityGraph.open(make_engine(url), KEY, COLUMNS)
    read_state = a.sync
    late = as_claim(X.iloc[100])
    added: list = []
    writers: list[threading.Thread] = []

    def read_then_another_writer_comes():
        changed = read_state()
        writer = threading.Thread(target=lambda: added.append(b.add(late)))
        writer.start()
        writers.append(writer)
        time.sleep(0.2)  # it would have committed by now, were the state not held
        return changed

    monkeypatch.setattr(a, "sync", read_then_another_writer_comes)
    F = a.build(X.iloc[101:])
    writers[0].join()
    monkeypatch.undo()
    assert len(added) == 1 and len(F) == len(X) - 101
    for g in (a, b):
        g.sync()
    assert a.version == b.version == f"g{len(X)}-p0"
    assert a.features(late) == b.features(late) == added[0]
    with a.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM graph_claims").scalar() == len(X)
    for g in (a, b):
        g.engine.dispose()


def test_the_writers_lock_survives_a_connection_the_pool_hands_out_again(tmp_path):
    """A transaction whose connection SQLAlchemy invalidated (a disconnect, an interrupt in a
    statement) goes back to the pool at once, and the next checkout clears its ``info``: the
    lock the transaction took is still given back when it ends."""
    import fcntl
    import os

    from fraudlens.database import make_engine
    from graph import store

    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    store.create_tables(engine)
    with pytest.raises(KeyboardInterrupt), store.transaction(engine) as conn:
        store.lock(conn)
        conn.invalidate()
        with engine.connect() as other:  # the same pooled record, its info cleared
            other.exec_driver_sql("SELECT 1")
        raise KeyboardInterrupt
    fd = os.open(tmp_path / "g.db-graph.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free
    finally:
        os.close(fd)
    with store.writers(engine), store.transaction(engine) as conn:
        store.lock(conn)  # the thread holding the lock takes it again (a build's transactions)
    engine.dispose()


def test_every_spelling_of_a_sqlite_files_path_shares_its_writers_lock(tmp_path):
    """A store opened through a symbolic link (or a relative path) takes the same lock file as
    through its real path: writers exclude each other however they name the file."""
    import fcntl
    import os

    from fraudlens.database import make_engine
    from graph import store

    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    real_engine = make_engine(f"sqlite:///{real}")
    store.create_tables(real_engine)
    link.symlink_to(real)
    link_engine = make_engine(f"sqlite:///{link}")
    with store.transaction(link_engine) as conn:
        store.lock(conn)
        assert (tmp_path / "real.db-graph.lock").exists()
        assert not (tmp_path / "link.db-graph.lock").exists()
        fd = os.open(tmp_path / "real.db-graph.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # held: another writer would wait
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    for engine in (real_engine, link_engine):
        engine.dispose()


def test_a_build_answers_each_claims_own_features_when_another_worker_wrote_first(tmp_path, monkeypatch):
    """On PostgreSQL a build reads the state, then its transaction takes the advisory lock and
    loads what another worker wrote meanwhile (here: SQLite with the build-long lock switched
    off, as PostgreSQL has none). Those rows come before the build's, so the answer looks each
    claim's row up: before, when the other worker had added one of the build's own claims, the
    rows were shifted by one and every claim got another's features."""
    import contextlib

    from fraudlens.database import make_engine
    from fraudlens.synth import generate
    from graph import store

    monkeypatch.setattr(store, "writers", lambda engine: contextlib.nullcontext())
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    X = generate(130, seed=5)
    a = IdentityGraph.open(make_engine(url), KEY, COLUMNS)
    a.build(X.iloc[:100])
    b = IdentityGraph.open(make_engine(url), KEY, COLUMNS)
    batch = X.iloc[100:]
    last = batch.sort_values(["submitted_at", "claim_id"]).iloc[-1]
    read_state = a.sync

    def read_then_another_worker_adds_one_of_the_claims():
        changed = read_state()
        b.add(as_claim(last))
        return changed

    monkeypatch.setattr(a, "sync", read_then_another_worker_adds_one_of_the_claims)
    F = a.build(batch)
    monkeypatch.undo()
    for _, r in batch.iterrows():
        stored = a.features(as_claim(r))
        assert F.loc[r["claim_id"]].tolist() == [stored[k] for k in GRAPH_FEATURES]
    for g in (a, b):
        g.engine.dispose()


def test_a_relative_path_names_the_lock_of_the_file_it_names_now(tmp_path, monkeypatch):
    """A relative store path is resolved against the current directory when the lock is taken:
    the same relative path in another directory is another file, with its own lock."""
    from fraudlens.database import make_engine
    from graph import store

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        engine = make_engine("sqlite:///g.db")
        store.create_tables(engine)
        with store.transaction(engine) as conn:
            store.lock(conn)
        engine.dispose()
        assert (tmp_path / name / "g.db-graph.lock").exists()
