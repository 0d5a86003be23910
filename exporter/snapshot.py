"""Frozen snapshots: the latest state the exporter's schedules read, handed to the pure metric builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from govheal.probe import ProbeResult
from govheal.switches import KINDS

# Why a process could not be (fully) read; counted per agent, every value pre-created at 0.
READ_ERROR_REASONS = ("access_denied", "vanished", "lookup_failed")
# Governance switch kinds (govheal/switches.py); every kind is exported (0/1) for every agent.
SWITCH_KINDS: tuple[str, ...] = tuple(k.value for k in KINDS)


@dataclass(frozen=True)
class ProcessReading:
    """One process as seen this scrape; ``running`` is False for a zombie or a vanished PID."""

    pid: int
    running: bool
    start_time: float | None = None
    cpu_seconds: float | None = None
    rss_bytes: int | None = None


@dataclass(frozen=True)
class AgentSnapshot:
    name: str
    node: str
    role: str
    critical: bool
    matcher: str  # pidfile, cmdline, launchd, systemd, port, or "remote"
    enabled: bool
    process: ProcessReading | None = None
    probe: ProbeResult | None = None  # the last finished probe; None: no health check, or not probed yet
    read_errors: dict[str, int] = field(default_factory=dict)  # cumulative, by READ_ERROR_REASONS
    switches: frozenset[str] = frozenset()  # governance switch kinds in effect (SWITCH_KINDS)
    consecutive_failures: int = 0  # failed probes in a row (0 after a passing one)
    failure_threshold: int | None = None  # failures in a row that make AgentUnhealthy fire (None: no check)
    probed_at: float | None = None  # Unix time the last probe finished
    fallback: str | None = None  # the configured fallback's name (govheal/serving.py), None: none configured
    serving: bool = False  # the fallback serves in the agent's place (a failover; until an operator fails back)

    @property
    def remote(self) -> bool:
        return self.matcher == "remote"

    @property
    def up(self) -> bool:
        if self.remote:
            return self.probe is not None and self.probe.reachable
        return self.process is not None and self.process.running

    @property
    def healthy(self) -> bool:
        """Up, and the last probe passed (processes and probes are read on different schedules: a process
        seen gone is unhealthy at once, even before the next probe fails)."""
        return self.up and (self.probe is None or self.probe.ok)


@dataclass(frozen=True)
class CollectorResult:
    """Meta-metric for one reading stage: did its last round finish, how long did it take, and when."""

    name: str
    success: bool
    duration: float
    finished_at: float | None = None  # Unix time; how stale the stage's data is


@dataclass(frozen=True)
class Snapshot:
    agents: tuple[AgentSnapshot, ...]
    collectors: tuple[CollectorResult, ...] = ()
