"""API latency benchmark: the real server under wrk, next to a constant-answer FastAPI ceiling.

Starts ``fraudlens serve --workers N`` on 127.0.0.1 (the way users start it) and, in the same
run, a minimal FastAPI app that parses the same claim body, checks the same header and returns
a constant answer of the same shape (the framework ceiling). Drives both with wrk (bounded in
time): saturation (no pacing) and paced rates; every request is a new claim id. Prints one JSON
document with medians over ``--repeats``, the ratios to the ceiling, and the checks.
Examples::

    .venv/bin/python benchmarks/api.py                       # full: 20 s per point, 3 repeats
    .venv/bin/python benchmarks/api.py --workdir /tmp/apib --reuse --duration 10 --repeats 1
    .venv/bin/python benchmarks/api.py --quick               # tiny (the smoke test)

The ceiling is served by ``uvicorn --factory api:ceiling_app`` from this folder.
"""

# ruff: noqa: E402  (sys.path is fixed before the imports, see below)

from __future__ import annotations

import sys
from pathlib import Path

# This folder holds graph.py and detectors.py: run as a script, it comes first on sys.path and
# would shadow the ``graph`` and ``detectors`` packages. Drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from pydantic import BaseModel, ConfigDict

HERE = Path(__file__).resolve().parent
LUA = HERE / "_api_wrk.lua"
CEILING_KEY = "flk_ceiling_0000_constant-key-for-the-ceiling"
#: The scoring API's rate limit is per key and per worker (6,000/minute by default): the
#: benchmark lifts it, since it measures scoring, not the limiter turning requests away.
RATE_LIMIT_PER_MINUTE = 100_000_000
#: The checks of issue 5 (load generator on the same 2 cores), reported per worker count.
CHECK_P99_MS_AT_1000 = 10.0
CHECK_SATURATION_RPS = 1500.0
GOAL_SATURATION_RPS = 2000.0
#: The ceiling (constant endpoint, 1 worker) on the machine the issue measured: the checks'
#: limits are set for a host of that speed. Each check reports this run's ceiling beside it.
ISSUE_CEILING_RPS = 4070.0


# --- the constant ceiling -------------------------------------------------------------------------


class ClaimIn(BaseModel):
    """The claim body as the ceiling parses it: the record spec's fields, extras kept."""

    model_config = ConfigDict(extra="allow")

    claim_id: str
    submitted_at: str
    program: str
    amount: float
    national_id: str | None = None
    full_name: str
    date_of_birth: str
    phone: str | None = None
    email: str | None = None
    address: str
    bank_account: str
    device_id: str | None = None
    ip: str | None = None
    household_size: int
    declared_income: float
    dependents: int | None = None
    months_at_address: int | None = None
    channel: str
    region: str
    employment_status: str | None = None
    age_band: str | None = None
    sex: str | None = None
    citizenship: str | None = None
    disability: str | None = None
    preferred_language: str | None = None


class ReasonOut(BaseModel):
    """One reason, as in the scoring answer."""

    code: str
    sentence: str
    contribution: float
    value: float | None = None
    source: str


class ScoreOut(BaseModel):
    """The scoring answer's shape (scoring.api.ScorePublic)."""

    claim_id: str
    risk: float
    risk_kind: str
    decision: str
    priority: int
    reasons: list[ReasonOut]
    model_version: str
    graph_version: str
    detector_scores: dict[str, float]
    case_id: str | None = None
    explanation: dict[str, Any] | None = None
    scored_at: str | None = None


def ceiling_app() -> Any:
    """A FastAPI app with the scoring endpoint's shape that returns a constant (uvicorn factory)."""
    from fastapi import FastAPI, Header, HTTPException

    answer = {
        "risk": 0.0123,
        "risk_kind": "probability",
        "decision": "clear",
        "priority": 3,
        "reasons": [],
        "model_version": "ceiling",
        "graph_version": "g-0",
        "detector_scores": {
            "outlier": -0.41,
            "outlier_risk": 0.37,
            "supervised": 0.004,
            "rules": 0.0,
        },
        "case_id": None,
        "explanation": None,
        "scored_at": "2026-11-23T05:48:29.123456+00:00",
    }
    app = FastAPI(title="fraudlens benchmark ceiling")

    @app.post("/v1/score", response_model=ScoreOut)
    async def score(claim: ClaimIn, authorization: str | None = Header(None)) -> Any:  # noqa: B008
        if authorization != f"Bearer {CEILING_KEY}":
            raise HTTPException(
                401, detail={"error": "unauthorized", "detail": "bad key", "problems": []}
            )
        return {"claim_id": claim.claim_id, **answer}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


# --- set-up: claims, bundle, key, bodies ------------------------------------------------------------


PRISTINE_DB = "fraudlens_bench_pristine"
RUN_DB = "fraudlens_bench_run"


def _pg_url(admin_url: str, database: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + database


def _pg_recreate(admin_url: str, database: str, template: str | None = None) -> None:
    """Drop and create ``database`` (from ``template``) on the PostgreSQL server of ``admin_url``."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for db in filter(None, (database, template)):
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
            ), {"d": db})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()


def workdir_or_temp(
    workdir: Path | None, prefix: str
) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """``workdir`` (created if missing), or a new temporary folder and its handle for clean-up."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir, tmp


def prepare(workdir: Path, rows: int, history: int, seed: int, reuse: bool,
            postgres: str | None = None) -> dict[str, Any]:
    """Synthetic claims, a bundle trained on the older ones (as the demo does), a key, the bodies.

    Cached in ``workdir``: with ``reuse`` and a finished set-up there, nothing is redone.
    """
    done = workdir / "setup.json"
    if reuse and done.is_file():
        info = json.loads(done.read_text("utf-8"))
        if (info.get("rows"), info.get("history"), info.get("seed"), info.get("postgres")) == (
            rows, history, seed, postgres
        ):
            info["reused"] = True
            return info
    import pandas as pd

    import graph
    from fraudlens import synth
    from fraudlens.database import make_engine
    from fraudlens.settings import load_settings
    from fraudlens.spec import RecordSpec
    from review.keys import SqlKeyStore
    from training.pipeline import TrainConfig, train

    home = workdir / "home"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    t0 = time.perf_counter()
    if postgres:
        _pg_recreate(postgres, PRISTINE_DB)
        settings = load_settings(None, home=home, demo=True, database_url=_pg_url(postgres, PRISTINE_DB))
    else:
        settings = load_settings(None, home=home, demo=True)
    spec = RecordSpec.default()
    claims = synth.generate(rows, seed=seed)
    frame = spec.validate_frame(claims).accepted
    frame = frame.sort_values(spec.timestamp_column, kind="stable").reset_index(drop=True)
    older, newer = (
        frame.iloc[:history].reset_index(drop=True),
        frame.iloc[history:].reset_index(drop=True),
    )
    engine = make_engine(settings.db_url)
    state = graph.IdentityGraph.open(engine, settings.identity_key(), spec.identity_kinds)
    graph_feats = state.build(older)
    # As the demo trains (fraudlens/demo.py); one XGBoost thread only speeds set-up on shared cores.
    result = train(
        older,
        spec,
        settings.bundles_root,
        graph_features=graph_feats,
        graph_descriptions=graph.describe_features()
        if hasattr(graph, "describe_features")
        else None,
        config=TrainConfig(
            review_rate=settings.policy.review_rate,
            target_precision=settings.policy.target_precision,
            xgboost_threads=1,
        ),
    )
    (settings.bundles_root / "CURRENT").write_text(result.version, "utf-8")
    _, api_key = SqlKeyStore(engine).create("benchmark", ["score"])
    engine.dispose()
    if not postgres:
        shutil.copyfile(home / "fraudlens.db", workdir / "fraudlens.db.pristine")

    bodies = workdir / "bodies.jsonl"
    with bodies.open("w", encoding="utf-8") as fh:
        for rec in newer.to_dict("records"):
            body = {
                k: _plain(v) for k, v in rec.items() if k not in spec.labels and not _missing(v)
            }
            body[spec.id_column] = "__CLAIM_ID__"
            body[spec.timestamp_column] = pd.Timestamp(rec[spec.timestamp_column]).isoformat()
            fh.write(json.dumps(body) + "\n")
    info = {
        "rows": rows,
        "history": history,
        "seed": seed,
        "n_bodies": len(newer),
        "bundle_version": result.version,
        "api_key": api_key,
        "home": str(home),
        "bodies": str(bodies),
        "setup_seconds": round(time.perf_counter() - t0, 1),
        "postgres": postgres,
        "reused": False,
    }
    done.write_text(json.dumps(info, indent=2), "utf-8")
    return info


def _missing(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _plain(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v.item() if hasattr(v, "item") else v


# --- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process group on 127.0.0.1, ready once ``/readyz`` answers 200."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float) -> float:
        t0 = time.perf_counter()
        url = f"http://127.0.0.1:{self.port}/readyz"
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}: {self._tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"{self.name} not ready on port {self.port} after {timeout:.0f} s: {self._tail()}"
        )

    def worker_pids(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)] or [
            self.proc.pid
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._fh.close()

    def _tail(self) -> str:
        self._fh.flush()
        return self.log.read_text("utf-8", errors="replace")[-2000:]


def setting_env(settings: list[str]) -> dict[str, str]:
    """``--setting`` values (``api.gc_settle_seconds=0``) as the server's environment variables.

    >>> setting_env(["api.gc_settle_seconds=0", "api.micro_batch=16"])
    {'FRAUDLENS_API__GC_SETTLE_SECONDS': '0', 'FRAUDLENS_API__MICRO_BATCH': '16'}
    """
    env = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--setting takes NAME=VALUE (e.g. api.gc_settle_seconds=0), got {item!r}")
        env["FRAUDLENS_" + name.strip().upper().replace(".", "__")] = value
    return env


def start_fraudlens(
    info: dict[str, Any], workdir: Path, workers: int, tag: str, settings: dict[str, str] | None = None
) -> Server:
    """``fraudlens serve`` on a fresh copy of the set-up database (state from earlier points is
    dropped), with ``settings`` (``--setting``'s variables, :func:`setting_env`) on top of the
    benchmark's own."""
    home = Path(info["home"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDLENS_")}
    if info.get("postgres"):
        _pg_recreate(info["postgres"], RUN_DB, template=PRISTINE_DB)
        env["FRAUDLENS_DATABASE_URL"] = _pg_url(info["postgres"], RUN_DB)
    else:
        for suffix in ("", "-wal", "-shm"):
            (home / f"fraudlens.db{suffix}").unlink(missing_ok=True)
        shutil.copyfile(workdir / "fraudlens.db.pristine", home / "fraudlens.db")
    env.update(
        FRAUDLENS_HOME=str(home),
        FRAUDLENS_DEMO="1",
        FRAUDLENS_API__RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT_PER_MINUTE),
    )
    env.update(settings or {})
    exe = Path(sys.executable).parent / "fraudlens"
    argv = [
        str(exe) if exe.exists() else (shutil.which("fraudlens") or "fraudlens"),
        "serve",
        "--workers",
        str(workers),
        "--port",
        str(port := free_port()),
        "--host",
        "127.0.0.1",
    ]
    return Server("fraudlens", argv, env, port, workdir / f"server-{tag}.log")


def start_ceiling(workdir: Path, workers: int, tag: str) -> Server:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--app-dir",
        str(HERE),
        "api:ceiling_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port := free_port()),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    return Server("ceiling", argv, dict(os.environ), port, workdir / f"ceiling-{tag}.log")


# --- wrk ---------------------------------------------------------------------------------------------


def run_wrk(
    port: int,
    key: str,
    bodies: str,
    *,
    connections: int,
    threads: int,
    duration: float,
    rate: float,
    tag: str,
) -> dict[str, Any]:
    """One wrk run (bounded by ``duration``); returns its summary with load averages around it."""
    env = dict(
        os.environ,
        BENCH_BODIES=bodies,
        BENCH_TAG=tag,
        BENCH_KEY=key,
        BENCH_RATE=str(rate),
        BENCH_THREADS=str(threads),
        BENCH_PATH="/v1/score",
    )
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}/v1/score",
    ]
    load_before = os.getloadavg()
    cpu_before = host_cpu_ticks()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    cpu_after = host_cpu_ticks()
    load_after = os.getloadavg()
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk gave no summary (rc {proc.returncode}): {proc.stdout[-1000:]} {proc.stderr[-1000:]}"
        )
    raw = json.loads(line[len("BENCH_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    socket_errors = sum(v for k, v in raw["errors"].items() if k != "status")
    out = {
        "rps": round(raw["requests"] / seconds, 1),
        "requests": raw["requests"],
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p99_9_ms": lat["p99_9"] / 1000,
        "max_ms": lat["max"] / 1000,
        "mean_ms": round(lat["mean"] / 1000, 3),
        "non_200": raw["non_200"],
        "non_200_share": round(raw["non_200"] / max(1, raw["responses"]), 6),
        "socket_errors": socket_errors,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "host_steal_share": steal_share(cpu_before, cpu_after),
    }
    if raw["non_200"]:
        out["first_non_200"] = {
            "status": raw["first_non_200_status"],
            "body": raw["first_non_200_body"],
        }
    if rate:
        out["target_rps"] = rate
    return out


def host_cpu_ticks() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``'s ``cpu`` line, Linux), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    return [int(x) for x in fields[1:]] if fields and fields[0] == "cpu" else None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of the machine's CPU time its hypervisor gave to other guests between two
    :func:`host_cpu_ticks` readings ("steal"): on a shared virtual machine the same code runs
    slower while it is high, so a slow point can be told from slow code. None off Linux.

    >>> steal_share([100, 0, 50, 800, 0, 0, 0, 10], [300, 0, 100, 900, 0, 0, 0, 60])
    0.125
    """
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    delta = [b - a for a, b in zip(before[:8], after[:8], strict=True)]
    total = sum(delta)
    return round(delta[7] / total, 4) if total > 0 else None


def projected_saturation_rps(saturation_rps: float, ceiling_rps: float) -> float:
    """The requests a second this run's saturation point would reach on a host as fast as the
    issue's: scaled by this host's ceiling against the issue's 4,070 req/s (an estimate: our
    work taken to scale with the host as the constant endpoint's does; from hosts at 0.7-0.8
    times it came out a tenth above what a host at the issue's speed measured). Against the
    1,000 req/s of the p99 check it says how much throughput headroom a worker would have there,
    not its latency: at 0.58 of saturation the p99 was 24 ms there. (A worker's busy share
    at 1,000 req/s does not: it scores whatever has arrived as soon as the last batch ends, so
    it is busy nearly all the time at any rate past a few hundred, and its batches grow with the
    load; its capacity is what it reaches at saturation.)

    >>> projected_saturation_rps(2445.0, 5311.0)  # on a host 1.30 times as fast
    1873.7
    """
    return round(saturation_rps * ISSUE_CEILING_RPS / ceiling_rps, 1)


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes ``pids`` have used (every thread); a process
    that is gone counts 0."""
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


#: The ``/metrics`` samples (name, ``generation`` label) a point reads before and after (with
#: one worker): the claims and micro-batches of ``POST /v1/score``, the worker's full garbage
#: collections (Python's count includes each settle's), and its settles of the heap
#: (``fraudlens.heap``) with their seconds.
TOTALS = {
    "claims": ("fraudlens_score_batch_claims_sum", None),
    "batches": ("fraudlens_score_batch_claims_count", None),
    "full_collections": ("python_gc_collections_total", "2"),
    "settles": ("fraudlens_gc_settle_seconds_count", None),
    "settle_seconds": ("fraudlens_gc_settle_seconds_sum", None),
}


def _server_totals(port: int) -> dict[str, float] | None:
    """The server's :data:`TOTALS` from ``/metrics`` (those it does not export are left out);
    None when it cannot be read."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError):
        return None
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[tuple[str, str | None], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, sample.labels.get("generation")] = sample.value
    found = {name: samples.get(key) for name, key in TOTALS.items()}
    return {name: value for name, value in found.items() if value is not None}


def server_view(
    before: tuple[float, dict[str, float] | None],
    after: tuple[float, dict[str, float] | None],
    requests: int,
    seconds: float,
    workers: int,
) -> dict[str, Any]:
    """What the server spent on one point: its worker processes' CPU (cores busy, and
    milliseconds a request) and, with one worker, the mean claims a micro-batch of
    ``POST /v1/score`` held, the full garbage collections Python ran (each stops the worker;
    with the heap settled they are short) and the settles of the heap with their mean
    milliseconds. With several workers ``/metrics`` answers from one of them, so these are
    left out."""
    cpu = after[0] - before[0]
    out: dict[str, Any] = {
        "server_cores_busy": round(cpu / seconds, 3) if seconds > 0 else None,
        "server_cpu_ms_per_request": round(1e3 * cpu / requests, 3) if requests else None,
    }
    if workers != 1 or before[1] is None or after[1] is None:
        return out
    first, last = before[1], after[1]
    change = {k: last[k] - first[k] for k in TOTALS if k in first and k in last}
    if "claims" in change and "batches" in change:
        batches = change["batches"]
        out["claims_per_batch"] = round(change["claims"] / batches, 2) if batches > 0 else None
    if "full_collections" in change:  # Python counts a settle's collection among them
        out["full_collections"] = int(change["full_collections"] - change.get("settles", 0))
    if "settles" in change:
        out["heap_settles"] = int(change["settles"])
        if change["settles"] > 0 and "settle_seconds" in change:
            out["heap_settle_ms_mean"] = round(1e3 * change["settle_seconds"] / change["settles"], 2)
    return out


# --- the run -----------------------------------------------------------------------------------------


def points(quick: bool, rates: list[float], conns: list[int]) -> list[dict[str, Any]]:
    """The measured points: saturation at each connection count, then paced rates at 16 connections."""
    out = [
        {"name": f"saturation_c{c}", "connections": c, "rate": 0.0, "ceiling": True} for c in conns
    ]
    for r in rates:
        out.append(
            {
                "name": f"rate_{int(r)}",
                "connections": 16,
                "rate": r,
                "ceiling": quick or r == max(rates),
            }
        )
    return out


_MEDIAN_KEYS = (
    "rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p99_9_ms",
    "max_ms",
    "mean_ms",
    "non_200_share",
)


#: The server's side of a point (fraudlens only; see :func:`server_view`).
_SERVER_KEYS = ("server_cores_busy", "server_cpu_ms_per_request", "claims_per_batch",
                "full_collections", "heap_settles", "heap_settle_ms_mean")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 3) for k in _MEDIAN_KEYS}
    for k in _SERVER_KEYS:
        values = [r[k] for r in runs if r.get(k) is not None]
        if values:
            out[k] = round(statistics.median(values), 3)
    out["non_200"] = sum(r["non_200"] for r in runs)
    out["socket_errors"] = sum(r["socket_errors"] for r in runs)
    if "target_rps" in runs[0]:
        out["target_rps"] = runs[0]["target_rps"]
    out["load_1min"] = [r["load_before"][0] for r in runs]
    steal = [r["host_steal_share"] for r in runs if r.get("host_steal_share") is not None]
    out["host_steal_share"] = round(statistics.median(steal), 4) if steal else None
    out["runs"] = runs
    return out


def versions() -> dict[str, str]:
    import importlib.metadata as md

    v = {"python": platform.python_version()}
    for pkg in (
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "xgboost",
        "numpy",
        "sqlalchemy",
        "xgboost-cpu",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            v[pkg] = md.version(pkg)
    for pkg in ("uvloop", "httptools"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = "absent"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    v["wrk"] = (
        (wrk.stdout + wrk.stderr).splitlines()[0].strip() if (wrk.stdout + wrk.stderr) else "?"
    )
    return v


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=None, help="set-up cache (default: a temp dir)")
    p.add_argument("--reuse", action="store_true", help="keep and reuse the set-up in --workdir")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per point")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--rates", default="250,500,1000", help="paced rates, requests/s")
    p.add_argument("--connections", default="16,32", help="saturation connection counts")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--rows", type=int, default=60_000, help="synthetic claims generated")
    p.add_argument(
        "--history", type=int, default=20_000, help="oldest claims trained on; the rest are bodies"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--postgres",
        default=None,
        help="PostgreSQL admin URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres); "
        "required for more than one worker, which fraudlens refuses on SQLite",
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes, ~3 s points, 1 repeat, 1 worker"
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a fraudlens setting for the server (repeatable), e.g. api.gc_settle_seconds=0",
    )
    a = p.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk)")
    if a.quick:
        a.duration, a.repeats = min(a.duration, 3.0), 1
        a.rows, a.history = min(a.rows, 4_000), min(a.history, 3_000)
        if a.workers == "1,2":
            a.workers = "1"
        if a.rates == "250,500,1000":
            a.rates = "250"
        if a.connections == "16,32":
            a.connections = "16"
    server_settings = setting_env(a.setting)  # a malformed --setting stops here, before any set-up
    workers = [int(w) for w in a.workers.split(",")]
    if max(workers) > 1 and not a.postgres:
        raise SystemExit("more than one worker needs --postgres URL: fraudlens serves one worker on SQLite")
    rates = [float(r) for r in a.rates.split(",") if r]
    conns = [int(c) for c in a.connections.split(",") if c]

    a.workdir, tmp = workdir_or_temp(a.workdir, "fraudlens-apibench-")
    load_start = os.getloadavg()
    info = prepare(a.workdir, a.rows, a.history, a.seed, a.reuse, a.postgres)
    plan = points(a.quick, rates, conns)
    runs: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    starts: list[dict[str, Any]] = []
    run_id = f"{int(time.time())}{os.getpid() % 1000:03d}"
    warm = 1.0 if a.quick else 3.0
    try:
        for rep in range(a.repeats):
            for w in workers:
                tag = f"w{w}-r{rep}"
                ours = start_fraudlens(info, a.workdir, w, tag, server_settings)
                ceil = start_ceiling(a.workdir, w, tag)
                servers = {"fraudlens": ours, "ceiling": ceil}
                try:
                    ready = {n: round(s.wait_ready(300), 2) for n, s in servers.items()}
                    starts.append({"workers": w, "repeat": rep, "ready_seconds": ready})
                    keys = {"fraudlens": info["api_key"], "ceiling": CEILING_KEY}
                    for n, s in servers.items():  # warm-up, not measured
                        run_wrk(
                            s.port,
                            keys[n],
                            info["bodies"],
                            connections=16,
                            threads=a.threads,
                            duration=warm,
                            rate=0.0,
                            tag=f"{run_id}-warm-{tag}-{n}",
                        )
                    pids = ours.worker_pids()
                    for pt in plan:
                        for n, s in servers.items():
                            if n == "ceiling" and not pt["ceiling"]:
                                continue
                            if n == "fraudlens":
                                before = (_cpu_seconds(pids), _server_totals(s.port))
                            t0 = time.perf_counter()
                            r = run_wrk(
                                s.port,
                                keys[n],
                                info["bodies"],
                                connections=pt["connections"],
                                threads=a.threads,
                                duration=a.duration,
                                rate=pt["rate"],
                                tag=f"{run_id}-{tag}-{pt['name']}",
                            )
                            if n == "fraudlens":
                                after = (_cpu_seconds(pids), _server_totals(s.port))
                                seconds = time.perf_counter() - t0
                                r.update(server_view(before, after, r["requests"], seconds, w))
                            runs.setdefault((w, n, pt["name"]), []).append(r)
                            time.sleep(0.5)
                finally:
                    for s in servers.values():
                        s.stop()
    finally:
        if tmp is not None and not a.reuse:
            tmp.cleanup()

    results: dict[str, Any] = {}
    for w in workers:
        block: dict[str, Any] = {"fraudlens": {}, "ceiling": {}, "ratios": {}}
        for (ww, n, name), rs in runs.items():
            if ww == w:
                block[n][name] = median_of(rs)
        for name, ours in block["fraudlens"].items():
            c = block["ceiling"].get(name)
            if c:
                block["ratios"][name] = {
                    "rps_vs_ceiling": round(ours["rps"] / c["rps"], 3) if c["rps"] else None,
                    "p99_vs_ceiling": round(ours["p99_ms"] / c["p99_ms"], 2)
                    if c["p99_ms"]
                    else None,
                    "p50_vs_ceiling": round(ours["p50_ms"] / c["p50_ms"], 2)
                    if c["p50_ms"]
                    else None,
                }
        sat = [v for k, v in block["fraudlens"].items() if k.startswith("saturation")]
        if sat:
            best = max(sat, key=lambda v: v["rps"])
            block["saturation_rps"] = best["rps"]
            block["saturation_host_steal_share"] = best.get("host_steal_share")
        results[f"workers_{w}"] = block

    # The issue names no worker count ("2 cores, load generator on the same machine"): the
    # checks are reported for every count measured.
    checks: dict[str, Any] = {}
    top_rate = f"rate_{int(max(rates))}" if rates else None
    for w in workers:
        block = results.get(f"workers_{w}", {})
        ours = block.get("fraudlens", {})
        mine: dict[str, Any] = {}
        if top_rate == "rate_1000" and top_rate in ours:
            p99 = ours[top_rate]["p99_ms"]
            mine["p99_at_1000rps_ms"] = {
                "value": p99,
                "limit": CHECK_P99_MS_AT_1000,
                "pass": p99 <= CHECK_P99_MS_AT_1000,
                "margin_ms": round(CHECK_P99_MS_AT_1000 - p99, 3),
                "achieved_rps": ours[top_rate]["rps"],
                "host_steal_share": ours[top_rate].get("host_steal_share"),
            }
        if "saturation_rps" in block:
            rps = block["saturation_rps"]
            mine["saturation_rps"] = {
                "value": rps,
                "limit": CHECK_SATURATION_RPS,
                "goal": GOAL_SATURATION_RPS,
                "pass": rps >= CHECK_SATURATION_RPS,
                "margin_rps": round(rps - CHECK_SATURATION_RPS, 1),
                "host_steal_share": block.get("saturation_host_steal_share"),
            }
        ceiling_sat = [v["rps"] for k, v in block.get("ceiling", {}).items() if k.startswith("saturation")]
        if mine and ceiling_sat:
            # how fast this host ran against the issue's: limits are absolute, hosts are not
            top = max(ceiling_sat)
            host = {"ceiling_rps": top, "vs_issue_ceiling": round(top / ISSUE_CEILING_RPS, 2)}
            for check in mine.values():
                check.update(host)
            if "p99_at_1000rps_ms" in mine and "saturation_rps" in block:
                # the load at the p99 check against what the worker takes at most, here and
                # projected to the issue's host
                p99_check, rps = mine["p99_at_1000rps_ms"], block["saturation_rps"]
                p99_check["load_vs_saturation"] = round(1000.0 / rps, 2) if rps > 0 else None
                p99_check["projected_saturation_rps_on_issue_host"] = projected_saturation_rps(rps, top)
        if mine:
            checks[f"workers_{w}"] = mine
    all_runs = [r for rs in runs.values() for r in rs]
    report = {
        "benchmark": "api",
        "config": {
            "duration_s": a.duration,
            "repeats": a.repeats,
            "workers": workers,
            "rates": rates,
            "saturation_connections": conns,
            "rate_connections": 16,
            "wrk_threads": a.threads,
            "quick": a.quick,
            "rate_limit_per_minute": RATE_LIMIT_PER_MINUTE,
            "settings": a.setting,
        },
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_at_start": load_start,
            "load_at_end": os.getloadavg(),
            "versions": versions(),
        },
        "setup": {k: v for k, v in info.items() if k != "api_key"},
        "server_starts": starts,
        "results": results,
        "checks": checks,
        "non_200_total": sum(r["non_200"] for r in all_runs),
        "socket_errors_total": sum(r["socket_errors"] for r in all_runs),
        "notes": [
            "every request carries a new claim_id (thread id + counter), so none is a retry",
            "paced rates are closed-loop (wrk delay() per thread schedule, 16 connections): latency is "
            "measured from the actual send, so coordinated omission is possible; compare achieved rps",
            "the ceiling is FastAPI + pydantic parsing the same body, checking the same header and "
            "returning a constant of the same shape, under the same uvicorn worker count",
            "server and wrk share the machine's cores; figures are medians over repeats; "
            "load_1min lists the 1-minute load average before each run",
            "each server start restores the set-up database, so every repeat starts from the same state",
            "server_cores_busy / server_cpu_ms_per_request: CPU of the fraudlens worker processes "
            "(every thread) over the point, measured from wall-clock time around wrk; "
            "claims_per_batch: mean claims a micro-batch of POST /v1/score held (one worker only)",
            "full_collections: the worker's full garbage collections on Python's own schedule "
            "during the point; heap_settles / heap_settle_ms_mean: its settles of the heap "
            "(fraudlens.heap; a full collection of what is not frozen, then gc.freeze) and their "
            "mean milliseconds (one worker only)",
        ],
    }
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
