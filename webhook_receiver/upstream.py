"""Alertmanager watch: when no Alertmanager has answered for ``receiver.alertmanager_unreachable_after``
(default 60 s), the receiver pages CRIT straight to every channel (``Bridge.send_direct``, past Alertmanager),
once per outage, and INFO when one answers again.

Why beside the dead-man's switch: a frozen (SIGSTOPped) or wedged Alertmanager stops every alert, so every
restart, and the Watchdog heartbeat stops too, but the dead-man's switch waits ``deadman_timeout`` (3 min)
for it; this watch asks Alertmanager itself (``/-/healthy``) every few seconds and pages within the bound.
The Watchdog path stays as it was: it also covers Prometheus and the route to this receiver.

The health check is injected (``probe``): it answers ``Probe(ok, where)`` with ``ok`` True when some
Alertmanager answered, False when none did, None when none is known yet (no verdict, no page). The episode
lives in the inbox (``inbox_upstream``), so a restart during an outage neither forgets it nor pages twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import requests
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govheal.client import Alertmanager, new_session
from govheal.config import Config
from govheal.endpoints import resolve
from govheal.state import log_failure
from govheal.types import display_url
from webhook_receiver.bridge import wording
from webhook_receiver.bridge.model import Notice
from webhook_receiver.inbox import Inbox

log = logging.getLogger("govheal.receiver.upstream")


@dataclass(frozen=True)
class Probe:
    ok: bool | None  # None: no Alertmanager known (yet): no verdict
    where: str = ""  # the Alertmanager URL(s) asked, for the page


class Send(Protocol):
    def __call__(self, notice: Notice, *, dedupe_id: str | None = None) -> object: ...


def poll_interval(bound: float) -> float:
    """Often enough to page within the bound (a fifth of it), at most every 5 s, at least every 50 ms."""
    return max(0.05, min(5.0, bound / 5))


def probe_timeout(bound: float) -> float:
    """A frozen Alertmanager accepts the connection and never answers: give up well within a poll."""
    return max(0.2, min(2.0, poll_interval(bound) * 0.8))


class AlertmanagerWatch:
    def __init__(self, config: Config, inbox: Inbox, send: Send, probe: Callable[[], Probe], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = config.node
        self.bound = config.receiver.alertmanager_unreachable_after
        self.inbox = inbox
        self.send = send
        self.probe = probe
        self.clock = clock
        self.started = clock()
        stored_ok, self.paged_since = inbox.upstream()
        self.last_ok = stored_ok if self.paged_since is not None else None
        self.reachable: bool | None = None  # the last verdict, for the metric
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _key(self, since: float) -> str:
        return f"alertmanager:{self.node}:{int(since)}"

    def check(self) -> bool:
        """Ask once; page (or say it is back) when that changes the episode. True when it sent something."""
        result = self.probe()
        now = self.clock()
        with self._lock:
            if result.ok is None:
                return False
            self.reachable = result.ok
            if result.ok:
                return self._answered(now)
            reference = max(self.last_ok or 0.0, self.started)
            if self.paged_since is not None or now - reference < self.bound:
                return False
            notice = wording.alertmanager_unreachable(self._key(now), self.node, result.where or "no URL",
                                                      now - reference, self.bound, now)
            # named by the last answer before it: a kill between this hand-over and the state write below
            # cannot page the same outage twice (the bridge dedupes on the id)
            if not self._send(f"alertmanager:{self.node}:down-after:{self.last_ok!r}", notice):
                return False
            self.paged_since = now
            self.inbox.set_upstream(self.last_ok, now)
        return True

    def _answered(self, now: float) -> bool:
        was, self.last_ok = self.paged_since, now
        if was is None:
            return False
        if not self._send(f"alertmanager:{self.node}:back:{was!r}",
                          wording.alertmanager_back(self._key(was), self.node, now - was, now)):
            return False
        self.paged_since = None
        self.inbox.set_upstream(now, None)
        return True

    def _send(self, dedupe_id: str, notice: Notice) -> bool:
        try:
            self.send(notice, dedupe_id=dedupe_id)
        except Exception as exc:
            log_failure(log, "alertmanager watch: could not hand the notice to the bridge", exc)
            return False
        log.warning("alertmanager watch: %s (%s)", notice.title, notice.severity)
        return True

    def start(self, interval: float | None = None) -> None:
        if self.bound <= 0:
            log.info("alertmanager watch: off (receiver.alertmanager_unreachable_after is 0)")
            return
        every = interval if interval is not None else poll_interval(self.bound)

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.check()
                except Exception as exc:
                    log_failure(log, "alertmanager watch: check failed", exc)

        self._thread = threading.Thread(target=loop, name="alertmanager-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()


class WatchCollector(Collector):
    """``govheal_alertmanager_reachable``: 1/0 from the last answer; absent while no Alertmanager is known."""

    def __init__(self, watch: AlertmanagerWatch) -> None:
        self.watch = watch

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.watch.reachable is None:
            return
        yield GaugeMetricFamily("govheal_alertmanager_reachable", "1 when an Alertmanager answered the receiver's "
                                "last health check, 0 when none did.", value=int(self.watch.reachable))
        yield GaugeMetricFamily("govheal_alertmanager_unreachable_paged", "1 while the receiver has paged "
                                "that no Alertmanager answers.", value=int(self.watch.paged_since is not None))


def alertmanager_health(config: Config, session: requests.Session | None = None) -> Callable[[], Probe]:
    """The default probe: ``/-/healthy`` of every Alertmanager the config knows (``alertmanager.urls``, or what
    a running ``govheal up`` recorded: looked up on every ask, so an Alertmanager started later is found),
    through ``govheal/client.py``; one answer is enough (a cluster's members gossip)."""
    http = session if session is not None else new_session()
    timeout = probe_timeout(config.receiver.alertmanager_unreachable_after)

    def probe() -> Probe:
        urls = resolve(config).alertmanagers
        if not urls:
            return Probe(None)
        ok = any(Alertmanager(url, http, timeout=timeout).healthy(timeout) for url in urls)
        return Probe(ok, ", ".join(display_url(u) for u in urls))

    return probe
