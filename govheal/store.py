"""SQLite state shared by the remediator and the receiver: one file under the state dir, WAL mode.

Each component owns its tables and migrates them with :func:`migrate`; two processes on one host
may open the same file (WAL + busy timeout).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from govheal.errors import UsageError, path_problem
from govheal.fsmode import private_dir, private_file, tighten

DB_NAME = "govheal.sqlite3"


def db_path(state_dir: Path) -> Path:
    return state_dir / DB_NAME


def connect(path: Path, *, timeout: float = 10.0,
            factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    """Open (creating parents) with WAL, a busy timeout and autocommit; use ``with tx(conn)`` to group.

    The state is private: new directories 0700, the database 0600 (SQLite gives its -wal and -shm files
    the database's mode), and files an older version left readable are tightened.
    A state file that cannot be created or opened is the operator's to fix: :class:`UsageError` naming it.
    ``factory`` is the connection class (``govheal.state`` passes one that reports disk failures).
    """
    try:
        private_dir(path.parent)
        private_file(path)
        for suffix in ("-wal", "-shm", "-journal"):
            tighten(path.with_name(path.name + suffix))
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False,
                               factory=factory)
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        _enable_wal(conn, timeout)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"state_dir: cannot create or open the state file {path}: {path_problem(path, exc)}; "
                         "set state_dir in the config to a directory this user can write") from None
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL. Two processes opening a brand-new file at once race for the switch, and SQLite
    answers the loser "database is locked" at once, without calling the busy handler: retry it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error); serialises writers across processes."""

    _local = threading.local()

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()  # a failed COMMIT (disk full) may leave the transaction open: never reuse it
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        """Roll back if SQLite has not already (it does by itself on SQLITE_FULL); never mask the first error."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")


def migrate(conn: sqlite3.Connection, component: str, steps: Sequence[str]) -> None:
    """Apply the not-yet-applied ``steps`` (SQL scripts) of ``component`` in order, once each."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    with tx(conn):
        row = conn.execute("SELECT version FROM schema_version WHERE component = ?", (component,)).fetchone()
        current = row[0] if row else 0
        for version, script in enumerate(steps, start=1):
            if version <= current:
                continue
            for statement in filter(None, (s.strip() for s in script.split(";"))):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, version),
            )
