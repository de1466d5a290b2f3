"""Identity-graph state on a real PostgreSQL: shared by two processes, hashed keys only."""

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import sqlalchemy as sa

from fraudlens.spec import Claim
from fraudlens.synth import generate
from graph import GRAPH_FEATURES, IdentityGraph

pytestmark = pytest.mark.service

URL = os.environ.get(
    "FRAUDLENS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
KEY = b"service-test-key-service-test-k!"
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


def _reachable() -> str | None:
    try:
        engine = sa.create_engine(URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: not reachable
        return f"PostgreSQL not reachable at {URL}: {type(exc).__name__}"


@contextmanager
def _schema() -> Iterator[str]:
    """A new schema, dropped with everything in it afterwards."""
    schema = f"graph_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(scope="module")
def schema_url():
    why = _reachable()
    if why:
        if os.environ.get("FRAUDLENS_REQUIRE_SERVICES") == "1":
            pytest.fail(why + " (FRAUDLENS_REQUIRE_SERVICES=1)")
        pytest.skip(why)
    with _schema() as schema:
        yield schema


@pytest.fixture()
def fresh_schema(schema_url):
    """A schema of its own for one test (the module's schema holds the first test's state)."""
    with _schema() as schema:
        yield schema


def _engine(schema: str) -> sa.Engine:
    return sa.create_engine(URL, connect_args={"options": f"-csearch_path={schema}"})


def _claim(r):
    identity = {c: (None if r[c] is None or r[c] != r[c] else str(r[c])) for c in COLUMNS}
    return Claim(
        r["claim_id"],
        r["submitted_at"].to_pydatetime(),
        r["program"],
        float(r["amount"]),
        identity,
        {},
        {},
    )


def test_shared_state_on_postgres(schema_url):
    X = generate(1200, seed=21)
    base, rest = X.iloc[:1000], X.iloc[1000:].to_dict("records")
    a = IdentityGraph.open(_engine(schema_url), KEY, COLUMNS)
    F = a.build(base)
    # a second process opens the same state and sees the same entities and features
    b = IdentityGraph.open(_engine(schema_url), KEY, COLUMNS)
    assert b.version == a.version
    for cid in base["claim_id"].iloc[::50]:
        assert b.entity_of(cid) == a.entity_of(cid)
        got = b.index.claim_features(cid)
        assert np.array_equal(got, F.loc[cid].to_numpy())
    # both add claims concurrently: every claim lands once, both end with the same state
    errors: list[BaseException] = []

    def work(g, claims):
        try:
            for r in claims:
                g.add(_claim(r))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(a, rest[0::2])),
        threading.Thread(target=work, args=(b, rest[1::2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    a.sync()
    b.sync()
    assert a.version == b.version == f"g{len(X)}-p0"
    for r in rest:
        assert a.entity_of(r["claim_id"]) == b.entity_of(r["claim_id"])
        fa, fb = a.features(_claim(r)), b.features(_claim(r))
        assert fa == fb and list(fa) == GRAPH_FEATURES
    assert a.rings() == b.rings()
    # retry through the other process changes nothing
    again = b.add(_claim(rest[0]))
    assert again == a.features(_claim(rest[0])) and b.version == a.version
    # a third process that opens now rebuilds the same index from the tables
    c = IdentityGraph.open(_engine(schema_url), KEY, COLUMNS)
    assert c.version == a.version and c.rings() == a.rings()
    with a.engine.connect() as conn:
        n_claims = conn.exec_driver_sql("SELECT count(*) FROM graph_claims").scalar()
        text = "\n".join(
            str(row)
            for table in (
                "graph_claims",
                "graph_entities",
                "graph_names",
                "graph_tokens",
                "graph_meta",
            )
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
        )
    assert n_claims == len(X)
    for column in COLUMNS:
        for raw in X[column].dropna().astype(str).unique()[:30]:
            if len(raw) >= 6:
                assert raw not in text, f"a raw {column} value is stored in PostgreSQL"
    for g in (a, b, c):
        g.engine.dispose()


def test_a_sync_reads_another_process_rows_in_one_round_trip(fresh_schema, monkeypatch):
    """A writer holds the graph's lock while it syncs: on psycopg the rows another process wrote
    come in one round trip (five reads in one statement batch), and replay the same index."""
    import psycopg

    X = generate(300, seed=22)
    a = IdentityGraph.open(_engine(fresh_schema), KEY, COLUMNS)
    a.build(X.iloc[:200])
    b = IdentityGraph.open(_engine(fresh_schema), KEY, COLUMNS)
    for r in X.iloc[200:].to_dict("records"):
        a.add(_claim(r))
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self, query, *args, **kwargs):
        statements.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    assert b.sync()
    monkeypatch.undo()
    reads = [s for s in statements if "graph_claims" in s]
    assert len(reads) == 1 and reads[0].count("SELECT") == 5
    assert b.version == a.version and b.rings() == a.rings()
    for cid in X["claim_id"].iloc[200::10]:
        assert np.array_equal(b.index.claim_features(cid), a.index.claim_features(cid))


def test_an_add_writes_its_rows_in_one_round_trip(fresh_schema, tmp_path):
    """Under the graph's lock an add sends its inserts and updates in one psycopg pipeline: one
    Sync of the extended protocol (each lone statement is one), the same rows as before."""
    X = generate(220, seed=24)
    g = IdentityGraph.open(_engine(fresh_schema), KEY, COLUMNS)
    g.build(X.iloc[:200])
    trace = tmp_path / "libpq.trace"
    for r in X.iloc[200:].to_dict("records"):
        with g.engine.connect() as conn:  # the pooled connection the add will take
            pgconn = conn.connection.driver_connection.pgconn
        with trace.open("w") as fh:
            pgconn.trace(fh.fileno())
            try:
                g.add(_claim(r))
            finally:
                pgconn.untrace()
        assert trace.read_text().count("\tSync") == 1
    other = IdentityGraph.open(_engine(fresh_schema), KEY, COLUMNS)
    assert other.version == g.version == "g220-p0" and other.rings() == g.rings()
    for cid in X["claim_id"].iloc[200:]:
        assert np.array_equal(other.index.claim_features(cid), g.index.claim_features(cid))


def test_a_layout_1_state_is_migrated_on_postgres(fresh_schema):
    """Opening a layout-1 state drops graph_keys and graph_edges (read by nothing) under the
    graph's lock, once; the graph a second process loads is the same."""
    X = generate(300, seed=25)
    a = IdentityGraph.open(_engine(fresh_schema), KEY, COLUMNS)
    a.build(X)
    with a.engine.begin() as conn:  # the tables layout 1 had as well, and its version
        conn.exec_driver_sql(
            "CREATE TABLE graph_keys (key_hash BIGINT, entity_id BIGINT, kind SMALLINT, "
            "first_seen FLOAT, seq BIGINT, PRIMARY KEY (key_hash, entity_id))"
        )
        conn.exec_driver_sql(
            "CREATE TABLE graph_edges (entity_a BIGINT, entity_b BIGINT, kind SMALLINT, "
            "key_hash BIGINT, first_seen FLOAT, seq BIGINT)"
        )
        conn.exec_driver_sql("UPDATE graph_meta SET value = '1' WHERE name = 'schema_version'")
    b = IdentityGraph.open(_engine(fresh_schema), KEY, COLUMNS)
    tables = set(sa.inspect(b.engine).get_table_names())
    assert "graph_claims" in tables and not {"graph_keys", "graph_edges"} & tables
    with b.engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT value FROM graph_meta WHERE name = 'schema_version'"
        ).scalar() == "2"
    assert b.version == a.version and b.rings() == a.rings()
    for cid in X["claim_id"].iloc[::25]:
        assert np.array_equal(b.index.claim_features(cid), a.index.claim_features(cid))
