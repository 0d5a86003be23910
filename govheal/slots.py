"""Daily-report slots in the shared SQLite file (tables ``report_*``): who produces a slot, and how it went.

A slot (``2026-12-01_09``) is produced **once**: a run first *claims* it with one conditional write
(``BEGIN IMMEDIATE``, so two processes racing for it serialise and exactly one wins). A claim is a lease:
a run that died (its pid is gone on this host, or its lease ran out) can be taken over. A finished slot is
``verified`` (never produced again) or ``failed`` (an explicit re-run may replace it); ``missed`` marks a
slot nobody ran, superseded by the catch-up of a later one.

The base layer owns this because two floors use it: the report (top) writes it, the receiver exports
:class:`ReportCollector` on its ``/metrics`` (``govheal_daily_report_*``, so DailyReportMissing works
without the report process running).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govheal.procs import pid_running
from govheal.state import Component
from govheal.store import migrate, tx

MIGRATIONS = [
    """
    CREATE TABLE report_slots (
        slot TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        run_id TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        claimed_at REAL NOT NULL,
        lease_until REAL NOT NULL,
        scheduled_at REAL,
        catch_up INTEGER NOT NULL DEFAULT 0,
        lateness REAL NOT NULL DEFAULT 0,
        finished_at REAL,
        verified INTEGER NOT NULL DEFAULT 0,
        path TEXT,
        summary TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE report_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        created_at REAL NOT NULL
    )
    """,
]

SLOTS = Component("report", MIGRATIONS)
RUNNING, VERIFIED, FAILED, MISSED = "running", "verified", "failed", "missed"
STATES = (RUNNING, VERIFIED, FAILED, MISSED)
# The five success criteria, in the order the report lists them; also the `criterion` label values.
CRITERIA = ("heal_success", "ui_latency", "alert_delivery", "no_unplanned_downtime", "report_verified")


@dataclass(frozen=True)
class SlotRow:
    slot: str
    state: str
    run_id: str
    host: str
    pid: int
    claimed_at: float
    lease_until: float
    scheduled_at: float | None
    catch_up: bool
    lateness: float
    finished_at: float | None
    verified: bool
    path: str | None
    summary: dict[str, Any] = field(default_factory=dict)


def _row(r: sqlite3.Row) -> SlotRow:
    return SlotRow(slot=r["slot"], state=r["state"], run_id=r["run_id"], host=r["host"], pid=r["pid"],
                   claimed_at=r["claimed_at"], lease_until=r["lease_until"], scheduled_at=r["scheduled_at"],
                   catch_up=bool(r["catch_up"]), lateness=r["lateness"], finished_at=r["finished_at"],
                   verified=bool(r["verified"]), path=r["path"], summary=json.loads(r["summary"] or "{}"))


@dataclass(frozen=True)
class Claim:
    """The answer to :meth:`SlotStore.claim`: ``won`` or why not (``holder`` is the row that stands)."""

    won: bool
    reason: str  # claimed | took_over | rerun | verified | running | finished
    holder: SlotRow | None = None


class SlotStore:
    """Thread-safe: one connection behind a lock; every write one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float] | None = None) -> None:
        import time

        self.conn = conn
        self.clock = clock or time.time
        self._lock = threading.Lock()
        self.host = socket.gethostname()
        with self._lock:
            migrate(conn, "report", MIGRATIONS)
            with tx(conn):
                conn.execute("INSERT INTO report_meta (id, created_at) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                             (self.clock(),))

    # -- reading
    def get(self, slot: str) -> SlotRow | None:
        with self._lock:
            r = self.conn.execute("SELECT * FROM report_slots WHERE slot = ?", (slot,)).fetchone()
        return _row(r) if r else None

    def all(self) -> list[SlotRow]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM report_slots ORDER BY slot").fetchall()
        return [_row(r) for r in rows]

    def created_at(self) -> float:
        with self._lock:
            return float(self.conn.execute("SELECT created_at FROM report_meta WHERE id = 1").fetchone()[0])

    def last(self, *, verified_only: bool = False) -> SlotRow | None:
        """The most recently finished slot (optionally: verified)."""
        sql = "SELECT * FROM report_slots WHERE finished_at IS NOT NULL AND state IN (?, ?)"
        args: tuple = (VERIFIED, FAILED)
        if verified_only:
            sql, args = "SELECT * FROM report_slots WHERE state = ?", (VERIFIED,)
        with self._lock:
            r = self.conn.execute(sql + " ORDER BY finished_at DESC LIMIT 1", args).fetchone()
        return _row(r) if r else None

    # -- writing
    def claim(self, slot: str, run_id: str, *, lease: float, scheduled_at: float | None = None,
              catch_up: bool = False, lateness: float = 0.0, rerun: bool = False) -> Claim:
        """Take ``slot`` for this run, conditionally, in one transaction.

        Wins when nobody has it; when its holder died (pid gone on this host) or its lease ran out; or, with
        ``rerun``, when it finished ``failed`` or was marked ``missed``. A ``verified`` slot is never taken.
        """
        now = self.clock()
        me = (run_id, self.host, os.getpid(), now, now + lease, scheduled_at, int(catch_up), lateness)
        with self._lock, tx(self.conn) as c:
            r = c.execute("SELECT * FROM report_slots WHERE slot = ?", (slot,)).fetchone()
            if r is None:
                c.execute("INSERT INTO report_slots (slot, state, run_id, host, pid, claimed_at, lease_until, "
                          "scheduled_at, catch_up, lateness) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
                          (slot, *me))
                return Claim(True, "claimed")
            row = _row(r)
            if row.state == VERIFIED:
                return Claim(False, "verified", row)
            if row.state == RUNNING:
                dead = row.host == self.host and not pid_running(row.pid)
                if not (dead or row.lease_until < now):
                    return Claim(False, "running", row)
                reason = "took_over"
            elif rerun:
                reason = "rerun"
            else:
                return Claim(False, "finished", row)
            c.execute("UPDATE report_slots SET state = 'running', run_id = ?, host = ?, pid = ?, claimed_at = ?, "
                      "lease_until = ?, scheduled_at = ?, catch_up = ?, lateness = ?, finished_at = NULL, "
                      "verified = 0 WHERE slot = ?", (*me, slot))
            return Claim(True, reason, row)

    def finish(self, slot: str, run_id: str, *, verified: bool, path: str | None, summary: dict[str, Any]) -> bool:
        """Record the outcome; False if this run no longer holds the claim (it was taken over)."""
        state = VERIFIED if verified else FAILED
        with self._lock, tx(self.conn) as c:
            cur = c.execute("UPDATE report_slots SET state = ?, finished_at = ?, verified = ?, path = ?, summary = ? "
                            "WHERE slot = ? AND run_id = ? AND state = 'running'",
                            (state, self.clock(), int(verified), path, json.dumps(summary, sort_keys=True), slot,
                             run_id))
            return cur.rowcount == 1

    def release(self, slot: str, run_id: str) -> None:
        """Give a claim back without a report (the run was refused before producing anything)."""
        with self._lock, tx(self.conn) as c:
            c.execute("DELETE FROM report_slots WHERE slot = ? AND run_id = ? AND state = 'running'", (slot, run_id))

    def mark_missed(self, slot: str, scheduled_at: float, superseded_by: str) -> bool:
        """Record a slot nobody ran (superseded by ``superseded_by``'s catch-up); False if it has a row."""
        now = self.clock()
        with self._lock, tx(self.conn) as c:
            cur = c.execute(
                "INSERT INTO report_slots (slot, state, run_id, host, pid, claimed_at, lease_until, scheduled_at, "
                "finished_at, summary) VALUES (?, 'missed', '', ?, 0, ?, ?, ?, ?, ?) ON CONFLICT (slot) DO NOTHING",
                (slot, self.host, now, now, scheduled_at, now, json.dumps({"superseded_by": superseded_by})))
            return cur.rowcount == 1


class ReportCollector(Collector):
    """``govheal_daily_report_*`` from the store, read at scrape time (the receiver registers it).

    ``..._last_success_timestamp_seconds`` is the finish time of the last verified report; before the first
    one it is the time this state was created, so DailyReportMissing (13 h) fires for a new install that
    never produced a verified report, and never for one that has not had the chance yet.
    """

    def __init__(self, store: SlotStore) -> None:
        self.store = store

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no collect() at registration (the store may be busy); families are documented

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            ok = self.store.last(verified_only=True)
            last = self.store.last()
            created = self.store.created_at()
        except sqlite3.Error:
            return  # the scrape goes on without these series; ReceiverDown / DailyReportMissing say the rest
        yield GaugeMetricFamily("govheal_daily_report_last_success_timestamp_seconds",
                                "Finish time of the last verified daily report (before the first one: when the "
                                "state was created).", value=ok.finished_at if ok and ok.finished_at else created)
        if last is None:
            return
        yield GaugeMetricFamily("govheal_daily_report_last_run_timestamp_seconds",
                                "Finish time of the last daily report, verified or not.", value=last.finished_at or 0)
        yield GaugeMetricFamily("govheal_daily_report_verified", "1 if the last daily report was verified.",
                                value=int(last.verified))
        yield GaugeMetricFamily("govheal_daily_report_lateness_seconds",
                                "How long after its slot the last daily report ran (a catch-up is late).",
                                value=last.lateness)
        passed = GaugeMetricFamily("govheal_daily_report_criterion_pass",
                                   "1 if the success criterion passed in the last daily report, 0 if not.",
                                   labels=["criterion"])
        value = GaugeMetricFamily("govheal_daily_report_criterion_value",
                                  "The measured value of the criterion in the last daily report (ratio or seconds).",
                                  labels=["criterion"])
        for name, c in (last.summary.get("criteria") or {}).items():
            if name not in CRITERIA or not isinstance(c, dict):
                continue
            passed.add_metric([name], 1 if c.get("passed") else 0)
            if isinstance(c.get("value"), int | float):
                value.add_metric([name], float(c["value"]))
        yield passed
        yield value
