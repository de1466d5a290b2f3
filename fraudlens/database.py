"""Database engines, built by a factory: SQLite for one process, PostgreSQL when several share state."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnDefault,
    Connection,
    Dialect,
    Engine,
    Table,
    create_engine,
    event,
)
from sqlalchemy.exc import DBAPIError

from fraudlens.jsontext import json_text

log = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, background_checkpoints: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    Every backend writes JSON columns with :data:`fraudlens.jsontext.json_text`: a non-finite
    float (NaN, +/-inf: an overflowing detector score) is stored as JSON null, on SQLite as on
    PostgreSQL, whose json type refuses the ``NaN`` / ``Infinity`` tokens of ``json.dumps``.

    With ``background_checkpoints`` a SQLite file's connections never copy the write-ahead log
    into the database themselves (``wal_autocheckpoint=0``): a :class:`WalCheckpointer` must
    run beside them (a server does, so that no request waits for a checkpoint).

    >>> make_engine("sqlite://").dialect.name
    'sqlite'
    """
    kwargs.setdefault("json_serializer", json_text)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, record: Any) -> None:
            cur = dbapi_conn.cursor()
            if path and path != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            if background_checkpoints and path and path != ":memory:":
                cur.execute("PRAGMA wal_autocheckpoint=0")
                record.info[BACKGROUND_CHECKPOINTS] = True
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


#: Set in a connection's ``info`` when a :class:`WalCheckpointer` copies its log.
BACKGROUND_CHECKPOINTS = "fraudlens_background_checkpoints"


def sqlite_file(engine: Engine) -> str | None:
    """The database file of a file-backed SQLite engine, else None."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    return path if path and path != ":memory:" else None


#: Pages (4 KiB) in a server's write-ahead log past which its writer restarts the log
#: (1 GiB: at 1,000 requests a second, about once in 25 s).
RESTART_PAGES = 262_144


class WalCheckpointer:
    """Copies a SQLite file's write-ahead log into the database from a background thread.

    A commit that crosses SQLite's automatic checkpoint threshold copies the whole log itself
    (measured here: 30-45 ms at 10,000 pages, about once in 750 single-claim requests), so a
    request that happens to commit then waits for it. A server's engine turns automatic
    checkpoints off (``make_engine(..., background_checkpoints=True)``) and runs this instead:
    a passive checkpoint every ``interval`` seconds on its own connection, which never blocks
    readers or writers, and with the GIL released while SQLite copies pages.

    A passive checkpoint copies the log but never starts it again: SQLite starts the log
    again only when a write finds every page of it copied, which a server writing without
    pause never lets happen (measured: the log grew by 40 MB a second at 1,000 requests a
    second, 1.4 GB in 33 s). So once the log holds ``restart_pages`` pages, the next write
    transaction of ``engine`` (the server's writer) first asks for a restarting checkpoint:
    the thread has just copied nearly all of the log, so what is left is the pages written
    since and a sync. It waits at most ``restart_wait_ms`` for readers of older pages; if they
    keep it waiting, the thread asks again after its next copy. The thread could not do this
    itself: the writer's lock goes back to the writer between two transactions faster than a
    waiting checkpoint can take it. ``restarts`` counts the restarts done, ``restarts_missed``
    the tries that ran out of time.
    """

    def __init__(
        self,
        path: str,
        engine: Engine | None = None,
        interval: float = 1.0,
        restart_pages: int = RESTART_PAGES,
        restart_wait_ms: int = 20,
    ) -> None:
        self.path = path
        self.interval = interval
        self.restart_pages = restart_pages
        self.restart_wait_ms = restart_wait_ms
        self.restarts = 0
        self.restarts_missed = 0
        self._restart_due = False
        self._restarts_by_writer = engine is not None
        if engine is not None:
            event.listen(engine, "begin", self._before_write)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, after one last checkpoint that also truncates the log."""
        self._stop.set()
        self._thread.join(timeout=30)

    def checkpoint(self, conn: sqlite3.Connection, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """One checkpoint: (busy, log frames, frames copied), as SQLite reports them."""
        row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            while not self._stop.wait(self.interval):
                try:
                    _, frames, _ = self.checkpoint(conn)
                    if self._restarts_by_writer and frames >= self.restart_pages:
                        # again: what is left is what was written during the first copy
                        self.checkpoint(conn)
                        self._restart_due = True
                except sqlite3.Error as exc:  # a busy database: try again next time
                    log.warning("write-ahead log checkpoint failed: %s", exc)
            try:
                self.checkpoint(conn, "TRUNCATE")
            except sqlite3.Error as exc:
                log.warning("final write-ahead log checkpoint failed: %s", exc)
        finally:
            conn.close()

    def _before_write(self, conn: Connection) -> None:
        """At the start of a transaction of the engine: restart the log when it is due."""
        if not self._restart_due:
            return
        raw = conn.connection.driver_connection
        if raw is None or raw.in_transaction:
            return
        self._restart_due = False
        try:
            raw.execute(f"PRAGMA busy_timeout={int(self.restart_wait_ms)}")
            try:
                busy, _, _ = self.checkpoint(raw, "RESTART")
            finally:
                raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:  # the transaction goes on; the thread asks again
            log.warning("write-ahead log restart failed: %s", exc)
            busy = 1
        if busy:
            self.restarts_missed += 1
        else:
            self.restarts += 1


@contextmanager
def one_round_trip(conn: Connection) -> Iterator[None]:
    """The writes sent in the block go in one round trip where the driver can pipeline them
    (psycopg's pipeline mode: each is sent without waiting for the last one's answer);
    elsewhere a no-op. An error arrives at the end of the block, raised as SQLAlchemy's
    (``IntegrityError``...) as a lone statement's is. Writes only: SQLAlchemy takes a
    pipelined ``SELECT``, whose rows have not arrived yet, for a statement without rows."""
    if conn.dialect.driver != "psycopg":
        yield
        return
    dbapi = conn.dialect.dbapi
    assert dbapi is not None  # a live psycopg connection
    try:
        with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            yield
    except dbapi.Error as exc:
        raise DBAPIError.instance(
            "statements of one pipeline", None, exc, dbapi.Error, dialect=conn.dialect
        ) from exc


def placeholder(conn: Connection) -> str:
    """The driver's positional parameter mark: ``?`` (sqlite3) or ``%s`` (psycopg)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


@lru_cache(maxsize=512)
def insert_sql(table: str, columns: tuple[str, ...], mark: str, n_rows: int) -> str:
    """``INSERT INTO table (columns) VALUES (...), (...)`` for ``n_rows`` rows (built once)."""
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([row] * n_rows)


#: Rows in one multi-row INSERT statement (below SQLite's and PostgreSQL's parameter limits).
MULTI_ROW = 64
#: Parameters in one multi-row statement: SQLite before 3.32 allows 999.
MULTI_ROW_PARAMS = 999
#: The most parameters of a statement psycopg 3 caches the parsing of.
PSYCOPG_CACHED_PARAMS = 50


@lru_cache(maxsize=64)
def select_in_sql(table: str, columns: tuple[str, ...], key: str, mark: str, n: int) -> str:
    """``SELECT columns FROM table WHERE key IN (...)`` for ``n`` values (built once)."""
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {key} IN ({', '.join([mark] * n)})"


_ABSENT = object()


class RowEncoder:
    """Rows (mappings) as the tuples of driver values SQLAlchemy's ``insert`` binds for them.

    Per column of ``columns`` (default: all of the table's): a value the row lacks takes the
    column's Python-side default (``defaults`` adds or overrides some), else SQL NULL; a JSON
    column's value goes through the dialect's JSON serializer (``None`` too: JSON ``null``):
    :data:`fraudlens.jsontext.json_text` on an engine of :func:`make_engine`, and on an engine
    without a serializer of its own, so a non-finite float is stored as ``null``; any other
    value through its type's bind processor on ``dialect`` (SQLite's datetime string, a
    float), if the type has one. What the database stores is then what SQLAlchemy's insert of
    the same rows stores on an engine of :func:`make_engine`, without its per-row work.

    >>> from sqlalchemy import Column, Integer, MetaData, create_engine
    >>> t = Table("t", MetaData(), Column("a", Integer), Column("j", JSON), Column("n", Integer, default=7))
    >>> RowEncoder(t, create_engine("sqlite://").dialect)([{"a": 1, "j": None}, {"a": 2, "j": [1.5]}])
    [(1, 'null', 7), (2, '[1.5]', 7)]
    """

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        columns: Sequence[str] | None = None,
        defaults: Mapping[str, Callable[[], Any]] | None = None,
    ) -> None:
        self.table = table
        self.columns = tuple(columns) if columns is not None else tuple(c.name for c in table.c)
        serialize = getattr(dialect, "_json_serializer", None) or json_text
        cols = [table.c[name] for name in self.columns]
        encoders = [
            serialize
            if isinstance(c.type, JSON)
            else c.type.dialect_impl(dialect).bind_processor(dialect)
            for c in cols
        ]
        self._encoders = [(i, e) for i, e in enumerate(encoders) if e is not None]
        made: dict[int, Callable[[], Any]] = {}
        for i, c in enumerate(cols):
            if c.default is None:
                continue
            if not isinstance(c.default, ColumnDefault) or c.default.is_clause_element:
                raise ValueError(f"column {table.name}.{c.name}: expected a Python default")
            made[i] = _default_maker(c.default.arg, c.default.is_callable)
        for name, make in (defaults or {}).items():
            made[self.columns.index(name)] = make
        self._defaults = sorted(made.items())

    def __call__(
        self, rows: Sequence[Mapping[str, Any]], replace: Mapping[str, Sequence[Any]] | None = None
    ) -> list[tuple[Any, ...]]:
        """The driver values of ``rows``; ``replace`` gives some columns' values instead."""
        unknown = set().union(*rows).difference(self.columns)
        if unknown:
            raise ValueError(
                f"{self.table.name} rows: expected columns of {self.columns}, got {sorted(unknown)}"
            )
        names, width = self.columns, len(self.columns)
        swap = [(names.index(name), values) for name, values in (replace or {}).items()]
        out = []
        for n, r in enumerate(rows):
            v = [r.get(name, _ABSENT) for name in names]
            for i, values in swap:
                v[i] = values[n]
            for i, make in self._defaults:
                if v[i] is _ABSENT:
                    v[i] = make()
            for i, encode in self._encoders:
                if v[i] is not _ABSENT:
                    v[i] = encode(v[i])
            if len(r) < width:
                v = [None if x is _ABSENT else x for x in v]
            out.append(tuple(v))
        return out


def _default_maker(arg: Any, is_callable: bool) -> Callable[[], Any]:
    """A column default as a function of nothing (SQLAlchemy wraps a callable to take a context)."""
    if is_callable:
        return lambda: arg(None)
    return lambda: arg


def _max_params(conn: Connection) -> int:
    """Parameters in one multi-row statement: psycopg parses a statement of more than 50
    again at every execution (it caches no larger one); ``executemany`` of the one-row
    statement costs less there, and is one round trip (pipeline mode)."""
    return PSYCOPG_CACHED_PARAMS if conn.dialect.driver == "psycopg" else MULTI_ROW_PARAMS


@lru_cache(maxsize=64)
def _column_names(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns)


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[tuple[Any, ...]],
    chunk: int = 50_000,
    columns: Sequence[str] | None = None,
) -> None:
    """Insert rows (values in the order of ``columns``, default the table's, ready for the
    driver: see :class:`RowEncoder`) in the connection's transaction, through
    :func:`execute_raw`: no per-row bind processing.

    A few rows (a claim's, a micro-batch's) go in one multi-row statement: one round trip. Many
    rows (a batch build) go through ``executemany`` in chunks. Errors are SQLAlchemy's, as
    with ``conn.execute`` (``IntegrityError`` for a duplicate key).
    """
    if not rows:
        return
    names = tuple(columns) if columns is not None else _column_names(table)
    mark = placeholder(conn)
    if len(rows) <= min(MULTI_ROW, _max_params(conn) // len(names)):
        sql = insert_sql(table.name, names, mark, len(rows))
        execute_raw(conn, sql, tuple(chain.from_iterable(rows)))
        return
    sql = insert_sql(table.name, names, mark, 1)
    for i in range(0, len(rows), chunk):
        execute_raw(conn, sql, list(rows[i : i + chunk]), many=True)


def execute_raw(
    conn: Connection, sql: str, params: Sequence[Any] = (), *, many: bool = False, fetch: bool = False
) -> list[Any]:
    """Run one driver-level statement on ``conn``'s DBAPI cursor, in its transaction; with
    ``fetch``, the rows it returns (else nothing is read: psycopg's pipeline mode keeps the
    statement in the round trip it shares with others).

    What ``conn.exec_driver_sql`` does for the statements of a micro-batch, without its
    per-statement work (about 9 us a statement here against under 1 us on the cursor; a
    batch runs six to eight): the same driver call, and a driver error raised as the same
    SQLAlchemy exception (``IntegrityError`` for a duplicate key, ``OperationalError``...),
    with the driver's error as its ``orig``. No statement events are sent; fraudlens listens
    to none.
    """
    cursor = conn.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
            return []
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if fetch else []
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()
