"""Quality benchmark: ROC-AUC and AP of single detectors and ensembles, ADBench and synthetic claims, as JSON.

Usage::

    .venv/bin/python benchmarks/quality.py [--datasets cardio thyroid] [--quick]
        [--synthetic-rows 100000] [--no-graph]

(a) unsupervised: every detector is fitted and scored on all of X (as ADBench does);
(b) few labels: stratified 70/30 split (seed 0), 10% of the training anomalies labelled 1 and
every other training row 0 (unlabelled, not known normal); scored on the 30% test part.
KNN and LOF cost O(n^2): on sets above ``--max-quadratic`` rows they are fitted and scored on
a stratified subsample of that many rows (stated in the JSON). ``--quick`` shrinks the
ensembles' XGBoost and caps rows for a smoke run.
(c) synthetic claims (``fraudlens.synth.generate(n, seed=2027)``, validated by the default
record spec, sorted by ``submitted_at``): claim features fitted on the older 70%, every
detector fitted on them and scored on the newer 30%; precision, recall and recall per
typology when the top 1% (and 5%) of test claims are flagged; unsupervised singles and
ensemble, and with 10% of the training frauds labelled, XGBoost and the few-label ensemble.
Run once on claim features and once adding the identity graph's point-in-time features.
KNN and LOF there keep a seeded ``--max-quadratic``-row reference sample.
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
# This folder holds detectors.py (the speed benchmark): run as a script, it comes first on
# sys.path and would shadow the ``detectors`` package, also when PYTHONPATH names the repo. Drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
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
#: Synthetic claims: a seed no test uses, and the review budgets (share of test claims flagged).
SYNTH_SEED = 2027
BUDGETS = (0.01, 0.05)
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


def top_flags(scores: np.ndarray, share: float) -> np.ndarray:
    """Boolean mask of the ``ceil(share * n)`` highest scores (ties broken by row order)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    k = max(1, int(np.ceil(share * len(s))))
    flagged = np.zeros(len(s), dtype=bool)
    flagged[np.argsort(-s, kind="stable")[:k]] = True
    return flagged


def claim_metrics(
    y: np.ndarray, typology: np.ndarray, scores: np.ndarray, shares: tuple[float, ...]
) -> dict[str, Any]:
    """ROC-AUC, AP, and per review budget: precision and recall per typology."""
    out: dict[str, Any] = metrics(y, scores)
    frauds = sorted({str(t) for t in typology[y == 1]})
    for share in shares:
        flagged = top_flags(scores, share)
        out[f"top_{share:g}"] = {
            "precision": round(float(y[flagged].mean()), 4),
            "recall": round(float(flagged[y == 1].mean()), 4),
            "recall_by_typology": {
                t: round(float(flagged[(y == 1) & (typology == t)].mean()), 4) for t in frauds
            },
        }
    return out


def claim_feature_sets(
    frame: Any, n_train: int, with_graph: bool
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Claim features (fitted on the older rows) and, when the graph imports, graph features."""
    from detectors.features import ClaimFeatures
    from fraudlens.spec import RecordSpec

    spec = RecordSpec.default()
    features = ClaimFeatures(spec).fit(frame.iloc[:n_train])
    claim = features.transform(frame).to_numpy(dtype=np.float64)
    sets = {"claim_features": (claim[:n_train], claim[n_train:])}
    notes: dict[str, str] = {}
    if not with_graph:
        return sets, notes
    try:
        import sqlalchemy

        import graph
    except ImportError as exc:
        notes["claim_and_graph_features"] = f"skipped: graph does not import ({exc})"
        return sets, notes
    # point-in-time by event time: every claim's graph features use only earlier claims
    state = graph.IdentityGraph.open(
        sqlalchemy.create_engine("sqlite://"), b"k" * 32, spec.identity_kinds
    )
    graph_features = state.build(frame).loc[frame["claim_id"]].to_numpy(dtype=np.float64)
    both = np.column_stack([claim, graph_features])
    sets["claim_and_graph_features"] = (both[:n_train], both[n_train:])
    return sets, notes


def synthetic_claims(
    n_rows: int, quick: bool, max_quadratic: int, with_graph: bool = True
) -> dict[str, Any]:
    """Fit on the older 70% of synthetic claims, score the newer 30%, per review budget."""
    import pandas as pd

    from fraudlens.spec import RecordSpec
    from fraudlens.synth import generate

    t0 = time.perf_counter()
    raw = generate(n_rows, seed=SYNTH_SEED)
    validated = RecordSpec.default().validate_frame(raw)
    frame = validated.accepted.sort_values("submitted_at", kind="stable").reset_index(drop=True)
    labels = raw.set_index("claim_id").loc[frame["claim_id"], ["is_fraud", "typology"]]
    y = labels["is_fraud"].to_numpy(dtype=np.int64)
    typology = labels["typology"].astype(str).to_numpy()
    n_train = int(0.7 * len(frame))
    y_train, y_test, typ_test = y[:n_train], y[n_train:], typology[n_train:]
    rng = np.random.default_rng(SEED)
    positives = np.flatnonzero(y_train == 1)
    n_labelled = max(1, int(round(0.1 * len(positives))))
    few = np.zeros_like(y_train)
    few[rng.choice(positives, n_labelled, replace=False)] = 1
    out: dict[str, Any] = {
        "rows": n_rows,
        "seed": SYNTH_SEED,
        "rejected": len(validated.rejections),
        "train_rows": n_train,
        "test_rows": len(frame) - n_train,
        "test_frauds": int(y_test.sum()),
        "test_frauds_by_typology": pd.Series(typ_test[y_test == 1]).value_counts().to_dict(),
        "split": "by submitted_at: older 70% train, newer 30% test",
        "few_labels": f"{n_labelled} of {len(positives)} training frauds labelled 1, rest 0",
        "review_budgets": list(BUDGETS),
        "quadratic_reference_rows": max_quadratic,
    }
    feature_sets, notes = claim_feature_sets(frame, n_train, with_graph)
    out.update(notes)
    xgb_params: dict[str, Any] = {"random_state": SEED, "n_jobs": 1, "min_positives": 1}
    if quick:
        xgb_params["n_estimators"] = 30
    for set_name, (X_train, X_test) in feature_sets.items():
        section: dict[str, Any] = {"features": X_train.shape[1], "detectors": {}, "seconds": {}}
        for name, params in SINGLES.items():
            t1 = time.perf_counter()
            p = dict(params)
            if name in QUADRATIC:
                p["max_fit_samples"] = max_quadratic
            det = detectors.build(name, **p).fit(X_train)
            section["detectors"][name] = claim_metrics(
                y_test, typ_test, det.score_samples(X_test), BUDGETS
            )
            section["seconds"][name] = round(time.perf_counter() - t1, 2)
        t1 = time.perf_counter()
        ens = detectors.build("ensemble", random_state=SEED).fit(X_train)
        section["detectors"]["ensemble"] = claim_metrics(
            y_test, typ_test, ens.score_samples(X_test), BUDGETS
        )
        section["seconds"]["ensemble"] = round(time.perf_counter() - t1, 2)
        for name, balance in (("xgboost", "none"), ("xgboost_balanced", "auto")):
            t1 = time.perf_counter()
            det = detectors.build("xgboost", balance=balance, **xgb_params).fit(X_train, few)
            section["detectors"][name] = claim_metrics(
                y_test, typ_test, det.score_samples(X_test), BUDGETS
            )
            section["seconds"][name] = round(time.perf_counter() - t1, 2)
        t1 = time.perf_counter()
        ens_params = {k: v for k, v in xgb_params.items() if k != "random_state"}
        sup = detectors.build(
            "ensemble", supervised=True, random_state=SEED, xgboost_params=ens_params
        ).fit(X_train, few)
        section["detectors"]["ensemble_supervised"] = claim_metrics(
            y_test, typ_test, sup.score_samples(X_test), BUDGETS
        )
        section["seconds"]["ensemble_supervised"] = round(time.perf_counter() - t1, 2)
        out[set_name] = section
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


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
    parser.add_argument(
        "--synthetic-rows",
        type=int,
        default=100_000,
        help="synthetic claims to generate (0 skips the section; --quick caps it at 4000)",
    )
    parser.add_argument(
        "--no-graph", action="store_true", help="synthetic claims: claim features only"
    )
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
    n_synthetic = min(args.synthetic_rows, 4000) if args.quick else args.synthetic_rows
    if n_synthetic > 0:
        report["synthetic_claims"] = synthetic_claims(
            n_synthetic, args.quick, max_quadratic, with_graph=not args.no_graph
        )
    else:
        report["synthetic_claims"] = {"skipped": "--synthetic-rows 0"}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
