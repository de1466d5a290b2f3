"""Speed of the detectors' frozen scoring paths: batch rows/s on 1 and 2 threads, one-row latency.

Prints one JSON document. Data is synthetic and numeric (correlated Gaussian columns, some
rounded, some skewed; about 2% planted positives for XGBoost). Every timing is the median over
``--repeats`` runs; one-row latencies are the median and p99 of ``--calls`` calls per run.

    .venv/bin/python benchmarks/detectors.py            # 1M rows, 20 features
    .venv/bin/python benchmarks/detectors.py --quick    # seconds, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This script is named like the package it measures: keep its own folder off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numba  # noqa: E402
import numpy as np  # noqa: E402

import detectors  # noqa: E402
from detectors.base import BaseDetector  # noqa: E402

DEFAULTS = ("iforest", "ecod", "copod", "hbos", "xgboost")


def synthetic(n_rows: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated numeric claims-like features and rare labels."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n_features, n_features)) / np.sqrt(n_features)
    X = rng.normal(size=(n_rows, n_features)) @ (np.eye(n_features) + 0.5 * mix)
    X[:, 0] = np.exp(X[:, 0])  # skewed, like an amount
    X[:, 1] = np.round(X[:, 1] * 3)  # ties, like a count
    y = (rng.random(n_rows) < 0.02).astype(np.int64)
    X[y == 1, 2:5] += rng.normal(2.0, 0.5, size=(int(y.sum()), 3))
    return X, y


def latency(fn: Callable[[], Any], calls: int, repeats: int) -> dict[str, float]:
    """Median over repeats of the per-run median and p99 latency, in microseconds."""
    medians, p99s = [], []
    for _ in range(repeats):
        times = np.empty(calls)
        for i in range(calls):
            t = time.perf_counter()
            fn()
            times[i] = time.perf_counter() - t
        medians.append(float(np.median(times)) * 1e6)
        p99s.append(float(np.percentile(times, 99)) * 1e6)
    return {
        "median_us": round(statistics.median(medians), 2),
        "p99_us": round(statistics.median(p99s), 2),
        "calls_per_run": calls,
        "runs": repeats,
    }


def batch(det: BaseDetector, X: np.ndarray, threads: int, repeats: int) -> dict[str, float]:
    numba.set_num_threads(threads)
    try:
        det.score_samples(X[:10000])  # warm
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            det.score_samples(X)
            times.append(time.perf_counter() - t)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    seconds = statistics.median(times)
    return {"seconds": round(seconds, 3), "rows_per_s": round(len(X) / seconds)}


def references(
    fitted: dict[str, BaseDetector],
    X_train: np.ndarray,
    y_train: np.ndarray,
    x: np.ndarray,
    calls: int,
    repeats: int,
) -> dict[str, Any]:
    """One-row latency of the reference implementations, fitted on the same training sample."""
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from sklearn.ensemble import IsolationForest

    out: dict[str, Any] = {}
    slow_calls = max(3, calls // 10)  # ECOD/COPOD recompute all ECDFs per call
    for name, model, n_calls in (
        ("ecod", ECOD().fit(X_train), slow_calls),
        ("copod", COPOD().fit(X_train), slow_calls),
        ("hbos", HBOS().fit(X_train), calls),
    ):
        out[name] = {
            "impl": f"pyod {type(model).__name__}.decision_function",
            **latency(lambda m=model: m.decision_function(x), n_calls, repeats),
        }
    iso = IsolationForest(n_estimators=100, random_state=0).fit(X_train)
    out["iforest"] = {
        "impl": "sklearn IsolationForest.score_samples",
        **latency(lambda: iso.score_samples(x), calls, repeats),
    }
    if "xgboost" in fitted:
        booster = fitted["xgboost"].booster_  # type: ignore[attr-defined]
        out["xgboost"] = {
            "impl": "xgboost Booster.inplace_predict",
            **latency(lambda: booster.inplace_predict(x, missing=np.nan), calls, repeats),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--xgb-trees", type=int, default=300)
    parser.add_argument(
        "--ensemble-rows", type=int, default=None, help="rows for the ensemble (default --rows)"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip reference latencies")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.train_rows, args.calls, args.repeats, args.xgb_trees = (
            6000,
            2000,
            100,
            2,
            20,
        )

    X, _ = synthetic(args.rows, args.features, seed=1)
    X_train, y_train = synthetic(args.train_rows, args.features, seed=0)
    x = np.ascontiguousarray(X[:1])

    result: dict[str, Any] = {
        "benchmark": "detectors",
        "data": f"synthetic numeric, {args.features} features (correlated Gaussian, one "
        "log-normal, one rounded), ~2% planted positives for xgboost",
        "rows_scored": args.rows,
        "train_rows": args.train_rows,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numba_threading_layer": None,
        },
        "note": "medians of several runs; other engineers share this machine",
        "detectors": {},
    }
    fitted: dict[str, BaseDetector] = {}
    for name in DEFAULTS:
        params: dict[str, Any] = {"random_state": 0} if name == "iforest" else {}
        if name == "xgboost":
            params = {"n_estimators": args.xgb_trees}
        det = detectors.build(name, **params)
        t = time.perf_counter()
        det.fit(X_train, y_train) if det.supervised else det.fit(X_train)
        fit_s = time.perf_counter() - t
        det.score_samples(x)  # compile / load cache outside the timings
        fitted[name] = det
        result["detectors"][name] = {
            "params": {
                k: v for k, v in det.get_params().items() if not isinstance(v, BaseDetector)
            },
            "fit_seconds": round(fit_s, 3),
            "batch_1_thread": batch(det, X, 1, args.repeats),
            "batch_2_threads": batch(det, X, 2, args.repeats),
            "one_row": latency(lambda d=det: d.score_samples(x), args.calls, args.repeats),
        }
    result["machine"]["numba_threading_layer"] = numba.threading_layer()

    members = list(fitted.values())

    def all_one_row() -> None:
        for det in members:
            det.score_samples(x)

    result["all_defaults_one_row"] = {
        "detectors": list(fitted),
        **latency(all_one_row, args.calls, args.repeats),
    }
    for threads in (1, 2):
        numba.set_num_threads(threads)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for det in members:
                det.score_samples(X)
            times.append(time.perf_counter() - t)
        seconds = statistics.median(times)
        result[f"all_defaults_batch_{threads}_threads"] = {
            "seconds": round(seconds, 3),
            "rows_per_s": round(args.rows / seconds),
        }
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    if "ensemble" in detectors.available():
        try:
            ens = detectors.build("ensemble")
            t = time.perf_counter()
            ens.fit(X_train, y_train) if ens.supervised else ens.fit(X_train)
            fit_s = time.perf_counter() - t
            X_ens = X[: args.ensemble_rows] if args.ensemble_rows else X
            result["ensemble"] = {
                "params": repr(ens),
                "rows_scored": len(X_ens),
                "fit_seconds": round(fit_s, 3),
                "batch_1_thread": batch(ens, X_ens, 1, args.repeats),
                "batch_2_threads": batch(ens, X_ens, 2, args.repeats),
                "one_row": latency(lambda: ens.score_samples(x), args.calls, args.repeats),
            }
        except Exception as exc:  # noqa: BLE001 - reported in the JSON, not hidden
            result["ensemble"] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        result["ensemble"] = {"error": "detectors.ensemble is not importable yet"}

    if not args.no_reference:
        refs = references(fitted, X_train, y_train, x, max(20, args.calls // 10), args.repeats)
        for name, ref in refs.items():
            ours = result["detectors"][name]["one_row"]["median_us"]
            ref["speedup_median"] = round(ref["median_us"] / ours, 1)
        result["reference_one_row"] = refs
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
