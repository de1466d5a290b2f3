"""The command line as a user runs it: validate (doc example), synth, keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[3] / "docs"
FRAUDLENS = [sys.executable, "-m", "fraudlens"]


def _examples(name: str) -> dict[str, str]:
    text = (DOCS / name).read_text()
    return dict(re.findall(r"<!-- example: ([\w-]+) -->\s*```\w*\n(.*?)```", text, flags=re.S))


def test_validate_prints_what_the_doc_says(tmp_path: Path) -> None:
    ex = _examples("record-spec.md")
    (tmp_path / "bad.csv").write_text(ex["bad-file"])
    run = subprocess.run([*FRAUDLENS, "validate", "bad.csv", "--rejected", "dead.csv"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""})
    assert run.returncode == 1
    expected = ex["bad-file-output"].strip().splitlines()
    assert run.stdout.strip() == expected[0]
    assert run.stderr.strip().splitlines() == expected[1:]
    assert len((tmp_path / "dead.csv").read_text().strip().splitlines()) == 5


def test_validate_missing_column_is_one_file_level_error(tmp_path: Path) -> None:
    ex = _examples("record-spec.md")
    lines = ex["bad-file"].splitlines()
    cut = [",".join(c for i, c in enumerate(line.split(",")) if i != 3) for line in lines]
    (tmp_path / "nocol.csv").write_text("\n".join(cut))
    run = subprocess.run([*FRAUDLENS, "validate", "nocol.csv"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"COLUMNS": "200", "PATH": ""})
    assert run.returncode == 2
    assert "amount" in run.stderr and "nothing was scored" in run.stderr


def test_synth_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        run = subprocess.run([*FRAUDLENS, "synth", "--rows", "3000", "--seed", "4", "--out", f"{name}.parquet"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    env = {"FRAUDLENS_HOME": str(tmp_path), "PATH": "", "COLUMNS": "200"}
    run = subprocess.run([*FRAUDLENS, "keys", "create", "--name", "portal", "--scope", "score"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    created = json.loads(run.stdout)
    assert created["secret"].startswith("flk_")
    listed = subprocess.run([*FRAUDLENS, "keys", "list"], capture_output=True, text=True, timeout=60, env=env)
    assert created["key_id"] in listed.stdout and created["secret"] not in listed.stdout
    revoke = subprocess.run([*FRAUDLENS, "keys", "revoke", created["key_id"]], capture_output=True, text=True,
                            timeout=60, env=env)
    assert revoke.returncode == 0
    bad = subprocess.run([*FRAUDLENS, "keys", "create", "--name", "x", "--scope", "root"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "scopes must be" in bad.stderr


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    env = {"FRAUDLENS_HOME": str(tmp_path), "FRAUDLENS_HMAC_KEY": "k" * 40, "PATH": "", "COLUMNS": "200"}
    run = subprocess.run([*FRAUDLENS, "serve", "--workers", "2"], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2 and "PostgreSQL" in run.stderr


def test_serve_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    env = {"FRAUDLENS_HOME": str(tmp_path), "PATH": "", "COLUMNS": "200"}
    run = subprocess.run([*FRAUDLENS, "serve"], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2 and "FRAUDLENS_HMAC_KEY" in run.stderr
