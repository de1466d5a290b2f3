"""Identity-graph benchmark: ring recall/precision, batch build, incremental add, feature lookup.

Prints one JSON document. Examples::

    .venv/bin/python benchmarks/graph.py                      # everything, full sizes
    .venv/bin/python benchmarks/graph.py --parts quality --seed 777
    .venv/bin/python benchmarks/graph.py --quick              # tiny sizes (the smoke test)
"""

# ruff: noqa: E402  (sys.path is fixed before the imports, see below)

from __future__ import annotations

import sys
from pathlib import Path

# This file is named after the package it measures: run as a script, its folder comes first on
# sys.path and ``import graph`` would import this file. Drop that folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from fraudlens.spec import Claim
from fraudlens.synth import generate
from graph import AllowList, IdentityGraph

IDENTITY = {
    "national_id": "national_id",
    "full_name": "name",
    "date_of_birth": "dob",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "bank_account": "bank_account",
    "device_id": "device_id",
    "ip": "ip",
}
KEY = b"benchmark-key-benchmark-key-0123"
LINKING = ["bank_account", "phone", "device_id", "address", "ip", "email"]


def registered_places(X: pd.DataFrame) -> AllowList:
    """The allow-list an agency keeps: its care homes and shelters, and public (library) IPs."""
    places = X[X["sharing"].isin(["care_home", "shelter"])]
    public = X[X["sharing"] == "public_ip"]
    return AllowList(
        values={
            "address": sorted(set(places["address"].dropna())),
            "device_id": sorted(set(places["device_id"].dropna())),
            "ip": sorted(set(places["ip"].dropna()) | set(public["ip"].dropna())),
        }
    )


def _engine(path: Path) -> sa.Engine:
    if path.exists():
        path.unlink()
    return sa.create_engine(f"sqlite:///{path}")


def ring_quality(X: pd.DataFrame, g: IdentityGraph) -> dict[str, Any]:
    """Recall of planted ring members and precision of flagged groups."""
    entity = X["claim_id"].map(g.entity_of)
    by_entity = (
        pd.DataFrame(
            {
                "entity": entity,
                "ring": X["typology"] == "ring",
                "fraud": X["is_fraud"] == 1,
                "sharing": X["sharing"],
            }
        )
        .groupby("entity")
        .agg(ring=("ring", "any"), fraud=("fraud", "any"), sharing=("sharing", "first"))
    )
    rings = g.rings(top=10**9)
    flagged = {m: r["pattern"] for r in rings for m in r["members"]}
    ring_persons = X.loc[X["typology"] == "ring"].groupby("person_id")["claim_id"].first()
    ring_entities = ring_persons.map(g.entity_of)
    found = ring_entities.isin(list(flagged))
    members = by_entity.loc[list(flagged)] if flagged else by_entity.iloc[:0]
    ring_pattern = [m for m, p in flagged.items() if p == "ring"]
    legit_groups = 0
    for r in rings:
        share = by_entity.loc[r["members"], "fraud"].mean()
        if share < 0.5:
            legit_groups += 1
    # for reference: planted ring members sharing a raw value with another (before normalisation)
    R = X[X["typology"] == "ring"]
    sharing_any = pd.Series(False, index=ring_persons.index)
    for c in LINKING:
        n = R.dropna(subset=[c]).groupby(c)["person_id"].nunique()
        shared = set(n[n > 1].index)
        hit = R[R[c].isin(shared)]["person_id"].unique()
        sharing_any |= sharing_any.index.isin(hit)
    # entity resolution against the true person behind each claim
    pairs = pd.DataFrame({"entity": entity, "person": X["person_id"]})
    persons_per_entity = pairs.groupby("entity")["person"].nunique()
    entities_per_person = pairs.groupby("person")["entity"].nunique()
    return {
        "resolution": {
            "persons": int(len(entities_per_person)),
            "entities": int(len(persons_per_entity)),
            "entities_of_one_person": float((persons_per_entity == 1).mean()),
            "persons_in_one_entity": float((entities_per_person == 1).mean()),
        },
        "planted_ring_members": int(len(ring_persons)),
        "planted_rings": int(R["ring_id"].nunique()),
        "recall": float(found.mean()) if len(found) else None,
        "ring_members_sharing_a_raw_value": float(sharing_any.mean()) if len(sharing_any) else None,
        "flagged_groups": len(rings),
        "flagged_groups_ring_pattern": sum(r["pattern"] == "ring" for r in rings),
        "flagged_members": len(flagged),
        "precision_vs_planted_rings": float(by_entity.loc[ring_pattern, "ring"].mean())
        if ring_pattern
        else None,
        "precision_vs_planted_fraud_all_patterns": float(members["fraud"].mean())
        if len(members)
        else None,
        "flagged_groups_mostly_legitimate": legit_groups,
        "flagged_members_by_sharing": {
            str(k): int(v)
            for k, v in members.loc[~members["fraud"], "sharing"].value_counts().items()
        },
    }


def quality(rows: int, seed: int, workdir: Path) -> dict[str, Any]:
    X = generate(rows, seed=seed)
    out: dict[str, Any] = {"rows": rows, "seed": seed}
    for name, allow in (("with_allow_list", registered_places(X)), ("without_allow_list", None)):
        g = IdentityGraph.open(_engine(workdir / f"q-{name}.db"), KEY, IDENTITY, allow_list=allow)
        g.build(X)
        out[name] = ring_quality(X, g)
        g.engine.dispose()
    return out


def _claims(X: pd.DataFrame) -> list[Claim]:
    records = X[["claim_id", "submitted_at", "program", "amount", *IDENTITY]].to_dict("records")
    out = []
    for r in records:
        identity = {c: (None if pd.isna(r[c]) else str(r[c])) for c in IDENTITY}
        ts = r["submitted_at"].to_pydatetime()
        out.append(Claim(r["claim_id"], ts, r["program"], float(r["amount"]), identity, {}, {}))
    return out


def batch_child(parquet: str, db: str) -> dict[str, Any]:
    """One batch build in this (fresh) process: time and peak memory."""
    X = pd.read_parquet(parquet)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = IdentityGraph.open(_engine(Path(db)), KEY, IDENTITY)
    t0, c0 = time.perf_counter(), time.process_time()
    F = g.build(X)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    helper = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "helper_cpu_seconds": helper.ru_utime + helper.ru_stime,
        "peak_rss_mib": peak / 1024,
        "helper_peak_rss_mib": helper.ru_maxrss / 1024,
        "rss_before_build_mib": rss_before / 1024,
        "entities": len(g.index.entities),
        "features_shape": list(F.shape),
    }


def batch(rows: int, seed: int, repeats: int, workdir: Path) -> dict[str, Any]:
    parquet = workdir / f"claims-{rows}.parquet"
    generate(rows, seed=seed).to_parquet(parquet)
    runs = []
    for i in range(repeats):
        cmd = [sys.executable, __file__, "--child-build", str(parquet), str(workdir / f"b{i}.db")]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        runs.append(json.loads(done.stdout))
    return {
        "rows": rows,
        "repeats": repeats,
        "seconds_median": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in runs),
        "helper_cpu_seconds_median": statistics.median(r["helper_cpu_seconds"] for r in runs),
        "peak_rss_mib_median": statistics.median(r["peak_rss_mib"] for r in runs),
        "helper_peak_rss_mib_median": statistics.median(r["helper_peak_rss_mib"] for r in runs),
        "load_average_1min_at_end": os.getloadavg()[0],
        "runs": runs,
    }


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def online(
    base_rows: int, n_add: int, n_lookup: int, seed: int, repeats: int, workdir: Path
) -> dict[str, Any]:
    """Incremental add (with its database write) and feature lookup, per claim."""
    X = generate(base_rows + n_add, seed=seed)
    base, new = X.iloc[:base_rows], X.iloc[base_rows:]
    claims = _claims(new)
    add_runs, look_runs = [], []
    for i in range(repeats):
        g = IdentityGraph.open(_engine(workdir / f"o{i}.db"), KEY, IDENTITY)
        g.build(base)
        times, cpu = [], []
        for c in claims:
            t0, c0 = time.perf_counter(), time.thread_time()
            g.add(c)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
        add_runs.append((statistics.median(times), _pct(times, 99), _pct(cpu, 99)))
        sample = claims[: min(n_lookup, len(claims))]
        looks, look_cpu = [], []
        for _ in range(max(1, n_lookup // max(1, len(sample)))):
            for c in sample:
                t0, c0 = time.perf_counter(), time.thread_time()
                g.features(c)
                looks.append((time.perf_counter() - t0) * 1e3)
                look_cpu.append((time.thread_time() - c0) * 1e3)
        look_runs.append((statistics.median(looks), _pct(looks, 99), _pct(look_cpu, 99)))
        g.engine.dispose()
    return {
        "base_rows": base_rows,
        "claims_added": n_add,
        "repeats": repeats,
        "database": "sqlite (file)",
        "add_ms_median": statistics.median(r[0] for r in add_runs),
        "add_ms_p99": statistics.median(r[1] for r in add_runs),
        "lookup_ms_median": statistics.median(r[0] for r in look_runs),
        "lookup_ms_p99": statistics.median(r[1] for r in look_runs),
        "add_cpu_ms_p99": statistics.median(r[2] for r in add_runs),
        "lookup_cpu_ms_p99": statistics.median(r[2] for r in look_runs),
        "note": "wall-clock p99 includes waits for the CPU on a shared machine; *_cpu_* is thread CPU time",
        "load_average_1min_at_end": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="quality,batch,online")
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--quality-rows", type=int, default=200_000)
    p.add_argument("--batch-rows", type=int, default=1_000_000)
    p.add_argument("--base-rows", type=int, default=50_000)
    p.add_argument("--adds", type=int, default=2_000)
    p.add_argument("--lookups", type=int, default=5_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny sizes, to prove the benchmark runs")
    p.add_argument("--child-build", nargs=2, metavar=("PARQUET", "DB"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child_build:
        result = batch_child(*a.child_build)
        print(json.dumps(result))
        return result
    if a.quick:
        a.quality_rows, a.batch_rows, a.base_rows, a.adds, a.lookups, a.repeats = (
            3000,
            2000,
            1000,
            50,
            100,
            1,
        )
    parts = set(a.parts.split(","))
    out: dict[str, Any] = {"benchmark": "graph", "cpus": os.cpu_count(), "quick": a.quick}
    with tempfile.TemporaryDirectory(prefix="fraudlens-graph-bench-") as tmp:
        workdir = Path(tmp)
        if "quality" in parts:
            out["quality"] = quality(a.quality_rows, a.seed, workdir)
        if "batch" in parts:
            out["batch"] = batch(a.batch_rows, a.seed, a.repeats, workdir)
        if "online" in parts:
            out["online"] = online(a.base_rows, a.adds, a.lookups, a.seed, a.repeats, workdir)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
