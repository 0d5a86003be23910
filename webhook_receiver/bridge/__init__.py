"""The alert bridge: durable, paced, merged delivery of :class:`Notice` to Discord and Telegram.

``notify`` only writes the outbox (SQLite, tables ``outbox_*``) and wakes the channel workers; the
workers (``outbox.ChannelWorker``) do all network I/O. See docs/notifications.md.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urljoin

import requests
from prometheus_client import CollectorRegistry

from govheal.config import ChannelSpec, Config
from govheal.state import State

from .metrics import BridgeMetrics
from .model import Notice, Severity, severity_at_least
from .notifiers import NOTIFIERS
from .outbox import OUTBOX, ChannelWorker, Outbox
from .secrets import Secrets

__all__ = ["Bridge", "Notice", "Secrets", "Severity"]


def with_runbook_base(notice: Notice, base: str | None) -> Notice:
    """A relative ``runbook_url`` (the shipped rules say ``docs/runbooks.md#agentdown``) joined to the base."""
    url = notice.runbook_url
    if not base or not url or re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
        return notice
    return dataclasses.replace(notice, runbook_url=urljoin(base if base.endswith("/") else base + "/", url))


def wants(spec: ChannelSpec, notice: Notice) -> bool:
    """Does a channel's routing (``min_severity``, ``agents``, ``alertnames``) take this notice?"""
    if not severity_at_least(notice.severity, spec.min_severity):
        return False
    if spec.agents and notice.agent is not None and notice.agent not in spec.agents:
        return False
    return not (spec.alertnames and notice.alertname is not None and notice.alertname not in spec.alertnames)


class Bridge:
    """Owns the outbox and one delivery worker per enabled channel."""

    def __init__(
        self,
        config: Config,
        *,
        state: State,
        registry: CollectorRegistry | None = None,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        secrets: Secrets | None = None,
        pacing: Mapping[str, Sequence[tuple[int, float]]] | None = None,
        probe_interval: float = 60.0,
    ) -> None:
        """``pacing`` overrides a channel's rate windows ``[(count, seconds)]`` (tests, benchmarks)."""
        self.config = config
        self.clock = clock
        self.secrets = secrets if secrets is not None else Secrets.load(config)
        self.channels: dict[str, ChannelSpec] = {n: s for n, s in config.notifications.channels.items() if s.enabled}
        self.outbox = Outbox(state.connection(OUTBOX))  # our own: never interleaves with the caller's
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = BridgeMetrics(self.registry, self.channels, lambda: self.outbox.stats(self.clock()))
        self.http = http
        pacing = pacing or {}
        self.workers: dict[str, ChannelWorker] = {}
        for name, spec in self.channels.items():
            session = http or requests.Session()  # one per worker thread unless the caller injects one
            notifier = NOTIFIERS[spec.type](spec, self.secrets.channel(name), session,
                                            redact=self.secrets.redact, pacing=pacing.get(name))
            self.workers[name] = ChannelWorker(name, notifier, self.outbox, self.metrics, clock, self._fallback,
                                               probe_interval=probe_interval)
        self._started = False

    def _fallback(self, failed: str) -> list[str]:
        return [n for n, w in self.workers.items() if n != failed and not w.degraded]

    def routes(self, notice: Notice) -> list[str]:
        """Channels that want this notice (min_severity, agents, alertnames), plus fallbacks for degraded ones.

        A filter applies only when the notice has that attribute: a pipeline notice without an agent still
        reaches a channel that lists agents.
        """
        wanted = [n for n, s in self.channels.items() if wants(s, notice)]
        extra = [f for n in wanted if self.workers[n].degraded for f in self._fallback(n)]
        return list(dict.fromkeys(wanted + extra))

    def notify(self, notice: Notice, *, dedupe_id: str | None = None) -> bool:
        """Durably enqueue for every channel that wants it; never blocks on the network.

        ``dedupe_id`` (caller-chosen, stable across restarts) makes the call idempotent: a second call with
        the same id queues nothing. Returns False when nothing was queued (a repeat, or no channel wants it).
        """
        return self._enqueue(self.routes(notice), notice, direct=False, dedupe_id=dedupe_id)

    def send_direct(self, notice: Notice, *, dedupe_id: str | None = None) -> bool:
        """Dead-man's switch path: every channel, ahead of the queue, no dependency on Alertmanager."""
        return self._enqueue(list(self.channels), notice, direct=True, dedupe_id=dedupe_id)

    def _enqueue(self, channels: list[str], notice: Notice, *, direct: bool, dedupe_id: str | None) -> bool:
        if not channels:
            return False
        accepted = notice.created or self.clock()
        notice = with_runbook_base(notice, self.config.notifications.runbook_base_url)
        if self.outbox.enqueue(channels, notice, accepted, direct=direct, dedupe_id=dedupe_id) is None:
            return False
        for ch in channels:
            self.workers[ch].wake.set()
        return True

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for w in self.workers.values():
            w.start()

    def stop(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for w in self.workers.values():
            w.stop()
        for w in self.workers.values():
            if w.is_alive():
                w.join(max(0.0, deadline - time.monotonic()))

    def depth(self) -> dict[str, int]:
        stats = self.outbox.stats(self.clock())
        return {ch: stats.get(ch, (0, 0.0))[0] for ch in self.channels}

    def degraded(self) -> dict[str, bool]:
        return {n: w.degraded for n, w in self.workers.items()}
