"""SQLite engines: the server's write-ahead log is copied by a background thread, not by commits."""

from __future__ import annotations

import os

import sqlalchemy as sa

from fraudlens.database import WalCheckpointer, make_engine, sqlite_file
from graph import store


def _write(engine: sa.Engine, n: int) -> None:
    with engine.begin() as conn:
        store.lock(conn)  # the graph's write mode must keep automatic checkpoints off
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x TEXT)")
        for _ in range(n):
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 4000,))


def test_background_checkpoints_leave_the_log_to_the_thread(tmp_path) -> None:
    path = tmp_path / "f.db"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    assert sqlite_file(engine) == str(path)
    _write(engine, 3000)  # ~12 MB: past SQLite's default threshold of 1,000 pages
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    wal = tmp_path / "f.db-wal"
    assert wal.stat().st_size > 10_000_000  # no commit copied the log
    checkpointer = WalCheckpointer(str(path), interval=0.05)
    checkpointer.start()
    checkpointer.stop()  # at least one passive checkpoint, then a truncating one
    assert wal.stat().st_size == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 3000
    engine.dispose()


def test_other_engines_checkpoint_by_themselves(tmp_path) -> None:
    path = tmp_path / "g.db"
    engine = make_engine(f"sqlite:///{path}")
    _write(engine, 3000)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == store.WAL_CHECKPOINT_PAGES
    engine.dispose()
    assert sqlite_file(make_engine("sqlite://")) is None
    assert os.path.getsize(path) > 10_000_000  # the pages reached the database file
