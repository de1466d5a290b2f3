"""Scorer benchmark: a micro-batch's CPU in process, with and without the identity graph's part.

What the API's worker spends on each micro-batch it scores (``Scorer.score_many``), without
HTTP, wrk or the event loop: thread CPU time per batch of 1, 4 and 12 claims (the sizes a
worker's micro-batches take from a quiet server to 1,000 requests/s), on the set-up of
``benchmarks/api.py`` (same bundle, database and claim bodies; ``--workdir`` shares it).

Two scorers run side by side in one process, each on its own copy of the set-up database, and
take the same batches in turn, so that both see the same host at the same moment (this host's
speed moves by a quarter within minutes; alternating in one process cancels that out):

- ``full``: the scorer as ``fraudlens serve`` builds it;
- ``graph_free``: the same, but the identity graph's ``add_many`` answers from features
  computed beforehand by a third scorer on the same batches: no hashing, lock-and-sync read,
  planning, applying or graph rows. What is left is the claim features, the models, the
  explanations, the decision log, the cases and the transaction.

The difference is what the identity graph costs a batch (its Python work and its rows' share
of the inserts and the commit), the bound on what a faster graph could save. Prints one JSON
document. Examples::

    .venv/bin/python benchmarks/scorer.py --workdir /tmp/apib --reuse
    .venv/bin/python benchmarks/scorer.py --quick       # tiny (the smoke test)
"""

# ruff: noqa: E402  (sys.path is fixed before the imports, see below)

from __future__ import annotations

import sys
from pathlib import Path

# This folder holds graph.py and detectors.py: run as a script, it comes first on sys.path and
# would shadow the ``graph`` and ``detectors`` packages. Drop it.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import time
from collections.abc import Sequence
from typing import Any


def _api_module() -> Any:
    """benchmarks/api.py (its set-up is this benchmark's), loaded by path."""
    spec = importlib.util.spec_from_file_location("fraudlens_api_benchmark", HERE / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AnsweredGraph:
    """An identity graph whose ``add_many`` answers from features computed beforehand (claim id
    -> features); everything else is the wrapped graph's."""

    def __init__(self, graph: Any, answers: dict[str, Any]) -> None:
        self._graph = graph
        self._answers = answers

    def add_many(self, claims: Sequence[Any], conn: Any = None) -> list[Any]:
        return [self._answers[c.claim_id] for c in claims]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)


def open_scorer(info: dict[str, Any], place: Path, pristine: Path) -> Any:
    """A scorer as ``fraudlens serve`` builds it, on its own copy of the set-up's home, with
    the server's background checkpoints of the write-ahead log (``scorer.checkpointer``; stop
    it when done)."""
    from fraudlens.app import build_scorer
    from fraudlens.database import WalCheckpointer, make_engine, sqlite_file
    from fraudlens.settings import load_settings

    if place.exists():
        shutil.rmtree(place)
    shutil.copytree(
        info["home"], place, ignore=shutil.ignore_patterns("fraudlens.db", "fraudlens.db-*")
    )
    shutil.copyfile(pristine, place / "fraudlens.db")
    settings = load_settings(None, home=place, demo=True)
    engine = make_engine(settings.db_url, background_checkpoints=True)
    scorer, _ = build_scorer(settings, engine)
    path = sqlite_file(engine)
    assert path is not None  # the set-up database is a SQLite file
    scorer.checkpointer = WalCheckpointer(path, engine)
    scorer.checkpointer.start()
    return scorer


def load_claims(scorer: Any, bodies: str, n: int, tag: str) -> list[Any]:
    """The first ``n`` benchmark bodies as validated claims, each with a new claim id."""
    out = []
    with open(bodies, encoding="utf-8") as fh:
        for i, line in zip(range(n), fh, strict=False):
            out.append(scorer.validate(json.loads(line.replace("__CLAIM_ID__", f"{tag}-{i}"))))
    if len(out) < n:
        raise SystemExit(f"the set-up has {len(out)} claim bodies, {n} needed: raise --rows")
    return out


def _summary(seconds: list[float], size: int) -> dict[str, float]:
    ms = sorted(1e3 * s for s in seconds)
    return {
        "batch_ms_median": round(statistics.median(ms), 3),
        "batch_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 3),
        "claim_ms_median": round(statistics.median(ms) / size, 3),
    }


def measure(
    info: dict[str, Any], workdir: Path, size: int, batches: int, warm: int
) -> dict[str, Any]:
    """Thread CPU per batch of ``size`` claims: the full scorer, a second full one (the A/A
    control) and the graph-free one take each batch in turn, in an order that rotates."""
    pristine = workdir / "fraudlens.db.pristine"
    names = ("full", "full_again", "graph_free", "answers")
    places = [workdir / f"scorer-{size}-{name}" for name in names]
    full, again, free, answers = (open_scorer(info, p, pristine) for p in places)
    claims = load_claims(full, info["bodies"], (warm + batches) * size, f"S{size}")
    groups = [claims[i : i + size] for i in range(0, len(claims), size)]
    # the features the graph gives each claim, batch by batch as the others will take them
    known: dict[str, Any] = {}
    real = answers.graph
    for group in groups:
        with real.writing() as conn:
            known.update(zip((c.claim_id for c in group), real.add_many(group, conn), strict=True))
    free.graph = AnsweredGraph(free.graph, known)
    gc.collect()
    gc.freeze()  # as a server does after start-up
    times: dict[str, list[float]] = {"full": [], "full_again": [], "graph_free": []}
    turns = [("full", full), ("full_again", again), ("graph_free", free)]
    for k, group in enumerate(groups):
        for name, scorer in turns[k % 3 :] + turns[: k % 3]:
            t0 = time.thread_time()
            scorer.score_many(group)
            if k >= warm:
                times[name].append(time.thread_time() - t0)
    for scorer in (full, again, free, answers):
        scorer.checkpointer.stop()
        scorer.log.engine.dispose()
    for p in places:
        shutil.rmtree(p, ignore_errors=True)
    out: dict[str, Any] = {"batches": batches, **{n: _summary(t, size) for n, t in times.items()}}
    f, g = out["full"]["batch_ms_median"], out["graph_free"]["batch_ms_median"]
    out["graph_share_of_batch"] = round((f - g) / f, 3) if f > 0 else None
    # two scorers with the same code can differ in one process (19-23 % once, 2026-12-07):
    # this is how far apart they were in this run, the error bar of the share above
    out["full_again_vs_full"] = round(out["full_again"]["batch_ms_median"] / f, 3) if f > 0 else None
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=None, help="set-up cache (default: a temp dir)")
    p.add_argument("--reuse", action="store_true", help="keep and reuse the set-up in --workdir")
    p.add_argument("--sizes", default="1,4,12", help="comma-separated batch sizes")
    p.add_argument("--claims", type=int, default=1800, help="claims measured per batch size")
    p.add_argument("--warm", type=int, default=20, help="unmeasured batches first, per size")
    p.add_argument("--rows", type=int, default=60_000, help="synthetic claims generated")
    p.add_argument("--history", type=int, default=20_000, help="oldest claims trained on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    a = p.parse_args(argv)
    if a.quick:
        a.rows, a.history, a.claims, a.warm = min(a.rows, 1500), min(a.history, 1200), 48, 2
    sizes = [int(s) for s in a.sizes.split(",") if s]
    api = _api_module()
    a.workdir, tmp = api.workdir_or_temp(a.workdir, "fraudlens-scorerbench-")
    load_start = os.getloadavg()
    info = api.prepare(a.workdir, a.rows, a.history, a.seed, a.reuse)
    try:
        results = {
            str(size): measure(info, a.workdir, size, max(1, a.claims // size), a.warm)
            for size in sizes
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {
        "benchmark": "scorer",
        "config": {"sizes": sizes, "claims": a.claims, "warm_batches": a.warm, "quick": a.quick},
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_at_start": load_start,
            "load_at_end": os.getloadavg(),
        },
        "setup": {k: v for k, v in info.items() if k != "api_key"},
        "results": results,
        "notes": [
            "thread CPU time of Scorer.score_many per micro-batch, medians over the batches",
            "full, full_again and graph_free take the same batches in turn (the order rotates) "
            "in one process, each on its own copy of the set-up database",
            "full_again is the same scorer as full: full_again_vs_full is this run's A/A ratio, "
            "the method's own error",
            "graph_free: the identity graph's add_many answered from features computed beforehand "
            "(no hashing, lock-and-sync read, planning, applying or graph rows)",
        ],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
