"""Routing and dispatch: alert → inbox row → bridge Notice and (when asked) ``Remediator.submit``.

:func:`route` is pure: it decides what an alert is for (act, notify only, or ignore with a reason).
:class:`Dispatcher` runs a worker pool that serialises work per agent (a resolve never overtakes the
restart of the same agent) and turns the remediator's events and results into Notice updates with the
same key, so one incident is one message moving firing → restarting → recovered / gave up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from govheal.config import Agent, Config
from remediator.api import ACTIONS, Event, Request, Result, UnknownAgent
from webhook_receiver.bridge.model import Notice
from webhook_receiver.inbox import Entry, Inbox, NewAlert
from webhook_receiver.metrics import ReceiverMetrics
from webhook_receiver.models import Alert

log = logging.getLogger("govheal.receiver.dispatch")

NO_REMEDIATION = ("", "none")
SEVERITIES = {"info": "info", "warning": "warning", "warn": "warning", "critical": "critical",
              "crit": "critical", "page": "critical", "error": "critical"}
# Labels shown elsewhere in the message, so not repeated as fields.
SHOWN_LABELS = {"alertname", "agent", "node", "severity", "remediation"}


class RemediatorLike(Protocol):
    def submit(self, req: Request, *, dry_run: bool = False) -> Result: ...
    def resolve(self, agent: str, incident: str) -> None: ...
    def subscribe(self, listener: Callable[[Event], None]) -> None: ...


class BridgeLike(Protocol):
    def notify(self, notice: Notice, *, dedupe_id: str | None = None) -> object: ...


def dedupe_id(entry: Entry) -> str:
    """Stable per inbox row (its UNIQUE key), so re-telling the bridge after a crash queues nothing twice."""
    return f"alert:{entry.incident}:{entry.status}"


def _agent(config: Config, name: str) -> Agent | None:
    return next((a for a in config.agents if a.name == name), None)


def route(config: Config, alert: Alert, group_key: str = "") -> NewAlert:
    """Decide what this receiver does with one alert. Label values are data: they select, never execute."""
    labels = alert.labels
    name = labels.get("agent")
    agent = _agent(config, name) if name else None
    node = labels.get("node") or (config.node_of(agent) if agent else None)
    remediation = labels.get("remediation", "")

    def new(outcome: str, action: str | None = None) -> NewAlert:
        return NewAlert(fingerprint=alert.fingerprint, status=alert.status, starts_at=alert.startsAt,
                        alertname=alert.alertname, agent=name, node=node, outcome=outcome, action=action,
                        alert=alert.model_dump(), group_key=group_key)

    if node is not None and (node != config.node or (agent is not None and config.node_of(agent) != config.node)):
        return new("ignored_other_node")  # told, never acted on: only that node's receiver may restart it
    if name and agent is None:
        return new("ignored_unknown_agent")
    if remediation in NO_REMEDIATION or agent is None:
        return new("notify_only")
    if remediation not in ACTIONS:
        return new("ignored_unknown_remediation")
    return new("accepted", action=remediation)


# ---------------------------------------------------------------------------------------------
# Notices


def severity_of(labels: dict[str, str]) -> str:
    return SEVERITIES.get(labels.get("severity", "").lower(), "warning")


NOT_ACTED = {
    "ignored_other_node": "not remediated here: the agent belongs to another node",
    "ignored_unknown_agent": "not remediated: this agent is not in the receiver's config",
    "ignored_unknown_remediation": "not remediated: the remediation label is not restart, failover or none",
}


def base_notice(entry: Entry) -> Notice:
    """The alert itself as a Notice (firing or resolved); key = incident = fingerprint:startsAt."""
    alert: dict[str, Any] = entry.alert
    labels: dict[str, str] = alert.get("labels", {})
    ann: dict[str, str] = alert.get("annotations", {})
    where = f" on {entry.node}" if entry.node else ""
    title = f"{entry.alertname}: {entry.agent}{where}" if entry.agent else f"{entry.alertname}{where}"
    action = NOT_ACTED.get(entry.outcome)
    if entry.outcome == "accepted" and entry.status == "firing":
        action = f"{entry.action} requested"
    return Notice(
        key=entry.incident, severity=severity_of(labels), status=entry.status, title=title,  # type: ignore[arg-type]
        summary=ann.get("summary", ""), agent=entry.agent, node=entry.node, alertname=entry.alertname,
        action=action, runbook_url=ann.get("runbook_url") or None, description=ann.get("description", ""),
        fields=tuple((k, v) for k, v in sorted(labels.items()) if k not in SHOWN_LABELS), created=entry.received)


def _pids(old: int | None, new: int | None) -> str:
    if old and new:
        return f", PID {old} → {new}"
    return f", PID {new}" if new else ""


def result_notice(base: Notice, r: Result) -> Notice | None:
    """The remediator's verdict as an update of the incident's message; None when nothing changed."""
    verb = "restarted" if r.action == "restart" else "failed over"
    tries = f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}"
    why = f": {r.reason}" if r.reason else ""
    table: dict[str, tuple[str, str]] = {
        "healed": ("recovered", f"{verb} in {r.duration_seconds:.1f} s{_pids(r.old_pid, r.new_pid)}"),
        "already_recovered": ("recovered", f"no {r.action} needed: healthy again before acting{why}"),
        "skipped": (base.status, f"no {r.action}{why}"),
        "failed": ("gave_up", f"{r.action} failed after {tries}{why}"),
        "circuit_open": ("gave_up", f"gave up after {tries} — circuit open{why}"),
        "failover_started": ("gave_up", f"gave up after {tries} — circuit open, failover started"),
        "failover_failed": ("gave_up", f"gave up after {tries} — circuit open, failover failed{why}"),
    }
    if r.outcome not in table:
        return None  # "duplicate": the incident is already handled and its message already says so
    status, action = table[r.outcome]
    return replace(base, status=status, action=action)


def progress_notice(base: Notice, e: Event) -> Notice | None:
    if e.outcome != "restarting":
        return None
    attempt = f" (attempt {e.attempt})" if e.attempt else ""
    return replace(base, status="restarting", action=f"{e.action} in progress{attempt}")


# ---------------------------------------------------------------------------------------------
# The worker pool


class Dispatcher:
    """Worker pool over per-agent lanes; the inbox is the source of truth, this is only the schedule."""

    retry_delay = 5.0

    def __init__(self, config: Config, inbox: Inbox, *, remediator: RemediatorLike, bridge: BridgeLike,
                 metrics: ReceiverMetrics | None = None, clock: Callable[[], float] = time.time,
                 workers: int | None = None) -> None:
        self.config = config
        self.inbox = inbox
        self.remediator = remediator
        self.bridge = bridge
        self.metrics = metrics
        self.clock = clock
        self.workers = workers or config.receiver.workers
        self._cv = threading.Condition()
        self._lanes: dict[str, deque[Entry]] = {}
        self._ready: deque[str] = deque()
        self._busy: set[str] = set()
        self._known: set[int] = set()
        self._inflight: dict[str, Notice] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        if metrics:
            metrics.queue_depth.set_function(self.depth)

    # -- scheduling
    def start(self) -> int:
        """Subscribe to remediator events, start the workers, re-queue pending work; returns how many."""
        self.remediator.subscribe(self._on_event)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"dispatch-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        pending = self.inbox.pending()
        for entry in pending:
            self.enqueue(entry)
        if pending:
            log.info("dispatch: resumed %d pending alert(s) from the inbox", len(pending))
        return len(pending)

    def enqueue(self, entry: Entry) -> None:
        lane = entry.agent or entry.incident.split(":", 1)[0]
        with self._cv:
            if entry.id in self._known:
                return
            self._known.add(entry.id)
            queue = self._lanes.setdefault(lane, deque())
            if not queue and lane not in self._busy:
                self._ready.append(lane)
            queue.append(entry)
            self._cv.notify()

    def depth(self) -> int:
        with self._cv:
            return len(self._known)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: not self._known, timeout)

    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking work; what is not finished stays pending in the inbox for the next start."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._ready or self._stopping)
                if self._stopping:
                    return
                lane = self._ready.popleft()
                entry = self._lanes[lane].popleft()
                self._busy.add(lane)
            done = False
            try:
                done = self.process(entry)
            except Exception:
                log.exception("dispatch: unexpected error on alert %d", entry.id)
            finally:
                with self._cv:
                    self._busy.discard(lane)
                    if self._lanes[lane]:
                        self._ready.append(lane)
                    else:
                        del self._lanes[lane]
                    if done:
                        self._known.discard(entry.id)
                    self._cv.notify_all()
            if not done:
                self._retry_later(entry)

    def _retry_later(self, entry: Entry) -> None:
        def again() -> None:
            with self._cv:
                self._known.discard(entry.id)
                stopping = self._stopping
            if not stopping:
                self.enqueue(entry)
        timer = threading.Timer(self.retry_delay, again)
        timer.daemon = True
        timer.start()

    # -- the work itself
    def process(self, entry: Entry) -> bool:
        """Tell the bridge, then the remediator; True when the row is finished, False to retry later."""
        base = base_notice(entry)
        if not entry.notified:  # a crash after the bridge's commit and before ours: the dedupe id covers it
            try:
                self.bridge.notify(base, dedupe_id=dedupe_id(entry))
            except Exception:
                log.exception("dispatch: bridge refused the notice for %r; will retry", entry.incident)
                self._error("notify")
                return False
            self.inbox.mark_notified(entry.id)
        result = "notified"
        if entry.outcome == "accepted" and entry.action and entry.agent:
            result = self._remediate(entry, base)
        self.inbox.finish(entry.id, result, self.clock())
        return True

    def _remediate(self, entry: Entry, base: Notice) -> str:
        assert entry.agent and entry.action
        if entry.status == "resolved":
            try:
                self.remediator.resolve(entry.agent, entry.incident)
            except Exception:
                log.exception("dispatch: resolve failed for %r", entry.incident)
                self._error("remediate")
                return "error"
            return "resolved"
        self._inflight[entry.incident] = base
        req = Request(agent=entry.agent, action=entry.action, incident=entry.incident,  # type: ignore[arg-type]
                      reason=f"{entry.alertname} firing", source="alertmanager")
        try:
            res = self.remediator.submit(req)
        except UnknownAgent:
            return "unknown_agent"
        except Exception as exc:
            log.exception("dispatch: remediator raised for %r", entry.incident)
            self._error("remediate")
            self._notify(replace(base, status="gave_up", action=f"{entry.action} not attempted: internal error "
                                 f"({type(exc).__name__}); see the receiver log"))
            return "error"
        finally:
            self._inflight.pop(entry.incident, None)
        update = result_notice(base, res)
        if update is not None:
            self._notify(update)
        log.info("dispatch: agent=%s incident=%r action=%s outcome=%s", entry.agent, entry.incident,
                 entry.action, res.outcome)
        return res.outcome

    def _on_event(self, event: Event) -> None:
        base = self._inflight.get(event.incident)
        update = progress_notice(base, event) if base else None
        if update is not None:
            self._notify(update)

    def _notify(self, notice: Notice) -> None:
        try:
            self.bridge.notify(notice)
        except Exception:
            log.exception("dispatch: bridge refused an update for %r", notice.key)
            self._error("notify")

    def _error(self, stage: str) -> None:
        if self.metrics:
            self.metrics.dispatch_errors.labels(stage).inc()
