"""`fraudlens graph build FILE` as an operator runs it: history before serving, a rebuild."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from fraudlens.synth import generate

FRAUDLENS = [sys.executable, "-m", "fraudlens"]
KEY = "graph-build-cli-key-graph-build-cli-key"


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"FRAUDLENS_HOME": str(home), "FRAUDLENS_HMAC_KEY": KEY, "PATH": "", "COLUMNS": "200"}
    return subprocess.run([*FRAUDLENS, "graph", *args], capture_output=True, text=True,
                          timeout=180, env=env, cwd=home)


def test_graph_build_adds_a_file_once_and_accounts_for_every_row(tmp_path: Path) -> None:
    X = generate(3000, seed=21).drop(columns=["is_fraud", "typology", "ring_id", "person_id", "sharing"])
    X.to_parquet(tmp_path / "history.parquet")
    first = _run(tmp_path, "build", "history.parquet")
    assert first.returncode == 0, first.stderr
    done = json.loads(first.stdout)
    assert (done["in"], done["added"], done["already_in_graph"], done["rejected"]) == (3000, 3000, 0, 0)
    assert 0 < done["entities"] <= 3000

    # the same file again, with one bad row and one claim whose content changed
    again = X.copy()
    again.loc[5, "amount"] = -1.0  # the record spec refuses a negative amount
    again.loc[9, "amount"] = again.loc[9, "amount"] + 1  # an id the graph holds, other content
    extra = generate(100, seed=22)[X.columns]
    extra["claim_id"] = "NEW-" + extra["claim_id"]
    pd.concat([again, extra], ignore_index=True).to_parquet(tmp_path / "more.parquet")
    second = _run(tmp_path, "build", "more.parquet", "--dead-letter", "dead.csv")
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout)
    assert out["in"] == 3100 and out["rejected"] == 2
    assert out["added"] == 100 and out["already_in_graph"] == 2998
    assert out["in"] == out["added"] + out["already_in_graph"] + out["rejected"]
    with (tmp_path / "dead.csv").open() as fh:
        dead = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in dead] == [5, 9]
    assert dead[1]["claim_id"] == X.loc[9, "claim_id"] and "different content" in dead[1]["reason"]

    rings = _run(tmp_path, "rings", "--top", "3", "--json")
    assert rings.returncode == 0, rings.stderr


def test_graph_build_refuses_a_file_without_a_required_column(tmp_path: Path) -> None:
    generate(200, seed=3).drop(columns=["amount"]).to_csv(tmp_path / "cut.csv", index=False)
    run = _run(tmp_path, "build", "cut.csv")
    assert run.returncode == 2 and "amount" in run.stderr


def test_a_spec_with_its_own_column_names_builds_trains_and_scores(tmp_path: Path) -> None:
    """An agency's spec names the id and event-time columns its own way: the identity graph,
    training and batch scoring read them through the spec (they stopped at KeyError 'claim_id')."""
    from fraudlens.spec import RecordSpec

    raw = {**RecordSpec.default().raw, "id": "case_ref", "timestamp": "filed_at"}
    (tmp_path / "spec.yaml").write_text(json.dumps(raw))  # JSON is YAML
    X = generate(3000, seed=23).rename(columns={"claim_id": "case_ref", "submitted_at": "filed_at"})
    X.iloc[:2500].to_parquet(tmp_path / "history.parquet")
    X.iloc[2500:].to_parquet(tmp_path / "new.parquet")
    env = {"FRAUDLENS_HOME": str(tmp_path), "FRAUDLENS_HMAC_KEY": KEY, "PATH": "", "COLUMNS": "200",
           "FRAUDLENS_SPEC_PATH": str(tmp_path / "spec.yaml")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*FRAUDLENS, *args], capture_output=True, text=True, timeout=300,
                              env=env, cwd=tmp_path)

    built = run("graph", "build", "history.parquet")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["added"] == 2500
    trained = run("train", "history.parquet")
    assert trained.returncode == 0, trained.stderr
    scored = run("score", "new.parquet", "--out", "scored.parquet")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["scored"] == 500
    assert pd.read_parquet(tmp_path / "scored.parquet")["claim_id"].tolist() == X["case_ref"].iloc[2500:].tolist()
