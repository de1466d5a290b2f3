"""The store writes what the index made and reads it back unchanged."""

import numpy as np
import pytest
import sqlalchemy as sa

from fraudlens.synth import generate
from graph import IdentityGraph, store
from graph.identity import new_entity_number

KEY = b"store-test-key-store-test-key-01"
COLUMNS = {
    "national_id": "national_id",
    "full_name": "name",
    "phone": "phone",
    "bank_account": "bank_account",
    "ip": "ip",
}


def _apply_each(g, claims):
    """Plan and apply each claim as ``add`` does (its row kept as pending, not counted only)."""
    index = g.index
    for x in claims:
        plan = index.plan(x, new_entity_number(x.claim_id))
        index.apply(x, plan, index.seq + 1, plan.features)


def test_claim_rows_round_trip_through_the_store():
    X = generate(400, seed=11)
    g = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    claims = g.hash_frame(X)
    _apply_each(g, claims)
    rows = g._take_rows(g.index.seq)
    assert rows.claims.keys.shape == (len(claims), len(claims[0].keys))
    engine = sa.create_engine("sqlite://")
    store.create_tables(engine)
    with engine.begin() as conn:
        store.write_rows(conn, rows)
        back = store.read_since(conn, 0).claims
    assert [x for _, x, _, _ in back] == claims  # keys, flags and fingerprints as made
    assert [s for s, _, _, _ in back] == rows.claims.seq.tolist()
    assert [e for _, _, e, _ in back] == rows.claims.entity.tolist()
    assert np.array_equal(np.stack([f for _, _, _, f in back]), rows.claims.features)


def test_claim_rows_are_plain_python_values():
    X = generate(100, seed=12)
    g = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    _apply_each(g, g.hash_frame(X))
    first = store._claim_rows(g._take_rows(g.index.seq).claims)[0]
    assert [type(v) for v in first] == [int, str, int, float, str, float, bytes, bool, int, bytes]


def test_opening_a_store_made_before_an_index_was_added_creates_the_index(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    store.create_tables(engine)
    with engine.begin() as conn:  # the layout as it was before graph_entities.seq was indexed
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_graph_entities_seq")
    g = IdentityGraph.open(engine, KEY, COLUMNS)
    g.build(generate(100, seed=13))
    names = {ix["name"] for ix in sa.inspect(engine).get_indexes("graph_entities")}
    assert "ix_graph_entities_seq" in names
    with engine.connect() as conn:  # a sync's read of new entities no longer scans the table
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT * FROM graph_entities WHERE seq > 10"
        ).fetchall()
    assert "ix_graph_entities_seq" in " ".join(str(r[-1]) for r in plan)


def test_a_builds_claims_are_counted_and_need_the_columns():
    """A batch build's claims are counted as pending, not kept one by one: their rows come from
    the chunk's columns, and without them the rows cannot be taken."""
    X = generate(120, seed=14)
    g = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    g._ingest(g.hash_frame(X))
    assert g.index.pending.claims == [] and g.index.pending.ingested == len(X)
    assert g.index.pending.last_ingested == g.index.seq
    with pytest.raises(ValueError, match="120 ingested claims pending"):
        g._take_rows(g.index.seq)


def test_rows_of_several_writes_concatenate_in_order():
    """Rows the build held back and wrote together are the rows of the writes one by one."""
    X = generate(300, seed=15)
    g = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    claims = g.hash_frame(X)
    parts = []
    for a, b in ((0, 100), (100, 180), (180, 300)):
        _apply_each(g, claims[a:b])
        parts.append(g._take_rows(g.index.seq))
    both = store.concat_rows(parts)
    assert both.seq == parts[-1].seq and store.concat_rows(parts[:1]) is parts[0]
    assert both.claims.seq.tolist() == list(range(1, 301))
    assert both.claims.claim_id == [c for p in parts for c in p.claims.claim_id]
    assert np.array_equal(both.claims.features, np.vstack([p.claims.features for p in parts]))
    assert np.array_equal(both.claims.keys, np.vstack([p.claims.keys for p in parts]))
    for name in ("entities", "aliases", "names", "tokens"):
        assert getattr(both, name) == [r for p in parts for r in getattr(p, name)], name


def _make_layout_1(engine):
    """Turn a layout-2 store into what layout 1 wrote: its two extra tables, with rows."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE graph_keys (key_hash BIGINT NOT NULL, entity_id BIGINT NOT NULL, "
            "kind SMALLINT NOT NULL, first_seen FLOAT NOT NULL, seq BIGINT NOT NULL, "
            "PRIMARY KEY (key_hash, entity_id))"
        )
        conn.exec_driver_sql(
            "CREATE TABLE graph_edges (entity_a BIGINT NOT NULL, entity_b BIGINT NOT NULL, "
            "kind SMALLINT NOT NULL, key_hash BIGINT NOT NULL, first_seen FLOAT NOT NULL, "
            "seq BIGINT NOT NULL)"
        )
        conn.exec_driver_sql("CREATE INDEX ix_graph_edges_entity_a ON graph_edges (entity_a)")
        conn.exec_driver_sql("INSERT INTO graph_keys VALUES (1, 2, 3, 4.0, 5)")
        conn.exec_driver_sql("INSERT INTO graph_edges VALUES (1, 2, 3, 4, 5.0, 6)")
        conn.exec_driver_sql("UPDATE graph_meta SET value = '1' WHERE name = 'schema_version'")


def _tables(engine):
    return set(sa.inspect(engine).get_table_names())


def test_a_layout_1_store_is_migrated_when_opened_and_gives_the_same_graph(tmp_path):
    """Layout 2 dropped graph_keys and graph_edges (written by every claim, read by nothing):
    opening a layout-1 store drops them once, and the graph and its features stay the same."""
    X = generate(600, seed=21)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    before = IdentityGraph.open(engine, KEY, COLUMNS)
    F = before.build(X.iloc[:500])
    _make_layout_1(engine)
    assert {"graph_keys", "graph_edges"} <= _tables(engine)
    with engine.connect() as conn:
        assert store.read_meta(conn)["schema_version"] == "1"

    after = IdentityGraph.open(engine, KEY, COLUMNS)
    assert not {"graph_keys", "graph_edges"} & _tables(engine)
    with engine.connect() as conn:
        assert store.read_meta(conn)["schema_version"] == store.SCHEMA_VERSION == "2"
    assert after.version == before.version and after.rings(50) == before.rings(50)
    assert np.array_equal(after.build(X.iloc[:500]).to_numpy(), F.to_numpy())
    # later claims get what the unmigrated graph gives them
    assert np.array_equal(after.build(X.iloc[500:]).to_numpy(), before.build(X.iloc[500:]).to_numpy())
    IdentityGraph.open(engine, KEY, COLUMNS)  # opening again finds nothing to migrate


def test_a_layout_1_store_opened_with_another_key_is_refused_unmigrated(tmp_path):
    """The key (and the identity columns) are checked before the migration: a store that this
    key does not own is left as it was."""
    from graph import KeyMismatchError

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    IdentityGraph.open(engine, KEY, COLUMNS).build(generate(100, seed=23))
    _make_layout_1(engine)
    with pytest.raises(KeyMismatchError):
        IdentityGraph.open(engine, b"another-key-another-key-another-k", COLUMNS)
    with pytest.raises(ValueError, match="identity columns"):
        IdentityGraph.open(engine, KEY, {"phone": "phone"})
    assert {"graph_keys", "graph_edges"} <= _tables(engine)
    with engine.connect() as conn:
        assert store.read_meta(conn)["schema_version"] == "1"


def test_a_store_of_an_unknown_layout_is_refused(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    IdentityGraph.open(engine, KEY, COLUMNS).build(generate(100, seed=22))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE graph_meta SET value = '3' WHERE name = 'schema_version'")
    with pytest.raises(ValueError, match="graph tables of layout 2 expected, got 3"):
        IdentityGraph.open(engine, KEY, COLUMNS)
