"""benchmarks/graph.py runs at a tiny size and prints one JSON document with its figures."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "graph.py"


def test_quick_benchmark_prints_json():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    out = json.loads(done.stdout)
    q = out["quality"]["with_allow_list"]
    assert q["planted_ring_members"] > 0 and 0 <= q["recall"] <= 1
    assert out["batch"]["seconds_median"] > 0 and out["batch"]["peak_rss_mib_median"] > 0
    assert out["online"]["add_ms_p99"] > 0 and out["online"]["lookup_ms_p99"] > 0
