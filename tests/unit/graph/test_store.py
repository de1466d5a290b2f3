"""The store writes what the index made and reads it back unchanged."""

import numpy as np
import sqlalchemy as sa

from fraudlens.synth import generate
from graph import IdentityGraph, store

KEY = b"store-test-key-store-test-key-01"
COLUMNS = {
    "national_id": "national_id",
    "full_name": "name",
    "phone": "phone",
    "bank_account": "bank_account",
    "ip": "ip",
}


def test_claim_rows_round_trip_through_the_store():
    X = generate(400, seed=11)
    g = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    claims = g.hash_frame(X)
    g._ingest(claims)
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
    g._ingest(g.hash_frame(X))
    first = store._claim_rows(g._take_rows(g.index.seq).claims)[0]
    assert [type(v) for v in first] == [int, str, int, float, str, float, bytes, bool, int, bytes]
