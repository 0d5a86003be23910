"""Health probes on their own schedule: every agent is probed every ``interval``, one probe at a time.

A scrape no longer waits for probes: it reads the latest :class:`HealthState` of each agent (the last
result, how many probes in a row failed, when the last one finished). That decouples three rates
that used to be one: how often an agent is probed (its ``health.interval``), how long one probe may
take (``health.timeout``) and how often Prometheus scrapes (the profile). docs/exporter.md.

Schedule: the next probe of an agent starts ``interval`` after the previous one started, or when it
ends if it took longer (a hung agent is probed back to back, each probe waiting its full timeout, and
never by two probes at once). Start times are spread over the first interval so that agents with the
same interval are not probed in bursts. Probes run on a fixed pool of ``workers`` threads; with more
agents hung at once than workers, the others' probes queue (they start late, they are not failed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from govheal.config import HealthCheck
from govheal.probe import ProbeResult, probe

ProbeFn = Callable[[HealthCheck], ProbeResult]
IDLE_WAKE = 1.0  # seconds the loop sleeps at most when nothing is due (it is woken when a probe ends)


@dataclass(frozen=True)
class HealthState:
    """What the exporter knows about one agent's health check right now."""

    last: ProbeResult | None = None  # None: not probed yet
    consecutive_failures: int = 0
    probed_at: float | None = None  # Unix time the last probe finished
    probes: int = 0


def record(state: HealthState, result: ProbeResult, finished_at: float) -> HealthState:
    """Fold one finished probe into the state (pure). Probes of one agent never overlap, so they
    finish in the order they started and "in a row" is exact."""
    failures = 0 if result.ok else state.consecutive_failures + 1
    return HealthState(result, failures, finished_at, state.probes + 1)


@dataclass
class _Slot:
    check: HealthCheck
    interval: float
    due: float
    inflight: bool = False
    state: HealthState = HealthState()


class ProbeScheduler:
    """Probe each agent on its own interval; :meth:`states` is a pure read of the latest results."""

    def __init__(self, schedules: Mapping[str, tuple[HealthCheck, float]], *, workers: int,
                 probe_fn: ProbeFn = probe, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._probe, self._clock, self._wall = probe_fn, clock, wall
        self._cond = threading.Condition()
        now = clock()
        n = max(1, len(schedules))
        self._slots = {name: _Slot(check, interval, due=now + interval * i / n)
                       for i, (name, (check, interval)) in enumerate(schedules.items())}
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(workers, n)), thread_name_prefix="govheal-probe")
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.errors = 0  # probes whose function raised (a bug): reported as reason "error"

    # -- reading ------------------------------------------------------------------------------------
    def states(self) -> dict[str, HealthState]:
        with self._cond:
            return {name: slot.state for name, slot in self._slots.items()}

    @property
    def healthy_loop(self) -> bool:
        """False when the schedule thread was started and has died (an exporter bug)."""
        return self._thread is None or self._thread.is_alive() or self._stopping

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None and self._slots:
            self._thread = threading.Thread(target=self._loop, name="govheal-probe-schedule", daemon=True)
            self._thread.start()

    def run_once(self, timeout: float | None = None) -> None:
        """Probe every agent now and wait for the results (start-up and tests); skips agents in flight."""
        with self._cond:
            todo = [(name, slot) for name, slot in self._slots.items() if not slot.inflight]
            for _, slot in todo:
                slot.inflight = True
                slot.due = self._clock() + slot.interval
        futures = [self._pool.submit(self._run, name, slot) for name, slot in todo]
        wait(futures, timeout=timeout)

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        with self._cond:
            while not self._stopping:
                now = self._clock()
                wake = now + IDLE_WAKE
                for name, slot in self._slots.items():
                    if slot.inflight:
                        continue
                    if slot.due <= now:
                        slot.inflight = True
                        slot.due = now + slot.interval
                        self._pool.submit(self._run, name, slot)
                    else:
                        wake = min(wake, slot.due)
                self._cond.wait(timeout=max(0.0, wake - self._clock()))

    def _run(self, name: str, slot: _Slot) -> None:
        started = self._clock()
        try:
            result = self._probe(slot.check)
        except Exception:  # a bug in a probe must never stop the schedule
            result = ProbeResult(self._clock() - started, "error")
            self.errors += 1
        finished = self._wall()
        with self._cond:
            slot.state = record(slot.state, result, finished)
            slot.inflight = False
            self._cond.notify_all()
