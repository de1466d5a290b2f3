"""The neighbourhood of a claim's entity, for the case page to draw (attributes masked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from graph.config import LINK_KINDS
from graph.index import KIND_CODE, SLOT_KINDS
from graph.rings import _iso, component, mask, ring_label
from graph.store import claims_table

if TYPE_CHECKING:
    from graph.identity import IdentityGraph

_LINK_CODES = frozenset(KIND_CODE[k] for k in LINK_KINDS)


def neighbourhood(graph: IdentityGraph, claim_id: str, max_nodes: int = 50) -> dict[str, Any]:
    """Entities linked to the claim's entity, the masked values they share, and their claims.

    Parameters
    ----------
    graph : IdentityGraph
        An open graph.
    claim_id : str
        An added claim.
    max_nodes : int
        Most entities returned (nearest first).

    Returns
    -------
    dict
        ``claim_id``, ``entity_id``, ``ring_id`` (None unless the entity is in a suspected
        ring), ``nodes`` (entities and masked attributes), ``edges`` (``uses`` from an entity
        to an attribute, ``shares_<kind>`` between two entities, each with its time),
        ``claims`` (the claims of the entities shown), ``truncated``.
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
    index = graph.index
    row = index.claim_row.get(claim_id)
    if row is None:
        raise KeyError(f"expected the id of a claim in the identity graph, got {claim_id!r}")
    centre = index.resolve(index.claim_entity[row])
    # breadth first over every stored edge, nearest entities first
    order = [centre]
    depth = {centre: 0}
    i = 0
    truncated = False
    while i < len(order):
        e = order[i]
        i += 1
        for o, _, _, _ in index.edges.get(e, ()):
            o = index.resolve(o)
            if o in depth:
                continue
            if len(order) >= max_nodes:
                truncated = True
                break
            depth[o] = depth[e] + 1
            order.append(o)
    shown = set(order)
    group = component(index, graph.config, centre)
    in_ring = len(group) >= graph.config.ring_min_members
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    attributes: dict[int, dict[str, Any]] = {}
    for e in order:
        ent = index.entities[e]
        nodes.append(
            {
                "id": f"E{e:016x}",
                "type": "entity",
                "depth": depth[e],
                "n_claims": len(ent.ts),
                "first_seen": _iso(ent.first_ts),
                "in_ring": in_ring and e in group,
            }
        )
        for code, key in ent.keys:
            if code not in _LINK_CODES:
                continue
            users = index.users_of(key)
            if e != centre and len(users) < 2:
                continue
            kind = SLOT_KINDS[code]
            if key not in attributes:
                attributes[key] = {
                    "id": mask(kind, key),
                    "type": "attribute",
                    "kind": kind,
                    "n_entities": len(users),
                    "allow_listed": key in index.allow,
                    "shared_place": len(users) > graph.config.caps[kind],
                }
            edges.append(
                {
                    "type": "uses",
                    "source": f"E{e:016x}",
                    "target": mask(kind, key),
                    "since": _iso(users[e][0]),
                }
            )
    seen_pairs: set[tuple[int, int, int]] = set()
    for e in order:
        for o, code, key, t in index.edges.get(e, ()):
            o = index.resolve(o)
            if o not in shown or o == e:
                continue
            pair = (min(e, o), max(e, o), key)
            if pair in seen_pairs:
                continue
            seen_pairs.add(pair)
            kind = SLOT_KINDS[code]
            edges.append(
                {
                    "type": f"shares_{kind}",
                    "source": f"E{pair[0]:016x}",
                    "target": f"E{pair[1]:016x}",
                    "via": mask(kind, key),
                    "since": _iso(t),
                }
            )
    nodes.extend(attributes.values())
    return {
        "claim_id": claim_id,
        "entity_id": f"E{centre:016x}",
        "ring_id": ring_label(group) if in_ring else None,
        "nodes": nodes,
        "edges": edges,
        "claims": _claims_of(graph, shown),
        "truncated": truncated,
    }


def _claims_of(graph: IdentityGraph, entities: set[int]) -> list[dict[str, Any]]:
    index = graph.index
    ids_of: dict[int, int] = {e: e for e in entities}
    for loser in index.alias:
        root = index.resolve(loser)
        if root in entities:
            ids_of[loser] = root
    out: list[dict[str, Any]] = []
    q = sa.select(
        claims_table.c.claim_id,
        claims_table.c.entity_id,
        claims_table.c.ts,
        claims_table.c.program,
        claims_table.c.amount,
    ).where(claims_table.c.entity_id.in_(list(ids_of)))
    with graph.engine.connect() as conn:
        for r in conn.execute(q):
            out.append(
                {
                    "claim_id": r.claim_id,
                    "entity_id": f"E{ids_of[r.entity_id]:016x}",
                    "submitted_at": _iso(r.ts),
                    "program": r.program,
                    "amount": r.amount,
                }
            )
    out.sort(key=lambda c: (c["submitted_at"], c["claim_id"]))
    return out
