"""The demo: synthetic claims, a first bundle trained on the older part, the newer part scored into the queue."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import graph
from fraudlens import synth
from fraudlens.app import open_graph
from fraudlens.database import make_engine
from fraudlens.settings import Settings
from fraudlens.spec import RecordSpec
from review.keys import SqlKeyStore
from review.store import ReviewStore
from scoring.bundle import Bundle
from scoring.decision_log import DecisionLog
from scoring.scorer import Scorer
from training.pipeline import TrainConfig, train

#: Share of the synthetic claims (the oldest) that is history to train on; the rest is scored.
HISTORY_SHARE = 0.7


@dataclass
class DemoReport:
    """What the demo did, with the time each stage took."""

    rows: int = 0
    rejected: int = 0
    history_rows: int = 0
    scored: int = 0
    flagged: int = 0
    cases: int = 0
    precision: float = 0.0
    recall: float = 0.0
    recall_by_typology: dict[str, float] = field(default_factory=dict)
    bundle_version: str = ""
    risk_kind: str = ""
    holdout_metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    api_key: str = ""
    home: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("api_key")
        return d


@contextmanager
def _stage(report: DemoReport, name: str, progress: Callable[[str], None]) -> Iterator[None]:
    progress(name)
    t0 = time.perf_counter()
    yield
    report.seconds[name] = round(time.perf_counter() - t0, 2)


def reset_home(home: Path) -> None:
    """Clear a demo home for a fresh run; the identity key file is kept."""
    if not home.exists():
        return
    marker = home / ".fraudlens-demo"
    if not marker.exists() and any(home.iterdir()):
        raise FileExistsError(
            f"{home} exists and is not a fraudlens demo folder; choose another --home"
        )
    for p in home.iterdir():
        if p.name in ("identity.key", ".fraudlens-demo"):
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def run_demo(
    settings: Settings,
    rows: int = 200_000,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _s: None,
) -> DemoReport:
    """Run the whole flow once on synthetic claims; returns the report (serving is the CLI's)."""
    home = settings.home
    reset_home(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / ".fraudlens-demo").touch()
    report = DemoReport(home=str(home))
    spec = RecordSpec.default()
    key = settings.identity_key()

    with _stage(report, "generate", progress):
        claims = synth.generate(rows, seed=seed)
        synth.write(claims, home / "claims.parquet")
    with _stage(report, "validate", progress):
        validated = spec.validate_frame(claims)
        report.rows, report.rejected = len(claims), len(validated.rejections)
    frame = validated.accepted.sort_values(spec.timestamp_column, kind="stable").reset_index(drop=True)
    cut = int(len(frame) * HISTORY_SHARE)
    history, new = frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    report.history_rows = len(history)

    # The agency's register of legitimately shared places (care homes, shelters, public IPs):
    # in the demo it comes from the synthetic world; served processes read the same file.
    allow_path = write_allow_list(claims, home / "allow-list.yaml")
    settings = settings.model_copy(update={"graph_allow_list": allow_path})
    engine = make_engine(settings.db_url)
    with _stage(report, "identity graph (history)", progress):
        state = open_graph(engine, settings, spec.identity_kinds)
        graph_feats = state.build(spec.with_core_names(history))
    with _stage(report, "train", progress):
        result = train(
            history,
            spec,
            settings.bundles_root,
            graph_features=graph_feats,
            graph_descriptions=graph.describe_features() if hasattr(graph, "describe_features") else None,
            config=TrainConfig(review_rate=settings.policy.review_rate,
                               target_precision=settings.policy.target_precision),
        )
        (settings.bundles_root / "CURRENT").write_text(result.version, "utf-8")
        report.bundle_version = result.version
        report.holdout_metrics = result.metrics
    with _stage(report, "score new claims", progress):
        review = ReviewStore(engine)
        bundle = Bundle.load(result.bundle_dir)
        report.risk_kind = bundle.policy.risk_kind
        scorer = Scorer(bundle, state, key=key, log=DecisionLog(engine), sink=review)
        out = scorer.score_frame(new, source="batch")
    scored = out["status"] == "scored"
    flagged = (out["decision"] == "review").to_numpy()
    y = new["is_fraud"].to_numpy(dtype=np.int64)
    report.scored = int(scored.sum())
    report.flagged = int(flagged.sum())
    report.cases = review.count()
    tp = int((flagged & (y == 1)).sum())
    report.precision = round(tp / max(1, flagged.sum()), 4)
    report.recall = round(tp / max(1, y.sum()), 4)
    typ = new["typology"].astype("string").to_numpy()
    for t in sorted(set(typ) - {"none"}):
        m = typ == t
        report.recall_by_typology[str(t)] = round(float(flagged[m].mean()), 4)
    _, report.api_key = SqlKeyStore(engine).create("demo", ["score"])
    (home / "demo-report.json").write_text(json.dumps(report.as_dict(), indent=2, default=str), "utf-8")
    engine.dispose()
    return report


def write_allow_list(claims: pd.DataFrame, path: Path) -> Path:
    """Write the registered shared places of the synthetic world as an allow-list file."""
    places = claims[claims["sharing"].isin(["care_home", "shelter"])]
    public = claims[claims["sharing"] == "public_ip"]
    data = {
        "address": sorted(set(places["address"].dropna())),
        "device_id": sorted(set(places["device_id"].dropna())),
        "ip": sorted(set(places["ip"].dropna()) | set(public["ip"].dropna())),
    }
    path.write_text(yaml.safe_dump(data), "utf-8")
    path.chmod(0o600)
    return path


def example_claim(home: Path) -> dict[str, Any]:
    """One new claim for the curl example: a copy of a demo claim with a fresh id."""
    claims = pd.read_parquet(home / "claims.parquet").tail(1)
    rec = {k: v for k, v in claims.iloc[0].to_dict().items() if not _is_missing(v)}
    spec = RecordSpec.default()
    for c in spec.labels:
        rec.pop(c, None)
    rec[spec.id_column] = "DEMO-" + str(int(time.time()))
    rec[spec.timestamp_column] = pd.Timestamp(rec[spec.timestamp_column]).isoformat()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
