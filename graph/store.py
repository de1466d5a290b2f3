"""Persisted identity-graph state: ``graph_*`` tables (SQLite or PostgreSQL), hashed keys only.

No column holds a raw or normalised identity value: keys are keyed 63-bit hashes, names are
hashes of tokens. Rows carry the sequence number of the claim that made them, so a process
can load what others wrote since it last looked (:func:`read_since`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray

from fraudlens.database import (
    BACKGROUND_CHECKPOINTS,
    execute_raw,
    insert_rows,
    one_round_trip,
    placeholder,
    sqlite_file,
)
from graph.index import HashedClaim, Pending

logger = logging.getLogger(__name__)

#: Version of the table layout. A state of layout 1 is migrated when opened
#: (:func:`migrate`); one of a layout this code does not know is refused.
SCHEMA_VERSION = "2"
#: Tables of layout 1 that layout 2 dropped: one row per (key, entity) and per link, written
#: by every claim and read by nothing (the index is rebuilt from ``graph_claims``, whose rows
#: hold each claim's keys). Writing them cost 3-7 % of a micro-batch's CPU (2026-12-07).
_DROPPED_IN_2 = ("graph_keys", "graph_edges")

metadata = sa.MetaData()

meta_table = sa.Table(
    "graph_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
claims_table = sa.Table(
    "graph_claims",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("claim_id", sa.String(128), nullable=False, unique=True),
    sa.Column("entity_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("program", sa.String(64), nullable=False),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("keys", sa.LargeBinary, nullable=False),
    sa.Column("nid_invalid", sa.Boolean, nullable=False),
    sa.Column("fingerprint", sa.BigInteger, nullable=False),
    sa.Column("features", sa.LargeBinary, nullable=False),
)
entities_table = sa.Table(
    "graph_entities",
    metadata,
    sa.Column("entity_id", sa.BigInteger, primary_key=True, autoincrement=False),
    # indexed: another process's sync reads the entities made since its last look
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("alias_of", sa.BigInteger, nullable=True),
    sa.Column("merged_seq", sa.BigInteger, nullable=True, index=True),
)
names_table = sa.Table(
    "graph_names",
    metadata,
    sa.Column("name_hash", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("tokens", sa.LargeBinary, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)
tokens_table = sa.Table(
    "graph_tokens",
    metadata,
    sa.Column("token_hash", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("variants", sa.LargeBinary, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)
proximity_table = sa.Table(
    "graph_proximity",
    metadata,
    sa.Column("as_of", sa.Float, primary_key=True, autoincrement=False),
    sa.Column("entity_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("score", sa.Float, nullable=False),
)


def create_tables(engine: sa.Engine) -> None:
    """Create the ``graph_*`` tables and their indexes where missing (a no-op when they exist).

    An index added to the layout after a store was made is created in it here (``create_all``
    creates a table's indexes only with the table). A SQLite file is switched to write-ahead
    logging, so one small write per claim does not wait for a full sync of the file
    (``synchronous=NORMAL`` is set per write transaction).
    """
    metadata.create_all(engine)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")


def pack(values: list[int] | tuple[int, ...] | frozenset[int]) -> bytes:
    """Hashes as little-endian int64 bytes."""
    return np.asarray(
        sorted(values) if isinstance(values, frozenset) else values, dtype="<i8"
    ).tobytes()


def unpack(blob: bytes) -> tuple[int, ...]:
    """The inverse of :func:`pack`."""
    return tuple(int(v) for v in np.frombuffer(blob, dtype="<i8"))


def read_meta(conn: sa.Connection) -> dict[str, str]:
    """All meta values (seq, key fingerprint, identity columns, schema version...)."""
    return {r.name: r.value for r in conn.execute(sa.select(meta_table))}


def write_meta(conn: sa.Connection, values: dict[str, str]) -> None:
    """Insert or update meta values."""
    old = read_meta(conn)
    for name, value in values.items():
        if name in old:
            conn.execute(meta_table.update().where(meta_table.c.name == name).values(value=value))
        else:
            conn.execute(meta_table.insert().values(name=name, value=value))


def migrate(conn: sa.Connection, meta: dict[str, str]) -> dict[str, str]:
    """Bring a state of an older layout to :data:`SCHEMA_VERSION` in the caller's transaction
    (which holds the writer lock); the meta values as they are then.

    Layout 1 to 2 drops ``graph_keys`` and ``graph_edges``: nothing else changes, so the
    graph the state holds and every feature it gives stay the same. A layout this code does
    not know is refused.
    """
    version = meta.get("schema_version")
    if version == SCHEMA_VERSION:
        return meta
    if version != "1":
        raise ValueError(f"graph tables of layout {SCHEMA_VERSION} expected, got {version}")
    # the version first: on SQLite its update opens the write transaction (the drops alone
    # would each commit by themselves), so the drops and the version commit together
    write_meta(conn, {"schema_version": SCHEMA_VERSION})
    for name in _DROPPED_IN_2:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    logger.info("graph tables migrated from layout 1 to %s: dropped %s", SCHEMA_VERSION,
                ", ".join(_DROPPED_IN_2))
    return read_meta(conn)


def lock(conn: sa.Connection, *, file_lock: bool = True) -> None:
    """Serialise writers for the rest of this transaction: a PostgreSQL advisory lock; on a
    SQLite file, the writers' lock file (taken in :func:`transaction` or
    :meth:`graph.IdentityGraph.writing`, which give it back after the commit). A build's helper
    process writes under its parent's (``file_lock=False``)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
    elif conn.dialect.name == "sqlite":
        _sqlite_write_mode(conn)
        if file_lock:
            _lock_file(conn)


#: ``conn.info`` entry: the list of files whose writers' lock the connection's transaction
#: took (:func:`unlocking` made it, and gives those locks back from its own reference)
_FILE_LOCKS = "graph_writer_locks"
#: How long a writer waits for another process's writers' lock, as SQLite's busy timeout
LOCK_WAIT_S = 30.0

_held_lock = threading.Lock()
#: Files whose writers' lock this process holds: path -> [thread, descriptor, depth]
_held: dict[str, list[int]] = {}


def _lock_path(database: str) -> str:
    """The writers' lock file of a SQLite file, beside the file itself: the same for every
    spelling of its path (relative to the current directory when asked, through a symbolic
    link as the link stood when first asked)."""
    return _real_lock_path(os.path.abspath(database))


@lru_cache(maxsize=256)
def _real_lock_path(absolute: str) -> str:
    return f"{os.path.realpath(absolute)}-graph.lock"  # 12 us: once per file


def _acquire_file(path: str) -> None:
    """Take the writers' lock file ``path`` (:func:`_lock_path`) for this thread, waiting at
    most :data:`LOCK_WAIT_S`. A thread that holds it takes it again at once (a build holds it
    throughout, its transactions take it again); another thread of this process waits, as
    another process does."""
    me = threading.get_ident()
    with _held_lock:
        mine = _held.get(path)
        if mine is not None and mine[0] == me:
            mine[2] += 1
            return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _flock(fd, path)
        with _held_lock:
            _held[path] = [me, fd, 1]
    except BaseException:  # an interrupt too: the lock never stays taken without its entry
        with _held_lock:
            if _held.get(path, [None, None])[1] == fd:
                del _held[path]
        os.close(fd)  # closing the descriptor gives the lock back
        raise


def _flock(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.0001
    while True:  # flock has no timeout: poll, from 0.1 ms up to 5 ms between tries
        time.sleep(pause)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the identity graph's writers' lock ({path}) was held by another writer "
                    f"for {LOCK_WAIT_S:.0f} s"
                ) from None
            pause = min(2 * pause, 0.005)


def _release_file(path: str) -> None:
    """Give back a writers' lock :func:`_acquire_file` took."""
    with _held_lock:
        mine = _held[path]
        mine[2] -= 1
        if mine[2]:
            return
        del _held[path]
    os.close(mine[1])


@contextmanager
def writers(engine: sa.Engine) -> Iterator[None]:
    """Hold a SQLite file's writers' lock for a whole operation of several transactions (a
    build, from its first read of the state to its last commit); a no-op elsewhere (on
    PostgreSQL each transaction takes the advisory lock, :func:`lock`)."""
    database = sqlite_file(engine)
    if database is None:
        yield
        return
    path = _lock_path(database)
    _acquire_file(path)
    try:
        yield
    finally:
        _release_file(path)


def _lock_file(conn: sa.Connection) -> None:
    """Wait for, then hold until the transaction ends (:func:`unlocking`), the writers' lock of
    a SQLite file: the graph's writers in every process take it before they read the state they
    write on, as PostgreSQL's take the advisory lock.

    SQLite's own write lock could not serve: a transaction takes it at its first write, after
    the state was read, and a writer that finds it taken polls, sleeping 1, 2, 5, 10 ms and
    more between tries. ``flock`` lets the next writer in as soon as the lock is given back.
    """
    database = sqlite_file(conn.engine)
    if database is None:  # in memory: one connection, one process
        return
    taken = conn.info.get(_FILE_LOCKS)
    if taken is None:
        raise RuntimeError(
            "the identity graph's SQLite lock taken outside store.transaction() or "
            "IdentityGraph.writing(): nothing would give it back"
        )
    path = _lock_path(database)
    if path in taken:
        return
    _acquire_file(path)
    try:
        taken.append(path)
    except BaseException:
        _release_file(path)
        raise


@contextmanager
def unlocking(conn: sa.Connection) -> Iterator[None]:
    """Around a transaction of ``conn``: give back the writers' locks it took (:func:`lock`)
    once it has committed or rolled back. The list of them is this call's own: a connection
    the pool hands out again meanwhile (after a failure) cannot lose or share it."""
    taken: list[str] = []
    info = conn.info  # the pooled connection's
    info[_FILE_LOCKS] = taken
    try:
        yield
    finally:
        if info.get(_FILE_LOCKS) is taken:
            del info[_FILE_LOCKS]
        for path in taken:
            _release_file(path)


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """``engine.begin()`` for the graph's writers: a SQLite file's writers' lock, once
    :func:`lock` took it, is given back after the commit (or the rollback)."""
    with engine.connect() as conn, unlocking(conn), conn.begin():
        yield conn


_LOCK_ID = 727772101
#: Pages the SQLite write-ahead log may hold before a commit copies them into the database.
WAL_CHECKPOINT_PAGES = 10_000


def _sqlite_write_mode(conn: sa.Connection) -> None:
    """``synchronous=NORMAL``: durable with WAL, no sync per commit (once per connection)."""
    if not conn.info.get("graph_synchronous_normal"):
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        if not conn.info.get(BACKGROUND_CHECKPOINTS):  # else a server's thread copies the log
            conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        conn.info["graph_synchronous_normal"] = True


def bulk_journal(conn: sa.Connection) -> bool:
    """Before a bulk write to a SQLite file: switch it to the rollback journal and lock it,
    if no other connection has it open; True when done (then commit, and :func:`restore_wal`).

    With the write-ahead log every page of a bulk write is written twice: into the log, then
    copied into the database by the checkpoint after the commit. A store nobody else has open
    is written once, straight into the file, and synchronised fully at the commit
    (``synchronous=FULL``). On success ``conn`` holds the file's exclusive lock in an open
    transaction, so no connection can come in and hold the writer up (with the rollback
    journal a reader would block every spill of the page cache); one that tries waits for the
    commit. A file another connection has open (a server, another process) keeps its
    write-ahead log, so its readers are never blocked. Called outside a transaction; never
    waits for a lock.
    """
    if conn.dialect.name != "sqlite" or conn.in_transaction():
        return False
    with _no_wait(conn) as raw:
        try:
            mode = raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        except sqlite3.OperationalError:  # "database is locked": another connection has it open
            return False
        if mode != "delete":  # an in-memory database
            return False
        raw.execute("PRAGMA synchronous=FULL")
        try:
            raw.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:  # a reader came in between: it keeps its log
            # (lock() sets synchronous=NORMAL again: this connection's flag is not set)
            with suppress(sqlite3.OperationalError):
                raw.execute("PRAGMA journal_mode=WAL")
            return False
    conn.info["graph_synchronous_normal"] = True  # lock() keeps FULL for this write
    return True


def restore_wal(conn: sa.Connection) -> bool:
    """After :func:`bulk_journal`'s write is committed (or rolled back): back to the
    write-ahead log; True when switched. A file another connection opened meanwhile stays in
    the rollback journal, with a warning, until a connection of
    :func:`fraudlens.database.make_engine`, or :func:`create_tables`, switches it."""
    with _no_wait(conn) as raw:
        try:
            if raw.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return True
        except sqlite3.OperationalError:  # locked: another connection opened the file
            pass
    logger.warning(
        "identity graph store left in rollback-journal mode after a build (the file is open "
        "elsewhere); the next connection that can switches it back"
    )
    return False


@contextmanager
def _no_wait(conn: sa.Connection) -> Iterator[sqlite3.Connection]:
    """The SQLite connection under ``conn``, with its busy timeout off meanwhile."""
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    timeout = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute("PRAGMA busy_timeout=0")
    try:
        yield raw
    finally:
        raw.execute(f"PRAGMA busy_timeout={timeout}")


def lock_and_read_state(conn: sa.Connection) -> tuple[int, str]:
    """:func:`lock`, then what another process may have changed: the sequence number of the
    last claim written and the mark of the proximity snapshots (``""`` when none), in one
    round trip on PostgreSQL."""
    cursor = conn.connection.cursor()
    read_sql = "SELECT name, value FROM graph_meta WHERE name IN ('seq', 'proximity_as_of')"
    try:
        if conn.dialect.name == "postgresql":
            # two statements (the read must see what the lock's last holder committed), one
            # round trip where the driver sends them together
            lock_sql = f"SELECT pg_advisory_xact_lock({_LOCK_ID})"
            if conn.dialect.driver == "psycopg":
                cursor.execute(f"{lock_sql}; {read_sql}")
                cursor.nextset()
            else:
                cursor.execute(lock_sql)
                cursor.execute(read_sql)
        else:
            lock(conn)
            cursor.execute(read_sql)
        values = dict(cursor.fetchall())
    finally:
        cursor.close()
    return int(values.get("seq", 0)), str(values.get("proximity_as_of", ""))


class ClaimColumns(NamedTuple):
    """New ``graph_claims`` rows as columns, numbers as arrays (cheap to send to another
    process: a pickled array is one copy, a list of tuples one object per value)."""

    seq: NDArray[np.int64]
    claim_id: list[str]
    entity: NDArray[np.int64]
    ts: NDArray[np.float64]
    program: list[str]
    amount: NDArray[np.float64]
    keys: NDArray[np.int64]  # one row per claim, one column per key slot
    nid_invalid: NDArray[np.bool_]
    fingerprint: NDArray[np.int64]
    features: NDArray[np.float64]


class NewRows(NamedTuple):
    """Every row made since the store was last written, and the sequence number they reach."""

    claims: ClaimColumns
    entities: list[tuple[int, int, float]]
    aliases: list[tuple[int, int, int]]
    names: list[tuple[int, tuple[int, ...]]]
    tokens: list[tuple[int, frozenset[int]]]
    seq: int


def new_rows(
    pending: Pending,
    features_of: Callable[[list[int]], NDArray[np.float64]],
    names: list[tuple[int, tuple[int, ...]]],
    tokens: list[tuple[int, frozenset[int]]],
    seq: int,
    columns: ClaimColumns | None = None,
) -> NewRows:
    """The rows of ``pending`` (copied: the caller may clear it) and the new sequence number.

    ``columns``: the pending claims' rows, when the caller made them as columns already.
    """
    claims = pending.claims
    if pending.ingested and claims:
        raise ValueError("a build's ingested claims and added claims pending together")
    n = len(claims) or pending.ingested
    last = claims[-1][0] if claims else pending.last_ingested
    if columns is not None:
        if len(columns.seq) != n or (n and int(columns.seq[-1]) != last):
            raise ValueError(f"claim columns for {len(columns.seq)} claims, {n} pending")
    elif pending.ingested:
        raise ValueError(f"{n} ingested claims pending: their rows come from the build's columns")
    else:
        width = len(claims[0][1].keys) if claims else 0
        columns = ClaimColumns(
            np.fromiter((c[0] for c in claims), dtype=np.int64, count=n),
            [c[1].claim_id for c in claims],
            np.fromiter((c[2] for c in claims), dtype=np.int64, count=n),
            np.fromiter((c[1].ts for c in claims), dtype=np.float64, count=n),
            [c[1].program for c in claims],
            np.fromiter((c[1].amount for c in claims), dtype=np.float64, count=n),
            np.asarray([c[1].keys for c in claims], dtype=np.int64).reshape(n, width),
            np.fromiter((c[1].nid_invalid for c in claims), dtype=np.bool_, count=n),
            np.fromiter((c[1].fingerprint for c in claims), dtype=np.int64, count=n),
            features_of([c[3] for c in claims]),
        )
    return NewRows(
        columns,
        list(pending.entities),
        list(pending.aliases),
        list(names),
        list(tokens),
        seq,
    )


def _blobs(a: NDArray[np.generic]) -> list[bytes]:
    """Each row of a 2-d array as little-endian bytes."""
    data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
    w = a.dtype.itemsize * a.shape[1]
    return [data[i : i + w] for i in range(0, w * len(a), w)] if w else [b""] * len(a)


def concat_rows(parts: Sequence[NewRows]) -> NewRows:
    """Several writes' rows as one, in order (the sequence number the last one reaches)."""
    if len(parts) == 1:
        return parts[0]
    c = [p.claims for p in parts]
    claims = ClaimColumns(
        np.concatenate([x.seq for x in c]),
        [v for x in c for v in x.claim_id],
        np.concatenate([x.entity for x in c]),
        np.concatenate([x.ts for x in c]),
        [v for x in c for v in x.program],
        np.concatenate([x.amount for x in c]),
        np.concatenate([x.keys for x in c]),
        np.concatenate([x.nid_invalid for x in c]),
        np.concatenate([x.fingerprint for x in c]),
        np.concatenate([x.features for x in c]),
    )
    return NewRows(
        claims,
        [r for p in parts for r in p.entities],
        [r for p in parts for r in p.aliases],
        [r for p in parts for r in p.names],
        [r for p in parts for r in p.tokens],
        parts[-1].seq,
    )


def _claim_rows(c: ClaimColumns) -> list[tuple]:
    return list(
        zip(
            c.seq.tolist(),
            c.claim_id,
            c.entity.tolist(),
            c.ts.tolist(),
            c.program,
            c.amount.tolist(),
            _blobs(c.keys),
            c.nid_invalid.tolist(),
            c.fingerprint.tolist(),
            _blobs(c.features.astype(np.float64, copy=False)),
            strict=True,
        )
    )


def write_rows(conn: sa.Connection, rows: NewRows) -> None:
    """Write new rows (from this process or another), then their sequence number.

    With psycopg every statement goes in one round trip (a pipeline): the writer holds the
    graph's lock meanwhile, so each round trip is one the other workers wait for.
    """
    with one_round_trip(conn):
        _write_rows(conn, rows)


def _write_rows(conn: sa.Connection, rows: NewRows) -> None:
    if conn.dialect.name == "sqlite" and len(rows.claims.seq) > 1000:
        # 64 MiB for a bulk write: as fast as 256 MiB at 1M claims, 200 MiB less memory
        conn.exec_driver_sql("PRAGMA cache_size=-65536")
    insert_rows(conn, claims_table, _claim_rows(rows.claims))
    insert_rows(conn, entities_table, sorted((e, s, ts, None, None) for e, s, ts in rows.entities))
    insert_rows(conn, names_table, [(h, pack(t), rows.seq) for h, t in rows.names])
    insert_rows(conn, tokens_table, [(h, pack(v), rows.seq) for h, v in rows.tokens])
    mark = placeholder(conn)
    if rows.aliases:
        execute_raw(
            conn,
            f"UPDATE graph_entities SET alias_of = {mark}, merged_seq = {mark} WHERE entity_id = {mark}",
            [(survivor, s, loser) for loser, survivor, s in rows.aliases],
            many=True,
        )
    execute_raw(conn, f"UPDATE graph_meta SET value = {mark} WHERE name = 'seq'", (str(rows.seq),))


@dataclass
class StoredRows:
    """Rows read back from the store, ready for :meth:`GraphIndex.replay`."""

    claims: list[tuple[int, HashedClaim, int, NDArray[np.float64]]] = field(default_factory=list)
    aliases: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    entities: dict[int, tuple[int, float]] = field(default_factory=dict)
    names: dict[int, tuple[int, ...]] = field(default_factory=dict)
    variants: dict[int, frozenset[int]] = field(default_factory=dict)


#: What a sync reads, table by table, each in the column order :func:`_stored_rows` takes.
_SINCE: tuple[tuple[sa.Table, tuple[str, ...], str], ...] = (
    (names_table, ("name_hash", "tokens"), "seq"),
    (tokens_table, ("token_hash", "variants"), "seq"),
    (entities_table, ("entity_id", "seq", "first_seen"), "seq"),
    (entities_table, ("entity_id", "alias_of", "merged_seq", "seq"), "merged_seq"),
    (
        claims_table,
        ("seq", "claim_id", "entity_id", "ts", "program", "amount", "keys", "nid_invalid",
         "fingerprint", "features"),
        "seq",
    ),
)


def read_since(conn: sa.Connection, seq: int) -> StoredRows:
    """Every row written after sequence number ``seq``, in sequence order.

    With psycopg the five reads go in one round trip (a writer holds the graph's lock while it
    syncs, so each round trip there is one the other workers wait for); elsewhere one each.
    """
    after = int(seq)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        sql = ";".join(
            f"SELECT {', '.join(cols)} FROM {table.name} WHERE {by} > {after}"
            + (" ORDER BY seq" if table is claims_table else "")
            for table, cols, by in _SINCE
        )
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql)  # no parameters: the simple protocol, several statements
            parts = [cursor.fetchall()]
            while cursor.nextset():
                parts.append(cursor.fetchall())
        finally:
            cursor.close()
    else:
        parts = []
        for table, cols, by in _SINCE:
            q = sa.select(*(table.c[c] for c in cols)).where(table.c[by] > after)
            if table is claims_table:
                q = q.order_by(table.c.seq)
            parts.append(list(conn.execute(q)))
    return _stored_rows(*parts)


def _stored_rows(
    names: Sequence[Any],
    tokens: Sequence[Any],
    entities: Sequence[Any],
    merged: Sequence[Any],
    claims: Sequence[Any],
) -> StoredRows:
    out = StoredRows()
    for name_hash, blob in names:
        out.names[name_hash] = unpack(blob)
    for token_hash, blob in tokens:
        out.variants[token_hash] = frozenset(unpack(blob))
    for entity, eseq, first_seen in entities:
        out.entities[entity] = (eseq, first_seen)
    for entity, alias_of, merged_seq, _ in sorted(merged, key=lambda r: (r[2], r[3])):
        out.aliases.setdefault(merged_seq, []).append((entity, alias_of))
    for cseq, claim_id, entity, ts, program, amount, keys, nid_invalid, fp, features in claims:
        x = HashedClaim(claim_id, ts, program, amount, unpack(keys), bool(nid_invalid), fp)
        out.claims.append((cseq, x, entity, np.frombuffer(features, dtype="<f8")))
    return out


def write_proximity(conn: sa.Connection, as_of: float, scores: dict[int, float]) -> None:
    """Store one proximity snapshot (replacing one with the same as-of time)."""
    conn.execute(proximity_table.delete().where(proximity_table.c.as_of == as_of))
    insert_rows(conn, proximity_table, [(as_of, e, s) for e, s in scores.items()])
    write_meta(conn, {"proximity_as_of": json.dumps(read_proximity_times(conn))})


def read_proximity_times(conn: sa.Connection) -> list[float]:
    """The as-of times of the stored proximity snapshots, oldest first."""
    q = sa.select(proximity_table.c.as_of).distinct().order_by(proximity_table.c.as_of)
    return [float(v) for v in conn.execute(q).scalars()]


def read_proximity(conn: sa.Connection) -> list[tuple[float, dict[int, float]]]:
    """Every proximity snapshot, oldest first."""
    snaps: dict[float, dict[int, float]] = {}
    for r in conn.execute(sa.select(proximity_table)):
        snaps.setdefault(r.as_of, {})[r.entity_id] = r.score
    return sorted(snaps.items())
