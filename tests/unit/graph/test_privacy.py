"""No raw (or merely normalised) identity value reaches a table, a log line or an error."""

import json
import logging

import numpy as np
import pytest
import sqlalchemy as sa

from fraudlens.spec import Claim
from fraudlens.synth import generate
from graph import AllowList, ClaimConflictError, IdentityGraph
from graph.normalise import normalise

KEY = b"privacy-test-key-privacy-test-k!"
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


def test_stores_logs_and_errors_hold_no_identity_value(tmp_path):
    X = generate(1500, seed=11)
    log_file = tmp_path / "graph.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    messages = []
    try:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
        allow = AllowList(values={"address": [X["address"].iloc[0]]})
        assert X["address"].iloc[0] not in repr(allow)
        g = IdentityGraph.open(engine, KEY, COLUMNS, allow_list=allow)
        g.build(X.iloc[:1200])
        records = X.iloc[1200:].to_dict("records")
        for r in records:
            g.add(_claim(r))
        changed = dict(records[0], amount=records[0]["amount"] + 1)
        with pytest.raises(ClaimConflictError) as err:
            g.add(_claim(changed))
        messages.append(str(err.value))
        with pytest.raises(ValueError) as err:
            IdentityGraph.open(
                engine, KEY, COLUMNS, allow_list=AllowList(values={"ip": ["999.1.2.3"]})
            )
        messages.append(str(err.value))
        g.refresh_fraud_proximity(
            [g.entity_of(records[0]["claim_id"])], records[-1]["submitted_at"]
        )
        exported = json.dumps([g.rings(50), g.neighbourhood(records[0]["claim_id"])])
        engine.dispose()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    blobs = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    blobs += log_file.read_bytes() + exported.encode() + "\n".join(messages).encode()
    assert len(blobs) > 100_000  # the state really was written
    rng = np.random.default_rng(0)
    checked = 0
    for column, kind in COLUMNS.items():
        values = X[column].dropna().astype(str).unique()
        for raw in rng.choice(values, size=min(40, len(values)), replace=False):
            for text in {raw, normalise(kind, raw)}:
                if text and len(text) >= 6:
                    assert text.encode() not in blobs, f"a {kind} value was found in the stores"
                    checked += 1
    assert checked > 300
