"""Several nodes behind one Alertmanager cluster and an HA pair of Prometheus servers (docs/ha.md).

Nodes share nothing but Alertmanager, so both jobs here decide from this receiver's own state (tables
``ha_*`` in the node's SQLite file) and from alerts every receiver gets alike:

1. **One incident per alert episode** (:class:`Episodes`). Two Prometheus replicas evaluate the same rule
   from their own scrapes, so one alert (one fingerprint once ``replica`` is dropped) may start a scrape or
   an evaluation apart on each; Alertmanager merges them to the earliest ``startsAt`` and its next
   notification may carry a ``startsAt`` we have not seen. Every ``startsAt`` within
   ``receiver.replica_skew`` of an episode that had not ended by then is mapped to that episode's first
   ``startsAt`` *before* the inbox records the alert, so the inbox key, the incident id, the remediator's
   claim and the message key are those of the one incident.

2. **One node tells people** (:class:`Announcer`, when ``receiver.peers`` is set). Every node's receiver
   gets every alert; each acts only on its own node's agents and announces:

   - its own node's alerts (and those of its agents on nodes outside the cluster), unless they started while its own
     receiver was down (``ReceiverDown`` for this node firing, from ``takeover_grace`` before it):
     its deputy announced those;
   - a peer's alerts that started while that peer's receiver was down, when it is that peer's *deputy*:
     the first node after the peer, in the sorted list of this node and its peers, whose receiver is not
     down. It announces the peer's ``ReceiverDown`` itself too, and when it learns a peer went down it
     announces the peer's alerts that are still firing from then on (catch-up);
   - alerts of no node in the cluster, when it is the *leader* (the first node whose receiver is up);
   - a resolve (and every progress update) only when it announced the incident's firing.

   ``ReceiverDown`` episodes come from the webhooks and, at start, from the Alertmanagers' active alerts
   (:meth:`Announcer.sync`): a node that was down itself learns from there that its deputy spoke for it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from govheal.config import Config
from govheal.state import Component
from govheal.store import migrate, tx
from webhook_receiver.models import Alert, incident_id

log = logging.getLogger("govheal.receiver.ha")

RECEIVER_DOWN = "ReceiverDown"  # prometheus/rules/pipeline.yml: up{job="govheal-receiver"} == 0, by node
HEALED = ("healed", "already_recovered")  # inbox results after which an agent's incident is over

MIGRATIONS = [
    """
    CREATE TABLE ha_episodes (
        fingerprint TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        starts_ts REAL NOT NULL,
        ends_ts REAL,
        PRIMARY KEY (fingerprint, starts_at)
    );
    CREATE TABLE ha_aliases (
        fingerprint TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        canonical TEXT NOT NULL,
        seen REAL NOT NULL,
        echo INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (fingerprint, starts_at)
    );
    CREATE TABLE ha_down (
        node TEXT NOT NULL,
        since_at TEXT NOT NULL,
        since_ts REAL NOT NULL,
        until_ts REAL,
        PRIMARY KEY (node, since_at)
    )
    """,
]


HA = Component("ha", MIGRATIONS)


def timestamp(rfc3339: str) -> float:
    """Alertmanager's RFC 3339 (Go's nano format, ``Z`` or an offset) → seconds since the epoch."""
    return datetime.fromisoformat(rfc3339).timestamp()


def _ends(alert: Alert) -> float | None:
    if alert.status != "resolved" or not alert.endsAt or alert.endsAt.startswith("0001-"):
        return None
    try:
        return timestamp(alert.endsAt)
    except ValueError:
        return None


class Episodes:
    """fingerprint + startsAt → the episode's first startsAt (durable, so a retry maps the same way)."""

    def __init__(self, conn: sqlite3.Connection, skew: float, *, clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.skew = skew
        self.clock = clock
        self._lock = threading.Lock()
        with self._lock:
            migrate(conn, "ha", MIGRATIONS)

    def canonical(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Each alert with the startsAt of the incident it belongs to (unchanged when it starts one)."""
        alerts = list(alerts)
        if self.skew <= 0:
            return alerts
        with self._lock, tx(self.conn):
            return [self._one(a) for a in alerts]

    def _one(self, alert: Alert) -> Alert:
        fp, start = alert.fingerprint, alert.startsAt
        row = self.conn.execute("SELECT canonical FROM ha_aliases WHERE fingerprint = ? AND starts_at = ?",
                                (fp, start)).fetchone()
        if row is not None:
            canonical = str(row[0])
        else:
            canonical, echo = self._match(fp, start, resolved=alert.status == "resolved")
            self.conn.execute("INSERT INTO ha_aliases (fingerprint, starts_at, canonical, seen, echo) VALUES "
                              "(?,?,?,?,?)", (fp, start, canonical, self.clock(), int(echo)))
        ends = _ends(alert)
        if ends is not None:
            self.conn.execute("UPDATE ha_episodes SET ends_ts = MIN(COALESCE(ends_ts, ?), ?) WHERE fingerprint = ? "
                              "AND starts_at = ?", (ends, ends, fp, canonical))
        if canonical != start:
            log.info("ha: alert %s startsAt %s is incident %s:%s (another Prometheus replica's start)",
                     fp, start, fp, canonical)
            return alert.model_copy(update={"startsAt": canonical})
        return alert

    def _match(self, fp: str, start: str, *, resolved: bool) -> tuple[str, bool]:
        """(canonical startsAt, echo). A firing alert joins an episode within the skew that had not ended
        before it started; one starting after such an episode ended is new, flagged as a possible *echo* (the
        other replica's late view of the same outage) that dispatch announces only if acting on it turns
        out to be needed. A resolve never acts, so one we never saw firing joins the nearest episode."""
        s = timestamp(start)
        rows = self.conn.execute(
            "SELECT starts_at, starts_ts, ends_ts FROM ha_episodes WHERE fingerprint = ? AND starts_ts BETWEEN ? AND ?"
            " ORDER BY ABS(starts_ts - ?)", (fp, s - self.skew, s + self.skew, s)).fetchall()
        if resolved and rows:
            return str(rows[0][0]), False
        echo = False
        for other, other_ts, ends_ts in rows:
            if s <= other_ts or not self._ended(fp, other, ends_ts, s):
                return str(other), False
            echo = True
        self.conn.execute("INSERT INTO ha_episodes (fingerprint, starts_at, starts_ts) VALUES (?,?,?)", (fp, start, s))
        return start, echo

    def echo(self, fingerprint: str, starts_at: str) -> bool:
        """Is this (canonical) firing alert a possible echo of an episode that had just ended?"""
        if self.skew <= 0:
            return False
        with self._lock:
            row = self.conn.execute("SELECT echo FROM ha_aliases WHERE fingerprint = ? AND starts_at = ?",
                                    (fingerprint, starts_at)).fetchone()
        return bool(row and row[0])

    def _ended(self, fp: str, starts_at: str, ends_ts: float | None, s: float) -> bool:
        """Had the episode ended (resolved, or its agent healed) before ``s``? Then ``s`` starts a new one."""
        if ends_ts is not None and ends_ts <= s:
            return True
        healed = self.conn.execute(
            "SELECT 1 FROM inbox_alerts WHERE incident = ? AND status = 'firing' AND result IN (?, ?) "
            "AND finished <= ?", (incident_id(fp, starts_at), *HEALED, s)).fetchone()
        return healed is not None

    def prune(self, before: float) -> None:
        with self._lock, tx(self.conn):
            self.conn.execute("DELETE FROM ha_aliases WHERE seen < ?", (before,))
            self.conn.execute("DELETE FROM ha_episodes WHERE starts_ts < ? AND NOT EXISTS (SELECT 1 FROM ha_aliases "
                              "a WHERE a.fingerprint = ha_episodes.fingerprint AND a.canonical = "
                              "ha_episodes.starts_at)", (before,))


class Decision(StrEnum):
    NOW = "now"  # tell people now
    IF_ACTED = "if_acted"  # a possible echo of an episode that just ended: tell only if remediating it acts
    NO = "no"  # another node tells (or nobody needs to: the resolve of something nobody announced)


@dataclass(frozen=True)
class Subject:
    """What the announcer needs of an inbox row."""

    id: int
    fingerprint: str
    alertname: str
    status: str
    node: str | None
    agent: str | None
    starts_at: str
    incident: str
    ends_at: str = ""


class Announcer:
    """Who announces which alert when several nodes' receivers get the same alerts (module docstring)."""

    def __init__(self, config: Config, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time,
                 episodes: Episodes | None = None) -> None:
        self.episodes = episodes
        self.me = config.node
        self.cluster = sorted({config.node, *config.receiver.peers})
        self.enabled = bool(config.receiver.peers)
        self.grace = config.receiver.takeover_grace
        self.mine = {a.name for a in config.agents}
        self.conn = conn
        self.clock = clock
        self._lock = threading.Lock()
        with self._lock:
            migrate(conn, "ha", MIGRATIONS)

    # -- ReceiverDown episodes --------------------------------------------------------------------
    def observe(self, s: Subject) -> bool:
        """Record a ReceiverDown of a cluster node; True when it newly marks a *peer* down (catch up)."""
        if not self.enabled or s.alertname != RECEIVER_DOWN or s.node not in self.cluster:
            return False
        with self._lock, tx(self.conn):
            if s.status == "firing":
                new = self._open(s.node, s.starts_at)
            else:
                until = timestamp(s.ends_at) if s.ends_at and not s.ends_at.startswith("0001-") else self.clock()
                self.conn.execute("UPDATE ha_down SET until_ts = ? WHERE node = ? AND until_ts IS NULL",
                                  (until, s.node))
                new = False
        if new:
            log.warning("ha: the receiver of node %s is down (ReceiverDown since %s)", s.node, s.starts_at)
        return new and s.node != self.me

    def sync(self, active: list[tuple[str, str]]) -> None:
        """At start: the ReceiverDown alerts Alertmanager holds now, as (node, startsAt); a local episode that
        is no longer among them has ended."""
        if not self.enabled:
            return
        now = self.clock()
        with self._lock, tx(self.conn):
            for node, starts in active:
                if node in self.cluster:
                    self._open(node, starts)
            still = {n for n, _ in active}
            for (node,) in self.conn.execute("SELECT node FROM ha_down WHERE until_ts IS NULL").fetchall():
                if node not in still:
                    self.conn.execute("UPDATE ha_down SET until_ts = ? WHERE node = ? AND until_ts IS NULL",
                                      (now, node))

    def _open(self, node: str, starts_at: str) -> bool:
        """Open a down episode of ``node`` unless one is open (one per node); True when it opened one."""
        if self.conn.execute("SELECT 1 FROM ha_down WHERE node = ? AND until_ts IS NULL", (node,)).fetchone():
            return False
        cur = self.conn.execute("INSERT INTO ha_down (node, since_at, since_ts) VALUES (?,?,?) ON CONFLICT "
                                "(node, since_at) DO UPDATE SET until_ts = NULL",
                                (node, starts_at, timestamp(starts_at)))
        return cur.rowcount == 1

    def down_at(self, node: str, at: float) -> bool:
        """Was ``node``'s receiver down (or about to be: ``takeover_grace``) at ``at``?"""
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM ha_down WHERE node = ? AND since_ts - ? <= ? AND "
                                    "(until_ts IS NULL OR ? <= until_ts)", (node, self.grace, at, at)).fetchone()
        return row is not None

    def down_now(self, node: str) -> bool:
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM ha_down WHERE node = ? AND until_ts IS NULL", (node,)).fetchone()
        return row is not None

    def deputy(self, node: str) -> str | None:
        """The first node after ``node`` (cyclic, sorted) whose receiver is up; None when all others are down."""
        i = self.cluster.index(node)
        for other in self.cluster[i + 1:] + self.cluster[:i]:
            if other == self.me or not self.down_now(other):
                return other
        return None

    def leader(self) -> str:
        return next((n for n in self.cluster if n == self.me or not self.down_now(n)), self.me)

    # -- the decision -----------------------------------------------------------------------------
    def decide(self, s: Subject) -> Decision:
        """Announce now, only if acting on it turns out to be needed (a possible replica echo), or not at all."""
        if s.status == "resolved":
            told = self._told_firing(s.incident)
            if told is not None:  # a resolve follows whoever announced the firing (nobody: nobody)
                return Decision.NOW if told else Decision.NO
            if not self.enabled:
                return Decision.NOW  # we never saw it firing (down at the time): the resolve is the only trace
        if self.enabled and not self._announces_firing(s):
            return Decision.NO
        if s.status == "firing" and self.episodes is not None and self.episodes.echo(s.fingerprint, s.starts_at):
            return Decision.IF_ACTED
        return Decision.NOW

    def announces(self, s: Subject) -> bool:
        return self.decide(s) is Decision.NOW

    def _announces_firing(self, s: Subject) -> bool:
        start = timestamp(s.starts_at)
        if s.alertname == RECEIVER_DOWN and s.node in self.cluster:
            return s.node != self.me and self.deputy(s.node) == self.me
        if s.node == self.me or (s.node not in self.cluster and s.agent in self.mine):
            return not self.down_at(self.me, start)  # else our deputy spoke for us while we were down
        if s.node in self.cluster:
            return self.down_at(s.node, start) and self.deputy(s.node) == self.me
        return self.leader() == self.me

    def _told_firing(self, incident: str) -> bool | None:
        with self._lock:
            row = self.conn.execute("SELECT MAX(notified) FROM inbox_alerts WHERE incident = ? AND status = 'firing'",
                                    (incident,)).fetchone()
        return None if row is None or row[0] is None else bool(row[0])

    def deputised(self, s: Subject) -> bool:
        """Announced on behalf of another node (for the wording)."""
        return self.enabled and s.node in self.cluster and s.node != self.me and s.alertname != RECEIVER_DOWN

    def catch_up(self, node: str) -> list[int]:
        """Inbox rows of ``node`` still firing and not announced here that this node now announces (pending ones
        too: a row whose worker decided before the episode was recorded; the bridge's dedupe id makes a
        second notify of the same row a no-op)."""
        if not self.enabled or self.deputy(node) != self.me:
            return []
        with self._lock:
            rows = self.conn.execute(
                "SELECT a.id, a.starts_at FROM inbox_alerts a WHERE a.node = ? AND a.status = 'firing' AND "
                "a.notified = 0 AND a.alertname != ? AND NOT EXISTS (SELECT 1 FROM inbox_alerts "
                "r WHERE r.incident = a.incident AND r.status = 'resolved') ORDER BY a.id",
                (node, RECEIVER_DOWN)).fetchall()
        return [int(r[0]) for r in rows if self.down_at(node, timestamp(r[1]))]

    def prune(self, before: float) -> None:
        with self._lock, tx(self.conn):
            self.conn.execute("DELETE FROM ha_down WHERE until_ts IS NOT NULL AND until_ts < ?", (before,))


def deputy_wording(me: str, node: str | None) -> str:
    return (f"announced by node {me} for node {node}: its receiver is down, so nobody may be acting on this "
            "(not remediated from here)")


def receiver_down_alerts(alerts: Iterable[object]) -> list[tuple[str, str]]:
    """(node, startsAt) of the active ReceiverDown alerts among client.Alert items (for :meth:`Announcer.sync`)."""
    out = []
    for a in alerts:
        labels = getattr(a, "labels", {})
        if labels.get("alertname") == RECEIVER_DOWN and labels.get("node") and getattr(a, "state", "") != "suppressed":
            starts = a.starts_at  # type: ignore[attr-defined]
            out.append((labels["node"], starts.isoformat().replace("+00:00", "Z")))
    return out
