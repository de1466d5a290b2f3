"""The `fraudlens graph` commands (settings from the environment, values masked)."""

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from typer.testing import CliRunner

from graph import IdentityGraph
from graph.commands import app

KEY = "cli-test-key-cli-test-key-cli-test-key-0"
COLUMNS = {
    "full_name": "name",
    "date_of_birth": "dob",
    "address": "address",
    "bank_account": "bank_account",
    "device_id": "device_id",
}


def _ring_frame() -> pd.DataFrame:
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "claim_id": [f"k{i}" for i in range(5)],
            "submitted_at": pd.to_datetime(
                [t0 + timedelta(days=4 * i) for i in range(5)], utc=True
            ),
            "program": "housing",
            "amount": 1000.0,
            "full_name": [f"Someone Number{chr(65 + i)}" for i in range(5)],
            "date_of_birth": [f"198{i}-01-01" for i in range(5)],
            "address": [f"{i} Secret Street" for i in range(5)],
            "bank_account": "SECRET-ACCOUNT-1",
            "device_id": "secret-device-1",
        }
    )


def test_rings_command_lists_masked_rings(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'fraudlens.db'}"
    monkeypatch.setenv("FRAUDLENS_DATABASE_URL", url)
    monkeypatch.setenv("FRAUDLENS_HMAC_KEY", KEY)
    g = IdentityGraph.open(sa.create_engine(url), KEY.encode(), COLUMNS)
    g.build(_ring_frame())
    runner = CliRunner()
    done = runner.invoke(app, ["rings", "--top", "20", "--json"])
    assert done.exit_code == 0, done.output
    rings = json.loads(done.output)
    assert len(rings) == 1 and rings[0]["n_members"] == 5
    assert rings[0]["shared_kinds"] == {"bank_account": 1, "device_id": 1}
    table = runner.invoke(app, ["rings"], terminal_width=250)
    assert table.exit_code == 0 and rings[0]["ring_id"] in table.output
    hood = runner.invoke(app, ["neighbourhood", "k0"])
    assert hood.exit_code == 0 and json.loads(hood.output)["ring_id"] == rings[0]["ring_id"]
    for out in (done.output, table.output, hood.output):
        assert "SECRET" not in out and "Secret" not in out and "secret" not in out


def test_rings_command_without_key_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDLENS_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("FRAUDLENS_HMAC_KEY", raising=False)
    monkeypatch.delenv("FRAUDLENS_HMAC_KEY_FILE", raising=False)
    monkeypatch.delenv("FRAUDLENS_DEMO", raising=False)
    done = CliRunner().invoke(app, ["rings"])
    assert done.exit_code == 2
    assert "no identity-hashing key configured" in done.output
