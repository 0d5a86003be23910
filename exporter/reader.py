"""The fleet's latest state: process rounds and health probes on their own schedules → a :class:`Snapshot`.

Nothing here runs inside a scrape. A process thread looks at every agent's process every
``exporter.process_interval`` (a pid gone is seen within that); the :class:`ProbeScheduler` probes
each health check on its own interval. :meth:`FleetReader.read` only combines the latest results,
so a scrape costs the same whether an agent answers in 1 ms or is hung, and however often Prometheus
scrapes. docs/exporter.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from exporter.process import ProcessTable
from exporter.scheduler import ProbeFn, ProbeScheduler
from exporter.snapshot import AgentSnapshot, CollectorResult, ProcessReading, Snapshot
from govheal.config import Agent, Config, Detection
from govheal.matchers import MATCHERS, Match, Runner, ScanContext, run_command
from govheal.probe import probe
from govheal.procs import pid_running
from govheal.serving import fallback_name
from govheal.switches import in_service

log = logging.getLogger("govheal.exporter")
SUBPROCESS_MATCHERS = frozenset({"launchd", "systemd"})
LOOKUP_WORKERS = 8  # concurrent launchctl/systemctl calls in one round
# A PID found by a costly matcher (cmdline: the process table; port: the socket table; launchd/systemd:
# a subprocess) is reused while it runs and looked up again at least this often; a pidfile is cheap and
# read every round. A crash is still seen within one process interval: the reused PID is gone.
LOOKUP_REFRESH = 1.0


def always_enabled(agent: Agent) -> bool:
    """An extra per-agent veto on remediation (tests); the governance switches come through ``switches=``."""
    return True


def nothing_served() -> Mapping[str, object]:
    """No fallback serves (tests; `govheal exporter` reads the records from the state file: govheal/serving.py)."""
    return {}


def no_switches() -> Mapping[str, frozenset[str]]:
    """No governance switches (tests; `govheal exporter` reads them from the state file: govheal/switches.py)."""
    return {}


class FleetReader:
    """Start it, then call :meth:`read` on every scrape (a pure read of the latest results)."""

    def __init__(self, config: Config, *, runner: Runner = run_command,
                 enabled: Callable[[Agent], bool] = always_enabled,
                 switches: Callable[[], Mapping[str, frozenset[str]]] = no_switches, probe_fn: ProbeFn = probe,
                 serving: Callable[[], Mapping[str, object]] = nothing_served,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.runner = runner
        self.enabled = enabled
        self.switches = switches
        self.serving = serving
        self.clock = clock
        self.wall = wall
        self.table = ProcessTable()
        self.errors: dict[str, Counter[str]] = {a.name: Counter() for a in config.agents}
        self.scheduler = ProbeScheduler(
            {a.name: (a.health, self._detection(a).interval) for a in config.agents if a.health is not None},
            workers=config.exporter.probe_workers, probe_fn=probe_fn, clock=clock, wall=wall)
        self._lock = threading.Lock()  # guards the latest process round
        self._round = threading.Lock()  # one process round at a time
        self._processes: dict[str, ProcessReading] = {}
        self._enabled_now: dict[str, bool] = {}
        self._switches_now: dict[str, frozenset[str]] = {}
        self._served_now: frozenset[str] = frozenset()  # agents whose fallback serves
        self._process_stage = CollectorResult("process", True, 0.0, None)
        self._found: dict[str, tuple[int, float]] = {}  # agent → (pid, when looked up) for costly matchers
        self._logged: set[str] = set()
        self._lookups = ThreadPoolExecutor(max_workers=LOOKUP_WORKERS, thread_name_prefix="govheal-lookup")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _detection(self, agent: Agent) -> Detection:
        detection = self.config.detection_for(agent)
        assert detection is not None
        return detection

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        """One process round and one probe of every agent first (bounded by the largest timeout), so the
        first scrape already has real values; then both schedules run in the background."""
        self.refresh()
        self.scheduler.start()
        self._thread = threading.Thread(target=self._process_loop, name="govheal-process-schedule", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        """A synchronous round of both stages (start-up and tests)."""
        self.poll_processes()
        timeouts = [a.health.timeout for a in self.config.agents if a.health is not None]
        self.scheduler.run_once(timeout=max(timeouts, default=0.0) + 0.5)

    def _process_loop(self) -> None:
        interval = self.config.exporter.process_interval
        next_at = self.clock()
        while not self._stop.is_set():
            try:
                self.poll_processes()
            except Exception:  # the round already turns agent errors into data; this is a bug in the round itself
                self._log_once("process-loop", "a process round failed (exporter bug)")
                with self._lock:
                    self._process_stage = CollectorResult("process", False, 0.0, self.wall())
            next_at = max(next_at + interval, self.clock())
            self._stop.wait(max(0.0, next_at - self.clock()))

    # -- reading ------------------------------------------------------------------------------------
    def read(self) -> Snapshot:
        """The latest state of every agent; no I/O, returns at once."""
        health = self.scheduler.states()
        with self._lock:
            processes, enabled, process_stage = dict(self._processes), dict(self._enabled_now), self._process_stage
            switches = dict(self._switches_now)
            served = self._served_now
        out = []
        for a in self.config.agents:
            h = health.get(a.name)
            detection = self.config.detection_for(a)
            out.append(AgentSnapshot(
                name=a.name, node=self.config.node_of(a), role=a.role, critical=a.critical,
                matcher=a.process.kind if a.process else "remote", enabled=enabled.get(a.name, True),
                process=processes.get(a.name) if a.process else None, probe=h.last if h else None,
                read_errors=dict(self.errors[a.name]), switches=switches.get(a.name, frozenset()),
                consecutive_failures=h.consecutive_failures if h else 0,
                failure_threshold=detection.consecutive_failures if detection else None,
                probed_at=h.probed_at if h else None, fallback=fallback_name(a), serving=a.name in served,
            ))
        lasts = [h.last for h in health.values() if h.last is not None]
        finished = [h.probed_at for h in health.values() if h.probed_at is not None]
        probe_stage = CollectorResult("probe", self.scheduler.healthy_loop and not self.scheduler.errors,
                                      max((r.duration for r in lasts), default=0.0), max(finished, default=None))
        return Snapshot(tuple(out), (process_stage, probe_stage))

    # -- one process round --------------------------------------------------------------------------
    def poll_processes(self) -> None:
        """Find and read every local agent's process, and read the governance switches, once."""
        with self._round:
            t0 = self.clock()
            processes, ok = self._read_processes(self.config.agents)
            active = self._read_switches()  # the state file, once a round: never inside a scrape
            served = frozenset(self._read_serving())
            switches = {a.name: frozenset(active.get(a.name, ())) for a in self.config.agents}
            enabled = {a.name: self._enabled(a) and in_service(switches[a.name]) for a in self.config.agents}
            stage = CollectorResult("process", ok, self.clock() - t0, self.wall())
            with self._lock:
                self._processes, self._enabled_now, self._process_stage = processes, enabled, stage
                self._switches_now, self._served_now = switches, served

    def _read_processes(self, agents: list[Agent]) -> tuple[dict[str, ProcessReading], bool]:
        ctx = ScanContext(resolve=self.config.path, runner=self.runner)
        local = [a for a in agents if a.process is not None]
        # launchctl/systemctl lookups are subprocesses (up to COMMAND_TIMEOUT each): run them side by side
        now = self.clock()
        cached = {a.name: Match(self._found[a.name][0]) for a in local if self._reusable(a, now)}
        slow = {a.name: self._lookups.submit(self._match, a, ctx) for a in local
                if a.process and a.process.kind in SUBPROCESS_MATCHERS and a.name not in cached}
        readings: dict[str, ProcessReading] = {}
        ok = True
        for a in local:
            try:
                match = cached.get(a.name) or (slow[a.name].result() if a.name in slow else self._match(a, ctx))
                self._remember(a, match, now, fresh=a.name not in cached)
                reading, error = (ProcessReading(0, running=False), None) if match.pid is None \
                    else self.table.read(match.pid)
            except Exception:  # a bug reading one agent is that agent's error, never a failed scrape
                ok = False
                self._log_once(f"process:{a.name}", f"reading agent {a.name} failed (exporter bug)")
                match, reading, error = Match(None, "lookup_failed"), ProcessReading(0, running=False), None
            for reason in (match.error, error):
                if reason:
                    self.errors[a.name][reason] += 1
            readings[a.name] = reading
        self.table.end_scrape()
        return readings, ok

    def _reusable(self, agent: Agent, now: float) -> bool:
        found = self._found.get(agent.name)
        return (agent.process is not None and agent.process.kind != "pidfile" and found is not None
                and now - found[1] < LOOKUP_REFRESH and pid_running(found[0]))

    def _remember(self, agent: Agent, match: Match, now: float, *, fresh: bool) -> None:
        if not fresh:
            return
        if match.pid is None or agent.process is None or agent.process.kind == "pidfile":
            self._found.pop(agent.name, None)
        else:
            self._found[agent.name] = (match.pid, now)

    def _enabled(self, agent: Agent) -> bool:
        try:
            return bool(self.enabled(agent))
        except Exception:  # the switch's store unreadable: keep the default (enabled), never fail the scrape
            self._log_once(f"enabled:{agent.name}", f"reading the governance switch of {agent.name} failed")
            return True

    def _read_switches(self) -> Mapping[str, frozenset[str]]:
        try:
            return self.switches()
        except Exception:  # the state file unreadable: every agent reads as enabled, the scrape goes on
            self._log_once("switches", "reading the governance switches failed; every agent reads as enabled")
            return {}

    def _read_serving(self) -> Mapping[str, object]:
        try:
            return self.serving()
        except Exception:  # the state file unreadable: every agent reads as serving itself, the scrape goes on
            self._log_once("serving", "reading the failover records failed; every agent reads as serving itself")
            return {}

    def _log_once(self, key: str, message: str) -> None:
        """Log an internal error with its traceback the first time only: rounds repeat many times a second."""
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s; not logged again (govheal_exporter_collector_success shows it)", message, exc_info=True)

    @staticmethod
    def _match(agent: Agent, ctx: ScanContext) -> Match:
        assert agent.process is not None
        return MATCHERS[agent.process.kind](agent.process.spec, ctx)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.scheduler.close()
        self._lookups.shutdown(wait=False, cancel_futures=True)
