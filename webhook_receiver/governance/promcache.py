"""What the page shows from Prometheus, fetched in the background, never per page view.

Two cadences: *now* (up, healthy, uptime: every ``admin.prometheus_refresh``) and *history* (the 24 h strip,
availability, restarts, the downtime criterion, delivery latency, the daily report: 12 times slower). A
view reads :meth:`PromCache.snapshot`, an immutable value; when Prometheus is down the last good values
stay, marked with their age and the error, and the page says what is missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger("govheal.receiver.governance")

STRIP_SECONDS = 86400.0
STRIP_CELLS = 96  # 15-minute cells
STEP = STRIP_SECONDS / STRIP_CELLS

# PromQL (names from docs/metrics.md). Maintenance time is not downtime: the strip marks it and the
# availability / downtime series leave it out.
Q_UP = "govheal_agent_up"
Q_HEALTHY = "govheal_agent_healthy"
Q_UPTIME = "time() - govheal_agent_start_time_seconds"
Q_STRIP = f"avg_over_time(govheal_agent_healthy[{int(STEP)}s])"
Q_STRIP_MAINT = f'max_over_time(govheal_agent_switch{{kind="maintenance"}}[{int(STEP)}s])'
Q_AVAILABILITY = "agent:govheal_agent_availability_unless_maintenance:avg1d"  # prometheus/rules/governance.yml
Q_RESTARTS = "changes(govheal_agent_start_time_seconds[1d])"
Q_DOWNTIME = "max_over_time(agent:govheal_agent_unplanned_downtime:seconds[1d]) > bool 120"
Q_DELIVERY = "max(channel:govheal_notification_delivery_seconds:p99_1h)"
Q_REPORT = "max(govheal_daily_report_last_success_timestamp_seconds)"


@dataclass(frozen=True)
class AgentProm:
    up: bool | None = None
    healthy: bool | None = None
    uptime: float | None = None
    availability: float | None = None
    restarts: int | None = None
    long_downtime: bool | None = None
    strip: tuple[tuple[float | None, bool], ...] = ()  # (healthy fraction, in maintenance) per cell, oldest first


@dataclass(frozen=True)
class PromSnapshot:
    configured: bool = False
    now_at: float | None = None  # when the "now" values were fetched
    history_at: float | None = None
    error: str = ""  # the last failure, "" when the last round worked
    error_since: float | None = None
    agents: dict[str, AgentProm] = field(default_factory=dict)
    delivery_p99: float | None = None
    report_last_success: float | None = None

    def agent(self, name: str) -> AgentProm:
        return self.agents.get(name, AgentProm())


class PromCache:
    def __init__(self, prometheus: Any, *, clock: Callable[[], float] = time.time, interval: float = 5.0,
                 history_every: int = 12) -> None:
        self.prom = prometheus
        self.clock = clock
        self.interval = interval
        self.history_every = history_every
        self._snap = PromSnapshot(configured=prometheus is not None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rounds = 0

    def snapshot(self) -> PromSnapshot:
        return self._snap

    def start(self) -> None:
        if self.prom is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="governance-prometheus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh(history=self._rounds % self.history_every == 0)
            self._rounds += 1
            self._stop.wait(self.interval)

    def refresh(self, history: bool = True) -> PromSnapshot:
        """One round (the loop calls it; tests call it directly). Never raises."""
        if self.prom is None:
            return self._snap
        now = self.clock()
        try:
            snap = self._now(self._snap, now)
            if history:
                snap = self._history(snap, now)
            snap = replace(snap, error="", error_since=None)
        except Exception as exc:  # Prometheus down or answering nonsense: keep the last values, say so
            text = str(exc) or type(exc).__name__
            old = self._snap
            snap = replace(old, error=text[:300], error_since=old.error_since or now)
            if not old.error:
                log.warning("governance page: Prometheus query failed (%s); showing local data only", text[:300])
        with self._lock:
            self._snap = snap
        return snap

    def _vector(self, expr: str) -> dict[str, float]:
        return {s.labels.get("agent", ""): s.value for s in self.prom.query(expr)}

    def _now(self, old: PromSnapshot, now: float) -> PromSnapshot:
        up, healthy, uptime = self._vector(Q_UP), self._vector(Q_HEALTHY), self._vector(Q_UPTIME)
        agents = dict(old.agents)
        for name in set(up) | set(healthy) | set(agents):
            a = agents.get(name, AgentProm())
            agents[name] = replace(a, up=_bool(up.get(name)), healthy=_bool(healthy.get(name)),
                                   uptime=uptime.get(name))
        return replace(old, now_at=now, agents=agents)

    def _history(self, old: PromSnapshot, now: float) -> PromSnapshot:
        start = now - STRIP_SECONDS
        healthy = {s.labels.get("agent", ""): dict(s.points) for s in self.prom.query_range(Q_STRIP, start, now, STEP)}
        maint = {s.labels.get("agent", ""): dict(s.points)
                 for s in self.prom.query_range(Q_STRIP_MAINT, start, now, STEP)}
        avail, restarts, downtime = self._vector(Q_AVAILABILITY), self._vector(Q_RESTARTS), self._vector(Q_DOWNTIME)
        delivery = self.prom.query(Q_DELIVERY)
        report = self.prom.query(Q_REPORT)
        times = [start + STEP * (i + 1) for i in range(STRIP_CELLS)]
        agents = dict(old.agents)
        for name in set(healthy) | set(agents) | set(avail):
            h, m = healthy.get(name, {}), maint.get(name, {})
            strip = tuple((_near(h, t), bool(_near(m, t))) for t in times)
            a = agents.get(name, AgentProm())
            agents[name] = replace(a, strip=strip, availability=avail.get(name),
                                   restarts=int(restarts[name]) if name in restarts else None,
                                   long_downtime=_bool(downtime.get(name)))
        return replace(old, history_at=now, agents=agents,
                       delivery_p99=delivery[0].value if delivery else None,
                       report_last_success=report[0].value if report else None)


def _bool(v: float | None) -> bool | None:
    return None if v is None else v >= 0.5


def _near(points: dict[float, float], t: float) -> float | None:
    """The point at ``t`` (range queries step from start, so keys match up to float noise)."""
    for key in (t, round(t, 3)):
        if key in points:
            return points[key]
    best = min(points, key=lambda k: abs(k - t), default=None)
    return points[best] if best is not None and abs(best - t) < STEP / 2 else None
