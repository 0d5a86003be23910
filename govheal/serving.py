"""Which one serves: the agent itself, or the fallback a failover activated (table ``gov_serving``).

When an agent's circuit opens and its failover succeeds, the remediator records that the fallback now
serves (another node's agent, a remote endpoint such as a mirrored worker, or whatever a fallback command
switched on). The record holds until an operator fails back (``govheal restart NAME --failback --reason``):
failing back is a decision, never automatic, and it writes its own audit line. The exporter publishes
``govheal_agent_serving{agent,node,fallback}`` (1 while the fallback serves, 0 otherwise) from it, so the
governance page and the boards show which one serves (docs/metrics.md, docs/ha.md).

Owned at the base so the remediator (writer), the exporter and the receiver (readers) share one model.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from govheal.config import Agent
from govheal.store import connect, migrate, tx

MIGRATIONS = [
    """
    CREATE TABLE gov_serving (
        agent TEXT PRIMARY KEY,
        fallback TEXT NOT NULL,
        since REAL NOT NULL,
        incident TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT ''
    )
    """,
]


class Serving(BaseModel):
    """The fallback serving in an agent's place since ``since`` (seconds since the epoch)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str = Field(min_length=1)
    fallback: str = Field(min_length=1)
    since: float
    incident: str = ""
    reason: str = ""


def fallback_name(agent: Agent) -> str | None:
    """The name the metric and the page use for an agent's fallback: its agent, else the command it runs."""
    fb = agent.fallback
    if fb is None:
        return None
    if fb.agent:
        return fb.agent
    return Path(fb.argv[0]).name if fb.argv else "fallback"


class ServingStore:
    """Read and write the serving records on a connection (shared lock optional, like SwitchStore)."""

    def __init__(self, conn: sqlite3.Connection, *, lock: threading.RLock | threading.Lock | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.lock = lock or threading.RLock()
        self.clock = clock
        with self.lock:
            migrate(conn, "serving", MIGRATIONS)

    def activate(self, agent: str, fallback: str, *, incident: str = "", reason: str = "",
                 at: float | None = None) -> Serving:
        """The fallback serves from now on (a second failover keeps the first ``since``)."""
        at = self.clock() if at is None else at
        with self.lock, tx(self.conn):
            self.conn.execute(
                "INSERT INTO gov_serving (agent, fallback, since, incident, reason) VALUES (?,?,?,?,?) "
                "ON CONFLICT (agent) DO UPDATE SET fallback = excluded.fallback, incident = excluded.incident, "
                "reason = excluded.reason", (agent, fallback, at, incident, reason))
        got = self.get(agent)
        assert got is not None
        return got

    def clear(self, agent: str) -> Serving | None:
        """The agent serves again (failback); the record that was cleared, None when there was none."""
        with self.lock, tx(self.conn):
            row = self.conn.execute("SELECT * FROM gov_serving WHERE agent = ?", (agent,)).fetchone()
            self.conn.execute("DELETE FROM gov_serving WHERE agent = ?", (agent,))
        return _row(row) if row else None

    def get(self, agent: str) -> Serving | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM gov_serving WHERE agent = ?", (agent,)).fetchone()
        return _row(row) if row else None

    def all(self) -> dict[str, Serving]:
        with self.lock:
            rows = self.conn.execute("SELECT * FROM gov_serving ORDER BY agent").fetchall()
        return {r["agent"]: _row(r) for r in rows}


class ServingReader:
    """For a process that only reads (the exporter): opens the state file on first use."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._store: ServingStore | None = None
        self._lock = threading.Lock()

    def all(self) -> dict[str, Serving]:
        with self._lock:
            if self._store is None:
                self._store = ServingStore(connect(self.db))
            store = self._store
        return store.all()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.conn.close()
                self._store = None


def _row(row: sqlite3.Row) -> Serving:
    return Serving(agent=row["agent"], fallback=row["fallback"], since=row["since"], incident=row["incident"],
                   reason=row["reason"])
