"""The in-process index of the identity graph: entities, keys, history, edges and groups.

It is a cache of the store: every change is made by :meth:`GraphIndex.apply` (from a new
claim, or replayed from the store's rows in sequence order), so two processes that apply the
same rows hold the same index and compute the same features.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from graph.config import LINK_KINDS, PLACE_SHARED_KINDS, GraphConfig
from graph.features import KEY_FEATURE_KINDS, N_FEATURES, SHARED_COUNT_CAP, WINDOWS
from graph.resolution import BLOCKING_RULES, NAME_SUBSET, NameSketcher, block_keys

DAY = 86400.0
#: Damping of proximity passed from an entity to a claim that shares one of its values.
PROXIMITY_ALPHA = 0.85
_ZEROS_HISTORY = [0.0] * (3 * len(WINDOWS))
_ABSENT = (-1.0, 0.0)  # a key's age and other users when the claim has no value
_UNSEEN = (0.0, 0.0)  # ... when nobody used the value before
_WINDOW_SPANS = tuple(w * DAY for w in WINDOWS)
#: One claim's features packed straight into a row of the matrix (native float64): a batch
#: build's rows skip making a small array first (0.7 us a claim against 2.3 us)
_ROW = struct.Struct(f"={N_FEATURES}d")
#: The stored features grow a block of 65,536 rows (21 MiB) at a time and are never copied: a
#: matrix that doubled held the thread adding the claim 74 ms at 65,536 claims and 550 ms at
#: 1M (a server's request), with both copies in memory meanwhile.
_BLOCK_BITS = 16
_BLOCK = 1 << _BLOCK_BITS
_IN_BLOCK = _BLOCK - 1

#: Every kind a key slot may hold (the spec's kinds plus the derived ``ip_block``).
SLOT_KINDS: tuple[str, ...] = (
    "national_id",
    "name",
    "dob",
    "phone",
    "email",
    "address",
    "bank_account",
    "device_id",
    "ip",
    "ip_block",
)
KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(SLOT_KINDS)}
_NID_CODE = KIND_CODE["national_id"]
_BANK_CODE = KIND_CODE["bank_account"]
_ADDRESS_CODE = KIND_CODE["address"]
# what applying a claim does with a slot's key
_SKIP, _INDEXED, _NAME = 0, 1, 2
#: Kinds whose keys are indexed with their users (the rest serve resolution only).
INDEXED_KINDS = frozenset({"national_id", *LINK_KINDS, "ip_block"})


def _slot_action(kind: str) -> int:
    if kind in INDEXED_KINDS:
        return _INDEXED
    return _NAME if kind == "name" else _SKIP


@dataclass(frozen=True, slots=True)
class Slot:
    """One hashed key of a claim: the spec column it comes from and its kind."""

    column: str
    kind: str


def layout_for(identity_columns: dict[str, str]) -> tuple[Slot, ...]:
    """The key slots of a claim for a spec's identity columns (an IP adds its block)."""
    slots: list[Slot] = []
    for column, kind in identity_columns.items():
        if kind not in KIND_CODE or kind == "ip_block":
            raise ValueError(
                f"identity column {column!r}: kind must be one of "
                f"{', '.join(SLOT_KINDS[:-1])}, got {kind!r}"
            )
        slots.append(Slot(column, kind))
        if kind == "ip":
            slots.append(Slot(f"{column}/block", "ip_block"))
    return tuple(slots)


class HashedClaim(NamedTuple):
    """A claim as the graph sees it: no raw identity value, only keyed hashes (0 = missing)."""

    claim_id: str
    ts: float
    program: str
    amount: float
    keys: tuple[int, ...]
    nid_invalid: bool
    fingerprint: int


@dataclass(slots=True)
class Plan:
    """What adding a claim would do: the entities it matches (survivor first) and its features.

    ``by_kind`` (the claim's keys by kind) and ``blocks`` (its blocking keys) are what planning
    worked out from the claim, kept so that applying the plan need not work them out again.
    """

    matched: list[int]
    entity: int
    features: NDArray[np.float64]
    by_kind: dict[str, list[int]] | None = None
    blocks: list[tuple[int, int, int]] | None = None


class Entity:
    """One resolved person: its claims over time and the keys it has used."""

    __slots__ = (
        "id",
        "seq",
        "first_ts",
        "ts",
        "amount",
        "program",
        "keys",
        "addresses",
        "banks",
        "names",
        "blocks",
    )

    def __init__(self, entity_id: int, seq: int, first_ts: float) -> None:
        self.id = entity_id
        self.seq = seq
        self.first_ts = first_ts
        self.ts: list[float] = []
        self.amount: list[float] = []
        self.program: list[str] = []
        self.keys: list[tuple[int, int]] = []  # (kind code, key)
        self.addresses: list[int] = []
        self.banks: list[int] = []
        self.names: list[int] = []
        self.blocks: list[tuple[int, int, int]] = []


class Shared:
    """A key used by more than one entity: entity -> [first seen, last seen]."""

    __slots__ = ("first", "users")

    def __init__(self, first: float, users: dict[int, list[float]]) -> None:
        self.first = first
        self.users = users


@dataclass
class Pending:
    """Rows made since the store was last written.

    A batch build's claims (:meth:`GraphIndex.ingest`) are only counted in ``ingested``, with
    the last one's sequence number: the build makes their rows from its chunk's columns.
    """

    claims: list[tuple] = field(default_factory=list)
    entities: list[tuple] = field(default_factory=list)
    aliases: list[tuple] = field(default_factory=list)
    ingested: int = 0
    last_ingested: int = 0

    def clear(self) -> None:
        for rows in (self.claims, self.entities, self.aliases):
            rows.clear()
        self.ingested = self.last_ingested = 0

    def __len__(self) -> int:
        return self.ingested + len(self.claims) + len(self.entities) + len(self.aliases)


def _note_sharing(
    sharing: list[tuple[str, int, list[int], int]],
    kind: str,
    key: int,
    u: tuple[int, float, float] | Shared,
    mset: set[int],
    cap: int,
) -> None:
    """Note a linking key (its users ``u``, not over its kind's cap) that others than the
    claim's entities use: (kind, key, the others, users after the claim)."""
    if isinstance(u, tuple):  # one user so far (the common case): no dict made
        if u[0] not in mset:
            sharing.append((kind, key, [u[0]], 2))
        return
    n_users = len(u.users)
    if n_users > cap:
        return
    others = [o for o in u.users if o not in mset]
    if others:
        sharing.append((kind, key, others, n_users + (0 if len(others) < n_users else 1)))


class GraphIndex:
    """Entities, keys, history, edges and groups in memory.

    Parameters
    ----------
    layout : sequence of Slot
        The key slots of every claim.
    config : GraphConfig
        Caps, household size, ring size.
    sketcher : NameSketcher
        Names as keyed hashes.
    allow : set of int
        Allow-listed keys: they link nobody.
    """

    def __init__(
        self, layout: Sequence[Slot], config: GraphConfig, sketcher: NameSketcher, allow: set[int]
    ) -> None:
        self.layout = tuple(layout)
        self.config = config
        self.sketcher = sketcher
        self.allow = allow
        self.kinds = tuple(s.kind for s in self.layout)
        self.codes = tuple(KIND_CODE[k] for k in self.kinds)
        # Attach addresses first: a household explains sharing only once its address is known.
        self._apply_order = sorted(
            range(len(self.layout)), key=lambda i: self.kinds[i] != "address"
        )
        self._name_slots = [i for i, k in enumerate(self.kinds) if k == "name"]
        self._feature_slot = {
            k: self.kinds.index(k) if k in self.kinds else -1 for k in KEY_FEATURE_KINDS
        }
        # (slot, kind, whether the kind links entities) of each key feature
        self._feature_info = tuple(
            (self._feature_slot[k], k, k in LINK_KINDS) for k in KEY_FEATURE_KINDS
        )
        # slots grouped by kind, kinds in order of their first slot
        self._kind_slots = tuple(
            (k, tuple(i for i, kk in enumerate(self.kinds) if kk == k))
            for k in dict.fromkeys(self.kinds)
        )
        # the usual layout, one slot per kind: keys by kind and blocking keys from the slots
        single = all(len(slots) == 1 for _, slots in self._kind_slots)
        self._single_slots = (
            tuple((k, slots[0]) for k, slots in self._kind_slots) if single else None
        )
        self._block_slots = (
            tuple(
                (r, self.kinds.index(left), self.kinds.index(right))
                for r, (left, right) in enumerate(BLOCKING_RULES)
                if left in self.kinds and right in self.kinds
            )
            if single
            else None
        )
        # what applying does with each slot's key, in apply order: (slot, kind, code, action)
        self._attach_slots = tuple(
            (i, self.kinds[i], self.codes[i], _slot_action(self.kinds[i]))
            for i in self._apply_order
        )
        self._caps = dict(config.caps)
        self.entities: dict[int, Entity] = {}
        self.alias: dict[int, int] = {}
        self.users: dict[int, tuple[int, float, float] | Shared] = {}
        self.bank_ts: dict[int, list[float]] = {}
        self.blocks: dict[tuple[int, int, int], list[int]] = {}
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}
        self.n_edges: dict[int, int] = {}
        self.n_shared: dict[int, int] = {}
        self.pairs: set[tuple[int, int]] = set()
        self.shared_keys: set[int] = set()
        self.edges: dict[int, list[tuple[int, int, int, float]]] = {}
        self.claim_row: dict[str, int] = {}
        self.claim_entity: list[int] = []
        self.claim_fingerprint: list[int] = []
        self.claim_ts: list[float] = []
        self._blocks: list[NDArray[np.float64]] = []  # the stored features, _BLOCK rows each
        self._block_bytes: list[memoryview] = []  # the same as bytes, to pack rows into
        self.proximity: list[tuple[float, dict[int, float]]] = []
        self.seq = 0
        self.pending = Pending()

    # -- lookups ---------------------------------------------------------------------------
    def resolve(self, entity: int) -> int:
        """The surviving entity id of ``entity`` (itself unless it was merged)."""
        alias = self.alias
        while entity in alias:
            entity = alias[entity]
        return entity

    def users_of(self, key: int) -> dict[int, list[float]]:
        """Entity -> [first seen, last seen] for one key (empty when unseen)."""
        u = self.users.get(key)
        if u is None:
            return {}
        if isinstance(u, tuple):
            return {u[0]: [u[1], u[2]]}
        return u.users

    def claim_features(self, claim_id: str) -> NDArray[np.float64] | None:
        """The stored point-in-time features of an added claim."""
        row = self.claim_row.get(claim_id)
        return None if row is None else self._blocks[row >> _BLOCK_BITS][row & _IN_BLOCK]

    def feature_rows(self, rows: list[int] | NDArray[np.intp]) -> NDArray[np.float64]:
        """Stored features of many claims by row (a copy, in the order of ``rows``)."""
        rows = np.asarray(rows, dtype=np.intp)
        if len(self._blocks) == 1:
            return self._blocks[0][rows]
        out = np.empty((len(rows), N_FEATURES), dtype=np.float64)
        block = rows >> _BLOCK_BITS
        for b in np.unique(block).tolist():
            at = block == b
            out[at] = self._blocks[b][rows[at] & _IN_BLOCK]
        return out

    def feature_range(self, start: int, stop: int) -> NDArray[np.float64]:
        """Stored features of the claims at rows ``start`` to ``stop`` (exclusive; a copy)."""
        out = np.empty((max(0, stop - start), N_FEATURES), dtype=np.float64)
        at = start
        while at < stop:
            b, first = at >> _BLOCK_BITS, at & _IN_BLOCK
            n = min(stop - at, _BLOCK - first)
            out[at - start : at - start + n] = self._blocks[b][first : first + n]
            at += n
        return out

    def reserve(self, n_claims: int) -> None:
        """Make room for ``n_claims`` claims' features, a block at a time (zeroed lazily by the
        system: a build reserves its claims' at once)."""
        while len(self._blocks) << _BLOCK_BITS < n_claims:
            block = np.zeros((_BLOCK, N_FEATURES), dtype=np.float64)
            self._blocks.append(block)
            self._block_bytes.append(block.data.cast("B"))

    def find(self, e: int) -> int:
        """The group (union-find root) of entity ``e``."""
        parent = self.parent
        while e in parent and parent[e] != e:
            nxt = parent[e]
            parent[e] = parent.get(nxt, nxt)
            e = nxt
        return e

    # -- planning (read only) --------------------------------------------------------------
    def plan(self, x: HashedClaim, new_entity: int) -> Plan:
        """Resolve ``x`` to entities and compute its features, changing nothing."""
        by_kind = self.keys_by_kind(x.keys)
        blocks = self._block_keys(x.keys, by_kind)
        matched = self._match(by_kind, blocks)
        survivor = matched[0] if matched else new_entity
        features = np.asarray(self._compute(x, matched, by_kind), dtype=np.float64)
        return Plan(matched, survivor, features, by_kind, blocks)

    def keys_by_kind(self, keys: Sequence[int]) -> dict[str, list[int]]:
        """A claim's present (non-zero) keys by kind, each kind's in slot order."""
        if self._single_slots is not None:
            return {kind: [keys[i]] for kind, i in self._single_slots if keys[i]}
        by_kind: dict[str, list[int]] = {}
        for kind, slots in self._kind_slots:
            if len(slots) == 1:
                key = keys[slots[0]]
                if key:
                    by_kind[kind] = [key]
            else:
                present = [keys[i] for i in slots if keys[i]]
                if present:
                    by_kind[kind] = present
        return by_kind

    def _block_keys(
        self, keys: Sequence[int], by_kind: dict[str, list[int]]
    ) -> list[tuple[int, int, int]]:
        """:func:`graph.resolution.block_keys` of a claim, from its slots when it can."""
        if self._block_slots is None:
            return block_keys(by_kind)
        return [(r, keys[a], keys[b]) for r, a, b in self._block_slots if keys[a] and keys[b]]

    def _match(
        self, by_kind: dict[str, list[int]], blocks: list[tuple[int, int, int]]
    ) -> list[int]:
        found: set[int] = set()
        resolve = self.resolve
        nids = by_kind.get("national_id", ())
        for nid in nids:
            u = self.users.get(nid)
            if u is None:
                continue
            if isinstance(u, tuple):
                found.add(resolve(u[0]))
            else:
                for e in u.users:
                    found.add(resolve(e))
        names = by_kind.get("name", ())
        if names and blocks:
            level = self.config.name_match_level
            compare = self.sketcher.compare
            alias = self.alias
            for bk in blocks:
                for e in self.blocks.get(bk, ()):
                    root = resolve(e) if e in alias else e
                    if root in found:
                        continue
                    ent = self.entities[root]
                    if nids and self._nid_conflict(ent, nids):
                        continue
                    if any(compare(a, b) >= level for a in names for b in ent.names):
                        found.add(root)
        if len(found) < 2:
            return list(found)
        return sorted(found, key=lambda e: (self.entities[e].seq, e))

    @staticmethod
    def _nid_conflict(ent: Entity, nids: Sequence[int]) -> bool:
        theirs = [k for c, k in ent.keys if c == _NID_CODE]
        return bool(theirs) and not set(theirs) & set(nids)

    @staticmethod
    def _history(t: float, ents: list[Entity]) -> list[float]:
        """Claims, amounts and distinct programs of the entities before ``t``, per window."""
        if not ents:
            return list(_ZEROS_HISTORY)
        if len(ents) == 1:  # the common case, the same sums as below
            e = ents[0]
            ts = e.ts
            i1 = bisect_left(ts, t)
            if not i1:
                return list(_ZEROS_HISTORY)
            h = list(_ZEROS_HISTORY)  # counts, amounts, programs, a window each
            n = len(_WINDOW_SPANS)
            for j, span in enumerate(_WINDOW_SPANS):
                i0 = bisect_left(ts, t - span, 0, i1)
                if i0 < i1:
                    h[j] = float(i1 - i0)
                    h[j + n] = 0.0 + sum(e.amount[i0:i1])
                    h[j + 2 * n] = float(len(set(e.program[i0:i1])))
                    if not i0:  # every claim before t: so in each longer window too
                        for k in range(j + 1, n):
                            h[k], h[k + n], h[k + 2 * n] = h[j], h[j + n], h[j + 2 * n]
                        break
            return h
        counts: list[float] = []
        amounts: list[float] = []
        programs: list[float] = []
        ends = [(e, bisect_left(e.ts, t)) for e in ents]
        for span in _WINDOW_SPANS:
            lo = t - span
            n, s, p = 0, 0.0, set()
            for e, i1 in ends:
                i0 = bisect_left(e.ts, lo, 0, i1)
                if i1 > i0:
                    n += i1 - i0
                    s += sum(e.amount[i0:i1])
                    p.update(e.program[i0:i1])
            counts.append(float(n))
            amounts.append(s)
            programs.append(float(len(p)))
        return counts + amounts + programs

    def _compute(
        self, x: HashedClaim, matched: list[int], by_kind: dict[str, list[int]]
    ) -> list[float]:
        t = x.ts
        if len(matched) == 1:  # the common case of a known person: no list or loops made
            ent = self.entities[matched[0]]
            ents = [ent]
            f = self._history(t, ents)
            f.append(max(0.0, (t - ent.first_ts) / DAY))
            names = set(ent.names)
            names.update(by_kind.get("name", ()))
            banks = set(ent.banks)
            banks.update(by_kind.get("bank_account", ()))
        else:
            ents = [self.entities[m] for m in matched]
            # entity history over windows (earlier claims only)
            f = self._history(t, ents)
            if not ents:
                f.append(0.0)
            else:
                f.append(max(0.0, (t - min(e.first_ts for e in ents)) / DAY))
            names = set(by_kind.get("name", ()))
            banks = set(by_kind.get("bank_account", ()))
            for e in ents:
                names.update(e.names)
                banks.update(e.banks)
        f += (float(len(names)), float(len(banks)))
        mset = set(matched)
        # per key: age and other entities in 90 days
        lo90 = t - 90 * DAY
        keys, users, allow, caps = x.keys, self.users, self.allow, self._caps
        # with one slot per kind, the linking keys are the key features' keys: the ones another
        # entity uses are noted here, for the group features
        sharing: list[tuple[str, int, list[int], int]] | None = (
            [] if self._single_slots is not None else None
        )
        for i, kind, links in self._feature_info:
            key = keys[i] if i >= 0 else 0
            if not key:
                f += _ABSENT
                continue
            u = users.get(key)
            if u is None:
                f += _UNSEEN
                continue
            others = 0
            if isinstance(u, tuple):
                first = u[1]
                if u[0] not in mset and key not in allow:
                    others = int(lo90 <= u[2] < t and u[1] < t)
                    if links and sharing is not None:
                        _note_sharing(sharing, kind, key, u, mset, caps[kind])
            else:
                first = u.first
                if key not in allow:
                    # users are kept in order of last use: walk back from the latest
                    for uid, (fs, ls) in reversed(u.users.items()):
                        if ls < lo90:
                            break
                        if fs < t and ls < t and uid not in mset:
                            others += 1
                            if others >= SHARED_COUNT_CAP:
                                break
                    if links and sharing is not None:
                        _note_sharing(sharing, kind, key, u, mset, caps[kind])
            f += (max(0.0, (t - first) / DAY), float(others))
        # bank account history
        i = self._feature_slot["bank_account"]
        bank = keys[i] if i >= 0 else 0
        ts_list = self.bank_ts.get(bank) if bank else None
        if ts_list:
            i1 = bisect_left(ts_list, t)
            for span in _WINDOW_SPANS:
                f.append(float(i1 - bisect_left(ts_list, t - span)))
        else:
            f += [0.0] * len(WINDOWS)
        ub = users.get(bank) if bank else None
        if not bank:
            f.append(0.0)
        elif ub is None:
            f.append(1.0)
        elif isinstance(ub, tuple):
            f.append(1.0 if ub[0] in mset else 2.0)
        else:
            f.append(float(1 + sum(1 for e in ub.users if e not in mset)))
        f.append(1.0 if x.nid_invalid else 0.0)
        f += self._group_features(matched, mset, by_kind, sharing)
        if self.proximity:
            f += self._proximity_features(t, matched, mset, by_kind)
        else:
            f += [0.0, -1.0]
        return f

    def ring_link(
        self,
        kind: str,
        key: int,
        n_users: int,
        addresses: set[int],
        other: int,
        names: Sequence[int] = (),
    ) -> bool:
        """Whether sharing ``key`` (used by ``n_users`` entities) links an entity to ``other``.

        ``addresses`` and ``names`` are the first entity's. Allow-listed values and values over
        the kind's cap (shared places) link nobody; an address links its users only beyond
        household size; sharing inside a household is explained, and so is a phone, e-mail,
        device or IP shared at an allow-listed or over-cap address (a shared place's
        equipment), and an e-mail shared by entities with the same
        name (one person's address, the person kept apart by the resolution, e.g. after a
        typo in the date of birth).
        """
        if key in self.allow or n_users > self._caps[kind]:
            return False
        ent = self.entities.get(other)
        if kind == "email" and ent is not None and names and ent.names:
            compare = self.sketcher.compare
            if any(compare(a, b) >= NAME_SUBSET for a in names for b in ent.names):
                return False
        if kind == "address":
            return n_users > self.config.household_max
        if ent is None or not addresses:
            return True
        common = addresses.intersection(ent.addresses)
        if not common:
            return True
        limit, place_cap = self.config.household_max, self._caps["address"]
        for a in common:
            n = len(self.users_of(a))
            if n <= limit:
                return False  # a household explains whatever it shares
            if kind in PLACE_SHARED_KINDS and (a in self.allow or n > place_cap):
                return False  # a shared place's phone, tablet or router
        return True

    def _group_features(
        self,
        matched: list[int],
        mset: set[int],
        by_kind: dict[str, list[int]],
        sharing: list[tuple[str, int, list[int], int]] | None = None,
    ) -> list[float]:
        """Size, density, shared values and ring flag of the group the claim joins.

        ``sharing``: the claim's linking keys another entity uses, as
        (kind, key, the other users, users after this claim), when the caller found them.
        """
        if sharing is None:
            users, allow, caps = self.users, self.allow, self._caps
            sharing = []
            for kind in LINK_KINDS:
                for key in by_kind.get(kind, ()):
                    u = users.get(key)
                    if u is not None and key not in allow:
                        _note_sharing(sharing, kind, key, u, mset, caps[kind])
        find = self.find
        roots = {find(matched[0])} if len(matched) == 1 else {find(m) for m in matched}
        new_pairs = 0
        new_shared = 0
        if sharing:  # the claim's own addresses and names explain some sharing
            addresses = set(by_kind.get("address", ()))
            names = list(by_kind.get("name", ()))
            for m in matched:
                addresses.update(self.entities[m].addresses)
                names.extend(n for n in self.entities[m].names if n not in names)
            me = matched[0] if matched else -1
            for kind, key, others, n_after in sharing:
                linked = False
                for o in others:
                    if not self.ring_link(kind, key, n_after, addresses, o, names):
                        continue
                    linked = True
                    roots.add(find(o))
                    if (min(me, o), max(me, o)) not in self.pairs:
                        new_pairs += 1
                if linked and key not in self.shared_keys:
                    new_shared += 1
        if len(roots) == 1:
            (r,) = roots
            size = self.size.get(r, 1) + (0 if matched else 1)
            n_edges = self.n_edges.get(r, 0) + new_pairs
            n_shared = self.n_shared.get(r, 0) + new_shared
        else:
            size = sum(self.size.get(r, 1) for r in roots) + (0 if matched else 1)
            n_edges = sum(self.n_edges.get(r, 0) for r in roots) + new_pairs
            n_shared = sum(self.n_shared.get(r, 0) for r in roots) + new_shared
        density = 2.0 * n_edges / (size * (size - 1)) if size > 1 else 0.0
        in_ring = 1.0 if size >= self.config.ring_min_members else 0.0
        return [float(size), min(1.0, density), float(n_shared), in_ring]

    def _proximity_features(
        self, t: float, matched: list[int], mset: set[int], by_kind: dict[str, list[int]]
    ) -> list[float]:
        """The entity's own score, or ``alpha`` times the best score of an entity it shares a
        linking value with (so a new identity on a known ring's bank account scores at once)."""
        for as_of, scores in reversed(self.proximity):
            if as_of > t:
                continue
            score = max((scores.get(m, 0.0) for m in matched), default=0.0)
            for kind in LINK_KINDS:
                cap = self._caps[kind]
                for key in by_kind.get(kind, ()):
                    users = self.users_of(key)
                    if key in self.allow or not users or len(users) > cap:
                        continue
                    for o in users:
                        if o not in mset:
                            score = max(score, PROXIMITY_ALPHA * scores.get(o, 0.0))
            return [score, (t - as_of) / DAY]
        return [0.0, -1.0]

    # -- applying (the only place state changes) ---------------------------------------------
    def ingest(self, x: HashedClaim, new_entity: Callable[[str], int]) -> None:
        """Plan and apply ``x`` in one step (a batch build's claims, each the next in sequence):
        what :meth:`plan` then :meth:`apply` do, without the plan; ``new_entity`` numbers a new
        entity from the claim id, called only when the claim matches nobody."""
        by_kind = self.keys_by_kind(x.keys)
        blocks = self._block_keys(x.keys, by_kind)
        matched = self._match(by_kind, blocks)
        features = self._compute(x, matched, by_kind)
        entity = matched[0] if matched else new_entity(x.claim_id)
        self._add(x, matched, entity, self.seq + 1, features, blocks, ingested=True)

    def apply(self, x: HashedClaim, plan: Plan, seq: int, features: NDArray[np.float64]) -> None:
        """Add claim ``x`` as decided by ``plan`` (merges first, then the claim's keys)."""
        self._add(x, plan.matched, plan.entity, seq, features, plan.blocks)

    def _add(
        self,
        x: HashedClaim,
        matched: list[int],
        entity: int,
        seq: int,
        features: NDArray[np.float64] | list[float],
        blocks: list[tuple[int, int, int]] | None,
        *,
        ingested: bool = False,
    ) -> None:
        """Merge ``matched`` into its first, or make the new entity ``entity`` when nobody
        matched; then attach the claim (``ingested``: counted, not kept, as pending)."""
        self.seq = max(self.seq, seq)
        if matched:
            survivor = matched[0]
            for loser in matched[1:]:
                self.merge(loser, survivor, seq, record=True)
        else:
            survivor = entity
            self._new_entity(survivor, seq, x.ts)
        self._attach_claim(x, survivor, seq, features, blocks, ingested)

    def _new_entity(self, entity: int, seq: int, ts: float) -> Entity:
        ent = Entity(entity, seq, ts)
        self.entities[entity] = ent
        self.pending.entities.append((entity, seq, ts))
        return ent

    def _attach_claim(
        self,
        x: HashedClaim,
        entity: int,
        seq: int,
        features: NDArray[np.float64] | list[float],
        blocks: list[tuple[int, int, int]] | None = None,
        ingested: bool = False,
    ) -> None:
        ent = self.entities[entity]
        t = x.ts
        if not ent.ts or t >= ent.ts[-1]:
            ent.ts.append(t)
            ent.amount.append(x.amount)
            ent.program.append(x.program)
        else:
            j = bisect_left(ent.ts, t)
            ent.ts.insert(j, t)
            ent.amount.insert(j, x.amount)
            ent.program.insert(j, x.program)
        if t < ent.first_ts:
            ent.first_ts = t
        keys = x.keys
        for i, kind, code, action in self._attach_slots:
            key = keys[i]
            if key:
                if action == _INDEXED:
                    self._attach_key(ent, kind, code, key, t)
                elif action == _NAME and key not in ent.names:
                    ent.names.append(key)
        if blocks is None:
            blocks = self._block_keys(keys, self.keys_by_kind(keys))
        for bk in blocks:
            lst = self.blocks.get(bk)
            if lst is None:
                self.blocks[bk] = [entity]
                ent.blocks.append(bk)
            elif entity not in lst:
                lst.append(entity)
                ent.blocks.append(bk)
        row = len(self.claim_entity)
        b, at = row >> _BLOCK_BITS, row & _IN_BLOCK
        if b == len(self._blocks):
            self.reserve(row + 1)
        if isinstance(features, list):  # a build's claim: packed straight into its row
            _ROW.pack_into(self._block_bytes[b], at * _ROW.size, *features)
        else:
            self._blocks[b][at] = features
        self.claim_row[x.claim_id] = row
        self.claim_entity.append(entity)
        self.claim_fingerprint.append(x.fingerprint)
        self.claim_ts.append(t)
        if ingested:
            self.pending.ingested += 1
            self.pending.last_ingested = seq
        else:
            self.pending.claims.append((seq, x, entity, row))

    def _attach_key(self, ent: Entity, kind: str, code: int, key: int, t: float) -> None:
        me = ent.id
        users = self.users
        u = users.get(key)
        if code == _BANK_CODE:
            lst = self.bank_ts.get(key)
            if lst is None:
                self.bank_ts[key] = [t]
            elif t >= lst[-1]:
                lst.append(t)
            else:
                insort(lst, t)
        if u is None:
            users[key] = (me, t, t)
        elif isinstance(u, tuple):
            if u[0] == me:  # widen its [first, last] span (first <= last always)
                if t > u[2]:
                    users[key] = (me, u[1], t)
                elif t < u[1]:
                    users[key] = (me, t, u[2])
                return
            users[key] = Shared(min(u[1], t), {u[0]: [u[1], u[2]], me: [t, t]})
        else:
            span = u.users.get(me)
            if t < u.first:
                u.first = t
            if span is not None:
                if t < span[0]:
                    span[0] = t
                if t >= span[1]:  # keep users in order of last use
                    span[1] = t
                    del u.users[me]
                    u.users[me] = span
                return
            u.users[me] = [t, t]
        # a new (key, entity) pair
        ent.keys.append((code, key))
        if code == _ADDRESS_CODE:
            ent.addresses.append(key)
        elif code == _BANK_CODE:
            ent.banks.append(key)
        if u is not None and kind in LINK_KINDS and key not in self.allow:
            self._link(ent, kind, code, key, t)

    def _link(self, ent: Entity, kind: str, code: int, key: int, t: float) -> None:
        users = self.users_of(key)
        n_users = len(users)
        if n_users > self._caps[kind]:
            return
        me = ent.id
        addresses = set(ent.addresses)
        for o in users:
            if o == me:
                continue
            self.edges.setdefault(me, []).append((o, code, key, t))
            self.edges.setdefault(o, []).append((me, code, key, t))
            if self.ring_link(kind, key, n_users, addresses, o, ent.names):
                self._union(me, o)
                pair = (min(me, o), max(me, o))
                root = self.find(me)
                if pair not in self.pairs:
                    self.pairs.add(pair)
                    self.n_edges[root] = self.n_edges.get(root, 0) + 1
                if key not in self.shared_keys:
                    self.shared_keys.add(key)
                    self.n_shared[root] = self.n_shared.get(root, 0) + 1

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        for r in (ra, rb):
            if r not in self.parent:
                self.parent[r] = r
                self.size[r] = 1
        if ra == rb:
            return
        if (self.size[ra], -ra) < (self.size[rb], -rb):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size.pop(rb)
        self.n_edges[ra] = self.n_edges.get(ra, 0) + self.n_edges.pop(rb, 0)
        self.n_shared[ra] = self.n_shared.get(ra, 0) + self.n_shared.pop(rb, 0)

    def merge(self, loser: int, survivor: int, seq: int, *, record: bool) -> None:
        """Fold entity ``loser`` into ``survivor``; the loser's id stays as an alias."""
        self.alias[loser] = survivor
        if record:
            self.pending.aliases.append((loser, survivor, seq))
        lose = self.entities.pop(loser)
        keep = self.entities[survivor]
        if lose.ts:
            rows = sorted(
                zip(
                    keep.ts + lose.ts,
                    keep.amount + lose.amount,
                    keep.program + lose.program,
                    strict=True,
                ),
                key=lambda r: r[0],
            )
            keep.ts = [r[0] for r in rows]
            keep.amount = [r[1] for r in rows]
            keep.program = [r[2] for r in rows]
        keep.first_ts = min(keep.first_ts, lose.first_ts)
        held = {k for _, k in keep.keys}
        for code, key in lose.keys:
            u = self.users[key]
            if isinstance(u, tuple):
                self.users[key] = (survivor, u[1], u[2])
            else:
                span = u.users.pop(loser)
                mine = u.users.get(survivor)
                if mine is None:
                    u.users[survivor] = span
                else:
                    mine[0], mine[1] = min(mine[0], span[0]), max(mine[1], span[1])
                if len(u.users) == 1:
                    ((e, (fs, ls)),) = u.users.items()
                    self.users[key] = (e, fs, ls)
            if key not in held:
                keep.keys.append((code, key))
                held.add(key)
                if code == _ADDRESS_CODE:
                    keep.addresses.append(key)
                elif code == _BANK_CODE:
                    keep.banks.append(key)
        for name in lose.names:
            if name not in keep.names:
                keep.names.append(name)
        for bk in lose.blocks:
            lst = self.blocks[bk]
            lst.remove(loser)
            if survivor not in lst:
                lst.append(survivor)
                keep.blocks.append(bk)
        moved = self.edges.pop(loser, None)
        if moved:
            self.edges.setdefault(survivor, []).extend(e for e in moved if e[0] != survivor)
            for o in {e[0] for e in moved}:
                theirs = self.edges.get(o, [])
                theirs[:] = [(survivor, *e[1:]) if e[0] == loser else e for e in theirs]
                if o == survivor:
                    theirs[:] = [e for e in theirs if e[0] != survivor]
        if loser in self.parent or survivor in self.parent:
            self._union(loser, survivor)

    # -- replay from the store -------------------------------------------------------------
    def replay(
        self,
        claims: Iterable[tuple[int, HashedClaim, int, NDArray[np.float64]]],
        aliases: dict[int, list[tuple[int, int]]],
        entities: dict[int, tuple[int, float]],
    ) -> None:
        """Apply stored rows in sequence order (a restart, or rows from another process)."""
        for seq, x, entity, features in claims:
            for loser, survivor in aliases.get(seq, ()):
                self.merge(loser, survivor, seq, record=False)
            if entity not in self.entities:
                eseq, ets = entities.get(entity, (seq, x.ts))
                self.entities[entity] = Entity(entity, eseq, ets)
            self._attach_claim(x, entity, seq, features)
            self.seq = max(self.seq, seq)
        self.pending.clear()
