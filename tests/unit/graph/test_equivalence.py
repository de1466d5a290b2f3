"""Batch and incremental paths agree on synthetic claims: hashes, entities, features, rings."""

import numpy as np
import sqlalchemy as sa

from fraudlens.spec import Claim
from fraudlens.synth import generate
from graph import GRAPH_FEATURES, IdentityGraph

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


def test_chunked_build_equals_one_chunk(monkeypatch, tmp_path):
    """A build of several chunks (each written in bulk) gives the features, entities and
    stored state of a one-chunk build."""
    from graph import identity

    X = generate(1200, seed=11)
    one = IdentityGraph.open(sa.create_engine("sqlite://"), KEY, COLUMNS)
    F1 = one.build(X)
    monkeypatch.setattr(identity, "BUILD_CHUNK", 250)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'chunked.db'}")
    chunked = IdentityGraph.open(engine, KEY, COLUMNS)
    F2 = chunked.build(X)
    assert np.array_equal(F1.to_numpy(), F2.to_numpy())
    assert [one.entity_of(c) for c in X["claim_id"]] == [
        chunked.entity_of(c) for c in X["claim_id"]
    ]
    reopened = IdentityGraph.open(engine, KEY)  # replayed from the stored rows
    assert reopened.version == chunked.version == one.version
    assert np.array_equal(reopened.build(X).to_numpy(), F1.to_numpy())
    assert reopened.rings(100) == one.rings(100)
