"""Dispatch: inbox row → bridge Notice and (when routed to act) ``Remediator.submit``, on a worker pool.

:class:`Dispatcher` serialises work per agent (a resolve never overtakes the restart of the same agent) and
turns the remediator's events and results into updates of the incident's Notice (same key), so one incident
is one message moving firing → restarting → recovered / gave up. It only schedules: what an alert is for is
``routing.route``, what the messages say is ``bridge.wording``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from govheal.config import Config
from govheal.state import disk_failure, log_failure
from remediator.api import OUTCOMES, Event, Request, Result, UnknownAgent
from webhook_receiver.bridge import wording
from webhook_receiver.bridge.model import Notice
from webhook_receiver.ha import Announcer, Decision, Subject, deputy_wording
from webhook_receiver.inbox import Entry, Inbox
from webhook_receiver.metrics import DispatchStage, ReceiverMetrics
from webhook_receiver.models import Alert
from webhook_receiver.routing import AlertOutcome

log = logging.getLogger("govheal.receiver.dispatch")

# A possible replica echo (webhook_receiver/ha.py) is told only when remediating it did something.
QUIET_OUTCOMES = ("already_recovered", "duplicate")
# An alert that started while govheal itself was restarting the agent (AgentDown while the old process is
# stopped and the new one starts, after an AgentUnhealthy restart) is that restart, not a new fault: it is
# told only if acting on it does something. This long after the restart ended still counts (one scrape and
# one evaluation of the single-host profile, with room).
OWN_RESTART_GRACE = 2.0
FINAL_OUTCOMES = frozenset(OUTCOMES)  # a request's last line: the restart is over


class RemediatorLike(Protocol):
    def submit(self, req: Request, *, dry_run: bool = False) -> Result: ...
    def resolve(self, agent: str, incident: str) -> None: ...
    def subscribe(self, listener: Callable[[Event], None]) -> None: ...


class BridgeLike(Protocol):
    def notify(self, notice: Notice, *, dedupe_id: str | None = None) -> object: ...


class CanaryLike(Protocol):
    def handle(self, entry: Entry) -> None: ...


def dedupe_id(entry: Entry) -> str:
    """Stable per inbox row (its UNIQUE key), so re-telling the bridge after a crash queues nothing twice."""
    return f"alert:{entry.incident}:{entry.status}"


@dataclass(frozen=True)
class Recheck:
    """Look again at an agent healed for ``entry`` whose alert has not resolved ``recheck_after`` later.

    Two ways a new outage reaches nobody (both seen under make chaos): the agent dies again within a scrape
    of its heal, so Prometheus never saw it healthy and the same alert keeps firing; or the resolve was lost
    (Prometheus restarted before sending it), so Alertmanager still holds the old alert as firing and merges
    the next outage of the agent into it, and sends nothing new. Until the resolve arrives the receiver asks
    the remediator to look every ``recheck_after``: a healthy agent costs one health check, a down one is
    restarted (a new message: the earlier one said it had recovered)."""

    entry: Entry
    n: int
    repeat_at: float | None = None  # started by Alertmanager repeating the alert (``Dispatcher.repeated``)

    @property
    def id(self) -> int:  # the dispatcher's bookkeeping key: never an inbox row id
        return -(self.entry.id * 1000 + self.n)

    @property
    def label(self) -> str:
        """This look's name: ``recheck-N``, or ``repeat-T[-N]`` for a chain started by a repeat (a chain of its
        own: an earlier chain's recheck-N ids are claimed at the remediator already)."""
        if self.repeat_at is not None:
            return f"repeat-{int(self.repeat_at)}" + (f"-{self.n}" if self.n else "")
        return f"recheck-{self.n}"

    @property
    def incident(self) -> str:
        """The remediator's incident id of this look (each is claimed once)."""
        return f"{self.entry.incident}#{self.label}"

    @property
    def agent(self) -> str | None:
        return self.entry.agent

    @property
    def alert(self) -> Alert:
        return self.entry.alert


def subject(entry: Entry) -> Subject:
    """What the HA announcer (webhook_receiver/ha.py) needs of a row."""
    a = entry.alert
    return Subject(id=entry.id, fingerprint=a.fingerprint, alertname=a.alertname, status=a.status,
                   node=entry.routing.node, agent=entry.routing.agent, starts_at=a.startsAt, incident=entry.incident,
                   ends_at=a.endsAt)


def base_notice(entry: Entry) -> Notice:
    """The recorded alert as the incident's Notice (see ``wording.alert_notice``)."""
    return wording.alert_notice(entry.alert, entry.routing, entry.received, left_out=entry.truncated)


# ---------------------------------------------------------------------------------------------
# The worker pool


class Dispatcher:
    """Worker pool over per-agent lanes; the inbox is the source of truth, this is only the schedule."""

    retry_delay = 5.0
    recheck_after = 10.0  # a healed agent's alert resolves within a scrape + evaluation + group tick
    max_rechecks = 30  # 5 minutes: Alertmanager resolves a stale alert in 4 resend delays (20 s) at most

    def __init__(self, config: Config, inbox: Inbox, *, remediator: RemediatorLike, bridge: BridgeLike,
                 metrics: ReceiverMetrics | None = None, clock: Callable[[], float] = time.time,
                 workers: int | None = None, canary: CanaryLike | None = None,
                 announcer: Announcer | None = None) -> None:
        self.config = config
        self.canary = canary
        self.announcer = announcer
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
        self._restarting: dict[str, tuple[float, float | None]] = {}  # agent → (first attempt, verdict) times
        self._looking: set[int] = set()  # inbox rows with a recheck scheduled or queued
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
        # the looks a receiver that was stopped (or killed) had scheduled: they live in memory only
        for entry in self.inbox.healed_unresolved(self.clock() - self.recheck_after * self.max_rechecks):
            self._schedule_recheck(entry, 1)
        if pending:
            log.info("dispatch: resumed %d pending alert(s) from the inbox", len(pending))
        return len(pending)

    def enqueue(self, entry: Entry) -> None:
        lane = entry.agent or entry.alert.fingerprint
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
            except Exception as exc:
                log_failure(log, "dispatch: unexpected error on alert %d; will retry", exc, entry.id)
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
                self.enqueue(self._current(entry))
        timer = threading.Timer(self.retry_delay, again)
        timer.daemon = True
        timer.start()

    def _current(self, entry: Entry) -> Entry:
        """The row as it is now (notified since?), or as we had it when the store cannot be read."""
        try:
            return self.inbox.get(entry.id) or entry
        except Exception:
            return entry

    # -- the work itself
    def process(self, entry: Entry | Recheck) -> bool:
        if isinstance(entry, Recheck):
            return self._recheck(entry)
        return self._process(entry)

    def _process(self, entry: Entry) -> bool:
        """Tell the bridge, then the remediator; True when the row is finished, False to retry later.

        A disk that refuses writes (the state object logged it once) is waited out: the row stays pending
        and is retried every ``retry_delay`` until writes succeed again; nothing is reported as given up.
        """
        if entry.routing.outcome is AlertOutcome.CANARY:  # webhook_receiver/canary.py: record, tell as TEST
            if self.canary is not None:
                self.canary.handle(entry)
            self.inbox.finish(entry.id, "canary", self.clock())
            return True
        base = base_notice(entry)
        decision, took_over = self._announce(entry)
        if decision is Decision.NOW and entry.routing.action == "restart" and self._caused_by_our_restart(entry):
            decision = Decision.IF_ACTED
        if decision is not Decision.NO and self.announcer is not None and self.announcer.deputised(subject(entry)):
            base = replace(base, action=deputy_wording(self.config.node, entry.routing.node))
        # not notified yet (a crash after the bridge's commit and before ours: the dedupe id covers it)
        if decision is Decision.NOW and not entry.notified and not self._tell(entry, base):
            return False
        if took_over is not None:
            self._catch_up(took_over)
        result: str | None = "notified" if decision is Decision.NOW else "recorded"
        if entry.routing.acts:
            result = self._remediate(entry, base, quiet=decision is not Decision.NOW,
                                     tell_if_acted=decision is Decision.IF_ACTED)
        if result is None:
            return False
        self.inbox.finish(entry.id, result, self.clock())
        return True

    def _tell(self, entry: Entry, base: Notice) -> bool:
        try:
            self.bridge.notify(base, dedupe_id=dedupe_id(entry))
        except Exception as exc:
            log_failure(log, "dispatch: bridge refused the notice for %r; will retry", exc, entry.incident)
            self._error(DispatchStage.NOTIFY)
            return False
        self.inbox.mark_notified(entry.id)
        return True

    def _announce(self, entry: Entry) -> tuple[Decision, str | None]:
        """Does this receiver tell people about the row (webhook_receiver/ha.py: several nodes, an HA Prometheus
        pair), and did the row just mark a peer's receiver down (its firing alerts are then announced here)?"""
        if self.announcer is None:
            return Decision.NOW, None
        s = subject(entry)
        took_over = s.node if self.announcer.observe(s) else None
        return self.announcer.decide(s), took_over

    def _catch_up(self, node: str | None) -> None:
        """A peer's receiver went down: announce its alerts still firing that started from then on."""
        if self.announcer is None or node is None:
            return
        for row_id in self.announcer.catch_up(node):
            entry = self.inbox.get(row_id)
            if entry is None:
                continue
            notice = replace(base_notice(entry), action=deputy_wording(self.config.node, node))
            try:
                self.bridge.notify(notice, dedupe_id=dedupe_id(entry))
            except Exception as exc:
                log_failure(log, "dispatch: bridge refused the catch-up notice for %r", exc, entry.incident)
                self._error(DispatchStage.NOTIFY)
                continue
            self.inbox.mark_notified(entry.id)
            log.info("dispatch: announced %s of node %s for its receiver (down)", entry.incident, node)

    def _remediate(self, entry: Entry, base: Notice, *, quiet: bool = False,
                   tell_if_acted: bool = False) -> str | None:
        """The remediator's outcome for the inbox row; None to try again later (the state disk is failing)."""
        agent, action = entry.routing.agent, entry.routing.action
        assert agent and action
        if entry.status == "resolved":
            try:
                self.remediator.resolve(agent, entry.incident)
            except Exception as exc:
                log_failure(log, "dispatch: resolve failed for %r", exc, entry.incident)
                self._error(DispatchStage.REMEDIATE)
                return None if disk_failure(exc) else "error"
            return "resolved"
        if not quiet:  # quiet: another node announced the incident; its progress is not ours to tell
            self._inflight[entry.incident] = base
        req = Request(agent=agent, action=action, incident=entry.incident,  # type: ignore[arg-type]
                      reason=f"{entry.alert.alertname} firing", source="alertmanager")
        try:
            res = self.remediator.submit(req)
        except UnknownAgent:
            return "unknown_agent"
        except Exception as exc:
            log_failure(log, "dispatch: remediator raised for %r", exc, entry.incident)
            self._error(DispatchStage.REMEDIATE)
            if disk_failure(exc):
                return None  # not a verdict: the remediator resumes the incident once it can write again
            if not quiet:
                self._notify(wording.not_attempted(base, action, exc))
            return "error"
        finally:
            self._inflight.pop(entry.incident, None)
        if tell_if_acted and res.outcome not in QUIET_OUTCOMES:  # not an echo after all: a real outage
            quiet = not self._tell(entry, base)
        update = wording.result_notice(base, res)
        if update is not None and not quiet:
            self._notify(update)
        if res.outcome == "healed":
            self._schedule_recheck(entry, 1)
        log.info("dispatch: agent=%s incident=%r action=%s outcome=%s", agent, entry.incident, action, res.outcome)
        return res.outcome

    def repeated(self, entry: Entry) -> bool:
        """Alertmanager sent again a firing alert whose incident has ended (healed, failed over, given up)
        and not resolved. Either the agent is down again and Alertmanager merged the new outage into the
        alert it still holds (a resolve lost with a Prometheus restart; an agent healed by a failback from
        the CLI and killed again before any scrape saw it up), or the resolve is on its way. Look now, as a
        recheck does, unless a look is already scheduled. True when a look was queued."""
        if not entry.routing.acts or entry.alert.status != "firing":
            return False
        with self._cv:
            if entry.id in self._looking or self._stopping:
                return False
            self._looking.add(entry.id)
        self.enqueue(Recheck(entry, 0, repeat_at=self.clock()))  # type: ignore[arg-type]
        return True

    def _schedule_recheck(self, entry: Entry, n: int, repeat_at: float | None = None) -> None:
        if n > self.max_rechecks:
            return

        def due() -> None:
            with self._cv:
                stopping = self._stopping
            if not stopping:
                self.enqueue(Recheck(entry, n, repeat_at))  # type: ignore[arg-type]
        with self._cv:
            self._looking.add(entry.id)
        timer = threading.Timer(self.recheck_after, due)
        timer.daemon = True
        timer.start()

    def _recheck(self, item: Recheck) -> bool:
        """The ended incident's alert has not resolved: ask the remediator to look (and act) again, under an
        incident id of its own; people hear of it only if it acts, as an update of the incident's message."""
        with self._cv:
            self._looking.discard(item.entry.id)  # running now; a next one is scheduled below if needed
        entry = item.entry
        agent, action = entry.routing.agent, entry.routing.action
        if not agent or not action or self.inbox.resolved(entry.incident):
            return True
        why = (f"{entry.alert.alertname} still firing (Alertmanager repeated it) after its incident ended"
               if item.repeat_at is not None else
               f"{entry.alert.alertname} still firing {self.recheck_after:g}s after the heal")
        req = Request(agent=agent, action=action, incident=item.incident,  # type: ignore[arg-type]
                      reason=why, source="alertmanager")
        try:
            res = self.remediator.submit(req)
        except Exception as exc:
            log_failure(log, "dispatch: recheck of %r failed", exc, entry.incident)
            return True
        current = self.inbox.get(entry.id) or entry
        if res.outcome not in (*QUIET_OUTCOMES, "skipped", "circuit_open") and current.notified:
            again = replace(base_notice(entry), key=req.incident, created=self.clock(),
                            action=f"down again after its incident ended, while {entry.alert.alertname} was "
                                   "still firing")
            self._notify(again)
            update = wording.result_notice(again, res)
            if update is not None:
                self._notify(update)
        log.info("dispatch: %s of %r: %s", item.label, entry.incident, res.outcome)
        if res.outcome in ("healed", "already_recovered"):  # until the resolve arrives (bounded)
            self._schedule_recheck(entry, item.n + 1, item.repeat_at)
        return True

    def _caused_by_our_restart(self, entry: Entry) -> bool:
        """Did this firing alert start while we were restarting its agent (for another incident)?"""
        if entry.alert.status != "firing" or not entry.routing.agent:
            return False
        window = self._restarting.get(entry.routing.agent)
        if window is None:
            return False
        try:
            start = datetime.fromisoformat(entry.alert.startsAt).timestamp()
        except ValueError:
            return False
        began, ended = window
        return began <= start and (ended is None or start <= ended + OWN_RESTART_GRACE)

    def _on_event(self, event: Event) -> None:
        if event.outcome == "restarting":
            began, ended = self._restarting.get(event.agent, (0.0, None))
            if ended is not None or not began:  # a new restart (the first attempt of this request)
                self._restarting[event.agent] = (event.time, None)
        elif event.outcome in FINAL_OUTCOMES and event.agent in self._restarting:
            self._restarting[event.agent] = (self._restarting[event.agent][0], event.time)
        base = self._inflight.get(event.incident)
        update = wording.progress_notice(base, event) if base else None
        if update is not None:
            self._notify(update)

    def _notify(self, notice: Notice) -> None:
        try:
            self.bridge.notify(notice)
        except Exception as exc:
            log_failure(log, "dispatch: bridge refused an update for %r", exc, notice.key)
            self._error(DispatchStage.NOTIFY)

    def _error(self, stage: DispatchStage) -> None:
        if self.metrics:
            self.metrics.dispatch_errors.labels(stage).inc()
