"""The state object: one per process, it owns the SQLite file under ``state_dir`` and hands out connections.

``State.open(state_dir)`` opens the file once (``govheal.store.connect``) and runs the migrations of every
component it is asked for; ``state.connection(component)`` then gives that component (inbox, outbox,
remediator) a connection of its own to the same file. Why one per component and not one shared: a Python
``sqlite3`` connection holds one transaction at a time, so a shared one needs one process-wide lock, and a
webhook's inbox write would then queue behind a bridge worker's poll or wait out another process's
``busy_timeout``. With a connection each, every component serialises only its own work (each keeps its own
lock), SQLite serialises the writers (``BEGIN IMMEDIATE``) and WAL lets readers run beside them.

The state object also

* checkpoints the WAL in a background thread (its connections never checkpoint inside a commit), on its
  own connection, which it also uses for migrations and the write probe;
* knows whether writes succeed (:class:`WriteHealth`): every connection it hands out reports a full disk
  or an I/O error, and the next successful write; the condition is logged once when it starts and once
  when it ends, and ``writable()`` (``/readyz``) is false meanwhile;
* takes the exclusive lock of a role on the state dir (:meth:`State.lock`): two receivers on one state dir
  would act on and announce every alert twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govheal.errors import UsageError
from govheal.store import connect, db_path, migrate, tx

log = logging.getLogger("govheal.state")

CHECKPOINT_INTERVAL = 1.0  # seconds between background WAL checkpoints
PROBE_INTERVAL = 1.0  # writable() writes at most this often; the result is reused in between
# SQLite primary result codes that mean "the disk cannot take this write" (not contention: SQLITE_BUSY).
SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 8, 10, 13, 14
DISK_FAILURES = frozenset({SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN})
_WRITES = ("COMMIT", "END", "INSERT", "UPDATE", "DELETE", "REPLACE")
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


@dataclass(frozen=True)
class Component:
    """A writer of the state file: its name in ``schema_version`` and its migration steps (SQL scripts)."""

    name: str
    migrations: Sequence[str]


STATE = Component("state", ["CREATE TABLE state_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL, pad BLOB)"])


def disk_failure(exc: BaseException) -> bool:
    """Is this a write the disk refused (full, I/O error, read-only), as opposed to a bug or contention?"""
    if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error):
        return exc.errno in DISK_ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in DISK_FAILURES
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("disk is full" in text or "disk i/o error" in text)


def log_failure(logger: logging.Logger, message: str, exc: BaseException, *args: object) -> None:
    """``logger.exception(message)``, except for a disk failure: :class:`WriteHealth` has logged that
    condition once already, so a component waiting it out adds only a debug line (no traceback per retry)."""
    if disk_failure(exc):
        logger.debug(message + ": %s (the state disk refuses writes)", *args, exc)
    else:
        logger.error(message, *args, exc_info=exc)


class WriteHealth:
    """Whether writes to the state file succeed. Thread-safe; logs a change of state, never each failure."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.failing_since: float | None = None
        self.errors = 0  # failed writes since start (govheal_state_write_errors_total)
        self.last_error = ""
        self._lock = threading.Lock()

    @property
    def writable(self) -> bool:
        return self.failing_since is None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = str(exc)
            if self.failing_since is not None:
                return
            self.failing_since = self.clock()
        log.error("state: writes to %s fail: %s. Alerts are refused with 503 (Alertmanager retries them), "
                  "remediation and notifications wait, /readyz answers 503; all of it resumes by itself once "
                  "writes succeed again (free space on that disk). Logged once until then.", self.path, exc)

    def ok(self) -> None:
        if self.failing_since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self.failing_since = self.failing_since, None
        if since is not None:
            log.warning("state: writes to %s succeed again after %.0f s; resuming", self.path,
                        max(0.0, self.clock() - since))


def _writes(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class TrackedConnection(sqlite3.Connection):
    """A connection that tells :class:`WriteHealth` when the disk refuses a write, and when one succeeds."""

    health: WriteHealth | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            cur = super().execute(sql, parameters)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise
        self._done(sql)
        return cur

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            cur = super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise
        self._done(sql)
        return cur

    def _failed(self, exc: sqlite3.Error) -> None:
        if self.health is not None and disk_failure(exc):
            self.health.failed(exc)

    _written = 0  # total_changes at the last committed write

    def _done(self, sql: str) -> None:
        """A committed statement that changed rows is evidence the disk takes writes again; one that changed
        nothing (an UPDATE matching no row, an INSERT … DO NOTHING) is not: it wrote nothing."""
        if self.in_transaction or not _writes(sql):
            return
        changed, self._written = self.total_changes > self._written, self.total_changes
        if changed and self.health is not None and self.health.failing_since is not None:
            self.health.ok()


class StateLocked(UsageError):
    """Another process holds the role's lock on this state dir; the message names it (exit 2)."""


class State:
    """Use :meth:`open`. Closing it closes every connection it handed out."""

    def __init__(self, state_dir: Path, conn: sqlite3.Connection, health: WriteHealth,
                 clock: Callable[[], float], checkpoint_interval: float) -> None:
        self.dir = state_dir
        self.path = db_path(state_dir)
        self.clock = clock
        self.health = health
        self._conn = conn  # migrations, checkpoints, the write probe; nobody else uses it
        self._lock = threading.Lock()
        self._migrated: set[str] = set()
        self._handed: list[sqlite3.Connection] = []
        self._locks: dict[str, int] = {}
        self._probed_at = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._background, args=(checkpoint_interval,),
                                        name="state-checkpoint", daemon=True)
        self._thread.start()
        weakref.finalize(self, self._stop.set)  # a State dropped without close() stops its thread too

    @classmethod
    def open(cls, state_dir: Path, *, clock: Callable[[], float] = time.time, components: Iterable[Component] = (),
             checkpoint_interval: float = CHECKPOINT_INTERVAL) -> State:
        """Open ``state_dir/govheal.sqlite3`` (created if missing) and migrate ``components``.

        A file that cannot be created or opened is a :class:`~govheal.errors.UsageError` naming it.
        """
        health = WriteHealth(db_path(state_dir), clock)
        conn = _open(db_path(state_dir), health)
        state = cls(state_dir, conn, health, clock, checkpoint_interval)
        for component in (STATE, *components):
            state.migrate(component)
        return state

    # -- connections ---------------------------------------------------------------------------------
    def migrate(self, component: Component) -> None:
        """Apply ``component``'s migrations (once per process; :func:`govheal.store.migrate` is idempotent)."""
        with self._lock:
            if component.name not in self._migrated:
                migrate(self._conn, component.name, component.migrations)
                self._migrated.add(component.name)

    def connection(self, component: Component) -> sqlite3.Connection:
        """A new connection of its own for ``component``, whose tables exist; closed by :meth:`close`."""
        self.migrate(component)
        conn = _open(self.path, self.health)
        with self._lock:
            self._handed.append(conn)
        return conn

    # -- write health ---------------------------------------------------------------------------------
    def writable(self) -> bool:
        """True when writes succeed: a real write (at most every PROBE_INTERVAL), not just the write lock,
        which a full disk still grants."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_INTERVAL:
            self._probed_at = now
            self.probe()
        return self.health.writable

    def probe(self) -> bool:
        """Write one small row (about two pages) and commit; the outcome updates :attr:`health`."""
        try:
            with self._lock, tx(self._conn) as c:
                c.execute("INSERT INTO state_probe (id, at, pad) VALUES (1, ?, zeroblob(6000)) ON CONFLICT (id) "
                          "DO UPDATE SET at = excluded.at, pad = excluded.pad", (self.clock(),))
        except sqlite3.Error as exc:
            if not disk_failure(exc):
                log.debug("state: probe failed: %s", exc)
            return False
        return True

    def _background(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                pass  # busy or a transient error: the next round tries again
            if not self.health.writable:
                self.probe()  # nothing else may write for a while: notice by ourselves that space is back

    # -- the lock of a role on the state dir ----------------------------------------------------------
    def lock(self, role: str, **info: object) -> None:
        """Hold ``state_dir/<role>.lock`` exclusively (``flock``) until the process ends.

        The file says who holds it (pid, start time and ``info``, e.g. the listen address); a second
        process asking for the same role gets :class:`StateLocked` naming the first.
        """
        path = self.dir / f"{role}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateLocked(_locked_message(role, self.dir, holder)) from None
        self._locks[role] = fd
        self.describe_lock(role, pid=os.getpid(), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info)

    def describe_lock(self, role: str, **info: object) -> None:
        """Add ``info`` (e.g. the listen address once bound) to what the lock file says about its holder."""
        fd = self._locks[role]
        holder = {**_read_holder(fd), **info}
        data = json.dumps(holder).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as exc:  # a full disk: the lock holds all the same, a second process cannot say who
            log.warning("state: cannot describe the %s lock in %s: %s", role, self.dir / f"{role}.lock", exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        with self._lock:
            for conn in [*self._handed, self._conn]:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._handed.clear()
        for fd in self._locks.values():
            with contextlib.suppress(OSError):
                os.close(fd)  # releases the flock
        self._locks.clear()


def _open(path: Path, health: WriteHealth) -> sqlite3.Connection:
    conn = connect(path, factory=TrackedConnection)
    assert isinstance(conn, TrackedConnection)
    conn.health = health
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the state object checkpoints in the background
    return conn


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _locked_message(role: str, state_dir: Path, holder: dict[str, Any]) -> str:
    who = [f"pid {holder['pid']}" if holder.get("pid") else "pid unknown"]
    if holder.get("listen"):
        who.append(f"listening on {holder['listen']}")
    if holder.get("started"):
        who.append(f"since {holder['started']}")
    return (f"another govheal {role} ({', '.join(who)}) is using the state dir {state_dir}: two on one state dir "
            f"would act on and announce every alert twice. Stop that one first, or give this one its own "
            f"state_dir in the config")
