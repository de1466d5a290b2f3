"""Quality benchmark: ROC-AUC and AP of single detectors and ensembles on ADBench, as JSON.

Usage::

    .venv/bin/python benchmarks/quality.py [--datasets cardio thyroid] [--quick]

(a) unsupervised: every detector is fitted and scored on all of X (as ADBench does);
(b) few labels: stratified 70/30 split (seed 0), 10% of the training anomalies labelled 1 and
every other training row 0 (unlabelled, not known normal); scored on the 30% test part.
KNN and LOF cost O(n^2): on sets above ``--max-quadratic`` rows they are fitted and scored on
a stratified subsample of that many rows (stated in the JSON). ``--quick`` shrinks the
ensembles' XGBoost and caps rows for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import detectors  # noqa: E402

SEED = 0
SINGLES: dict[str, dict[str, Any]] = {
    "iforest": {"random_state": SEED},
    "ecod": {},
    "copod": {},
    "hbos": {},
    "knn": {"random_state": SEED},
    "lof": {"random_state": SEED},
}
QUADRATIC = ("knn", "lof")
MARGIN_PER_DATASET = 0.03
FEW_LABEL_MARGIN = 0.02


def data_dir() -> Path:
    return Path(os.environ.get("FRAUDLENS_DATA_DIR", REPO.parent / "shared" / "data"))


def load_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as d:
        return d["X"].astype(np.float64), d["y"].astype(np.int64).ravel()


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(y) <= n:
        return np.arange(len(y))
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


def metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    s = np.nan_to_num(np.asarray(s, dtype=np.float64), nan=0.0, posinf=1e300, neginf=-1e300)
    return {
        "roc_auc": round(float(roc_auc_score(y, s)), 4),
        "ap": round(float(average_precision_score(y, s)), 4),
    }


def unsupervised(X: np.ndarray, y: np.ndarray, max_quadratic: int) -> dict[str, Any]:
    out: dict[str, Any] = {"detectors": {}, "seconds": {}}
    sub = stratified_subsample(y, max_quadratic, SEED)
    for name, params in SINGLES.items():
        t0 = time.perf_counter()
        Xs, ys = (X[sub], y[sub]) if name in QUADRATIC else (X, y)
        det = detectors.build(name, **params).fit(Xs)
        out["detectors"][name] = metrics(ys, det.decision_scores_)
        out["seconds"][name] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    ens = detectors.build("ensemble", random_state=SEED).fit(X)
    out["detectors"]["ensemble"] = metrics(y, ens.decision_scores_)
    out["seconds"]["ensemble"] = round(time.perf_counter() - t0, 2)
    if len(sub) < len(y):
        out["quadratic_subsample_rows"] = len(sub)
    return out


def few_labels(X: np.ndarray, y: np.ndarray, quick: bool) -> dict[str, Any]:
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=SEED)
    rng = np.random.default_rng(SEED)
    positives = np.flatnonzero(ytr == 1)
    n_labelled = max(1, int(round(0.1 * len(positives))))
    labels = np.zeros_like(ytr)
    labels[rng.choice(positives, n_labelled, replace=False)] = 1
    xgb_params: dict[str, Any] = {"random_state": SEED, "n_jobs": 1, "min_positives": 1}
    if quick:
        xgb_params["n_estimators"] = 30
    out: dict[str, Any] = {"n_labelled": n_labelled, "detectors": {}, "seconds": {}}
    for name, balance in (("xgboost", "none"), ("xgboost_balanced", "auto")):
        t0 = time.perf_counter()
        det = detectors.build("xgboost", balance=balance, **xgb_params).fit(Xtr, labels)
        out["detectors"][name] = metrics(yte, det.score_samples(Xte))
        out["seconds"][name] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    ens_params = {k: v for k, v in xgb_params.items() if k != "random_state"}
    ens = detectors.build(
        "ensemble", supervised=True, random_state=SEED, xgboost_params=ens_params
    ).fit(Xtr, labels)
    out["detectors"]["ensemble_supervised"] = metrics(yte, ens.score_samples(Xte))
    out["detectors"]["ensemble_unsupervised_part"] = metrics(yte, ens.unsupervised_scores(Xte))
    out["seconds"]["ensemble_supervised"] = round(time.perf_counter() - t0, 2)
    return out


def synthetic_claims(quick: bool) -> dict[str, Any]:
    try:
        from fraudlens.synth import generate  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"fraudlens.synth.generate is not importable yet: {exc}"}
    return {"skipped": "synthetic-claims section not wired yet (see docs/ensembles.md)"}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    names = list(results)
    summary: dict[str, Any] = {}
    if not names:
        return summary
    singles = list(SINGLES)
    mean_u = {
        det: round(
            float(
                np.mean([results[n]["unsupervised"]["detectors"][det]["roc_auc"] for n in names])
            ),
            4,
        )
        for det in [*singles, "ensemble"]
    }
    best_single = max(singles, key=lambda d: mean_u[d])
    gaps = {
        n: round(
            results[n]["unsupervised"]["detectors"]["ensemble"]["roc_auc"]
            - max(results[n]["unsupervised"]["detectors"][d]["roc_auc"] for d in singles),
            4,
        )
        for n in names
    }
    summary["unsupervised_mean_roc_auc"] = mean_u
    summary["unsupervised_mean_ap"] = {
        det: round(
            float(np.mean([results[n]["unsupervised"]["detectors"][det]["ap"] for n in names])), 4
        )
        for det in [*singles, "ensemble"]
    }
    summary["best_single"] = best_single
    few = [n for n in names if "few_labels" in results[n]]
    checks: dict[str, Any] = {
        "ensemble_mean_ge_best_single": {
            "passed": mean_u["ensemble"] >= mean_u[best_single],
            "margin": round(mean_u["ensemble"] - mean_u[best_single], 4),
        },
        "ensemble_within_0.03_of_best_single_per_dataset": {
            "passed": all(g >= -MARGIN_PER_DATASET for g in gaps.values()),
            "gap_to_best_single": gaps,
        },
        "ensemble_mean_ge_best_single_plus_0.01_goal": {
            "passed": mean_u["ensemble"] >= mean_u[best_single] + 0.01,
            "margin": round(mean_u["ensemble"] - mean_u[best_single] - 0.01, 4),
        },
    }
    if few:
        dets = ["xgboost", "xgboost_balanced", "ensemble_supervised", "ensemble_unsupervised_part"]
        mean_ap = {
            d: round(
                float(np.mean([results[n]["few_labels"]["detectors"][d]["ap"] for n in few])), 4
            )
            for d in dets
        }
        mean_auc = {
            d: round(
                float(np.mean([results[n]["few_labels"]["detectors"][d]["roc_auc"] for n in few])),
                4,
            )
            for d in dets
        }
        target = max(mean_ap["xgboost"], mean_ap["xgboost_balanced"]) + FEW_LABEL_MARGIN
        summary["few_labels_mean_ap"] = mean_ap
        summary["few_labels_mean_roc_auc"] = mean_auc
        checks["few_label_ensemble_ap_ge_best_xgboost_plus_0.02"] = {
            "passed": mean_ap["ensemble_supervised"] >= target,
            "margin": round(mean_ap["ensemble_supervised"] - target, 4),
        }
    summary["checks"] = checks
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", help="substrings of ADBench file names")
    parser.add_argument("--quick", action="store_true", help="small settings for a smoke run")
    parser.add_argument(
        "--max-quadratic",
        type=int,
        default=10000,
        help="rows for KNN/LOF on large sets (stratified subsample)",
    )
    parser.add_argument(
        "--max-rows",
        type=int,
        default=None,
        help="stratified cap on every dataset's rows (exploration only)",
    )
    parser.add_argument("--no-few-labels", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    folder = data_dir() / "adbench"
    files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    if args.datasets:
        files = [f for f in files if any(s in f.name for s in args.datasets)]
    max_rows = args.max_rows if args.max_rows is not None else (3000 if args.quick else None)
    max_quadratic = min(args.max_quadratic, 2000) if args.quick else args.max_quadratic
    report: dict[str, Any] = {
        "benchmark": "quality",
        "seed": SEED,
        "data_dir": str(folder),
        "settings": {
            "quick": args.quick,
            "max_rows": max_rows,
            "max_quadratic_rows": max_quadratic,
            "few_labels": "stratified 70/30 split, 10% of training anomalies labelled, rest 0",
            "singles": SINGLES,
        },
        "datasets": {},
    }
    if not files:
        report["skipped"] = f"no ADBench .npz files under {folder}"
    for path in files:
        X, y = load_dataset(path)
        entry: dict[str, Any] = {"rows": len(y), "features": X.shape[1], "anomalies": int(y.sum())}
        if max_rows is not None and len(y) > max_rows:
            keep = stratified_subsample(y, max_rows, SEED)
            X, y = X[keep], y[keep]
            entry["rows_used"] = len(y)
        entry["unsupervised"] = unsupervised(X, y, max_quadratic)
        if not args.no_few_labels:
            entry["few_labels"] = few_labels(X, y, args.quick)
        report["datasets"][path.stem] = entry
    report["summary"] = summarise(report["datasets"])
    report["synthetic_claims"] = synthetic_claims(args.quick)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
