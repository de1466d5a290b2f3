"""The batch build's helper process: it hashes the next chunk and writes the last one.

While a build ingests chunk ``k`` (the sequential part: resolution, features, the index), the
helper writes chunk ``k - 1``'s rows and hashes chunk ``k + 1``. It is a plain child
interpreter fed pickled requests on its stdin, one at a time, each answered on its stdout
(a ``multiprocessing`` spawn pool would re-run the caller's main script, which a library
cannot ask of every script that builds a graph). It sends back keyed hashes and name sketches
only, never a raw or normalised value, and errors by their type only.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import IO, cast

import pandas as pd
import sqlalchemy as sa

from graph import store
from graph.hashing import FrameHasher, HashedChunk, hash_chunk
from graph.index import layout_for
from graph.keys import KeyedHasher
from graph.normalise import NormaliseOptions
from graph.resolution import NameSketcher

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]


def helper_database(engine: sa.Engine) -> str | None:
    """The URL by which a helper process can open ``engine``'s store itself: a SQLite file's.

    None for anything else (an in-memory SQLite database; PostgreSQL, whose engine may carry
    connection arguments a URL does not): the build then writes in its own process.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    path = str(Path(url.database).resolve())
    return url.set(database=path).render_as_string(hide_password=False)


class BuildHelper:
    """A helper process for a batch build: hashes chunks and, given a database, writes rows.

    Every request (:meth:`send`) is answered (:meth:`receive`) before the next is sent, so
    neither process can wait on the other's full pipe.

    Parameters
    ----------
    hasher : KeyedHasher
        The keyed hasher (it travels to the helper through the pipe, never through a file).
    identity_columns : dict
        Spec column -> identity kind.
    options : NormaliseOptions
        Regional reading rules.
    database : str, optional
        From :func:`helper_database`: the helper writes the rows sent to it there, in one
        transaction committed by the last request. None: the helper only hashes.
    """

    def __init__(
        self,
        hasher: KeyedHasher,
        identity_columns: dict[str, str],
        options: NormaliseOptions,
        database: str | None = None,
    ) -> None:
        # the helper imports as this process does, this package first, never from its cwd (-P)
        path = [str(Path(__file__).resolve().parents[1]), *(p for p in sys.path if p)]
        code = (
            "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
            "import graph.helper as h; h.serve()"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-c", code, json.dumps(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for pipe in (self._proc.stdin, self._proc.stdout):
            _widen(pipe)
        self._pending = False
        self.database = database
        #: whether the helper writes with the rollback journal (:func:`graph.store.bulk_journal`)
        self.bulk_journal = False
        self._write((hasher, dict(identity_columns), options, database))

    def _write(self, obj: object) -> None:
        stdin = self._proc.stdin
        assert stdin is not None  # opened as a pipe
        try:
            pickle.dump(obj, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(self._stopped()) from None

    def _stopped(self) -> str:
        return f"the build's helper process stopped (exit code {self._proc.wait()})"

    def send(
        self, X: pd.DataFrame | None, rows: store.NewRows | None = None, *, commit: bool = False
    ) -> None:
        """Ask for rows to be written (then, with ``commit``, committed) and a chunk hashed."""
        if self._pending:
            raise RuntimeError("the helper's last answer must be received before the next request")
        self._write((X, rows, commit))
        self._pending = True

    def receive(self) -> HashedChunk | None:
        """The answer to the last request: the hashed chunk (None when none was sent)."""
        stdout = self._proc.stdout
        assert stdout is not None  # opened as a pipe
        self._pending = False
        try:
            status, value, self.bulk_journal = pickle.load(stdout)
        except EOFError:
            raise RuntimeError(self._stopped()) from None
        if status != "ok":
            raise RuntimeError(f"the build's helper process failed: {value}")
        return cast(HashedChunk | None, value)

    def __enter__(self) -> BuildHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the helper: it exits when its input closes; one still working is killed (its
        uncommitted writes roll back)."""
        if self._pending:  # the caller gave up on the request in hand
            self._proc.kill()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with suppress(BrokenPipeError):  # the helper was killed with input unread
                    pipe.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _widen(pipe: IO[bytes] | None) -> None:
    """A 1 MiB pipe buffer where the system allows it (Linux): a chunk's rows (60-75 MB at
    100,000 claims) cross in 1 MiB steps, not 64 KiB ones, each a switch between processes."""
    size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is None or size is None:
        return
    with suppress(OSError):  # a lower limit in /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(pipe.fileno(), size, 1 << 20)


class _Flusher:
    """Hands a database file's written pages to the disk in a background thread, so that the
    commit of a bulk write (rollback journal, ``synchronous=FULL``) has only the last ones left
    to wait for: at 1M claims about 1.5 GB are written, and the commit's sync took 1 s when it
    found them all still in memory (the kernel starts writing back only at a share of memory,
    or after 30 s). It only syncs what is written: SQLite's own syncs decide what is durable.
    Close it only after the connection to the file is closed (see :func:`serve`).
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sync what is written so far, unless the last sync is still running."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._sync, name="flusher", daemon=True)
            self._thread.start()

    def _sync(self) -> None:
        with suppress(OSError):  # the commit's own sync reports any disk error
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        os.close(self._fd)


def serve() -> None:
    """The helper's loop: set-up, then requests in and answers out, until its input closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # only pickles go to the pipe
    hasher, identity_columns, options, database = pickle.load(stdin)
    frame_hasher = FrameHasher(layout_for(identity_columns), hasher, NameSketcher(hasher), options)
    conn: sa.Connection | None = None
    bulk = False
    flusher: _Flusher | None = None
    if database is not None:
        conn = sa.create_engine(database).connect()
        bulk = store.bulk_journal(conn)
        conn.begin()
        store.lock(conn, file_lock=False)  # the build's process holds the writers' lock file
        path = sa.make_url(database).database
        if bulk and path and hasattr(os, "fdatasync"):
            flusher = _Flusher(path)
    try:
        _serve(stdin, stdout, frame_hasher, conn, bulk, flusher)
    finally:
        # Closing any descriptor of the file drops this process's locks on it (POSIX locks
        # belong to the process): the connection rolls back whatever it did not commit, and
        # lets the file go, first.
        if conn is not None:
            conn.close()
            conn.engine.dispose()
        if flusher is not None:
            flusher.close()


def _serve(
    stdin: IO[bytes],
    stdout: IO[bytes],
    frame_hasher: FrameHasher,
    conn: sa.Connection | None,
    bulk: bool,
    flusher: _Flusher | None,
) -> None:
    while True:
        try:
            X, rows, commit = pickle.load(stdin)
        except EOFError:
            return  # anything written and not committed rolls back with the connection
        try:
            if rows is not None or commit:
                if conn is None:
                    raise RuntimeError("rows sent to a helper without a database")
                if rows is not None:
                    store.write_rows(conn, rows)
                    if flusher is not None and not commit:
                        flusher.start()
                if commit:
                    conn.commit()
                    if bulk:
                        store.restore_wal(conn)  # warns if it cannot
            value = hash_chunk(frame_hasher, X) if X is not None else None
            out: tuple[str, object, bool] = ("ok", value, bulk)
        except Exception as exc:  # sent back (its type only: no value may leave in a message)
            out = ("error", type(exc).__name__, bulk)
        pickle.dump(out, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
