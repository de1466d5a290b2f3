"""The speed benchmark runs end to end on a tiny size and reports what it promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quick_benchmark_reports_every_default() -> None:
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "detectors.py"
    spec = importlib.util.spec_from_file_location("benchmark_detectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--no-reference", "--calls", "30", "--rows", "3000"])
    assert set(result["detectors"]) == {"iforest", "ecod", "copod", "hbos", "xgboost"}
    for entry in result["detectors"].values():
        assert entry["batch_2_threads"]["rows_per_s"] > 0
        assert entry["one_row"]["p99_us"] >= entry["one_row"]["median_us"] > 0
    assert result["all_defaults_one_row"]["median_us"] > 0
