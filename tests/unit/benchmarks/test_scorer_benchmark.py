"""Smoke test of benchmarks/scorer.py: a tiny --quick run, full, full-again and graph-free scorers
alternated."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "scorer.py"


def test_quick_run_reports_both_scorers_per_batch_size(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--sizes", "1,4", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["benchmark"] == "scorer"
    assert set(report["results"]) == {"1", "4"}
    for size, block in report["results"].items():
        assert block["batches"] == 48 // int(size)
        for name in ("full", "full_again", "graph_free"):
            assert block[name]["batch_ms_median"] > 0
            per_claim = block[name]["batch_ms_median"] / int(size)
            assert abs(block[name]["claim_ms_median"] - per_claim) < 0.001  # rounded to 1 us
        # the graph's part of a batch is measured, not assumed: a share of the full batch
        assert block["graph_share_of_batch"] < 1.0
        # the A/A control: the same scorer twice, as a ratio of medians
        ratio = block["full_again"]["batch_ms_median"] / block["full"]["batch_ms_median"]
        assert block["full_again_vs_full"] == round(ratio, 3)
    # each scorer worked on its own copy of the set-up database, removed afterwards
    assert not list(tmp_path.glob("scorer-*"))


def test_answered_graph_answers_add_many_and_delegates_the_rest() -> None:
    spec = importlib.util.spec_from_file_location("fraudlens_scorer_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Graph:
        engine = "the engine"

        def add_many(self, claims: object, conn: object = None) -> list[object]:
            raise AssertionError("the wrapped graph's add_many must not run")

    answered = module.AnsweredGraph(Graph(), {"a": {"f": 1.0}, "b": {"f": 2.0}})
    claims = [SimpleNamespace(claim_id="b"), SimpleNamespace(claim_id="a")]
    assert answered.add_many(claims, conn="tx") == [{"f": 2.0}, {"f": 1.0}]
    assert answered.engine == "the engine"
