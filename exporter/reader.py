"""Read the fleet once: matchers + psutil + health probes → a frozen :class:`Snapshot`.

The only module that does I/O for a scrape. Probes are started first and run on the pool while the
process table is read in the calling thread, so a scrape costs max(probes, process reads), not the sum.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from exporter.process import ProcessTable
from exporter.snapshot import AgentSnapshot, CollectorResult, ProcessReading, Snapshot
from govheal.config import Agent, Config
from govheal.matchers import MATCHERS, Match, Runner, ScanContext, run_command
from govheal.probe import Prober, ProbeResult
from govheal.switches import in_service

log = logging.getLogger("govheal.exporter")
SUBPROCESS_MATCHERS = frozenset({"launchd", "systemd"})
LOOKUP_WORKERS = 8  # concurrent launchctl/systemctl calls in one scrape


def always_enabled(agent: Agent) -> bool:
    """An extra per-agent veto on remediation (tests); the governance switches come through ``switches=``."""
    return True


def no_switches() -> Mapping[str, frozenset[str]]:
    """No governance switches (tests; `govheal exporter` reads them from the state file: govheal/switches.py)."""
    return {}


class FleetReader:
    """Call :meth:`read` once per scrape; keeps the probe pool, the psutil cache and error counters."""

    def __init__(self, config: Config, *, prober: Prober | None = None, runner: Runner = run_command,
                 enabled: Callable[[Agent], bool] = always_enabled,
                 switches: Callable[[], Mapping[str, frozenset[str]]] = no_switches,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.prober = prober or Prober(config.exporter.probe_workers)
        self.runner = runner
        self.enabled = enabled
        self.switches = switches
        self.clock = clock
        self.table = ProcessTable()
        self.errors: dict[str, Counter[str]] = {a.name: Counter() for a in config.agents}
        self._lock = threading.Lock()  # concurrent scrapes take turns; probes are never doubled
        self._logged: set[str] = set()
        self._lookups = ThreadPoolExecutor(max_workers=LOOKUP_WORKERS, thread_name_prefix="govheal-lookup")

    def read(self) -> Snapshot:
        with self._lock:
            return self._read()

    def _read(self) -> Snapshot:
        agents = self.config.agents
        checks = {a.name: a.health for a in agents if a.health is not None}
        t0 = self.clock()
        batch = self.prober.submit(checks)

        t1 = self.clock()
        processes, process_ok = self._read_processes(agents)
        process_stage = CollectorResult("process", process_ok, self.clock() - t1)

        probes: dict[str, ProbeResult] = {}
        probe_ok = True
        try:
            probes = batch.wait(self.config.exporter.scrape_budget)
        except Exception:  # an internal bug: the agents' probe series go missing, the meta-metric says so
            probe_ok = False
            self._log_once("probe", "collecting health probes failed (exporter bug)")
        probe_stage = CollectorResult("probe", probe_ok, self.clock() - t0)

        active = self._read_switches()
        out = []
        for a in agents:
            kinds = frozenset(active.get(a.name, ()))
            out.append(AgentSnapshot(
                name=a.name, node=self.config.node_of(a), role=a.role, critical=a.critical,
                matcher=a.process.kind if a.process else "remote",
                enabled=self._enabled(a) and in_service(kinds),
                process=processes.get(a.name), probe=probes.get(a.name),
                read_errors=dict(self.errors[a.name]), switches=kinds,
            ))
        return Snapshot(tuple(out), (process_stage, probe_stage))

    def _read_processes(self, agents: list[Agent]) -> tuple[dict[str, ProcessReading], bool]:
        ctx = ScanContext(resolve=self.config.path, runner=self.runner)
        local = [a for a in agents if a.process is not None]
        # launchctl/systemctl lookups are subprocesses (up to COMMAND_TIMEOUT each): run them side by side
        slow = {a.name: self._lookups.submit(self._match, a, ctx) for a in local
                if a.process and a.process.kind in SUBPROCESS_MATCHERS}
        readings: dict[str, ProcessReading] = {}
        ok = True
        for a in local:
            try:
                match = slow[a.name].result() if a.name in slow else self._match(a, ctx)
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

    def _log_once(self, key: str, message: str) -> None:
        """Log an internal error with its traceback the first time only: scrapes repeat every few seconds."""
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s; not logged again (govheal_exporter_collector_success shows it)", message, exc_info=True)

    @staticmethod
    def _match(agent: Agent, ctx: ScanContext) -> Match:
        assert agent.process is not None
        return MATCHERS[agent.process.kind](agent.process.spec, ctx)

    def close(self) -> None:
        self.prober.close()
        self._lookups.shutdown(wait=False, cancel_futures=True)
