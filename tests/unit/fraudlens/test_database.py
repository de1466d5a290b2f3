"""SQLite engines: the server's write-ahead log is copied by a background thread, not by commits."""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from fraudlens.database import WalCheckpointer, make_engine, sqlite_file
from graph import store


def _write(engine: sa.Engine, n: int) -> None:
    with store.transaction(engine) as conn:
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


def _write_without_pause(engine: sa.Engine, path: str, n: int) -> int:
    """A server's writer that never leaves the log alone: ``n`` small transactions, one after
    another; returns the log file's size at the end."""
    for _ in range(n):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("y" * 4000,))
    return os.path.getsize(f"{path}-wal")  # before the last connection removes it


@pytest.mark.parametrize("restart_pages", [200, 10**9])
def test_a_log_written_without_pause_is_restarted_past_its_limit(tmp_path, restart_pages) -> None:
    # A passive checkpoint never restarts the log while writes keep coming: without a restart
    # (a limit never reached) the log holds every page written.
    path = str(tmp_path / "h.db")
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    _write(engine, 1)
    checkpointer = WalCheckpointer(path, engine, interval=0.02, restart_pages=restart_pages)
    checkpointer.start()
    n = 12_000
    with ThreadPoolExecutor(1) as pool:  # beside the checkpointer, as a server's event loop
        wal_bytes = pool.submit(_write_without_pause, engine, path, n).result(timeout=120)
    checkpointer.stop()
    if restart_pages == 200:
        assert checkpointer.restarts >= 1
        assert wal_bytes < n * 4096 / 3  # the log was started again, its file reused
    else:
        assert checkpointer.restarts == checkpointer.restarts_missed == 0
        assert wal_bytes > n * 4096  # every row's page is still in the log
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == n + 1
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()


class _FailingCheckpoints(sqlite3.Connection):
    """A driver connection whose checkpoints fail (a disk error, say)."""

    def execute(self, sql, *args):  # type: ignore[override]
        if "wal_checkpoint" in sql:
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


def test_a_failed_restart_leaves_the_write_to_go_on(tmp_path, caplog) -> None:
    path = str(tmp_path / "k.db")
    engine = make_engine(
        f"sqlite:///{path}",
        background_checkpoints=True,
        connect_args={"check_same_thread": False, "timeout": 30, "factory": _FailingCheckpoints},
    )
    _write(engine, 1)
    checkpointer = WalCheckpointer(path, engine)  # not started: the restart is asked for here
    checkpointer._restart_due = True
    _write(engine, 1)
    assert (checkpointer.restarts, checkpointer.restarts_missed) == (0, 1)
    assert "write-ahead log restart failed" in caplog.text
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
    engine.dispose()
