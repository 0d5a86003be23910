"""The end-to-end canary, receiver side: recognise a test alert, record its arrival, tell the channels
that it is a TEST, and never act on it (tables ``canary_*``).

The daily ops cycle (govheal/report/) posts an alert labelled ``govheal_canary="true"`` to every
Alertmanager. When it comes back through the route, dispatch hands it here instead of to the remediator:
no incident, no restart, whatever its other labels say. The first arrival of a canary id sends one
message ("TEST · govheal canary") to every channel, ahead of the queue like the dead-man's switch; with no
channel configured (the demo) it is written to a local sink file instead. The report reads the arrivals
and the outbox rows back (:func:`trace`) and times every hop.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from govheal.state import Component
from govheal.store import tx
from webhook_receiver.bridge import outbox
from webhook_receiver.bridge.model import Notice
from webhook_receiver.inbox import Entry
from webhook_receiver.routing import CANARY_LABEL

log = logging.getLogger("govheal.receiver.canary")

LABEL = CANARY_LABEL
ALERTNAME = "GovhealCanary"
MIGRATIONS = [
    """
    CREATE TABLE canary_arrivals (
        canary_id TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        received REAL NOT NULL,
        PRIMARY KEY (canary_id, target, status)
    );
    CREATE TABLE canary_notices (
        canary_id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        handed_at REAL,
        channels INTEGER NOT NULL DEFAULT 0,
        sink TEXT
    )
    """,
]
CANARY = Component("canary", MIGRATIONS)


def notice_key(canary_id: str) -> str:
    return f"canary:{canary_id}"


class Send(Protocol):
    def __call__(self, notice: Notice, *, dedupe_id: str | None = None) -> object: ...


def canary_notice(canary_id: str, target: str, node: str | None, received: float) -> Notice:
    return Notice(
        key=notice_key(canary_id), severity="info", status="info",
        title=f"TEST · govheal canary on {node}" if node else "TEST · govheal canary",
        summary="Test message from the daily ops cycle: an alert posted to Alertmanager came back through the "
                "route and the receiver to this channel. Not an incident; no action needed.",
        node=node, alertname=ALERTNAME, action="recorded by the receiver; never remediated",
        fields=(("canary_id", canary_id), ("first via alertmanager", target)), created=received)


class Canary:
    """Called by dispatch for every alert with ``govheal_canary="true"``; thread-safe."""

    def __init__(self, conn: sqlite3.Connection, send: Send, *, sink: Path,
                 clock: Callable[[], float] = time.time) -> None:
        """``conn``: a connection whose canary tables exist (``State.connection(CANARY)``)."""
        self.conn = conn
        self.send = send
        self.sink = sink
        self.clock = clock
        self._lock = threading.Lock()

    def handle(self, entry: Entry) -> None:
        labels = entry.alert.labels
        canary_id = labels.get("canary_id") or entry.incident
        target = labels.get("canary_target", "")
        with self._lock, tx(self.conn) as c:
            c.execute("INSERT INTO canary_arrivals (canary_id, target, status, received) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT DO NOTHING", (canary_id, target, entry.status, entry.received))
            # claimed in the same transaction: two arrivals handled at once send one message
            first = entry.status == "firing" and c.execute(
                "INSERT INTO canary_notices (canary_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (canary_id, notice_key(canary_id))).rowcount == 1
        log.info("canary: %s via alertmanager %s arrived (%s); not remediated", canary_id, target, entry.status)
        if not first:
            return
        notice = canary_notice(canary_id, target, entry.routing.node or labels.get("node"), entry.received)
        queued = bool(self.send(notice, dedupe_id=f"canary:{canary_id}"))
        sink = None
        if not queued:  # no channel configured: the local sink is the last hop
            sink = str(self.sink)
            self.sink.parent.mkdir(parents=True, exist_ok=True)
            with self.sink.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"at": self.clock(), **notice.to_dict()}, ensure_ascii=False) + "\n")
        with self._lock, tx(self.conn) as c:
            c.execute("UPDATE canary_notices SET handed_at = ?, channels = ?, sink = ? WHERE canary_id = ?",
                      (self.clock(), int(queued), sink, canary_id))


# ---------------------------------------------------------------------------------------------
# Reading it back (the report)


@dataclass(frozen=True)
class Delivery:
    channel: str
    state: str  # queued | sent | merged | dropped
    accepted: float
    done_at: float | None
    error: str | None = None


@dataclass(frozen=True)
class Trace:
    """What the receiver saw of one canary id: arrivals per (target, status), the hand-over, deliveries."""

    arrivals: dict[tuple[str, str], float] = field(default_factory=dict)
    handed_at: float | None = None
    sink: str | None = None
    sink_at: float | None = None
    deliveries: tuple[Delivery, ...] = ()


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def trace(conn: sqlite3.Connection, canary_id: str) -> Trace:
    """Read-only; an older receiver without the tables yields an empty trace (nothing arrived)."""
    if not _table_exists(conn, "canary_arrivals"):
        return Trace()
    arrivals = {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT target, status, received FROM canary_arrivals WHERE canary_id = ?", (canary_id,))}
    row = conn.execute("SELECT handed_at, sink FROM canary_notices WHERE canary_id = ?", (canary_id,)).fetchone()
    deliveries = tuple(Delivery(*d) for d in outbox.deliveries(conn, notice_key(canary_id)))
    handed, sink = (row[0], row[1]) if row else (None, None)
    return Trace(arrivals=arrivals, handed_at=handed, sink=sink, sink_at=handed if sink else None,
                 deliveries=deliveries)


def as_json(t: Trace) -> dict[str, Any]:
    return {"arrivals": {f"{k[0]}/{k[1]}": v for k, v in t.arrivals.items()}, "handed_at": t.handed_at,
            "sink": t.sink, "deliveries": [d.__dict__ for d in t.deliveries]}
