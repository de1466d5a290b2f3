"""The identity graph: hash a claim's identity values, resolve its entity, keep its history."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, Self, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from numpy.typing import NDArray

from graph import store
from graph.config import AllowList, GraphConfig
from graph.features import GRAPH_FEATURES
from graph.fingerprint import fingerprint, fingerprint_many
from graph.hashing import FrameHasher
from graph.helper import BuildHelper, helper_database
from graph.index import GraphIndex, HashedClaim, Plan, layout_for
from graph.keys import KeyedHasher, KeyMismatchError
from graph.normalise import ip_block, national_id_valid, normalise
from graph.resolution import NameSketcher

logger = logging.getLogger(__name__)

#: Raw values whose keys one process remembers (in memory only) for repeated lookups.
VALUE_CACHE_SIZE = 262_144
#: Claims hashed and written per step of a batch build (bounds the memory of a build).
BUILD_CHUNK = 100_000


class ClaimLike(Protocol):
    """What the graph reads from a claim (``fraudlens.spec.Claim`` has it)."""

    @property
    def claim_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def program(self) -> str: ...
    @property
    def amount(self) -> float: ...
    @property
    def identity(self) -> Mapping[str, str | None]: ...


class ClaimConflictError(ValueError):
    """A claim id already in the graph arrived with different content."""


def entity_label(entity: int) -> str:
    """The public form of an entity id (``E`` and 16 hex digits)."""
    return f"E{entity:016x}"


def entity_number(label: str) -> int:
    """The inverse of :func:`entity_label`."""
    if len(label) != 17 or label[0] != "E":
        raise ValueError(f"entity id must look like 'E' and 16 hex digits, got {label!r}")
    return int(label[1:], 16)


def new_entity_number(claim_id: str) -> int:
    """A stable entity id from the claim that created it (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(claim_id.encode(), digest_size=8).digest(), "big") >> 1


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _epoch_us(ts: Any) -> int:
    """Microseconds since the epoch of a timezone-aware time."""
    if not isinstance(ts, datetime):
        ts = pd.Timestamp(ts).to_pydatetime()
    if ts.tzinfo is None:
        raise ValueError(f"claim timestamp must be timezone-aware, got naive {ts.isoformat()}")
    return (ts - _EPOCH) // _MICROSECOND


def _epoch(ts: Any) -> float:
    return _epoch_us(ts) / 1e6


class IdentityGraph:
    """Identity keys -> entities, history, rings and graph features, persisted in a database.

    Build with :meth:`open`. ``build`` ingests a whole frame (bulk writes); ``add`` ingests one
    claim (idempotent on claim id, one small transaction); ``features`` only looks up. Both
    paths run the same code in event-time order, so they give the same features.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Where the ``graph_*`` tables live (SQLite for one process, PostgreSQL for several).
    hasher : KeyedHasher
        The keyed hasher (from the identity key).
    identity_columns : dict
        Spec column -> identity kind.
    config : GraphConfig
        Caps, weights and ring rules.
    allow : set of int
        Hashed allow-listed keys.
    """

    def __init__(
        self,
        engine: sa.Engine,
        hasher: KeyedHasher,
        identity_columns: dict[str, str],
        config: GraphConfig,
        allow: set[int],
    ) -> None:
        self.engine = engine
        self.config = config
        self.identity_columns = dict(identity_columns)
        self._hasher = hasher
        self._layout = layout_for(self.identity_columns)
        self._sketcher = NameSketcher(hasher)
        self.index = GraphIndex(self._layout, config, self._sketcher, allow)
        self._proximity_meta = ""
        self._value_cache: dict[tuple[str, object], tuple[int, ...]] = {}
        # SQLite: the connection write transactions share, held between them (see writing())
        self._writer: sa.Connection | None = None
        self._writer_lock = threading.Lock()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        engine: sa.Engine,
        key: bytes,
        identity_columns: dict[str, str] | None = None,
        *,
        allow_list: AllowList | None = None,
        config: GraphConfig | None = None,
    ) -> Self:
        """Open (or create) the graph state in ``engine`` and load it into memory.

        Parameters
        ----------
        engine : sqlalchemy.Engine
            The database.
        key : bytes
            The identity key; a state written with another key is refused.
        identity_columns : dict, optional
            Spec column -> kind. Taken from the stored state when omitted.
        allow_list : AllowList, optional
            Legitimately shared values.
        config : GraphConfig, optional
            Defaults when omitted.

        Returns
        -------
        IdentityGraph
        """
        hasher = KeyedHasher(key)
        store.create_tables(engine)
        cfg = config or GraphConfig()
        with store.transaction(engine) as conn:
            store.lock(conn)
            meta = store.read_meta(conn)
            if not meta:
                if identity_columns is None:
                    raise ValueError(
                        "no identity graph in this database yet: build one first (`fraudlens "
                        "graph build FILE` or `fraudlens train FILE`), or give identity_columns "
                        "(column -> kind) to start an empty one"
                    )
                store.write_meta(
                    conn,
                    {
                        "schema_version": store.SCHEMA_VERSION,
                        "key_fingerprint": hasher.fingerprint,
                        "identity_columns": json.dumps(identity_columns),
                        "seq": "0",
                    },
                )
                meta = store.read_meta(conn)
            if meta["key_fingerprint"] != hasher.fingerprint:
                raise KeyMismatchError(
                    f"the graph state was written with the key of fingerprint "
                    f"{meta['key_fingerprint']}, got a key of fingerprint {hasher.fingerprint}; "
                    "rebuild the graph after a key rotation"
                )
            stored_columns = json.loads(meta["identity_columns"])
            if identity_columns is not None and dict(identity_columns) != stored_columns:
                raise ValueError(
                    f"identity columns {stored_columns} expected (those of the stored state), "
                    f"got {dict(identity_columns)}"
                )
            meta = store.migrate(conn, meta)  # only a state this key and these columns own
        graph = cls(engine, hasher, stored_columns, cfg, set())
        graph.index.allow = graph._hash_allow_list(allow_list)
        with _long_lived():
            graph.sync()
        return graph

    def _hash_allow_list(self, allow_list: AllowList | None) -> set[int]:
        if allow_list is None:
            return set()
        allow: set[int] = set()
        opts = self.config.normalise
        for kind, values in allow_list.values.items():
            for v in values:
                n = normalise(kind, v, opts)
                if n is None:
                    raise ValueError(
                        f"allow-list value of kind {kind!r} is not a usable {kind} (masked)"
                    )
                allow.add(self._hasher.hash(kind, n))
                if kind == "ip":
                    allow.add(self._hasher.hash("ip_block", ip_block(n)))
        for _, hashes in allow_list.hashed.items():
            allow.update(int(h, 16) for h in hashes)
        return allow

    def sync(self) -> bool:
        """Load what other processes wrote since this one last looked; True when anything was new."""
        with self.engine.connect() as conn:
            changed = self._sync(conn)
        return changed

    def _lock_and_sync(self, conn: sa.Connection) -> bool:
        """Take the writer lock, then load what other processes wrote since this one looked
        (claims, or a proximity snapshot); True when anything was new."""
        seq, proximity_as_of = store.lock_and_read_state(conn)
        if seq > self.index.seq or proximity_as_of != self._proximity_meta:
            return self._sync(conn, {"seq": str(seq), "proximity_as_of": proximity_as_of})
        return False

    def _sync(self, conn: sa.Connection, meta: Mapping[str, str] | None = None) -> bool:
        """Load what other processes wrote; ``meta`` (the sequence number and the proximity
        snapshots' mark) when the caller read it already, else read here."""
        if meta is None:
            meta = store.read_meta(conn)
        changed = False
        if int(meta.get("seq", "0")) > self.index.seq:
            rows = store.read_since(conn, self.index.seq)
            self._sketcher.load(rows.names, rows.variants)
            self.index.replay(rows.claims, rows.aliases, rows.entities)
            self.index.seq = max(self.index.seq, int(meta["seq"]))
            changed = True
        prox = meta.get("proximity_as_of", "")
        if prox != self._proximity_meta:
            self.index.proximity = store.read_proximity(conn)
            self._proximity_meta = prox
            changed = True
        return changed

    # -- hashing ---------------------------------------------------------------------------
    def hash_claim(self, claim: ClaimLike) -> HashedClaim:
        """The claim with its identity values normalised and hashed (raw values dropped).

        Recently seen values are remembered in process memory only (a bounded cache, never
        written anywhere), so a retried or looked-up claim is not normalised twice.
        """
        identity = claim.identity
        keys: list[int] = []
        nid_invalid = False
        cache = self._value_cache
        for slot in self._layout:
            if slot.kind == "ip_block":
                continue
            raw = identity.get(slot.column)
            hit = cache.get((slot.column, raw)) if isinstance(raw, str) else None
            if hit is None:
                hit = self._hash_value(slot.kind, raw)
                if isinstance(raw, str):
                    if len(cache) >= VALUE_CACHE_SIZE:
                        cache.clear()
                    cache[(slot.column, raw)] = hit
            keys.extend(hit[:-1])
            nid_invalid |= bool(hit[-1])
        us = _epoch_us(claim.timestamp)
        program, amount = str(claim.program), float(claim.amount)
        return HashedClaim(
            str(claim.claim_id),
            us / 1e6,
            program,
            amount,
            tuple(keys),
            nid_invalid,
            fingerprint(us, amount, program, keys),
        )

    def _hash_value(self, kind: str, raw: object) -> tuple[int, ...]:
        """Keys of one raw value (two for an IP: the address and its block), then a flag that
        is 1 for an invalid national id."""
        opts = self.config.normalise
        n = normalise(kind, raw, opts)
        h = self._hasher.hash(kind, n) if n is not None else 0
        if kind == "name" and n is not None:
            self._sketcher.sketch(n, h)
        elif kind == "ip":
            return (h, self._hasher.hash("ip_block", ip_block(n)) if n is not None else 0, 0)
        elif kind == "national_id" and n is not None and not national_id_valid(n, opts):
            return (h, 1)
        return (h, 0)

    def hash_frame(self, X: pd.DataFrame) -> list[HashedClaim]:
        """Every claim of a validated frame, hashed, in event-time order (ties by claim id).

        Each distinct value is normalised and hashed once; the result equals
        :meth:`hash_claim` on each row (a test checks it).
        """
        X = X.sort_values(["submitted_at", "claim_id"], kind="stable")
        return _Chunk.of(X, *self._frame_hasher().keys(X)).claims()

    def _frame_hasher(self) -> FrameHasher:
        return FrameHasher(self._layout, self._hasher, self._sketcher, self.config.normalise)

    # -- public API ------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The graph-state version: changes whenever the state or the proximity snapshot does."""
        return f"g{self.index.seq}-p{len(self.index.proximity)}"

    @property
    def n_claims(self) -> int:
        """Claims in the graph (this process's view: :meth:`sync` loads other processes')."""
        return len(self.index.claim_entity)

    @property
    def n_entities(self) -> int:
        """Entities (resolved persons) in the graph, merged ones counted once."""
        return len(self.index.entities)

    def conflicts(self, X: pd.DataFrame) -> list[str]:
        """Claim ids of a validated frame that the graph holds with other content (a build would
        refuse them: :class:`ClaimConflictError`), in the frame's order."""
        ids = X["claim_id"].astype(str)
        known = ids.isin(self.index.claim_row.keys()).to_numpy()
        if not known.any():
            return []
        index = self.index
        changed = {
            x.claim_id
            for x in self.hash_frame(X[known])
            if index.claim_fingerprint[index.claim_row[x.claim_id]] != x.fingerprint
        }
        return [c for c in ids[known] if c in changed]

    def build(self, X: pd.DataFrame) -> pd.DataFrame:
        """Ingest every claim of a validated frame; point-in-time features per claim.

        Claims are taken in event-time order. Claims already in the graph keep the features
        they were given when added. Rows are written to the store in bulk, chunk by chunk,
        in one transaction.

        Parameters
        ----------
        X : pandas.DataFrame
            A validated claims frame (``claim_id``, ``submitted_at``, ``program``, ``amount``
            and the identity columns).

        Returns
        -------
        pandas.DataFrame
            Index ``claim_id``, columns :data:`GRAPH_FEATURES` (float64), in ``X``'s row order.
        """
        needed = ["claim_id", "submitted_at", "program", "amount", *self.identity_columns]
        missing = [c for c in needed if c not in X]
        if missing:
            raise ValueError(f"claims frame must have columns {missing}, got {list(X.columns)}")
        # On a SQLite file the writers' lock is held from this read of the state to the last
        # commit (its helper process writes under it); on PostgreSQL the build's transaction
        # takes the advisory lock and loads what came in since this read.
        with store.writers(self.engine):
            self.sync()
            index = self.index
            first_row = len(index.claim_entity)
            helper: BuildHelper | None = None
            loaded = False
            # millions of long-lived objects: no collections while they are made, frozen after
            with _long_lived():
                try:
                    # the helper (a build of more than one chunk) starts while the frame is sorted
                    with self._start_helper() if len(X) > BUILD_CHUNK else nullcontext() as helper:
                        # a sorted copy of the columns the graph reads only (a claims frame has many
                        # more), its index the rows' positions in X
                        ordered = (
                            X[needed]
                            .reset_index(drop=True)
                            .sort_values(["submitted_at", "claim_id"], kind="stable")
                        )
                        index.reserve(first_row + len(X))
                        sizes = build_chunks(len(ordered), BUILD_CHUNK, BUILD_CHUNK // 16)
                        bounds = np.cumsum([0, *sizes])
                        parts = [ordered.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
                        # rows another worker wrote since the read above (PostgreSQL) come
                        # before this build's: then the answer looks each claim's row up
                        if helper is not None:
                            loaded = self._build_with_helper(parts, helper)
                        else:
                            with store.transaction(self.engine) as conn:
                                loaded = self._lock_and_sync(conn)
                                for part in parts:
                                    chunk = _Chunk.of(part, *self._frame_hasher().keys(part))
                                    added = self._ingest(chunk.claims())
                                    self._write_rows(conn, chunk.rows(added, index))
                except BaseException:
                    if helper is not None and helper.database is not None:
                        self._restore_wal()
                    self._reload()  # the index is ahead of a store that rolled back
                    raise
        logger.info(
            "identity graph built: %d claims, %d entities%s",
            len(X),
            len(index.entities),
            " (written with the rollback journal)"
            if helper is not None and helper.bulk_journal
            else "",
        )
        order = ordered.index.to_numpy()
        del ordered, parts  # the sorted copy is not needed for the answer
        ids = X["claim_id"].astype(str).tolist()
        rows: list[int] | NDArray[np.intp]
        if not loaded and len(index.claim_entity) - first_row == len(X):  # all added, in order
            rows = np.empty(len(X), dtype=np.intp)
            rows[order] = np.arange(first_row, first_row + len(X))
        else:
            rows = [index.claim_row[c] for c in ids]
        # the rows taken are a new array: the frame may own it (no second copy of the features)
        return pd.DataFrame(
            index.feature_rows(rows),
            columns=GRAPH_FEATURES,
            index=pd.Index(ids, name="claim_id"),
            copy=False,
        )

    def _ingest(self, claims: list[HashedClaim]) -> _Added:
        """Add hashed claims in order (the sequential part of a build), writing nothing yet."""
        index = self.index
        first_seq, first_row = index.seq + 1, len(index.claim_entity)
        skipped: list[int] = []
        known, ingest = index.claim_row, index.ingest
        for i, x in enumerate(claims):
            if x.claim_id in known and self._known(x) is not None:
                skipped.append(i)
                continue
            ingest(x, new_entity_number)
        return _Added(skipped, first_seq, first_row, len(index.claim_entity))

    def _build_with_helper(self, parts: list[pd.DataFrame], helper: BuildHelper) -> bool:
        """Ingest chunks while a helper process hashes each next one and writes each last one.

        The helper writes only to a store it can open itself (a SQLite file), and this process
        then holds no connection to it (so that the helper may write it with the rollback
        journal, :func:`graph.store.bulk_journal`); otherwise this process writes each chunk's
        rows, in its own transaction. The names the helper sketched join this process's
        sketcher just before their chunk is ingested, and rows are written chunk by chunk with
        the same sequence numbers, so the store ends up with the rows a one-process build
        writes. True when the lock brought rows another process wrote since the build read
        the state (PostgreSQL; a SQLite file's writers' lock is held since that read).
        """
        if helper.database is not None:
            self._pipeline(parts, helper, None)
            return False
        with store.transaction(self.engine) as conn:
            loaded = self._lock_and_sync(conn)
            self._pipeline(parts, helper, conn)
        return loaded

    def _pipeline(
        self, parts: list[pd.DataFrame], helper: BuildHelper, conn: sa.Connection | None
    ) -> None:
        """The chunks through the helper; rows written on ``conn``, or by the helper (None).

        While the chunks grow (:func:`build_chunks`), the helper hashes a chunk twice the size
        of the one being ingested, early in the build when ingesting is cheapest: it is then
        given no rows to write, and the rows wait (in order) for the first step whose next chunk
        is no larger than the one being ingested.
        """
        columns = list(self.identity_columns)
        helper.send(parts[1][columns])
        chunk = _Chunk.of(parts[0], *self._frame_hasher().keys(parts[0]))
        added = self._ingest(chunk.claims())
        waiting: list[store.NewRows] = []
        for i in range(1, len(parts)):
            rows = self._write_rows(conn, chunk.rows(added, self.index))
            if rows is not None:
                waiting.append(rows)
            done = helper.receive()
            assert done is not None  # a chunk was sent
            nxt = parts[i + 1][columns] if i + 1 < len(parts) else None
            if not waiting or (nxt is not None and len(nxt) > len(parts[i])):
                helper.send(nxt)
            else:
                helper.send(nxt, store.concat_rows(waiting))
                waiting = []
            self._sketcher.take(done.names, done.tokens)
            chunk = _Chunk.of(parts[i], *done.keys)
            added = self._ingest(chunk.claims())
        rows = self._write_rows(conn, chunk.rows(added, self.index))
        helper.receive()
        if conn is None:
            assert rows is not None  # the helper writes
            helper.send(None, store.concat_rows([*waiting, rows]), commit=True)
            helper.receive()

    def _restore_wal(self) -> None:
        """After a failed build whose helper wrote with the rollback journal: the write-ahead
        log again (a failure here is logged: the build's own error is the one raised)."""
        try:
            with self.engine.connect() as conn:
                store.restore_wal(conn)  # warns if the file is open elsewhere
        except Exception as exc:  # noqa: BLE001
            logger.warning(
                "identity graph store left in rollback-journal mode after a failed build (%s); "
                "the next connection that can switches it back",
                type(exc).__name__,
            )

    def _start_helper(self) -> BuildHelper:
        """A helper process for a build: it hashes chunks, and writes them where it can open
        the store itself (:func:`helper_database`). This process's idle connections to such a
        store are closed first (the helper looks for a file nobody else has open)."""
        database = helper_database(self.engine)
        if database is not None:
            self._release_writer()
            self.engine.dispose()
        return BuildHelper(self._hasher, self.identity_columns, self.config.normalise, database)

    def _write_rows(
        self, conn: sa.Connection | None, claims: store.ClaimColumns
    ) -> store.NewRows | None:
        """Write the rows made since the last write (``claims``: the last chunk's claim rows)
        on ``conn`` and return None; without ``conn`` (the helper writes), return them."""
        rows = self._take_rows(self.index.seq, claims)
        if conn is None:
            return rows
        store.write_rows(conn, rows)
        return None

    def add(self, claim: ClaimLike) -> dict[str, float]:
        """Ingest one claim (idempotent on claim id) and return its point-in-time features.

        Raises
        ------
        ClaimConflictError
            When the claim id is known with different content.
        """
        x = self.hash_claim(claim)
        stored = self._known(x)
        if stored is not None:
            return dict(zip(GRAPH_FEATURES, stored.tolist(), strict=True))
        with store.transaction(self.engine) as conn:
            if self._lock_and_sync(conn):
                stored = self._known(x)
                if stored is not None:
                    return dict(zip(GRAPH_FEATURES, stored.tolist(), strict=True))
            plan = self.index.plan(x, new_entity_number(x.claim_id))
            seq = self.index.seq + 1
            try:
                self.index.apply(x, plan, seq, plan.features)
                self._flush(conn, seq)
            except BaseException:
                # the index is ahead of a store that rolled back: reload it from the store
                self._reload()
                raise
        return dict(zip(GRAPH_FEATURES, plan.features.tolist(), strict=True))

    def add_many(
        self, claims: Sequence[ClaimLike], conn: sa.Connection | None = None
    ) -> list[dict[str, float] | ClaimConflictError]:
        """Ingest several claims in one transaction (the API's micro-batches).

        The claims are applied in event-time order (ties by claim id), exactly as if each were
        given to :meth:`add` in that order; a claim id seen twice with the same content is
        added once. One claim's conflict refuses that claim only. With ``conn`` (a transaction
        from :meth:`writing`) the rows are written in it, and commit with the caller's.

        Returns
        -------
        list
            Per claim, in input order: its point-in-time features, or the
            :class:`ClaimConflictError` that refused it.
        """
        hashed = [self.hash_claim(c) for c in claims]
        out: list[dict[str, float] | ClaimConflictError | None] = [None] * len(hashed)
        todo = [i for i, x in enumerate(hashed) if not self._answer_known(x, out, i)]
        if todo:
            todo.sort(key=lambda i: (hashed[i].ts, hashed[i].claim_id))
            if conn is not None:
                self._add_in(conn, hashed, todo, out)  # a failure reloads in writing()
            else:
                with self.writing() as own:
                    self._add_in(own, hashed, todo, out)
        return cast(list[dict[str, float] | ClaimConflictError], out)  # every slot is set

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A write transaction on the store for :meth:`add_many` and the caller's own rows (the
        Scorer's decision log), committed together. If anything in it fails, the index, which
        may then be ahead of the store, is reloaded from the store.

        On SQLite the transactions run on one connection held between them (taking one from
        the pool and handing it back cost 5-7 % of the CPU of a 1-2 claim micro-batch); a
        second thread writing meanwhile takes one from the pool, and a failed transaction
        gives the held one back. On PostgreSQL each comes from the pool, which checks that
        its connection is alive.
        """
        held = self.engine.dialect.name == "sqlite" and self._writer_lock.acquire(blocking=False)
        try:
            if not held:
                with store.transaction(self.engine) as conn:
                    yield conn
                return
            if self._writer is None:
                self._writer = self.engine.connect()
            conn = self._writer
            try:
                with store.unlocking(conn), conn.begin():
                    yield conn
            except BaseException:
                self._writer = None
                conn.close()
                raise
        except BaseException:
            self._reload()
            raise
        finally:
            if held:
                self._writer_lock.release()

    def _release_writer(self) -> None:
        """Close the connection held between write transactions (when no write is using it),
        so that the store's file can be opened alone (a build's helper) or the engine disposed."""
        if self._writer_lock.acquire(blocking=False):
            try:
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            finally:
                self._writer_lock.release()

    def _add_in(
        self,
        conn: sa.Connection,
        hashed: list[HashedClaim],
        todo: list[int],
        out: list[dict[str, float] | ClaimConflictError | None],
    ) -> None:
        self._lock_and_sync(conn)
        seq = start = self.index.seq
        for i in todo:
            x = hashed[i]
            if self._answer_known(x, out, i):
                continue
            plan = self.index.plan(x, new_entity_number(x.claim_id))
            seq += 1
            self.index.apply(x, plan, seq, plan.features)
            out[i] = dict(zip(GRAPH_FEATURES, plan.features.tolist(), strict=True))
        if seq > start:
            self._flush(conn, seq)

    def _answer_known(
        self, x: HashedClaim, out: list[dict[str, float] | ClaimConflictError | None], i: int
    ) -> bool:
        """Put the stored features (or the conflict) of an already-added claim in ``out[i]``."""
        try:
            stored = self._known(x)
        except ClaimConflictError as exc:
            out[i] = exc
            return True
        if stored is None:
            return False
        out[i] = dict(zip(GRAPH_FEATURES, stored.tolist(), strict=True))
        return True

    def features(self, claim: ClaimLike) -> dict[str, float]:
        """Features of a claim without writing: stored ones if added, else as if added now."""
        x = self.hash_claim(claim)
        stored = self._known(x)
        if stored is None:
            stored = self.plan(x).features
        return dict(zip(GRAPH_FEATURES, stored.tolist(), strict=True))

    def plan(self, x: HashedClaim) -> Plan:
        """What adding a hashed claim would do (its entity and features), changing nothing."""
        return self.index.plan(x, new_entity_number(x.claim_id))

    def entity_of(self, claim_id: str) -> str | None:
        """The entity id of an added claim (after any merge), or None when unknown."""
        row = self.index.claim_row.get(claim_id)
        if row is None:
            return None
        return entity_label(self.index.resolve(self.index.claim_entity[row]))

    def refresh_fraud_proximity(
        self, confirmed_fraud_entity_ids: list[str], as_of: datetime
    ) -> int:
        """Recompute proximity to confirmed fraud (personalised PageRank) as of ``as_of``.

        Run in batch on a cadence (daily by default, see docs/identity-graph.md). Claims with
        an event time at or after ``as_of`` see the new scores; earlier claims keep older ones.

        Returns
        -------
        int
            Entities with a non-zero score.
        """
        from graph.rings import fraud_proximity

        seeds = [self.index.resolve(entity_number(e)) for e in confirmed_fraud_entity_ids]
        scores = fraud_proximity(self.index, seeds, self.config)
        when = _epoch(as_of)
        with store.transaction(self.engine) as conn:
            store.lock(conn)
            store.write_proximity(conn, when, scores)
            self._sync(conn)
        return len(scores)

    def neighbourhood(self, claim_id: str, max_nodes: int = 50) -> dict[str, Any]:
        """The claim's entity, its linked entities, masked shared attributes and their claims."""
        from graph.neighbourhood import neighbourhood

        return neighbourhood(self, claim_id, max_nodes=max_nodes)

    def rings(self, top: int = 20) -> list[dict[str, Any]]:
        """Suspected rings, largest first, with members and masked shared attributes."""
        from graph.rings import find_rings

        return find_rings(self.index, self.config, top=top)

    # -- internals -------------------------------------------------------------------------
    def _known(self, x: HashedClaim) -> NDArray[np.float64] | None:
        row = self.index.claim_row.get(x.claim_id)
        if row is None:
            return None
        if self.index.claim_fingerprint[row] != x.fingerprint:
            raise ClaimConflictError(
                f"claim {x.claim_id}: expected the content it was first added with, got different content"
            )
        return self.index.claim_features(x.claim_id)

    def _flush(self, conn: sa.Connection, seq: int) -> None:
        store.write_rows(conn, self._take_rows(seq))
        self.index.seq = seq

    def _take_rows(self, seq: int, claims: store.ClaimColumns | None = None) -> store.NewRows:
        """The rows made since the last write (then forgotten as pending), reaching ``seq``.

        ``claims`` gives the claim rows as columns when the caller has them (a build's chunk:
        made from its arrays, not claim by claim from the pending rows).
        """
        rows = store.new_rows(
            self.index.pending,
            self.index.feature_rows,
            self._sketcher.new_names,
            self._sketcher.new_tokens,
            seq,
            claims,
        )
        self.index.pending.clear()
        self._sketcher.new_names.clear()
        self._sketcher.new_tokens.clear()
        return rows

    def _reload(self) -> None:
        allow = self.index.allow
        self._value_cache.clear()  # its names were sketched into the sketcher being replaced
        self._sketcher = NameSketcher(self._hasher)
        self.index = GraphIndex(self._layout, self.config, self._sketcher, allow)
        self._proximity_meta = ""
        with _long_lived():
            self.sync()


@contextmanager
def _long_lived() -> Iterator[None]:
    """For loading or building the in-memory index: no garbage collections while its objects are
    made (half a million of them set off full collections that walk them all: opening the
    benchmark's graph took 3.2-3.5 s with them, 2.1 s without), and those objects frozen at the
    end, out of later collections (see :mod:`fraudlens.heap`). The young garbage of the moment
    is collected first, so that it is not frozen with them."""
    gc.collect(1)
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class _Added(NamedTuple):
    """What :meth:`IdentityGraph._ingest` added: claims ``first_seq``... at index rows
    ``first_row`` to ``end_row`` (exclusive), the claims at ``skipped`` positions excepted."""

    skipped: list[int]
    first_seq: int
    first_row: int
    end_row: int


class _Chunk(NamedTuple):
    """An ordered frame's claims as columns (what the graph reads of them, raw values hashed)."""

    ids: list[str]
    ts: NDArray[np.float64]  # seconds since the epoch
    programs: list[str]
    amounts: NDArray[np.float64]
    keys: NDArray[np.int64]
    nid_invalid: NDArray[np.bool_]
    fingerprints: NDArray[np.int64]

    @classmethod
    def of(cls, X: pd.DataFrame, K: NDArray[np.int64], nid_bad: NDArray[np.bool_]) -> _Chunk:
        ts_us = X["submitted_at"].dt.as_unit("us").astype("int64").to_numpy()
        amounts = X["amount"].astype("float64").to_numpy()
        programs = X["program"].astype(str).tolist()
        prints = fingerprint_many(ts_us, amounts, programs, K)
        ids = X["claim_id"].astype(str).tolist()
        return cls(ids, ts_us / 1e6, programs, amounts, K, nid_bad, prints)

    def claims(self) -> list[HashedClaim]:
        ids, programs = self.ids, self.programs
        ts, amounts = self.ts.tolist(), self.amounts.tolist()
        bad, prints = self.nid_invalid.tolist(), self.fingerprints.tolist()
        return [
            HashedClaim(ids[i], ts[i], programs[i], amounts[i], k, bad[i], prints[i])
            for i, k in enumerate(map(tuple, self.keys.tolist()))
        ]

    def rows(self, added: _Added, index: GraphIndex) -> store.ClaimColumns:
        """The ``graph_claims`` rows of the claims :meth:`IdentityGraph._ingest` added to
        ``index`` (what it made claim by claim, made here from the columns)."""
        keep: slice | NDArray[np.intp] = slice(None)
        ids, programs = self.ids, self.programs
        if added.skipped:
            keep = np.setdiff1d(np.arange(len(ids)), added.skipped)
            ids = [ids[i] for i in keep]
            programs = [programs[i] for i in keep]
        rows = slice(added.first_row, added.end_row)
        return store.ClaimColumns(
            np.arange(added.first_seq, added.first_seq + len(ids), dtype=np.int64),
            ids,
            np.asarray(index.claim_entity[rows], dtype=np.int64),
            self.ts[keep],
            programs,
            self.amounts[keep],
            self.keys[keep],
            self.nid_invalid[keep],
            self.fingerprints[keep],
            index.feature_range(added.first_row, added.end_row),
        )


def build_chunks(n: int, chunk: int = BUILD_CHUNK, smallest: int = BUILD_CHUNK // 16) -> list[int]:
    """The chunk sizes of a build of ``n`` claims: the first chunk's worth in doubling sizes
    from ``smallest``, full chunks, then the last chunk's worth in halves down to ``smallest``.

    The helper hashes each next chunk and writes each last one while a chunk is ingested. The
    first chunk is hashed by the build itself, with nothing beside it, and the last chunk's rows
    are written with nothing beside them, so both ends are kept small: at 1M claims a
    100,000-claim last chunk left the build waiting 2 s for its rows, and hashing a
    100,000-claim first chunk took the build 3.3 s before it ingested any claim.

    >>> build_chunks(1_000_000)[:6]
    [6250, 6250, 12500, 25000, 50000, 100000]
    >>> build_chunks(1_000_000)[-6:]
    [100000, 50000, 25000, 12500, 6250, 6250]
    >>> build_chunks(80_000)
    [80000]
    """
    if n <= chunk:
        return [n] if n else []
    head = n - chunk
    body = [chunk] * (head // chunk) + ([head % chunk] if head % chunk else [])
    return [*reversed(_halves(body[0], smallest)), *body[1:], *_halves(chunk, smallest)]


def _halves(size: int, smallest: int) -> list[int]:
    """``size`` in halves down to ``smallest``: ``[size - size // 2, ...]``, the last two the
    smallest (sums to ``size``)."""
    sizes = []
    while size > smallest:
        half = size // 2
        sizes.append(size - half)
        size = half
    return [*sizes, size]


def utc_now() -> datetime:
    """The current time, UTC (for ``refresh_fraud_proximity(as_of=...)``)."""
    return datetime.now(UTC)
