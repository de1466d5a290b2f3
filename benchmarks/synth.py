"""Speed of the synthetic claims generator: rows per second and peak memory, as JSON."""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import numpy as np

from fraudlens.synth import SHARING, TYPOLOGIES, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds = []
    X = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        X = generate(args.rows, seed=args.seed)
        seconds.append(time.perf_counter() - t0)
    assert X is not None
    median = statistics.median(seconds)
    counts = X["typology"].value_counts()
    sharing = X.loc[X["is_fraud"] == 0, "sharing"].value_counts()
    doc = {
        "benchmark": "synth.generate",
        "rows": args.rows,
        "seed": args.seed,
        "runs": len(seconds),
        "seconds": [round(s, 3) for s in seconds],
        "seconds_median": round(median, 3),
        "rows_per_second": round(args.rows / median),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fraud_rate": round(float(X["is_fraud"].mean()), 5),
        "typology_counts": {t: int(counts.get(t, 0)) for t in TYPOLOGIES},
        "all_typologies_present": bool(all(counts.get(t, 0) > 0 for t in TYPOLOGIES)),
        "hard_negative_rows": {s: int(sharing.get(s, 0)) for s in SHARING if s != "none"},
        "persons": int(X["person_id"].nunique()),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
