"""The inbox: every accepted alert, persisted before the webhook answers 2xx (tables ``inbox_*``).

One row per (fingerprint, status, startsAt): a re-delivered group (Alertmanager retries, an HA peer)
hits the UNIQUE constraint and is reported as a duplicate, so it causes no second action or message.
Rows stay ``pending`` until dispatch has told the bridge and (if asked) the remediator; at start-up the
dispatcher picks pending rows up again, so work accepted before a crash is not lost.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from govheal.state import Component, State
from govheal.store import tx
from webhook_receiver.models import Alert
from webhook_receiver.routing import AlertOutcome, Routing

MIGRATIONS = [
    """
    CREATE TABLE inbox_alerts (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        incident TEXT NOT NULL,
        alertname TEXT NOT NULL,
        agent TEXT,
        node TEXT,
        outcome TEXT NOT NULL,
        action TEXT,
        alert_json TEXT NOT NULL,
        group_key TEXT NOT NULL DEFAULT '',
        received REAL NOT NULL,
        state TEXT NOT NULL,
        notified INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        finished REAL,
        UNIQUE (fingerprint, status, starts_at)
    );
    CREATE INDEX inbox_alerts_pending ON inbox_alerts (state) WHERE state = 'pending';
    CREATE TABLE inbox_watchdog (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_seen REAL,
        silent_since REAL
    );
    """,
    # v2: how many alerts of the request's group Alertmanager left out (webhook max_alerts)
    "ALTER TABLE inbox_alerts ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0",
    # v3: the Alertmanager watch's episode (survives a restart, so one outage pages once)
    "CREATE TABLE inbox_upstream (id INTEGER PRIMARY KEY CHECK (id = 1), last_ok REAL, paged_since REAL)",
]

INBOX = Component("inbox", MIGRATIONS)
PENDING, DONE = "pending", "done"


@dataclass(frozen=True)
class NewAlert:
    """One validated alert and what the receiver decided to do with it, ready to be recorded."""

    alert: Alert
    routing: Routing
    group_key: str = ""
    truncated: int = 0  # alerts of this group Alertmanager did not send (the payload's truncatedAlerts)


@dataclass(frozen=True)
class Entry:
    """A recorded alert: the validated model as it arrived (serialised only in the table) and its routing."""

    id: int
    alert: Alert
    routing: Routing
    received: float
    notified: bool
    state: str
    result: str | None
    truncated: int = 0

    @property
    def incident(self) -> str:
        return self.alert.incident

    @property
    def status(self) -> str:
        return self.alert.status

    @property
    def agent(self) -> str | None:
        return self.routing.agent


def _entry(row: sqlite3.Row) -> Entry:
    routing = Routing(AlertOutcome(row["outcome"]), agent=row["agent"], node=row["node"], action=row["action"])
    return Entry(id=row["id"], alert=Alert.model_validate_json(row["alert_json"]), routing=routing,
                 received=row["received"], notified=bool(row["notified"]), state=row["state"], result=row["result"],
                 truncated=row["truncated"])


class Inbox:
    """SQLite-backed; thread-safe (its own connection from the state object, behind a lock)."""

    def __init__(self, state: State) -> None:
        self.conn = state.connection(INBOX)
        self._lock = threading.Lock()

    def accept(self, alerts: list[NewAlert], now: float) -> list[Entry | None]:
        """Record all alerts in one transaction; the entry for a new one, ``None`` for a duplicate."""
        out: list[Entry | None] = []
        with self._lock, tx(self.conn) as c:
            for new in alerts:
                a, r = new.alert, new.routing
                row = c.execute(
                    "INSERT INTO inbox_alerts (fingerprint, status, starts_at, incident, alertname, agent, node,"
                    " outcome, action, alert_json, group_key, truncated, received, state) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (fingerprint, status, starts_at) DO NOTHING RETURNING *",
                    (a.fingerprint, a.status, a.startsAt, a.incident, a.alertname, r.agent, r.node, r.outcome,
                     r.action, a.model_dump_json(), new.group_key, new.truncated, now, PENDING),
                ).fetchone()
                out.append(_entry(row) if row is not None else None)
        return out

    def pending(self) -> list[Entry]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM inbox_alerts WHERE state = ? ORDER BY id", (PENDING,)).fetchall()
        return [_entry(r) for r in rows]

    def healed_unresolved(self, since: float) -> list[Entry]:
        """Firing rows healed since ``since`` whose resolve has not been recorded (their rechecks, at start)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT * FROM inbox_alerts a WHERE a.status = 'firing' AND a.result = 'healed' AND a.finished >= ? "
                "AND NOT EXISTS (SELECT 1 FROM inbox_alerts r WHERE r.incident = a.incident AND r.status = 'resolved')"
                " ORDER BY a.id", (since,)).fetchall()
        return [_entry(r) for r in rows]

    def ended_still_firing(self, fingerprint: str, starts_at: str) -> Entry | None:
        """The finished firing row of this alert, if its resolve has not been recorded: Alertmanager repeats
        an alert it still holds as firing after the incident ended (see ``Dispatcher.repeated``)."""
        with self._lock:
            row = self.conn.execute(
                "SELECT * FROM inbox_alerts a WHERE a.fingerprint = ? AND a.status = 'firing' AND a.starts_at = ? "
                "AND a.state != ? AND NOT EXISTS (SELECT 1 FROM inbox_alerts r WHERE r.fingerprint = a.fingerprint "
                "AND r.status = 'resolved' AND r.starts_at = a.starts_at)",  # both lookups on the UNIQUE index: it
                (fingerprint, starts_at, PENDING)).fetchone()  # runs in the webhook request of a repeated alert
        return _entry(row) if row is not None else None

    def resolved(self, incident: str) -> bool:
        """Has the incident's resolve been recorded?"""
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM inbox_alerts WHERE incident = ? AND status = 'resolved' LIMIT 1",
                                    (incident,)).fetchone()
        return row is not None

    def get(self, entry_id: int) -> Entry | None:
        with self._lock:
            row = self.conn.execute("SELECT * FROM inbox_alerts WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def mark_notified(self, entry_id: int) -> None:
        with self._lock:
            self.conn.execute("UPDATE inbox_alerts SET notified = 1 WHERE id = ?", (entry_id,))

    def finish(self, entry_id: int, result: str, now: float) -> None:
        with self._lock:
            self.conn.execute("UPDATE inbox_alerts SET state = ?, result = ?, finished = ? WHERE id = ?",
                              (DONE, result, now, entry_id))

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest rows, without the alert bodies (for the ops view)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, received, alertname, agent, node, status, outcome, action, incident, state, result,"
                " finished FROM inbox_alerts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.conn.execute("SELECT state, COUNT(*) FROM inbox_alerts GROUP BY state").fetchall()
        return {r[0]: r[1] for r in rows}

    def prune(self, before: float) -> int:
        """Forget finished rows received before ``before`` (their idempotency keys go with them)."""
        with self._lock:
            cur = self.conn.execute("DELETE FROM inbox_alerts WHERE state = ? AND received < ?", (DONE, before))
        return cur.rowcount

    # Dead-man's switch state: survives a restart, so one silence episode pages once.
    def watchdog(self) -> tuple[float | None, float | None]:
        with self._lock:
            row = self.conn.execute("SELECT last_seen, silent_since FROM inbox_watchdog WHERE id = 1").fetchone()
        return (row[0], row[1]) if row else (None, None)

    def set_watchdog(self, last_seen: float | None, silent_since: float | None) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO inbox_watchdog (id, last_seen, silent_since) VALUES (1, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET last_seen = excluded.last_seen, silent_since = excluded.silent_since",
                (last_seen, silent_since))

    # The Alertmanager watch's episode: the last answer before it, and when it paged.
    def upstream(self) -> tuple[float | None, float | None]:
        with self._lock:
            row = self.conn.execute("SELECT last_ok, paged_since FROM inbox_upstream WHERE id = 1").fetchone()
        return (row[0], row[1]) if row else (None, None)

    def set_upstream(self, last_ok: float | None, paged_since: float | None) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO inbox_upstream (id, last_ok, paged_since) VALUES (1, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET last_ok = excluded.last_ok, paged_since = excluded.paged_since",
                (last_ok, paged_since))
