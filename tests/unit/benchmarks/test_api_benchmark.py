"""Smoke test of benchmarks/api.py: a tiny --quick run against the real server and the ceiling."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "api.py"

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not on PATH (apt-get install wrk): the API benchmark drives it"
)


def test_quick_run_scores_new_claims_and_reports_ratios(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--duration", "1", "--rows", "1500", "--history", "1200",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    block = report["results"]["workers_1"]
    ours, ceiling = block["fraudlens"], block["ceiling"]
    assert set(ours) == {"saturation_c16", "rate_250"}
    assert ours["saturation_c16"]["runs"][0]["requests"] > 0
    assert ceiling["saturation_c16"]["rps"] > 0
    # every request is a new, valid claim and the ceiling accepts the same body and header
    assert report["non_200_total"] == 0, [r.get("first_non_200") for b in (ours, ceiling) for p in b.values() for r in p["runs"]]
    assert block["ratios"]["saturation_c16"]["rps_vs_ceiling"] > 0
    assert "target_rps" in ours["rate_250"]
    # the server's side of each point: its CPU, and the micro-batches it formed
    for point in ours.values():
        assert 0 < point["server_cores_busy"] <= report["machine"]["cores"]
        assert point["server_cpu_ms_per_request"] > 0
        assert point["claims_per_batch"] >= 1
        # the worker's full collections and settles of the heap over the point (a server
        # settles every 2 s, so a 1 s point may see none)
        assert point["full_collections"] >= 0 and point["heap_settles"] >= 0
    run = ours["rate_250"]["runs"][0]
    assert run["server_cpu_ms_per_request"] == pytest.approx(
        1e3 * run["server_cores_busy"] / run["rps"], rel=0.5
    )
    assert "server_cores_busy" not in ceiling["saturation_c16"]
    assert report["machine"]["cores"] >= 1 and report["machine"]["load_at_start"]
    # checks per worker count measured: --quick has no 1,000 req/s point, only saturation
    check = report["checks"]["workers_1"]
    assert set(check) == {"saturation_rps"}
    assert check["saturation_rps"]["pass"] == (check["saturation_rps"]["value"] >= 1500)
    # beside each check, how fast this host ran: its ceiling, and that against the 4,070
    top = max(v["rps"] for k, v in ceiling.items() if k.startswith("saturation"))
    assert check["saturation_rps"]["ceiling_rps"] == top
    assert check["saturation_rps"]["vs_issue_ceiling"] == round(top / 4070, 2)
    # and the share of the machine's CPU its hypervisor gave elsewhere meanwhile (Linux)
    if Path("/proc/stat").exists():
        steal = check["saturation_rps"]["host_steal_share"]
        assert steal is not None and 0.0 <= steal <= 1.0
        assert all(0.0 <= r["host_steal_share"] <= 1.0 for p in ours.values() for r in p["runs"])


def _benchmark_module():
    """benchmarks/api.py, loaded by path (its folder is not a package)."""
    from importlib import util

    spec = util.spec_from_file_location("api_bench", Path(__file__).parents[3] / "benchmarks" / "api.py")
    assert spec is not None and spec.loader is not None
    api = util.module_from_spec(spec)
    spec.loader.exec_module(api)
    return api


def test_steal_share_is_the_steal_column_over_all_cpu_time() -> None:
    api = _benchmark_module()
    before = [100, 0, 50, 800, 0, 0, 0, 10, 0, 0]
    assert api.steal_share(before, [300, 0, 100, 900, 0, 0, 0, 60, 0, 0]) == 0.125
    assert api.steal_share(before, before) is None and api.steal_share(None, before) is None
    ticks = api.host_cpu_ticks()
    assert ticks is None or len(ticks) >= 8


def test_projected_saturation_scales_by_the_host() -> None:
    api = _benchmark_module()
    assert api.projected_saturation_rps(1800.0, 4070.0) == 1800.0  # the issue's own host
    assert api.projected_saturation_rps(2400.0, 8140.0) == 1200.0  # a host twice as fast


def test_settings_become_the_servers_environment() -> None:
    api = _benchmark_module()
    assert api.setting_env(["api.gc_settle_seconds=0"]) == {"FRAUDLENS_API__GC_SETTLE_SECONDS": "0"}
    assert api.setting_env([]) == {}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        api.setting_env(["api.gc_settle_seconds"])
