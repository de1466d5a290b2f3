"""The ``fraudlens graph`` commands: suspected rings and a claim's neighbourhood (values masked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from fraudlens.database import make_engine
from fraudlens.settings import KeyNotConfiguredError, load_settings
from graph.config import AllowList
from graph.identity import IdentityGraph
from graph.keys import KeyMismatchError

app = typer.Typer(help="The identity-link graph: rings and neighbourhoods.", no_args_is_help=True)


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr)  # built per command: width follows the terminal of the call


ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="settings YAML (env FRAUDLENS_CONFIG)")
]
AllowOpt = Annotated[
    Path | None,
    typer.Option("--allow-list", help="YAML: kind -> list of legitimately shared values"),
]


def load_allow_list(path: Path | None) -> AllowList | None:
    """An :class:`AllowList` from a YAML file mapping kinds to values (``hashed:`` for hashes)."""
    if path is None:
        return None
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(
            f"allow-list {path}: expected a mapping of kind -> values, got {type(data).__name__}"
        )
    hashed = data.pop("hashed", {}) or {}
    return AllowList(values={k: [str(v) for v in vs] for k, vs in data.items()}, hashed=hashed)


def _open(config: Path | None, allow: Path | None) -> IdentityGraph:
    settings = load_settings(config)
    try:
        key = settings.identity_key()
        return IdentityGraph.open(
            make_engine(settings.db_url), key, allow_list=load_allow_list(allow)
        )
    except (KeyNotConfiguredError, KeyMismatchError, ValueError) as exc:
        _console(stderr=True).print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
def rings(
    top: Annotated[int, typer.Option(help="how many groups, largest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    config: ConfigOpt = None,
    allow_list: AllowOpt = None,
) -> None:
    """List the largest suspected rings: members, shared attribute kinds, masked values."""
    if top < 1:
        _console(stderr=True).print(f"[bold red]error:[/] --top must be >= 1, got {top}")
        raise typer.Exit(2)
    found = _open(config, allow_list).rings(top=top)
    if as_json:
        _console().print_json(json.dumps(found))
        return
    table = Table(title=f"suspected rings (top {top})")
    table.add_column("ring", no_wrap=True)
    for col in (
        "pattern",
        "members",
        "claims",
        "amount",
        "shared kinds",
        "shared values (masked)",
        "active",
    ):
        table.add_column(col)
    for r in found:
        kinds = ", ".join(f"{k} x{n}" for k, n in r["shared_kinds"].items())
        values = ", ".join(f"{v['value']} ({v['n_members']})" for v in r["shared"][:4])
        more = f" +{len(r['shared']) - 4}" if len(r["shared"]) > 4 else ""
        active = f"{r['first_seen'][:10]} .. {r['last_seen'][:10]}"
        table.add_row(
            r["ring_id"],
            r["pattern"],
            str(r["n_members"]),
            str(r["n_claims"]),
            f"{r['amount']:,.2f}",
            kinds,
            values + more,
            active,
        )
    _console().print(table)
    if not found:
        _console().print("no suspected rings")


@app.command()
def neighbourhood(
    claim_id: Annotated[str, typer.Argument(help="an added claim")],
    max_nodes: Annotated[int, typer.Option(help="most entities shown")] = 50,
    config: ConfigOpt = None,
    allow_list: AllowOpt = None,
) -> None:
    """Print a claim's neighbourhood as JSON (entities, masked attributes, edges, claims)."""
    g = _open(config, allow_list)
    try:
        result = g.neighbourhood(claim_id, max_nodes=max_nodes)
    except KeyError as exc:
        _console(stderr=True).print(f"[bold red]error:[/] {exc.args[0]}")
        raise typer.Exit(1) from None
    _console().print_json(json.dumps(result))
