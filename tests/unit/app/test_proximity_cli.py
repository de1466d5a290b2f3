"""`fraudlens graph refresh-proximity` as an operator runs it daily, with a server running."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta

import pandas as pd

from fraudlens.app import build_scorer
from fraudlens.database import make_engine
from fraudlens.settings import load_settings

FRAUDLENS = [sys.executable, "-m", "fraudlens"]


def _logged_feature(scorer, claim_id: str, name: str) -> float:
    row = scorer.log.get(claim_id)
    assert row is not None
    return float(row["features"][scorer.names.index(name)])


def test_confirmed_fraud_reaches_a_running_scorer_through_the_daily_refresh(trained, tmp_path) -> None:
    settings, _, new = trained
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    s = load_settings(None, home=home, demo=True)
    scorer, review = build_scorer(s, make_engine(s.db_url))  # a server's scorer, kept running
    records = new.iloc[:300].to_dict("records")
    results = scorer.score_many([scorer.validate(r) for r in records])
    k = next(i for i, r in enumerate(results) if r.decision == "review" and r.entity_id)
    flagged, rec = results[k], records[k]
    review.transition(flagged.case_id, "ana", "in_review")
    review.transition(flagged.case_id, "ana", "closed", disposition="confirmed_fraud")
    assert review.confirmed_fraud_entities() == [flagged.entity_id]

    as_of = pd.Timestamp(rec["submitted_at"]) + timedelta(days=1)
    # as a scheduled job runs it: the deployment's key file, not the demo's own key
    env = {"FRAUDLENS_HOME": str(home), "FRAUDLENS_HMAC_KEY_FILE": str(home / "identity.key"),
           "PATH": "", "COLUMNS": "200"}
    run = subprocess.run([*FRAUDLENS, "graph", "refresh-proximity", "--as-of", as_of.isoformat()],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert "1 entities confirmed as fraud" in run.stdout

    # a new identity paid into the confirmed entity's bank account, after the snapshot
    after = {**records[k + 1], "claim_id": "PROX-1", "submitted_at": as_of + timedelta(hours=2),
             "bank_account": rec["bank_account"]}
    scorer.score_many([scorer.validate(after)])
    assert 0 < _logged_feature(scorer, "PROX-1", "fraud_proximity") <= 1
    assert 0 <= _logged_feature(scorer, "PROX-1", "fraud_proximity_age_days") < 1


def test_refresh_proximity_refuses_a_time_without_a_zone(trained, tmp_path) -> None:
    settings, _, _ = trained
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    run = subprocess.run([*FRAUDLENS, "graph", "refresh-proximity", "--as-of", "2026-01-02T03:04:05"],
                         capture_output=True, text=True, timeout=120,
                         env={"FRAUDLENS_HOME": str(home), "PATH": "", "COLUMNS": "200"})
    assert run.returncode == 2 and "time zone" in run.stderr


def test_graph_commands_on_a_database_without_a_graph_say_what_to_do_first(tmp_path) -> None:
    env = {"FRAUDLENS_HOME": str(tmp_path), "FRAUDLENS_HMAC_KEY": "k" * 32, "PATH": "", "COLUMNS": "200"}
    for args in (["refresh-proximity"], ["rings"]):
        run = subprocess.run([*FRAUDLENS, "graph", *args], capture_output=True, text=True,
                             timeout=120, env=env)
        assert run.returncode == 2, run.stderr
        assert "no identity graph in this database yet" in run.stderr and "graph build" in run.stderr
