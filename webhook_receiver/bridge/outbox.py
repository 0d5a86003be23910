"""Durable outbox (tables ``outbox_*`` in the shared SQLite file) and one delivery worker per channel.

Life of a notice: ``queued`` → ``sent`` (acknowledged; marked in the same transaction that records the
channel's message id), ``merged`` (superseded by a newer state of the same incident before it was sent) or
``dropped`` (permanent failure; copied to the other channels first). A crash between the channel's
acknowledgement and that transaction re-sends the batch once: the at-least-once window is one request.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from govheal.state import Component, disk_failure
from govheal.store import tx
from govheal.types import format_duration

from .metrics import BridgeMetrics, Delivery
from .model import Notice
from .notifiers.base import (
    CHANNEL,
    EDIT_UNSUPPORTED,
    RATE_LIMITED,
    REJECTED,
    TRANSIENT,
    MessageRef,
    Notifier,
    NotifyError,
)

log = logging.getLogger("govheal.bridge")

SCHEMA = (
    """
    CREATE TABLE outbox_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        notice_id TEXT NOT NULL,
        key TEXT NOT NULL,
        notice TEXT NOT NULL,
        accepted REAL NOT NULL,
        next_attempt REAL NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'queued',
        direct INTEGER NOT NULL DEFAULT 0,
        fallback_from TEXT,
        done_at REAL,
        message_id TEXT,
        last_error TEXT
    );
    CREATE INDEX outbox_items_queue ON outbox_items (channel, state, id);
    CREATE INDEX outbox_items_notice ON outbox_items (notice_id);
    CREATE TABLE outbox_messages (
        channel TEXT NOT NULL,
        message_id TEXT NOT NULL,
        ref TEXT NOT NULL,
        notices TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (channel, message_id)
    );
    CREATE TABLE outbox_refs (
        channel TEXT NOT NULL,
        key TEXT NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (channel, key)
    );
    CREATE TABLE outbox_channels (
        channel TEXT PRIMARY KEY,
        degraded INTEGER NOT NULL DEFAULT 0,
        chat_id TEXT
    )
    """,
    # v2: caller-chosen idempotency ids; written in the same transaction as the items they produced
    """
    CREATE TABLE outbox_dedupe (
        dedupe_id TEXT PRIMARY KEY,
        notice_id TEXT NOT NULL,
        created REAL NOT NULL
    )
    """,
)
OUTBOX = Component("bridge_outbox", SCHEMA)
BATCH = 64  # enough to fill one message (10 embeds / ~4000 characters) after coalescing
BACKOFF_MAX = 300.0
LINGER = 0.02  # a burst is still arriving while its newest notice is younger than this
SOLO_PERIOD = 60.0
LINGER_MAX = 0.25  # but no notice waits longer than this for company
KEEP_DONE = 7 * 86400.0
EDIT_PAUSE = 3600.0  # after an endpoint said it cannot edit (405/501), updates are new messages this long


@dataclass(frozen=True)
class Item:
    id: int
    channel: str
    notice_id: str
    notice: Notice
    accepted: float
    attempts: int

    @property
    def key(self) -> str:
        return self.notice.key


def backoff(attempts: int) -> float:
    """1, 2, 4 … 300 s with ±20 % jitter so channels recovering together do not retry in lockstep."""
    return min(BACKOFF_MAX, 2.0 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)  # noqa: S311


class Outbox:
    """All SQL of the bridge. Thread-safe: one connection (migrated: ``State.connection(OUTBOX)``), one lock,
    short transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def enqueue(self, channels: Iterable[str], notice: Notice, accepted: float, *, direct: bool = False,
                fallback_from: str | None = None, notice_id: str | None = None,
                dedupe_id: str | None = None) -> str | None:
        """Queue ``notice`` for ``channels``; its notice id, or None when ``dedupe_id`` was seen before.

        The dedupe row and the items commit together, so a caller killed after this returns and before it
        recorded "done" can call again with the same ``dedupe_id`` and nothing is queued twice.
        """
        notice_id = notice_id or uuid.uuid4().hex
        body = json.dumps(notice.to_dict(), ensure_ascii=False)
        with self.lock, tx(self.conn):
            if dedupe_id is not None and self.conn.execute(
                    "INSERT INTO outbox_dedupe (dedupe_id, notice_id, created) VALUES (?, ?, ?) "
                    "ON CONFLICT (dedupe_id) DO NOTHING", (dedupe_id, notice_id, accepted)).rowcount == 0:
                return None
            self.conn.executemany(
                "INSERT INTO outbox_items (channel, notice_id, key, notice, accepted, direct, fallback_from) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(ch, notice_id, notice.key, body, accepted, int(direct), fallback_from) for ch in channels])
        return notice_id

    def due(self, channel: str, now: float, limit: int = BATCH) -> list[Item]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, channel, notice_id, notice, accepted, attempts FROM outbox_items "
                "WHERE channel = ? AND state = 'queued' AND next_attempt <= ? ORDER BY direct DESC, id LIMIT ?",
                (channel, now, limit)).fetchall()
        return [Item(r[0], r[1], r[2], Notice.from_dict(json.loads(r[3])), r[4], r[5]) for r in rows]

    def queued(self, channel: str) -> list[Item]:
        return self.due(channel, float("inf"), limit=-1)

    def next_due(self, channel: str) -> float | None:
        with self.lock:
            row = self.conn.execute("SELECT MIN(next_attempt) FROM outbox_items WHERE channel = ? AND state = 'queued'",
                                    (channel,)).fetchone()
        return row[0]

    def message_of(self, channel: str, key: str) -> tuple[MessageRef, list[Notice]] | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT m.ref, m.notices FROM outbox_refs r JOIN outbox_messages m "
                "ON m.channel = r.channel AND m.message_id = r.message_id WHERE r.channel = ? AND r.key = ?",
                (channel, key)).fetchone()
        if row is None:
            return None
        return MessageRef(**json.loads(row[0])), [Notice.from_dict(d) for d in json.loads(row[1])]

    def keys_with_messages(self, channel: str, keys: Sequence[str]) -> set[str]:
        with self.lock:
            rows = self.conn.execute(
                f"SELECT key FROM outbox_refs WHERE channel = ? AND key IN ({','.join('?' * len(keys))})",  # noqa: S608
                (channel, *keys)).fetchall()
        return {r[0] for r in rows}

    def ack(self, channel: str, sent: Sequence[Item], merged: Sequence[Item], ref: MessageRef,
            notices: Sequence[Notice], now: float) -> None:
        """The channel acknowledged ``ref``: mark sent and remember the message, in one transaction."""
        with self.lock, tx(self.conn):
            self.conn.executemany(
                "UPDATE outbox_items SET state = 'sent', done_at = ?, message_id = ? WHERE id = ?",
                [(now, ref.id, it.id) for it in sent])
            self.conn.executemany("UPDATE outbox_items SET state = 'merged', done_at = ?, message_id = ? WHERE id = ?",
                                  [(now, ref.id, it.id) for it in merged])
            if not ref.id:  # delivered but not editable: the next update starts a new message
                self.conn.executemany("DELETE FROM outbox_refs WHERE channel = ? AND key = ?",
                                      [(channel, n.key) for n in notices])
                return
            self.conn.execute(
                "INSERT OR REPLACE INTO outbox_messages (channel, message_id, ref, notices, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (channel, ref.id, json.dumps(ref.__dict__),
                 json.dumps([n.to_dict() for n in notices], ensure_ascii=False), now))
            self.conn.executemany("INSERT OR REPLACE INTO outbox_refs (channel, key, message_id) VALUES (?, ?, ?)",
                                  [(channel, n.key, ref.id) for n in notices])

    def retry(self, items: Sequence[Item], next_attempt: float, error: str, *, count: bool = True) -> None:
        with self.lock, tx(self.conn):
            self.conn.executemany(
                "UPDATE outbox_items SET attempts = attempts + ?, next_attempt = ?, last_error = ? WHERE id = ?",
                [(int(count), next_attempt, error[:500], it.id) for it in items])

    def drop(self, items: Sequence[Item], error: str, now: float, fallback: Sequence[str]) -> int:
        """Mark dropped and copy each to the ``fallback`` channels that do not have it yet; returns copies."""
        copies = 0
        with self.lock, tx(self.conn):
            for it in items:
                self.conn.execute("UPDATE outbox_items SET state = 'dropped', done_at = ?, last_error = ? "
                                  "WHERE id = ?", (now, error[:500], it.id))
                for ch in fallback:
                    have = self.conn.execute("SELECT 1 FROM outbox_items WHERE notice_id = ? AND channel = ?",
                                             (it.notice_id, ch)).fetchone()
                    if have is None:
                        self.conn.execute(
                            "INSERT INTO outbox_items (channel, notice_id, key, notice, accepted, fallback_from) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (ch, it.notice_id, it.key, json.dumps(it.notice.to_dict(), ensure_ascii=False),
                             it.accepted, it.channel))
                        copies += 1
        return copies

    def forget(self, channel: str, keys: Iterable[str]) -> None:
        with self.lock, tx(self.conn):
            self.conn.executemany("DELETE FROM outbox_refs WHERE channel = ? AND key = ?",
                                  [(channel, k) for k in keys])

    def stats(self, now: float) -> dict[str, tuple[int, float]]:
        with self.lock:
            rows = self.conn.execute("SELECT channel, COUNT(*), MIN(accepted) FROM outbox_items "
                                     "WHERE state = 'queued' GROUP BY channel").fetchall()
        return {r[0]: (r[1], max(0.0, now - r[2])) for r in rows}

    def channel_state(self, channel: str) -> tuple[bool, str | None]:
        with self.lock:
            row = self.conn.execute("SELECT degraded, chat_id FROM outbox_channels WHERE channel = ?",
                                    (channel,)).fetchone()
        return (bool(row[0]), row[1]) if row else (False, None)

    def set_channel_state(self, channel: str, degraded: bool, chat_id: str | None) -> None:
        with self.lock, tx(self.conn):
            self.conn.execute(
                "INSERT INTO outbox_channels (channel, degraded, chat_id) VALUES (?, ?, ?) ON CONFLICT(channel) "
                "DO UPDATE SET degraded = excluded.degraded, chat_id = excluded.chat_id",
                (channel, int(degraded), chat_id))

    def prune(self, before: float) -> None:
        with self.lock, tx(self.conn):
            self.conn.execute("DELETE FROM outbox_items WHERE state != 'queued' AND done_at < ?", (before,))
            self.conn.execute("DELETE FROM outbox_refs WHERE (channel, message_id) IN (SELECT channel, message_id "
                              "FROM outbox_messages WHERE updated < ?)", (before,))
            self.conn.execute("DELETE FROM outbox_messages WHERE updated < ?", (before,))
            self.conn.execute("DELETE FROM outbox_dedupe WHERE created < ?", (before,))


def deliveries(conn: sqlite3.Connection, key: str) -> list[tuple[str, str, float, float | None, str | None]]:
    """Read-only, for the canary's trace: ``(channel, state, accepted, done_at, last_error)`` of every item with
    this notice key, oldest first; empty when the outbox was never created."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_items'").fetchone() is None:
        return []
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        "SELECT channel, state, accepted, done_at, last_error FROM outbox_items WHERE key = ? ORDER BY id", (key,))]


@dataclass(frozen=True)
class Plan:
    """The next message: new (``ref`` None) or an edit of ``ref``, already rendered."""

    at: float
    ref: MessageRef | None
    batch: list[Item]
    merged: list[Item]
    notices: list[Notice]
    rendered: Any


class ChannelWorker(threading.Thread):
    """Delivers one channel's queue: paced, merged, edit-in-place, retried; never dies on an error."""

    def __init__(self, name: str, notifier: Notifier, outbox: Outbox, metrics: BridgeMetrics,
                 clock: Callable[[], float], fallback: Callable[[str], list[str]], *,
                 probe_interval: float = 60.0) -> None:
        super().__init__(name=f"bridge-{name}", daemon=True)
        self.channel = name
        self.notifier = notifier
        self.outbox = outbox
        self.metrics = metrics
        self.clock = clock
        self.fallback = fallback
        self.probe_interval = probe_interval
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.degraded, self.migration = outbox.channel_state(name)
        self.planned: Plan | None = None
        self.unacked: tuple[Plan, MessageRef, float] | None = None  # sent, not yet recorded (full disk)
        self.solo_until = 0.0  # after a rejected merged message, isolate the culprit
        self.probe_at = 0.0  # a degraded channel is probed once at start, then every probe_interval
        self.edits_off_until = 0.0  # the endpoint cannot edit: send updates as new messages until then
        configured, _, migrated = (self.migration or "").partition(">")
        if migrated and hasattr(notifier, "chat_id") and configured == notifier.secrets.chat_id:
            notifier.chat_id = migrated  # a Telegram group became a supergroup earlier: keep using the new id
        metrics.degraded.labels(name).set(int(self.degraded))

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        try:
            self.outbox.prune(self.clock() - KEEP_DONE)
        except sqlite3.Error as exc:
            log.warning("bridge %s: prune failed: %s", self.channel, exc)
        while not self.stopping.is_set():
            try:
                pause = self.step()
            except Exception as exc:  # a bug or a DB hiccup must not end delivery
                if not disk_failure(exc):  # a full disk was logged once by the state object
                    log.error("bridge %s: %s", self.channel, self.notifier.redact(f"{type(exc).__name__}: {exc}"))
                pause = 1.0
            if pause > 0:
                self.wake.wait(pause)
                self.wake.clear()

    def step(self) -> float:
        """Deliver at most one message; return how long to pause (0 = go again).

        While the pacer holds us back, the next message is planned and rendered, so it leaves the
        moment the window opens (the storm drains at the rate limit, not at the limit plus our work).
        """
        if self.unacked is not None:
            self._ack()  # a delivery the state disk did not let us record: record it, send nothing meanwhile
        now = self.clock()
        if self.degraded and now < self.probe_at:
            return min(self.probe_at - now, 1.0)
        wait = self.notifier.ready_in()
        plan = self.planned if self.planned is not None and now - self.planned.at < 1.0 else None
        self.planned = None
        if plan is None:
            items = self.outbox.due(self.channel, now)
            if not items:
                nxt = self.outbox.next_due(self.channel)
                return 1.0 if nxt is None else min(max(nxt - now, 0.005), 1.0)
            if self.still_arriving(items, now):
                return LINGER / 2
            plan = self.plan(items, now)
            if plan is None:
                return 0.0
        if wait > 0:
            self.planned = plan
            return wait
        self.execute(plan)
        return 0.0

    def still_arriving(self, items: list[Item], now: float) -> bool:
        """Notices are landing (the newest a few ms old) and one message could carry more: wait a moment
        so the first requests of a storm are not spent on one notice each (costs ≤ LINGER of latency)."""
        if len(items) >= BATCH:
            return False
        newest = max(it.accepted for it in items)
        oldest = min(it.accepted for it in items)
        return now - newest < LINGER and now - oldest < LINGER_MAX and \
            self.notifier.pack([it.notice for it in items]) >= len(items)

    def plan(self, items: list[Item], now: float) -> Plan | None:
        latest = {it.key: it for it in items}  # the newest state of each incident wins
        live = [it for it in items if latest[it.key] is it]
        head = live[0]
        editing = now >= self.edits_off_until
        existing = self.outbox.message_of(self.channel, head.key) if editing else None
        ref: MessageRef | None = None
        if existing is not None:
            ref, old = existing
            in_msg = {n.key for n in old}
            batch = [it for it in live if it.key in in_msg]
            update = {it.key: it.notice for it in batch}
            notices = [update.get(n.key, n) for n in old]
            if self.notifier.pack(notices) < len(notices):  # the update no longer fits: send it anew
                self.outbox.forget(self.channel, update)
                return None
        else:
            have = self.outbox.keys_with_messages(self.channel, [it.key for it in live]) if editing else set()
            fresh = [it for it in live if it.key not in have] or [head]
            size = 1 if now < self.solo_until else self.notifier.pack([it.notice for it in fresh])
            batch = fresh[:size]
            notices = [it.notice for it in batch]
        keys = {it.key for it in batch}
        merged = [it for it in items if it.key in keys and latest[it.key] is not it]
        return Plan(now, ref, batch, merged, notices, self.notifier.render(notices))

    def execute(self, plan: Plan) -> None:
        try:
            new_ref = self.notifier.edit(plan.ref, plan.rendered) if plan.ref else self.notifier.send(plan.rendered)
        except NotifyError as exc:
            self.failed(exc, plan.batch + plan.merged, plan.ref)
            return
        except Exception as exc:  # a notifier bug: back off like a transient error instead of spinning
            self.failed(NotifyError(self.notifier.redact(f"{type(exc).__name__}: {exc}")), plan.batch + plan.merged,
                        plan.ref)
            return
        self.unacked = (plan, new_ref, self.clock())
        self._ack()

    def _ack(self) -> None:
        """Record the delivery in :attr:`unacked`. While that write fails (a full state disk: it raises and
        run() pauses) the worker sends nothing and keeps the delivery in memory, so the same message is not
        sent again on every round; only a crash before the write lands re-sends it (once)."""
        assert self.unacked is not None
        plan, new_ref, now = self.unacked
        self.outbox.ack(self.channel, plan.batch, plan.merged, new_ref, plan.notices, now)
        self.unacked = None
        self.metrics.count(self.channel, Delivery.SENT, len(plan.batch))
        self.metrics.count(self.channel, Delivery.MERGED, len(plan.batch) - 1 + len(plan.merged))
        for it in plan.batch:
            self.metrics.delivery.labels(self.channel).observe(max(0.0, now - it.accepted))
        if self.degraded or self.current_migration() != self.migration:
            self.set_degraded(False)

    def failed(self, exc: NotifyError, items: list[Item], ref: MessageRef | None) -> None:
        now = self.clock()
        error = str(exc)
        if exc.kind == RATE_LIMITED:  # expected under load, honoured, not a failure
            log.info("bridge %s: %s (%d notices)", self.channel, error, len(items))
        else:
            self.metrics.count(self.channel, Delivery.FAILED)
            log.warning("bridge %s: %s (%d notices)", self.channel, error, len(items))
        if exc.kind == RATE_LIMITED:
            self.outbox.retry(items, now + (exc.retry_after or 1.0), error, count=False)
            self.metrics.count(self.channel, Delivery.RETRIED, len(items))
        elif ref is not None and exc.kind != TRANSIENT:
            # an edit the channel will not do (message gone, cannot edit, refused): never the channel's fault,
            # nothing is dropped; the next round sends the update as a new message (which, if the channel
            # itself is broken, finds out and degrades it then)
            if exc.kind == EDIT_UNSUPPORTED and now >= self.edits_off_until:
                log.warning("bridge %s: the endpoint cannot edit messages (%s); updates go out as new messages "
                            "for the next %s", self.channel, error, format_duration(EDIT_PAUSE))
                self.edits_off_until = now + EDIT_PAUSE
            self.outbox.forget(self.channel, {it.key for it in items})
            self.metrics.count(self.channel, Delivery.RETRIED, len(items))
        elif exc.kind == REJECTED and len({it.key for it in items}) > 1:
            # one notice of a merged message may be at fault: send one at a time for a while
            self.solo_until = now + SOLO_PERIOD
            self.metrics.count(self.channel, Delivery.RETRIED, len(items))
        elif exc.kind == REJECTED:
            self.outbox.drop(items, error, now, self.fallback(self.channel))
            self.metrics.count(self.channel, Delivery.DROPPED_PERMANENT, len(items))
        elif exc.kind == CHANNEL or exc.permanent:
            self.set_degraded(True)
            self.probe_at = now + self.probe_interval
            queued = self.outbox.queued(self.channel)
            self.outbox.drop(queued, error, now, self.fallback(self.channel))
            self.metrics.count(self.channel, Delivery.DROPPED_PERMANENT, len(queued))
        else:
            attempts = max(it.attempts for it in items) + 1
            self.outbox.retry(items, now + backoff(attempts), error)
            self.metrics.count(self.channel, Delivery.RETRIED, len(items))

    def current_migration(self) -> str | None:
        """``configured>current`` chat id once Telegram moved the chat (migrate_to_chat_id), else None."""
        configured, current = self.notifier.secrets.chat_id, getattr(self.notifier, "chat_id", None)
        return f"{configured}>{current}" if configured and current and current != configured else None

    def set_degraded(self, degraded: bool) -> None:
        self.degraded = degraded
        self.migration = self.current_migration()
        self.outbox.set_channel_state(self.channel, degraded, self.migration)
        self.metrics.degraded.labels(self.channel).set(int(degraded))
