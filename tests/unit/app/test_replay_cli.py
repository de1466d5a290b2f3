"""`fraudlens replay` as an auditor runs it, on a decision logged by the API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from fastapi.testclient import TestClient

from fraudlens.app import create_app
from fraudlens.database import make_engine
from fraudlens.settings import load_settings
from review.keys import SqlKeyStore


def test_replay_reproduces_a_logged_decision(trained, tmp_path) -> None:
    settings, _, new = trained
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    s = load_settings(None, home=home, demo=True)
    engine = make_engine(s.db_url)
    _, secret = SqlKeyStore(engine).create("t", ["score"])
    rec = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in new.iloc[0].to_dict().items()
           if v is not None and v == v}
    rec["claim_id"] = "REPLAY-1"
    client = TestClient(create_app(s, engine=engine))
    answer = client.post("/v1/score", json=rec, headers={"Authorization": f"Bearer {secret}"}).json()
    run = subprocess.run([sys.executable, "-m", "fraudlens", "replay", "REPLAY-1"], capture_output=True, text=True,
                         timeout=120, env={"FRAUDLENS_HOME": str(home), "PATH": ""})
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["reproduced"] and out["replayed"]["risk"] == answer["risk"]
    assert out["model_version"] == answer["model_version"]
