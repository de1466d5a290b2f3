"""Rings (groups of entities joined by unexplained sharing) and proximity to confirmed fraud.

A *ring* is a connected group of at least ``ring_min_members`` distinct entities joined by
shared attributes that legitimate sharing does not explain, sharing at least two kinds of
value or a bank account. Values on the allow-list and values used by more entities than the
kind's cap (a shared place) link nobody; neither does sharing inside a household (an address
of at most ``household_max`` entities), nor a phone, e-mail, device or IP shared at one address.
A group whose members all took up the values they share within ``burst_hours`` is reported
with pattern ``burst`` (a velocity burst from one device), else ``ring``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import networkx as nx
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from graph.config import LINK_KINDS, GraphConfig
from graph.index import KIND_CODE, SLOT_KINDS, GraphIndex

_LINK_CODES = frozenset(KIND_CODE[k] for k in LINK_KINDS)


def mask(kind: str, key: int) -> str:
    """How an attribute value is shown: its kind and the first 8 hex digits of its keyed hash.

    >>> mask("bank_account", 0x3FA2C1D4E5F60718)
    'bank_account:3fa2c1d4'
    """
    return f"{kind}:{key:016x}"[: len(kind) + 9]


def ring_label(members: set[int] | list[int]) -> str:
    """A ring's id: ``R`` and the hex of its oldest-numbered member (stable while it lives)."""
    return f"R{min(members):016x}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def linked(index: GraphIndex, config: GraphConfig, entity: int) -> Iterator[tuple[int, int, int]]:
    """The entities ``entity`` is linked to for ring purposes: ``(other, kind code, key)``."""
    ent = index.entities[entity]
    addresses = set(ent.addresses)
    for code, key in ent.keys:
        if code not in _LINK_CODES or key in index.allow:
            continue
        users = index.users_of(key)
        n = len(users)
        if n < 2:
            continue
        kind = SLOT_KINDS[code]
        for o in users:
            if o != entity and index.ring_link(kind, key, n, addresses, o, ent.names):
                yield o, code, key


def component(index: GraphIndex, config: GraphConfig, entity: int, limit: int = 10_000) -> set[int]:
    """The group of ``entity`` through ring links (breadth first, at most ``limit`` entities)."""
    seen = {entity}
    frontier = [entity]
    while frontier and len(seen) < limit:
        nxt: list[int] = []
        for e in frontier:
            for o, _, _ in linked(index, config, e):
                if o not in seen:
                    seen.add(o)
                    nxt.append(o)
        frontier = nxt
    return seen


def find_rings(index: GraphIndex, config: GraphConfig, top: int = 20) -> list[dict[str, Any]]:
    """Suspected rings over the whole current state, largest first.

    Connected components by ``scipy.sparse.csgraph`` over ring links (union-find serves the
    per-claim features; this batch pass sees the final state, with caps and households
    applied to every value).

    Returns
    -------
    list of dict
        ``ring_id``, ``n_members``, ``members`` (entity ids), ``shared`` (masked values with
        kind and the number of members using each), ``shared_kinds`` (kind -> values),
        ``n_claims``, ``amount``, ``first_seen``, ``last_seen``.
    """
    ids: dict[int, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for e in index.entities:
        for o, _, _ in linked(index, config, e):
            if o > e:
                rows.append(ids.setdefault(e, len(ids)))
                cols.append(ids.setdefault(o, len(ids)))
    if not ids:
        return []
    n = len(ids)
    adj = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    n_comp, labels = connected_components(adj, directed=False)
    entity_of = np.fromiter(ids.keys(), dtype=np.int64, count=n)
    sizes = np.bincount(labels, minlength=n_comp)
    big = np.flatnonzero(sizes >= config.ring_min_members)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], big)
    groups = [
        set(entity_of[order[b : b + sizes[c]]].tolist()) for b, c in zip(bounds, big, strict=True)
    ]
    groups.sort(key=lambda g: (-len(g), min(g)))
    out: list[dict[str, Any]] = []
    for g in groups:
        ring = describe_ring(index, config, g)
        if len(ring["shared_kinds"]) >= 2 or "bank_account" in ring["shared_kinds"]:
            out.append(ring)
            if len(out) >= top:
                break
    return out


def describe_ring(index: GraphIndex, config: GraphConfig, members: set[int]) -> dict[str, Any]:
    """A JSON-able description of one group: members, masked shared values, claims."""
    shared: dict[int, tuple[int, set[int]]] = {}
    for e in members:
        for o, code, key in linked(index, config, e):
            if o in members:
                shared.setdefault(key, (code, set()))[1].update((e, o))
    kinds: dict[str, int] = {}
    values = []
    for key, (code, users) in sorted(shared.items(), key=lambda kv: (-len(kv[1][1]), kv[0])):
        kind = SLOT_KINDS[code]
        kinds[kind] = kinds.get(kind, 0) + 1
        values.append({"kind": kind, "value": mask(kind, key), "n_members": len(users)})
    ents = [index.entities[e] for e in members]
    first = min(e.first_ts for e in ents)
    last = max((e.ts[-1] for e in ents if e.ts), default=first)
    # when did the members take up the values they share? all within hours: a burst
    joined = [
        index.users_of(key)[e][0]
        for key, (_, users) in shared.items()
        for e in users
        if e in index.users_of(key)
    ]
    span = (max(joined) - min(joined)) if joined else 0.0
    return {
        "ring_id": ring_label(members),
        "pattern": "burst" if span <= config.burst_hours * 3600 else "ring",
        "n_members": len(members),
        "members": sorted(f"E{e:016x}" for e in members),
        "shared_kinds": kinds,
        "shared": values,
        "n_claims": sum(len(e.ts) for e in ents),
        "amount": float(sum(sum(e.amount) for e in ents)),
        "first_seen": _iso(first),
        "last_seen": _iso(last),
    }


def fraud_proximity(
    index: GraphIndex, seeds: list[int], config: GraphConfig, alpha: float = 0.85
) -> dict[int, float]:
    """Personalised PageRank from confirmed-fraud entities, scaled so the top score is 1.

    The graph is every stored edge (all link kinds, weighted by ``config.weights``; allow-listed
    and shared-place values made no edges). Entities with no path to a seed score 0 and are
    left out.
    """
    seeds = [s for s in seeds if s in index.entities]
    if not seeds:
        return {}
    g = nx.Graph()
    g.add_nodes_from(seeds)
    weights = config.weights
    for e, edges in index.edges.items():
        for o, code, _, _ in edges:
            a, b = index.resolve(e), index.resolve(o)
            if a == b:
                continue
            w = weights.get(SLOT_KINDS[code], 0.0)
            if w <= 0:
                continue
            old = g.get_edge_data(a, b)
            if old is None or old["weight"] < w:
                g.add_edge(a, b, weight=w)
    # only the part of the graph reachable from a seed can score
    reach = set().union(*(nx.node_connected_component(g, s) for s in seeds))
    sub = g.subgraph(reach)
    pr = nx.pagerank(sub, alpha=alpha, personalization=dict.fromkeys(seeds, 1.0), weight="weight")
    top = max(pr.values())
    return {e: s / top for e, s in pr.items() if s / top > 1e-6}
