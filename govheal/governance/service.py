"""Apply a switch change: the store, the Alertmanager silences, and one audit line, in that order.

The one code path behind the page, ``POST /api/agents/<name>/switch`` and ``govheal agents``; so a change
means the same thing and leaves the same audit line whoever makes it. The store is the truth: a change
takes effect locally the moment it is committed (the remediator, the exporter and the receiver's notice
filter read it), and the silences follow. :meth:`Governance.sync` makes Alertmanager match the store
(create what is pending, expire what is no longer wanted, follow ids Alertmanager replaced, verify on every
Alertmanager); it is idempotent and safe from two processes at once (a short claim per silence row), and
the receiver calls it in the background, so a silence that could not be written lands when Alertmanager is
back.

Tables ``gov_silences`` (one row per silence window of a switch) and ``gov_audit`` (append-only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from govheal.client import Alertmanagers, NotEverywhere, NotFound, Refused, ServerError, SilenceSpec
from govheal.config import Agent, Config
from govheal.errors import GovhealError
from govheal.governance import schedule
from govheal.governance import silences as sil
from govheal.governance.effective import KINDS, SILENCED, Effective, effective
from govheal.governance.recurrence import RecurrenceError, parse
from govheal.governance.recurrence import utc_text as utc
from govheal.state import Component
from govheal.store import migrate, tx
from govheal.switches import Switch, SwitchKind, SwitchStore

log = logging.getLogger("govheal.governance")

SCHEMA = ["""
CREATE TABLE gov_silences (
    agent TEXT NOT NULL, kind TEXT NOT NULL, slot TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,
    body TEXT NOT NULL, digest TEXT NOT NULL, silence_id TEXT, state TEXT NOT NULL, synced_digest TEXT,
    error TEXT NOT NULL DEFAULT '', verified TEXT NOT NULL DEFAULT '{}', claim TEXT, claimed_until REAL,
    updated_at REAL NOT NULL, PRIMARY KEY (agent, kind, slot));
CREATE TABLE gov_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, agent TEXT NOT NULL, line TEXT NOT NULL);
CREATE INDEX gov_audit_agent ON gov_audit (agent, id)
"""]
GOVERNANCE = Component("governance", SCHEMA)  # a long-running process takes its connection from its State

PENDING, SYNCED, EXPIRING = "pending", "synced", "expiring"
ONCE = "once"  # the slot of a one-off switch's single window (an edit updates the same silence)


def slots(sw: Switch, windows: list[tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Row keys of a switch's windows: one-off → "once"; recurring → "<spec>@<start>" (one per occurrence)."""
    if not sw.recurrence:
        return {ONCE: windows[0]} if windows else {}
    return {f"{sw.recurrence}@{s:.0f}": (s, e) for s, e in windows}


def _owns(sw: Switch, slot: str) -> bool:
    return slot == ONCE if not sw.recurrence else slot.startswith(f"{sw.recurrence}@")
CLAIM_SECONDS = 15.0
MAX_SWITCH = 366 * 86400.0
OPS = ("mute", "pause", "maintenance", "edit", "enable", "expired", "silence_landed", "silence_recreated",
       "silence_failed")
SYSTEM = "govheal"  # the actor of changes nobody made by hand (expiry, a silence landing)


class GovernanceError(GovhealError):
    """A change that cannot be made as asked; the message names the field and the fix (HTTP 400, exit 2)."""

    exit_code = 2

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class AuditSink(Protocol):
    def write(self, event: Any) -> None: ...


@dataclass(frozen=True)
class AuditLine:
    """One audit line, the same in the telemetry log and in ``gov_audit``."""

    time: float
    agent: str
    node: str
    outcome: str  # one of OPS
    actor: str
    via: str  # page | api | cli | govheal
    reason: str
    kind: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    silence_ids: list[str]
    silences_pending: int = 0
    action: str = "governance"

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "agent": self.agent, "node": self.node, "action": self.action,
                "outcome": self.outcome, "actor": self.actor, "via": self.via, "reason": self.reason,
                "kind": self.kind, "old": self.old, "new": self.new, "silence_ids": self.silence_ids,
                "silences_pending": self.silences_pending}


@dataclass(frozen=True)
class SilenceRow:
    agent: str
    kind: str
    slot: str
    starts_at: float
    ends_at: float
    silence_id: str | None
    state: str  # pending (to be written) | synced | expiring (to be expired)
    error: str
    verified: dict[str, bool]

    @property
    def landed(self) -> bool:
        return self.state == SYNCED and self.silence_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "starts_at": utc(self.starts_at), "ends_at": utc(self.ends_at),
                "silence_id": self.silence_id, "state": self.state if self.state != SYNCED else "active",
                "error": self.error, "verified": self.verified}


@dataclass
class Change:
    """What a set/enable did; ``to_dict`` is the API's answer."""

    agent: str
    op: str
    switches: list[Switch]
    silences: list[SilenceRow]
    audit: AuditLine

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "op": self.op, "switches": [switch_dict(s) for s in self.switches],
                "silences": [s.to_dict() for s in self.silences],
                "pending": any(s.state != SYNCED for s in self.silences), "audit": self.audit.to_dict()}


@dataclass
class SyncReport:
    written: int = 0
    expired: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)
    reachable: bool | None = None  # None: nothing needed Alertmanager


def switch_dict(sw: Switch) -> dict[str, Any]:
    return {"id": sw.id, "kind": str(sw.kind), "owner": sw.owner, "reason": sw.reason, "start": utc(sw.start),
            "expires_at": utc(sw.expiry) if sw.expiry is not None else None,
            "recurrence": sw.recurrence, "silence_ids": list(sw.silence_ids)}


class Governance:
    """Switch changes and their silences for the agents of ``config`` on this node."""

    def __init__(self, config: Config, conn: sqlite3.Connection, *, alertmanager: Alertmanagers | None,
                 audit: AuditSink | None = None, clock: Callable[[], float], page_url: str = "",
                 horizon: float = schedule.DEFAULT_HORIZON, default_tz: str = "UTC") -> None:
        self.config = config
        self.conn = conn
        self.lock = threading.RLock()
        self.store = SwitchStore(conn, clock=clock, lock=self.lock)
        self.am = alertmanager
        self.audit_sink = audit
        self.clock = clock
        self.page_url = page_url
        self.horizon = horizon
        self.default_tz = default_tz
        self.me = uuid.uuid4().hex[:12]
        self.changes = 0  # bumped by every change made through this object (views cache on it)
        self._sync_lock = threading.Lock()
        with self.lock:
            migrate(conn, "governance", SCHEMA)

    # -- reading ------------------------------------------------------------------------------------
    def switches(self, agent: str | None = None) -> list[Switch]:
        return self.store.all(agent)

    def effective(self, agent: str, now: float | None = None) -> Effective:
        return effective(self.store.all(agent), self.clock() if now is None else now)

    def effective_all(self, now: float | None = None) -> dict[str, Effective]:
        now = self.clock() if now is None else now
        by: dict[str, list[Switch]] = {}
        for sw in self.store.all():
            by.setdefault(sw.agent, []).append(sw)
        return {a.name: effective(by.get(a.name, []), now) for a in self.config.agents}

    def silences(self, agent: str | None = None) -> list[SilenceRow]:
        sql, args = "SELECT * FROM gov_silences", ()
        if agent is not None:
            sql, args = sql + " WHERE agent = ?", (agent,)
        with self.lock:
            rows = self.conn.execute(sql + " ORDER BY agent, kind, starts_at", args).fetchall()
        return [_row(r) for r in rows]

    def history(self, agent: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute("SELECT line FROM gov_audit WHERE agent = ? ORDER BY id DESC LIMIT ?",
                                     (agent, limit)).fetchall()
        return [json.loads(r["line"]) for r in rows]

    def histories(self, per_agent: int = 5) -> dict[str, list[dict[str, Any]]]:
        """The newest ``per_agent`` audit lines of every agent in one read (the page)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT agent, line FROM (SELECT agent, line, ROW_NUMBER() OVER (PARTITION BY agent ORDER BY id DESC)"
                " AS n FROM gov_audit) WHERE n <= ? ORDER BY agent, n", (per_agent,)).fetchall()
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["agent"], []).append(json.loads(r["line"]))
        return out

    # -- changing -----------------------------------------------------------------------------------
    def set(self, agent: str, kind: str, *, owner: str, reason: str, via: str, duration: float | None = None,
            until: float | None = None, start: float | None = None, every: str | None = None) -> Change:
        """Turn a switch on, or edit the one of that kind (same silence, updated); effective at once."""
        a = self._agent(agent)
        if kind not in KINDS:
            raise GovernanceError(f"unknown switch {kind!r}; use one of: {', '.join(KINDS)} (or enable)", "kind")
        owner, reason = _check_text(owner, "owner"), _check_text(reason, "reason")
        now = self.clock()
        begin = now if start is None else start
        if duration is not None and until is not None:
            raise GovernanceError("give either a duration (--for, 'for') or an end (--until, 'until'), not both",
                                  "for")
        if duration is not None:
            if not 0 < duration <= MAX_SWITCH:
                raise GovernanceError("the duration must be more than 0 and at most 366d", "for")
            until = begin + duration
        recurrence = None
        if every:
            try:
                recurrence = parse(every, self.default_tz).text
            except RecurrenceError as exc:
                raise GovernanceError(str(exc), "every") from None
        if until is None and recurrence is None:
            raise GovernanceError("a switch needs an end: give a duration (--for 2h) or an end time (--until "
                                  "2026-12-01T08:00Z); enable clears it earlier", "for")
        if until is not None and until <= max(begin, now):
            raise GovernanceError(f"the end {utc(until)} is not after the start {utc(max(begin, now))}", "until")
        if until is not None and until - now > MAX_SWITCH:
            raise GovernanceError("a switch lasts at most 366 days; use a recurring window for longer", "until")
        with self.lock:
            old = self._find(a.name, kind, recurrence)
            if old is not None and schedule.expired(old, now):
                old = None
            new = self.store.add(Switch(agent=a.name, kind=SwitchKind(kind), owner=owner, reason=reason, start=begin,
                                        expiry=until, recurrence=recurrence,
                                        silence_ids=old.silence_ids if old else ()))
            for dup in self.store.all(a.name):  # the new one replaces the one it edits (same kind and window)
                if dup.id != new.id and dup.kind == kind and dup.recurrence == recurrence and dup.id is not None:
                    self.store.remove(dup.id)
            self._replan(now, a.name)
        self.sync(agent=a.name)
        current = self._find(a.name, kind, recurrence) or new
        rows = [r for r in self.silences(a.name) if r.kind == kind]
        self.changes += 1
        line = self._audit(a.name, "edit" if old else kind, owner, via, reason, kind,
                           switch_dict(old) if old else None, switch_dict(current), rows)
        return Change(a.name, line.outcome, self.store.all(a.name), self.silences(a.name), line)

    def enable(self, agent: str, *, owner: str, reason: str, via: str) -> Change:
        """Clear every switch of the agent; its silences are expired (now, or when Alertmanager is back)."""
        a = self._agent(agent)
        owner, reason = _check_text(owner, "owner"), _check_text(reason, "reason")
        now = self.clock()
        with self.lock:
            old = [s for s in self.store.all(a.name) if not schedule.expired(s, now)]
            ids = [i for s in old for i in s.silence_ids]
            for s in self.store.all(a.name):
                if s.id is not None:
                    self.store.remove(s.id)
            self._replan(now, a.name)
        self.sync(agent=a.name)
        rows = self.silences(a.name)
        self.changes += 1
        line = self._audit(a.name, "enable", owner, via, reason, None,
                           {str(s.kind): switch_dict(s) for s in old} or None, None, rows, ids=ids)
        return Change(a.name, "enable", [], rows, line)

    # -- silence sync -------------------------------------------------------------------------------
    def sync(self, agent: str | None = None) -> SyncReport:
        """Make Alertmanager match the store (for one agent or all); never raises for Alertmanager trouble."""
        report = SyncReport()
        with self._sync_lock:
            now = self.clock()
            self._expire_due(now, agent)
            self._replan(now, agent)
            for row in self._claim(now, agent):
                self._push(row, now, report)
            self._verify(now, agent, report)
            self._mirror_ids(agent)
            report.pending = sum(1 for r in self.silences(agent) if r.state != SYNCED)
        return report

    def _expire_due(self, now: float, agent: str | None) -> None:
        for sw in self.store.all(agent):
            if not schedule.expired(sw, now):
                continue
            with self.lock:
                if sw.id is None or not self.store.remove(sw.id):
                    continue  # another process got there first
                self._replan(now, sw.agent)
            self._audit(sw.agent, "expired", SYSTEM, SYSTEM, f"{sw.kind} reached its end {utc(sw.expiry or now)}",
                        str(sw.kind), switch_dict(sw), None, [], ids=list(sw.silence_ids))

    def _replan(self, now: float, agent: str | None) -> None:
        """Recurring switches gain the windows that came within the horizon; ended windows are forgotten."""
        switches = [s for s in self.store.all(agent) if s.kind in SILENCED and not schedule.expired(s, now)]
        with self.lock, tx(self.conn):
            for sw in switches:
                self._plan(sw, now)
            rows = self.conn.execute("SELECT * FROM gov_silences WHERE (? IS NULL OR agent = ?)", (agent, agent))
            for row in rows.fetchall():
                if not any(s.agent == row["agent"] and s.kind == row["kind"] and _owns(s, row["slot"])
                           for s in switches):
                    self._drop_row(row, now)
            self.conn.execute("DELETE FROM gov_silences WHERE ends_at <= ? AND state != ? AND (? IS NULL OR agent = ?)",
                              (now, EXPIRING, agent, agent))

    def _plan(self, sw: Switch, now: float) -> None:
        """Inside a transaction: the silence rows ``sw`` needs, new ones pending, changed ones pending update."""
        if sw.kind not in SILENCED:
            return
        node = self.config.node_of(self._agent(sw.agent))
        wanted = slots(sw, schedule.windows(sw, now, self.horizon))
        found = self.conn.execute("SELECT * FROM gov_silences WHERE agent = ? AND kind = ?", (sw.agent, str(sw.kind)))
        rows = {r["slot"]: r for r in found if _owns(sw, r["slot"])}
        for slot, (s, e) in wanted.items():
            b = sil.body(agent=sw.agent, node=node, kind=str(sw.kind), owner=sw.owner, reason=sw.reason, starts=s,
                         ends=e, page_url=self.page_url, recurrence=sw.recurrence)
            d = sil.digest(b)
            row = rows.get(slot)
            if row is None:
                self.conn.execute(
                    "INSERT INTO gov_silences (agent, kind, slot, starts_at, ends_at, body, digest, state, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?)", (sw.agent, str(sw.kind), slot, s, e, json.dumps(b), d, PENDING, now))
            elif row["digest"] != d or row["state"] == EXPIRING:
                self.conn.execute("UPDATE gov_silences SET starts_at=?, ends_at=?, body=?, digest=?, state=?, "
                                  "updated_at=? WHERE agent=? AND kind=? AND slot=?",
                                  (s, e, json.dumps(b), d, PENDING, now, sw.agent, str(sw.kind), slot))
        for slot, row in rows.items():
            if slot not in wanted:
                self._drop_row(row, now)

    def _drop_row(self, row: sqlite3.Row, now: float) -> None:
        key = (row["agent"], row["kind"], row["slot"])
        if row["silence_id"] and row["ends_at"] > now:
            self.conn.execute("UPDATE gov_silences SET state=?, updated_at=?, error='' WHERE agent=? AND kind=? AND "
                              "slot=?", (EXPIRING, now, *key))
        else:
            self.conn.execute("DELETE FROM gov_silences WHERE agent=? AND kind=? AND slot=?", key)

    def _claim(self, now: float, agent: str | None) -> list[sqlite3.Row]:
        """Rows that need Alertmanager, claimed for a few seconds so another process does not write them too."""
        with self.lock, tx(self.conn):
            sql = ("SELECT * FROM gov_silences WHERE state != ? AND (claimed_until IS NULL OR claimed_until < ? "
                   "OR claim = ?)")
            args: tuple[Any, ...] = (SYNCED, now, self.me)
            if agent:
                sql, args = sql + " AND agent = ?", (*args, agent)
            rows = self.conn.execute(sql, args).fetchall()
            for r in rows:
                self.conn.execute("UPDATE gov_silences SET claim=?, claimed_until=? WHERE agent=? AND kind=? "
                                  "AND slot=?", (self.me, now + CLAIM_SECONDS, r["agent"], r["kind"], r["slot"]))
        return rows

    def _push(self, row: sqlite3.Row, now: float, report: SyncReport) -> None:
        key = (row["agent"], row["kind"], row["slot"])
        if self.am is None or not self.am.members:
            self._note(key, "no Alertmanager configured (alertmanager.urls): the switch applies locally only")
            return
        try:
            if row["state"] == EXPIRING:
                with contextlib.suppress(NotFound):  # gone already (dropped after Alertmanager's retention)
                    self.am.expire_silence(row["silence_id"])
                with self.lock:
                    self.conn.execute("DELETE FROM gov_silences WHERE agent=? AND kind=? AND slot=? AND claim=?",
                                      (*key, self.me))
                report.expired += 1
            else:
                self._write(row, key, now)
                report.written += 1
            report.reachable = True
        except Refused as exc:  # Alertmanager rejected the body: say so on the page, do not hammer it
            report.errors.append(str(exc))
            self._note(key, f"refused: {exc}")
            if row["state"] != EXPIRING:
                self._audit(row["agent"], "silence_failed", SYSTEM, SYSTEM, str(exc), row["kind"], None, None, [])
        except (ServerError, NotEverywhere) as exc:  # unreachable or 5xx: it lands on a later round
            report.reachable = False
            report.errors.append(str(exc))
            self._note(key, f"pending: {exc}")

    def _write(self, row: sqlite3.Row, key: tuple[str, str, str], now: float) -> None:
        assert self.am is not None
        spec = SilenceSpec.model_validate(json.loads(row["body"]))
        old_id = row["silence_id"]
        try:
            new_id = self.am.update_silence(old_id, spec) if old_id else self.am.create_silence(spec)
        except NotFound:  # gone from Alertmanager (dropped after its retention): create it again
            new_id = self.am.create_silence(spec)
        with self.lock:
            cur = self.conn.execute(
                "UPDATE gov_silences SET silence_id=?, state=?, synced_digest=?, error='', claim=NULL, "
                "claimed_until=NULL, verified='{}', updated_at=? WHERE agent=? AND kind=? AND slot=? AND digest=?",
                (new_id, SYNCED, row["digest"], now, *key, row["digest"]))
        if cur.rowcount == 0:  # changed while we wrote: the next round writes the newer body over this id
            with self.lock:
                self.conn.execute("UPDATE gov_silences SET silence_id=? WHERE agent=? AND kind=? AND slot=?",
                                  (new_id, *key))
        if old_id != new_id and old_id:
            log.info("governance: Alertmanager replaced silence %s of %s/%s by %s", old_id, key[0], key[1], new_id)
        if row["error"].startswith("pending"):  # it could not be written before: say when it landed
            self._audit(key[0], "silence_landed", SYSTEM, SYSTEM,
                        f"{key[1]} silence {utc(row['starts_at'])} → {utc(row['ends_at'])} written after: "
                        f"{row['error'][:200]}", key[1], None, None, [], ids=[new_id])

    def _note(self, key: tuple[str, str, str], error: str) -> None:
        with self.lock:
            self.conn.execute("UPDATE gov_silences SET error=?, claim=NULL, claimed_until=NULL WHERE agent=? AND "
                              "kind=? AND slot=?", (error[:500], *key))

    def _verify(self, now: float, agent: str | None, report: SyncReport) -> None:
        """Every Alertmanager must have every silence we wrote (a cluster gossips it; write once, verify all)."""
        rows = [r for r in self.silences(agent) if r.landed and r.ends_at > now]
        if not rows or self.am is None:
            return
        seen: dict[str, dict[str, str]] = {}
        for member in self.am.members:
            try:
                seen[member.url] = {s.id: s.state for s in member.silences()}
            except ServerError as exc:
                report.errors.append(str(exc))
        if not seen:
            return
        for r in rows:
            verified = {url: seen[url].get(r.silence_id or "") in ("active", "pending") for url in seen}
            gone = all(seen[url].get(r.silence_id or "") in (None, "expired") for url in seen) and \
                len(seen) == len(self.am.members)
            with self.lock:
                if gone:  # expired or deleted behind our back: the switch is still on, so write it again
                    self.conn.execute("UPDATE gov_silences SET state=?, silence_id=NULL, verified='{}' WHERE agent=? "
                                      "AND kind=? AND slot=? AND state=?", (PENDING, r.agent, r.kind, r.slot, SYNCED))
                else:
                    self.conn.execute("UPDATE gov_silences SET verified=? WHERE agent=? AND kind=? AND slot=?",
                                      (json.dumps(verified), r.agent, r.kind, r.slot))
            if gone:
                self._audit(r.agent, "silence_recreated", SYSTEM, SYSTEM,
                            f"silence {r.silence_id} was expired or removed in Alertmanager while the {r.kind} "
                            "switch is on; writing it again (use enable to end the switch)", r.kind, None, None, [],
                            ids=[r.silence_id or ""])
        if any(r.state == PENDING for r in self.silences(agent)):
            for row in self._claim(now, agent):
                self._push(row, now, report)

    def _mirror_ids(self, agent: str | None) -> None:
        """The switch carries the ids of its silences that hold (what the page and the API show)."""
        ids: dict[tuple[str, str], list[str]] = {}
        for r in self.silences(agent):
            if r.silence_id and r.state == SYNCED:
                ids.setdefault((r.agent, r.kind), []).append(r.silence_id)
        with self.lock:
            for sw in self.store.all(agent):
                want = tuple(r.silence_id for r in self.silences(sw.agent)
                             if r.kind == sw.kind and r.silence_id and r.state == SYNCED and _owns(sw, r.slot))
                if want != sw.silence_ids and sw.id is not None:
                    self.store.set_silences(sw.id, want)

    # -- helpers ------------------------------------------------------------------------------------
    def _find(self, agent: str, kind: str, recurrence: str | None) -> Switch | None:
        """The switch a set of this kind (and recurrence) edits: the newest such one."""
        same = [s for s in self.store.all(agent) if s.kind == kind and s.recurrence == recurrence]
        return same[-1] if same else None

    def _agent(self, name: str) -> Agent:
        for a in self.config.agents:
            if a.name == name:
                return a
        known = ", ".join(a.name for a in self.config.agents)
        raise GovernanceError(f"unknown agent {name!r}; known agents: {known}", "agent")

    def _audit(self, agent: str, op: str, actor: str, via: str, reason: str, kind: str | None,
               old: dict[str, Any] | None, new: dict[str, Any] | None, rows: list[SilenceRow],
               ids: list[str] | None = None) -> AuditLine:
        now = self.clock()
        node = self.config.node_of(self._agent(agent))
        line = AuditLine(time=now, agent=agent, node=node, outcome=op, actor=actor, via=via, reason=reason, kind=kind,
                         old=old, new=new,
                         silence_ids=ids if ids is not None else [r.silence_id for r in rows if r.silence_id],
                         silences_pending=sum(1 for r in rows if r.state != SYNCED))
        with self.lock:
            self.conn.execute("INSERT INTO gov_audit (time, agent, line) VALUES (?,?,?)",
                              (now, agent, json.dumps(line.to_dict(), sort_keys=True)))
        if self.audit_sink is not None:
            try:
                self.audit_sink.write(line)
            except Exception:  # the store has it; a full disk must not undo a switch
                log.exception("governance: could not write the audit line to the telemetry log")
        return line


def parse_time(text: str, default_tz: str, what: str = "until") -> float:
    """An end or start time: RFC 3339 (``2026-12-01T08:00:00Z``, ``2026-12-01 08:00+01:00``); without an
    offset it is a wall-clock time in ``default_tz``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    raw = (text or "").strip()
    try:
        t = datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:
        raise GovernanceError(f"{what}: {text!r} is not a time; write e.g. 2026-12-01T08:00Z or "
                              "'2026-12-01 08:00' (the zone of admin.timezone)", what) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(default_tz))
    return t.timestamp()


def _check_text(value: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise GovernanceError(f"{what} is required: say who and why (it goes into the audit log and the silence)",
                              what)
    if len(text) > 500 or any(ord(c) < 32 for c in text):
        raise GovernanceError(f"{what} must be one line of at most 500 characters", what)
    return text


def _row(r: sqlite3.Row) -> SilenceRow:
    return SilenceRow(agent=r["agent"], kind=r["kind"], slot=r["slot"], starts_at=r["starts_at"], ends_at=r["ends_at"],
                      silence_id=r["silence_id"], state=r["state"], error=r["error"],
                      verified=json.loads(r["verified"] or "{}"))
