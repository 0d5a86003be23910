"""The remediator's tables (``rem_*``) in the shared SQLite file: incidents, attempts, circuits, leases.

Governance switches are the base's (govheal/switches.py, table ``gov_switches``): :meth:`Store.switches`
reads them as the remediator's view (paused / disabled); ``rem_switches`` from the first schema is unused.

Every write is one ``BEGIN IMMEDIATE`` transaction (:class:`govheal.store.tx`), so two processes on one
host serialise. WAL checkpoints (which fsync) run in a background thread on their own connection instead
of inside whichever commit crosses SQLite's auto-checkpoint threshold: a decision never pays for one.
Durability is the same: a commit is in the WAL either way; checkpointing only copies it into the main file.
A lease row per agent means only one process acts on an agent at a time; a lease whose
owner process is gone (SIGKILL) or whose time ran out can be taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, fields
from pathlib import Path

from govheal.procs import pid_running
from govheal.serving import ServingStore
from govheal.state import Component
from govheal.store import connect, migrate, tx
from govheal.switches import STOPS_REMEDIATION, Switch, SwitchKind, SwitchStore
from remediator.policy import CircuitState

SCHEMA = [
    """
    CREATE TABLE rem_incidents (
        agent TEXT NOT NULL, incident TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT,
        opened_at REAL NOT NULL, updated_at REAL NOT NULL, first_pid INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (agent, incident));
    CREATE TABLE rem_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, incident TEXT NOT NULL, action TEXT NOT NULL,
        started_at REAL NOT NULL, finished_at REAL, outcome TEXT, old_pid INTEGER, new_pid INTEGER,
        reason TEXT NOT NULL DEFAULT '');
    CREATE INDEX rem_attempts_agent ON rem_attempts (agent, started_at);
    CREATE TABLE rem_circuits (agent TEXT PRIMARY KEY, state TEXT NOT NULL, data TEXT NOT NULL);
    CREATE TABLE rem_switches (
        agent TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0,
        owner TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', expires_at REAL);
    CREATE TABLE rem_leases (agent TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
        expires_at REAL NOT NULL)
    """,
    # 2: which action an incident asked for (the half-open trial looks for the restart incident left open)
    "ALTER TABLE rem_incidents ADD COLUMN action TEXT NOT NULL DEFAULT 'restart'",
]
TRIAL_OUTCOMES = ("circuit_open", "failover_started", "failover_failed")  # a restart incident the circuit ended

REMEDIATOR = Component("remediator", SCHEMA)
CHECKPOINT_INTERVAL = 1.0  # seconds between background WAL checkpoints

IN_PROGRESS = "in_progress"
DONE = "done"
CLOSED = "closed"


@dataclass(frozen=True)
class Switches:
    """The remediator's view of one agent's governance switches: pause → paused, maintenance → disabled."""

    paused: bool = False
    disabled: bool = False
    owner: str = ""
    reason: str = ""
    expires_at: float | None = None


@dataclass(frozen=True)
class Incident:
    agent: str
    incident: str
    status: str  # in_progress | done | closed
    outcome: str | None
    opened_at: float
    first_pid: int | None
    attempts: int


class Store:
    def __init__(self, path: Path, *, conn: sqlite3.Connection | None = None) -> None:
        """``conn``: a connection handed out by ``govheal.state.State`` (migrated, checkpointed by the state
        object, closed with it); without one the store opens and checkpoints the file itself (CLI)."""
        self.path = path
        self.owns_conn = conn is None
        self.conn = conn if conn is not None else connect(path)
        self.lock = threading.RLock()  # one connection shared by threads: one statement group at a time
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self.governance = SwitchStore(self.conn, lock=self.lock)
        self.serving = ServingStore(self.conn, lock=self.lock)  # which one serves after a failover
        if not self.owns_conn:
            return
        with self.lock:
            migrate(self.conn, "remediator", SCHEMA)
            self.conn.execute("PRAGMA wal_autocheckpoint=0")  # this connection's commits never checkpoint
        self._checkpointer = threading.Thread(target=_checkpoint_loop, args=(path, self._stop),
                                              name="rem-wal-checkpoint", daemon=True)
        self._checkpointer.start()
        weakref.finalize(self, self._stop.set)  # a Store dropped without close() stops its thread too

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
        if self.owns_conn:
            with self.lock:
                self.conn.close()

    # -- switches -----------------------------------------------------------------------------------
    def switches(self, agent: str, now: float | None = None) -> Switches:
        """Paused/disabled for ``agent`` from the base switches in effect at ``now``; expired reads as off."""
        now = time.time() if now is None else now
        effect = {s.kind: s for s in reversed(self.governance.in_effect(agent, now))}  # the oldest of a kind rules
        rule = effect.get(SwitchKind.MAINTENANCE) or effect.get(SwitchKind.PAUSE)
        if rule is None:
            return Switches()
        return Switches(SwitchKind.PAUSE in effect, SwitchKind.MAINTENANCE in effect, rule.owner, rule.reason,
                        rule.expiry)

    def set_switches(self, agent: str, sw: Switches) -> None:
        """Tests: replace the agent's pause/maintenance switches (the governance writer uses govheal.switches)."""
        with self.lock:
            for old in self.governance.all(agent):
                if old.kind in STOPS_REMEDIATION and old.id is not None:
                    self.governance.remove(old.id)
            for on, kind in ((sw.paused, SwitchKind.PAUSE), (sw.disabled, SwitchKind.MAINTENANCE)):
                if on:
                    self.governance.add(Switch(agent=agent, kind=kind, owner=sw.owner or "unknown",
                                               reason=sw.reason or "-", start=0.0, expiry=sw.expires_at))

    # -- circuits -----------------------------------------------------------------------------------
    def circuit(self, agent: str) -> CircuitState:
        with self.lock:
            row = self.conn.execute("SELECT data FROM rem_circuits WHERE agent = ?", (agent,)).fetchone()
        if row is None:
            return CircuitState()
        data = json.loads(row["data"])
        data["attempts"] = tuple(data.get("attempts", ()))
        return CircuitState(**data)

    def save_circuit(self, agent: str, state: CircuitState) -> None:
        with self.lock, tx(self.conn):
            self._save_circuit(agent, state)

    def _save_circuit(self, agent: str, state: CircuitState) -> None:
        data = {f.name: getattr(state, f.name) for f in fields(state)}  # flat: no deepcopy as asdict does
        data["attempts"] = list(state.attempts)
        self.conn.execute(
            "INSERT INTO rem_circuits (agent, state, data) VALUES (?,?,?) "
            "ON CONFLICT(agent) DO UPDATE SET state=excluded.state, data=excluded.data",
            (agent, state.state, json.dumps(data)))

    def circuits(self) -> dict[str, CircuitState]:
        """Every stored circuit, by agent (one read for the governance page)."""
        with self.lock:
            rows = self.conn.execute("SELECT agent, data FROM rem_circuits").fetchall()
        out = {}
        for row in rows:
            data = json.loads(row["data"])
            data["attempts"] = tuple(data.get("attempts", ()))
            out[row["agent"]] = CircuitState(**data)
        return out

    # -- incidents ----------------------------------------------------------------------------------
    def last_incidents(self) -> dict[str, dict]:
        """The newest incident of every agent: status, outcome, reason, opened/updated (the page's "last")."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT i.* FROM rem_incidents i JOIN (SELECT agent, MAX(updated_at) AS u FROM rem_incidents "
                "GROUP BY agent) m ON i.agent = m.agent AND i.updated_at = m.u").fetchall()
        return {r["agent"]: dict(r) for r in rows}

    def attempt_counts(self, since: float) -> dict[str, int]:
        """Restarts govheal started per agent since ``since``."""
        with self.lock:
            rows = self.conn.execute("SELECT agent, COUNT(*) AS n FROM rem_attempts WHERE started_at >= ? "
                                     "GROUP BY agent", (since,)).fetchall()
        return {r["agent"]: int(r["n"]) for r in rows}

    def outcome_counts(self, since: float) -> dict[str, int]:
        """Finished incidents by outcome since ``since`` (heal success on the page)."""
        with self.lock:
            rows = self.conn.execute("SELECT outcome, COUNT(*) AS n FROM rem_incidents WHERE updated_at >= ? AND "
                                     "outcome IS NOT NULL GROUP BY outcome", (since,)).fetchall()
        return {r["outcome"]: int(r["n"]) for r in rows}

    def incident(self, agent: str, incident: str) -> Incident | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM rem_incidents WHERE agent = ? AND incident = ?",
                                    (agent, incident)).fetchone()
        return None if row is None else _incident(row)

    def open_incident(self, agent: str, incident: str, now: float, pid: int | None, reason: str,
                      source: str, action: str = "restart") -> tuple[Incident, bool]:
        """Create the incident if new; returns (incident, created)."""
        with self.lock, tx(self.conn):
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO rem_incidents (agent, incident, status, opened_at, updated_at, first_pid, "
                "reason, source, action) VALUES (?,?,?,?,?,?,?,?,?)",
                (agent, incident, IN_PROGRESS, now, now, pid, reason, source, action))
            row = self.conn.execute("SELECT * FROM rem_incidents WHERE agent = ? AND incident = ?",
                                    (agent, incident)).fetchone()
        return _incident(row), cur.rowcount == 1

    def finish_incident(self, agent: str, incident: str, outcome: str, now: float) -> None:
        with self.lock, tx(self.conn):
            self.conn.execute("UPDATE rem_incidents SET status = ?, outcome = ?, updated_at = ? "
                              "WHERE agent = ? AND incident = ? AND status != ?",
                              (DONE, outcome, now, agent, incident, CLOSED))

    def reopen_incident(self, agent: str, incident: str, now: float) -> None:
        with self.lock, tx(self.conn):
            self.conn.execute("UPDATE rem_incidents SET status = ?, updated_at = ? WHERE agent = ? AND incident = ?",
                              (IN_PROGRESS, now, agent, incident))

    def close_incident(self, agent: str, incident: str, now: float) -> bool:
        with self.lock, tx(self.conn):
            cur = self.conn.execute("UPDATE rem_incidents SET status = ?, updated_at = ? WHERE agent = ? AND "
                                    "incident = ?", (CLOSED, now, agent, incident))
        return cur.rowcount == 1

    def trial_incident(self, agent: str) -> Incident | None:
        """The agent's latest restart incident if the circuit ended it and its alert has not resolved: what a
        half-open trial restarts for. None when the latest one is closed, healed, or still in progress."""
        with self.lock:
            row = self.conn.execute(
                "SELECT * FROM rem_incidents WHERE agent = ? AND action = 'restart' ORDER BY opened_at DESC, "
                "rowid DESC LIMIT 1", (agent,)).fetchone()
        if row is None or row["status"] != DONE or row["outcome"] not in TRIAL_OUTCOMES:
            return None
        return _incident(row)

    # -- attempts -----------------------------------------------------------------------------------
    def start_attempt(self, agent: str, incident: str, action: str, now: float, old_pid: int | None,
                      circuit: CircuitState) -> int:
        """Record the attempt and the circuit together, before acting (a crash mid-restart still counts)."""
        with self.lock, tx(self.conn):
            cur = self.conn.execute(
                "INSERT INTO rem_attempts (agent, incident, action, started_at, old_pid) VALUES (?,?,?,?,?)",
                (agent, incident, action, now, old_pid))
            self.conn.execute("UPDATE rem_incidents SET attempts = attempts + 1, updated_at = ? "
                              "WHERE agent = ? AND incident = ?", (now, agent, incident))
            self._save_circuit(agent, circuit)
            return int(cur.lastrowid or 0)

    def finish_attempt(self, attempt_id: int, now: float, outcome: str, new_pid: int | None, reason: str,
                       *, agent: str | None = None, circuit: CircuitState | None = None) -> None:
        """Record the attempt's end, and (given ``agent`` and ``circuit``) the circuit, in one transaction."""
        with self.lock, tx(self.conn):
            self.conn.execute("UPDATE rem_attempts SET finished_at = ?, outcome = ?, new_pid = ?, reason = ? "
                              "WHERE id = ?", (now, outcome, new_pid, reason, attempt_id))
            if agent is not None and circuit is not None:
                self._save_circuit(agent, circuit)

    def attempts(self, agent: str, incident: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM rem_attempts WHERE agent = ?", [agent]
        if incident is not None:
            sql, args = sql + " AND incident = ?", [*args, incident]
        with self.lock:
            return [dict(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    # -- leases -------------------------------------------------------------------------------------
    def new_owner(self) -> str:
        return f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire_lease(self, agent: str, owner: str, now: float, ttl: float) -> str | None:
        """Take the agent's lease; returns None on success, else who holds it."""
        with self.lock, tx(self.conn):
            row = self.conn.execute("SELECT * FROM rem_leases WHERE agent = ?", (agent,)).fetchone()
            if row is not None and row["owner"] != owner and row["expires_at"] > now and not self._stale(row):
                return str(row["owner"])
            self.conn.execute(
                "INSERT INTO rem_leases (agent, owner, host, pid, expires_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(agent) DO UPDATE SET owner=excluded.owner, host=excluded.host, pid=excluded.pid, "
                "expires_at=excluded.expires_at", (agent, owner, self.host, os.getpid(), now + ttl))
        return None

    def _stale(self, row) -> bool:
        """Held by a process on this host that is gone (SIGKILLed mid-incident)."""
        return row["host"] == self.host and not pid_running(int(row["pid"]))

    def release_lease(self, agent: str, owner: str) -> None:
        with self.lock, tx(self.conn):
            self.conn.execute("DELETE FROM rem_leases WHERE agent = ? AND owner = ?", (agent, owner))

    def lease_holder(self, agent: str, now: float) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM rem_leases WHERE agent = ?", (agent,)).fetchone()
        if row is None or row["expires_at"] <= now or self._stale(row):
            return None
        return str(row["owner"])


def _checkpoint_loop(path: Path, stop: threading.Event) -> None:
    """Copy committed WAL frames into the database file every CHECKPOINT_INTERVAL, off the decision path.

    PASSIVE never blocks writers or readers; frames it cannot copy yet (a reader still needs them) are
    copied on a later round. The last connection to close checkpoints and removes the WAL as usual.
    """
    conn = connect(path)
    try:
        while not stop.wait(CHECKPOINT_INTERVAL):
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                continue  # busy or a transient error: the next round tries again
    finally:
        conn.close()


def _incident(row) -> Incident:
    return Incident(row["agent"], row["incident"], row["status"], row["outcome"], row["opened_at"],
                    row["first_pid"], row["attempts"])
