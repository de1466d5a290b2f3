"""The `fraudlens` command line: synth, validate, train, score, serve, keys, graph, replay, demo."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fraudlens.settings import KeyNotConfiguredError, Settings, load_settings
from fraudlens.spec import FileLevelError, RecordSpec, Validated, read_claims

app = typer.Typer(
    help="fraudlens: find fraud and anomalies in public-sector claims, with a human in the loop.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="API keys for integrating systems.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
models_app = typer.Typer(help="Model bundles: list, promote.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="settings YAML (env FRAUDLENS_CONFIG)")]
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="record spec YAML (default: the synthetic claims spec)")]


def _settings(config: Path | None, **overrides: object) -> Settings:
    return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})


def _spec(path: Path | None, settings: Settings | None = None) -> RecordSpec:
    path = path or (settings.spec_path if settings else None)
    return RecordSpec.load(path) if path else RecordSpec.default()


def _claims_to_add(path: Path, config: Path | None, spec: Path | None) -> tuple[Settings, RecordSpec, Validated]:
    """Settings, record spec and the file's claims validated, for a command that adds them to the
    identity graph; refuses a file-level error or a missing identity key before any work."""
    settings = _settings(config)
    record_spec = _spec(spec, settings)
    try:
        result = record_spec.validate_frame(read_claims(path, record_spec))
        settings.identity_key()  # refuse early without a key
    except (FileLevelError, KeyNotConfiguredError) as exc:
        raise _fail(f"{path}: {exc}") from None
    return settings, record_spec, result


def _graph_state(settings: Settings, identity_kinds: dict[str, str] | None) -> Any:
    """The configured identity graph (``graph.IdentityGraph``; ``identity_kinds`` None: those
    of the stored state), or a clear error (no key, another key, other identity columns, no
    graph yet)."""
    from fraudlens.app import open_graph
    from fraudlens.database import make_engine
    from graph import KeyMismatchError

    try:
        return open_graph(make_engine(settings.db_url), settings, identity_kinds)
    except (KeyNotConfiguredError, KeyMismatchError, ValueError) as exc:
        raise _fail(str(exc)) from None


def _without_conflicts(state: Any, record_spec: RecordSpec, result: Validated) -> tuple[Any, Any]:
    """The accepted claims the graph can take, and every rejection as a dead-letter frame: the
    record spec's, and a claim id the graph holds with other content (in file row order)."""
    import pandas as pd

    accepted, rejections = result.accepted, result.rejections_frame()
    conflicts = state.conflicts(record_spec.with_core_names(accepted))
    if not conflicts:
        return accepted, rejections
    clash = accepted[record_spec.id_column].astype(str).isin(conflicts).to_numpy()
    error = {"field": record_spec.id_column, "expected": "the content the identity graph holds for this id",
             "got": "different content (conflict)"}
    rejections = pd.concat([rejections, pd.DataFrame({
        "row": result.accepted_rows()[clash],
        "claim_id": accepted.loc[clash, record_spec.id_column].astype(str).to_numpy(),
        "reason": f"{error['field']}: expected {error['expected']}, got {error['got']}",
        "errors": json.dumps([error]),
    })], ignore_index=True).sort_values("row", kind="stable")
    return accepted.loc[~clash], rejections


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- data ---------------------------------------------------------------------------------------


@app.command()
def synth(
    out_path: Annotated[Path, typer.Option("--out", help="output .parquet or .csv")],
    rows: Annotated[int, typer.Option(help="number of claims")] = 100_000,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same file")] = 0,
    fraud_rate: Annotated[float, typer.Option(help="share of planted fraud")] = 0.02,
    bias: Annotated[str | None, typer.Option(help="plant a bias against a group, e.g. citizenship=other")] = None,
) -> None:
    """Generate synthetic public-benefit claims with planted fraud and hard negatives."""
    from fraudlens import synth as synthesis

    t0 = time.perf_counter()
    with console.status(f"generating {rows:,} claims"):
        frame = synthesis.generate(rows, seed=seed, fraud_rate=fraud_rate, bias=bias)
        synthesis.write(frame, out_path)
    dt = time.perf_counter() - t0
    n_fraud = int(frame["is_fraud"].sum())
    console.print(f"wrote {len(frame):,} claims ({n_fraud:,} planted fraud) to {out_path} in {dt:.1f} s")


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="claims file (.csv or .parquet)")],
    spec: SpecOpt = None,
    rejected: Annotated[Path | None, typer.Option(help="write rejections (row, claim id, reasons) here as CSV")] = None,
    show: Annotated[int, typer.Option(help="rejections to print")] = 20,
) -> None:
    """Check a claims file against the record spec; every row is accepted or rejected with reasons."""
    record_spec = _spec(spec)
    try:
        result = record_spec.validate_frame(read_claims(path, record_spec))
    except FileLevelError as exc:
        raise _fail(f"{path}: {exc}") from None
    out.print(json.dumps({"file": str(path), "in": result.n_in, "accepted": len(result.accepted),
                          "rejected": len(result.rejections)}))
    for r in result.rejections[:show]:
        console.print(f"row {r.row} (claim {r.claim_id}): {r.reason}")
    if rejected is not None:
        result.rejections_frame().to_csv(rejected, index=False)
    if result.rejections:
        raise typer.Exit(1)


# --- models ---------------------------------------------------------------------------------------


@app.command("train")
def train_cmd(
    path: Annotated[Path, typer.Argument(help="labelled or unlabelled claims (.csv or .parquet)")],
    config: ConfigOpt = None,
    spec: SpecOpt = None,
    promote: Annotated[bool, typer.Option(help="serve this bundle next (write bundles/CURRENT)")] = True,
) -> None:
    """Train a model bundle: identity graph over the file, features, outlier + supervised models, policy."""
    import graph
    from training.pipeline import train

    settings, record_spec, result = _claims_to_add(path, config, spec)
    state = _graph_state(settings, record_spec.identity_kinds)
    accepted, rejections = _without_conflicts(state, record_spec, result)
    if len(rejections):
        console.print(f"{len(rejections)} rows rejected (see `fraudlens validate`, `fraudlens graph build`); "
                      f"training on {len(accepted)}")
    with console.status("building the identity graph"):
        feats = state.build(record_spec.with_core_names(accepted))
    with console.status("training"):
        trained = train(accepted, record_spec, settings.bundles_root, graph_features=feats,
                        graph_descriptions=graph.describe_features() if hasattr(graph, "describe_features") else None)
    if promote:
        (settings.bundles_root / "CURRENT").write_text(trained.version, "utf-8")
    out.print(json.dumps({"bundle": str(trained.bundle_dir), "version": trained.version,
                          "metrics": trained.metrics}, indent=2, default=str))


@app.command()
def score(
    path: Annotated[Path, typer.Argument(help="claims to score (.csv or .parquet)")],
    out_path: Annotated[Path, typer.Option("--out", help="results file (.csv or .parquet)")],
    config: ConfigOpt = None,
    dead_letter: Annotated[Path | None, typer.Option(help="rejected rows with reasons (CSV); default <out>.rejected.csv")] = None,
) -> None:
    """Score a claims file with the current bundle; flagged claims go to the review queue."""
    from fraudlens.app import build_scorer
    from fraudlens.database import make_engine

    settings = _settings(config)
    engine = make_engine(settings.db_url)
    try:
        scorer, _review = build_scorer(settings, engine)
        frame = read_claims(path, scorer.spec)
        with console.status(f"scoring {len(frame):,} claims"):
            results = scorer.score_frame(frame, source="batch")
    except (FileLevelError, KeyNotConfiguredError) as exc:
        raise _fail(str(exc)) from None
    rejected = results[results["status"] == "rejected"]
    dl = dead_letter or out_path.with_suffix(".rejected.csv")
    rejected[["row", "claim_id", "rejection"]].to_csv(dl, index=False)
    kept = results[results["status"] != "rejected"]
    kept.to_parquet(out_path, index=False) if out_path.suffix == ".parquet" else kept.to_csv(out_path, index=False)
    out.print(json.dumps({"in": len(frame), "scored": int((results["status"] == "scored").sum()),
                          "retries": int((results["status"] == "retry").sum()), "rejected": len(rejected),
                          "flagged": int((results["decision"] == "review").sum()),
                          "results": str(out_path), "rejections": str(dl)}))


@app.command()
def replay(
    claim_id: Annotated[str, typer.Argument(help="a logged claim id")],
    config: ConfigOpt = None,
) -> None:
    """Re-score a logged decision with the bundle that made it and check it is reproduced exactly."""
    from fraudlens.database import make_engine
    from scoring.replay import replay_decision

    settings = _settings(config)
    outcome = replay_decision(make_engine(settings.db_url), settings.bundles_root, claim_id)
    out.print(json.dumps(outcome, indent=2, default=str))
    if not outcome["reproduced"]:
        raise typer.Exit(1)


# --- serving ----------------------------------------------------------------------------------------


@app.command()
def serve(
    config: ConfigOpt = None,
    bundle: Annotated[Path | None, typer.Option(help="bundle directory (default: bundles/CURRENT)")] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the scoring API and the review UI."""
    import os

    import uvicorn

    settings = _settings(config, bundle_dir=bundle)
    if workers > 1 and settings.db_url.startswith("sqlite"):
        raise _fail(
            f"--workers {workers} needs a database several processes can share: set "
            "FRAUDLENS_DATABASE_URL to PostgreSQL (postgresql+psycopg://...); SQLite serves one worker"
        )
    if bundle is not None:
        os.environ["FRAUDLENS_BUNDLE_DIR"] = str(bundle)
    try:
        settings.identity_key()
    except KeyNotConfiguredError as exc:
        raise _fail(str(exc)) from None
    console.print(f"serving on http://{host}:{port}  (OpenAPI at /docs)")
    uvicorn.run("fraudlens.asgi:app", host=host, port=port, workers=workers, log_level="warning")


# --- models -----------------------------------------------------------------------------------------


@models_app.command("list")
def models_list(config: ConfigOpt = None) -> None:
    """List trained bundles with their held-out metrics; * marks the one served."""
    settings = _settings(config)
    root = settings.bundles_root
    current = (root / "CURRENT").read_text("utf-8").strip() if (root / "CURRENT").is_file() else None
    table = Table("", "version", "created", "risk", "ROC-AUC", "precision", "recall")
    for manifest in sorted(root.glob("*/manifest.json")):
        m = json.loads(manifest.read_text("utf-8"))
        model = m.get("metrics", {}).get("model", {})
        table.add_row("*" if m["version"] == current else "", m["version"], m["created"][:19],
                      m["metrics"].get("risk_kind", ""), f"{model.get('roc_auc', float('nan')):.3f}",
                      f"{model.get('precision', float('nan')):.3f}", f"{model.get('recall', float('nan')):.3f}")
    out.print(table)


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="bundle version to serve")], config: ConfigOpt = None) -> None:
    """Serve another bundle: running servers switch within a second, without dropping a request."""
    from fraudlens.app import promote
    from scoring.bundle import BundleError

    settings = _settings(config)
    try:
        root = promote(settings, version)
    except (BundleError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"promoted {version} ({root})")


# --- keys -------------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who the key is for")],
    scope: Annotated[list[str], typer.Option(help="score | review | audit | admin (repeatable)")] = ["score"],  # noqa: B006
    rate_limit: Annotated[int | None, typer.Option(help="requests per minute for this key (default: api.rate_limit_per_minute)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create an API key. The secret is printed once and stored only as a hash."""
    from fraudlens.database import make_engine
    from review.keys import SqlKeyStore

    settings = _settings(config)
    if rate_limit is not None and rate_limit < 1:
        raise _fail(f"--rate-limit must be >= 1 request per minute, got {rate_limit}")
    try:
        key_id, secret = SqlKeyStore(make_engine(settings.db_url)).create(name, scope, rate_limit)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    out.print(json.dumps({"key_id": key_id, "name": name, "scopes": scope, "secret": secret}))
    console.print("store the secret now: it cannot be shown again")


@keys_app.command("list")
def keys_list(config: ConfigOpt = None) -> None:
    """List keys (ids, names, scopes, revoked or not; never secrets)."""
    from fraudlens.database import make_engine
    from review.keys import SqlKeyStore

    settings = _settings(config)
    table = Table("id", "name", "scopes", "created", "revoked")
    for k in SqlKeyStore(make_engine(settings.db_url)).list():
        table.add_row(k.id, k.name, k.scopes, str(k.created_at)[:19], str(k.revoked_at or "")[:19])
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id")], config: ConfigOpt = None) -> None:
    """Revoke a key; requests with it get 401 within seconds."""
    from fraudlens.database import make_engine
    from review.keys import SqlKeyStore

    settings = _settings(config)
    if not SqlKeyStore(make_engine(settings.db_url)).revoke(key_id):
        raise _fail(f"no active key {key_id}")
    console.print(f"revoked {key_id}")


# --- demo -------------------------------------------------------------------------------------------


@app.command()
def demo(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="serve the API and review UI afterwards")] = True,
    rows: Annotated[int, typer.Option(help="synthetic claims to generate")] = 200_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    home: Annotated[Path, typer.Option(help="demo folder (cleared each run; its key is kept)")] = Path("fraudlens-demo"),
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Synthetic claims -> identity graph -> training -> scoring -> review queue (-> API and UI)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fraudlens.demo import example_claim, run_demo

    settings = load_settings(None, home=home, demo=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("starting", total=None)
        report = run_demo(settings, rows=rows, seed=seed, progress=lambda s: bar.update(task, description=s))
    table = Table(title="fraudlens demo", show_header=False)
    for k, v in [
        ("claims generated", f"{report.rows:,} ({report.rejected} rejected)"),
        ("history (trained on)", f"{report.history_rows:,}"),
        ("new claims scored", f"{report.scored:,}"),
        ("flagged for review", f"{report.flagged:,} ({report.flagged / max(1, report.scored):.2%})"),
        ("precision of flags", f"{report.precision:.3f}"),
        ("recall of planted fraud", f"{report.recall:.3f}"),
        ("recall by typology", ", ".join(f"{k} {v:.2f}" for k, v in report.recall_by_typology.items())),
        ("model bundle", f"{report.bundle_version} (risk = {report.risk_kind})"),
        *[(f"time: {k}", f"{v:.1f} s") for k, v in report.seconds.items()],
    ]:
        table.add_row(k, v)
    out.print(table)
    out.print(f"report: {Path(report.home) / 'demo-report.json'}")
    if not serve_after:
        return
    import os

    import uvicorn

    os.environ["FRAUDLENS_HOME"] = str(home)
    os.environ["FRAUDLENS_DEMO"] = "1"
    os.environ["FRAUDLENS_GRAPH_ALLOW_LIST"] = str(home / "allow-list.yaml")
    claim = json.dumps(example_claim(home))
    typer.echo(f"\nreview queue: http://{host}:{port}/   API docs: http://{host}:{port}/docs")
    typer.echo(f"demo API key (scope score): {report.api_key}")
    typer.echo("score one claim:")
    typer.echo(
        f"curl -s -X POST http://{host}:{port}/v1/score -H 'Authorization: Bearer {report.api_key}' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(claim)}"
    )
    sys.stdout.flush()
    uvicorn.run("fraudlens.asgi:app", host=host, port=port, log_level="warning")


def graph_build(
    path: Annotated[Path, typer.Argument(help="claims file (.csv or .parquet)")],
    config: ConfigOpt = None,
    spec: SpecOpt = None,
    dead_letter: Annotated[Path | None, typer.Option(
        help="rejected rows with reasons (CSV); default <file>.rejected.csv")] = None,
) -> None:
    """Add every claim of a file to the identity graph in one batch (history before serving, a
    rebuild after a key rotation). Claims already in it keep their features; rows that fail
    the record spec, or whose id the graph holds with other content, are rejected with reasons."""
    settings, record_spec, result = _claims_to_add(path, config, spec)
    state = _graph_state(settings, record_spec.identity_kinds)
    accepted, rejections = _without_conflicts(state, record_spec, result)
    before, start = state.n_claims, time.perf_counter()
    with console.status(f"adding {len(accepted):,} claims to the identity graph"):
        state.build(record_spec.with_core_names(accepted))
    dl = dead_letter or path.with_suffix(".rejected.csv")
    rejections.to_csv(dl, index=False)
    out.print(json.dumps({
        "file": str(path), "in": result.n_in, "added": state.n_claims - before,
        "already_in_graph": len(accepted) - (state.n_claims - before), "rejected": len(rejections),
        "entities": state.n_entities, "graph_version": state.version,
        "seconds": round(time.perf_counter() - start, 1), "rejections": str(dl),
    }))


def refresh_proximity(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="the snapshot's time, ISO 8601 with a zone (default: now)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Recompute closeness to confirmed fraud from investigators' dispositions (run it daily).

    The seeds are the entities of cases closed as confirmed fraud. Claims with an event time at
    or after the snapshot's time see it; running servers take it up with their next claim.
    """
    from datetime import UTC, datetime

    from fraudlens.database import make_engine
    from review.store import ReviewStore

    settings = _settings(config)
    try:
        when = datetime.now(UTC) if as_of is None else datetime.fromisoformat(as_of)
    except ValueError:
        raise _fail(f"--as-of must be an ISO 8601 time, got {as_of!r}") from None
    if when.tzinfo is None:
        raise _fail(f"--as-of must carry a time zone (e.g. {as_of}Z), got {as_of!r}")
    graph_state = _graph_state(settings, None)
    seeds = ReviewStore(make_engine(settings.db_url)).confirmed_fraud_entities()
    n = graph_state.refresh_fraud_proximity(seeds, when)
    out.print(f"fraud proximity as of {when.isoformat()}: {len(seeds)} entities confirmed as "
              f"fraud, {n} entities scored (graph state {graph_state.version})")


def _mount_graph_commands() -> None:
    try:
        from graph.commands import app as graph_app
    except ImportError:  # the graph CLI lands with the identity-graph issue
        return
    # the root wires the review queue's dispositions into the graph (graph/ cannot import it)
    graph_app.command("build")(graph_build)
    graph_app.command("refresh-proximity")(refresh_proximity)
    app.add_typer(graph_app, name="graph",
                  help="The identity-link graph: build, rings, neighbourhoods, proximity to fraud.")


_mount_graph_commands()
