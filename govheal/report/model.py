"""The frozen snapshot one report run fetched, and the verdict judged from it.

Everything the renderer and the judge need is here, as plain values: a test builds a snapshot by hand
(tests/test_report_render.py) and gets the same report a live run would write.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunInfo:
    slot_id: str  # 2026-12-01_09
    date: str  # 2026-12-01
    slot: str  # 09
    slot_time: str  # 09:00
    timezone: str  # Asia/Bangkok, or the machine's zone name
    scheduled_at: float
    started_at: float
    lateness: float  # seconds after scheduled_at
    catch_up: bool
    manual: bool  # --date/--slot given: an operator's run, not the schedule's
    node: str
    run_id: str
    version: str
    missed: tuple[str, ...] = ()  # older slots nobody ran, superseded by this one


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    step: float | None  # the govheal-report rule group's evaluation interval; None: rules not loaded

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class AgentHealth:
    """A live health check made by the report run itself (the exporter's reader)."""

    name: str
    node: str
    role: str
    up: bool
    healthy: bool
    detail: str = ""  # probe failure reason or HTTP status


@dataclass(frozen=True)
class Incident:
    agent: str
    start: float
    end: float
    at_gap: bool = False  # next to time Prometheus did not see: may have lasted longer

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class AgentStats:
    """One agent over the window; times in seconds, from the govheal-report step series."""

    name: str
    node: str
    window: float
    observed: float  # healthy or not, outside maintenance
    healthy: float
    maintenance: float
    restarts: int  # process (re)starts seen, whoever restarted it
    govheal_restarts: int  # restarts govheal performed (healed or failed)
    circuit: str | None = None  # at the end of the window
    circuit_opened: bool = False  # open at some point in the window

    @property
    def unobserved(self) -> float:
        return max(0.0, self.window - self.observed - self.maintenance)

    @property
    def downtime(self) -> float:
        return max(0.0, self.observed - self.healthy)

    @property
    def availability(self) -> float | None:
        """Healthy share of the window outside maintenance; unobserved time counts as not proven healthy."""
        planned_out = self.window - self.maintenance
        return None if planned_out <= 0 else min(1.0, self.healthy / planned_out)

    @property
    def coverage(self) -> float:
        return 0.0 if self.window <= 0 else min(1.0, (self.observed + self.maintenance) / self.window)


@dataclass(frozen=True)
class Remediation:
    healed: int = 0
    failed: int = 0
    failover_failed: int = 0
    ttr_mean: float | None = None
    ttr_p50: float | None = None
    ttr_p99: float | None = None

    @property
    def attempts(self) -> int:
        return self.healed + self.failed + self.failover_failed

    @property
    def success(self) -> float | None:
        return None if self.attempts == 0 else self.healed / self.attempts


@dataclass(frozen=True)
class ChannelStats:
    channel: str
    sent: int
    failed: int
    dropped: int
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class CanaryTarget:
    """The canary through one Alertmanager; times are epoch seconds, None = not seen."""

    index: int
    url: str
    posted_at: float
    accepted_at: float | None  # Alertmanager answered the API v2 POST
    received_at: float | None  # the receiver recorded it (its inbox time)
    resolved_at: float | None = None  # the resolve was posted
    error: str = ""


@dataclass(frozen=True)
class CanaryDelivery:
    channel: str  # a configured channel, or "local sink"
    state: str  # sent | merged | queued | dropped | written | missing
    done_at: float | None
    error: str = ""


@dataclass(frozen=True)
class Canary:
    canary_id: str
    deadline: float
    targets: tuple[CanaryTarget, ...]
    handed_at: float | None  # the receiver gave the TEST message to the bridge
    deliveries: tuple[CanaryDelivery, ...]
    error: str = ""  # the whole canary could not run (no Alertmanager configured, ...)

    @property
    def first_post(self) -> float | None:
        return min((t.posted_at for t in self.targets), default=None)


@dataclass(frozen=True)
class UiProbe:
    """The governance page as a logged-in reader sees it; ``error`` says why it was not (then it FAILs)."""

    url: str
    present: bool  # the page itself answered (logged in, HTTP 200), not the login page or an error
    status: int | None  # the last HTTP status seen (None: nobody answered)
    samples: tuple[float, ...]  # seconds per page view
    error: str = ""

    @property
    def p99(self) -> float | None:
        return percentile(self.samples, 0.99)

    @property
    def p50(self) -> float | None:
        return percentile(self.samples, 0.5)


@dataclass(frozen=True)
class Switch:
    agent: str
    kind: str  # mute | pause | maintenance | disable
    owner: str
    reason: str
    until: float | None


@dataclass(frozen=True)
class StepResult:
    name: str
    argv: tuple[str, ...]
    cwd: str
    timeout: float
    exit_code: int | None  # None: did not run to an exit (not found, timed out)
    seconds: float
    error: str = ""
    output: str = ""  # tail

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error


@dataclass(frozen=True)
class Destination:
    directory: str  # where the report belongs (reports.dir)
    written_to: str  # where it is written (the pending dir while the volume is absent)
    problem: str = ""  # why it is not in `directory`


@dataclass(frozen=True)
class Bounds:
    heal_success_min: float
    ui_latency_max: float
    delivery_max: float
    downtime_max: float
    coverage_min: float


@dataclass(frozen=True)
class Snapshot:
    run: RunInfo
    window: Window
    bounds: Bounds
    destination: Destination
    prometheus_url: str
    health: tuple[AgentHealth, ...] = ()
    agents: tuple[AgentStats, ...] = ()
    node_seen: float | None = None  # seconds of the window Prometheus evaluated (exporter target present)
    incidents: tuple[Incident, ...] = ()  # unplanned downtime intervals (any length)
    remediation: Remediation = field(default_factory=Remediation)
    channels: tuple[ChannelStats, ...] = ()
    canary: Canary | None = None
    ui: UiProbe | None = None
    switches: tuple[Switch, ...] = ()
    switches_note: str = ""
    steps: tuple[StepResult, ...] = ()
    problems: tuple[str, ...] = ()  # what could not be fetched (each makes the report unverified)


# ---------------------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Criterion:
    name: str  # one of govheal.slots.CRITERIA
    title: str
    passed: bool
    value: float | None  # base units (ratio or seconds); None when nothing was measured
    measured: str  # the value as the operator reads it
    bound: str
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    criteria: tuple[Criterion, ...]
    canary_passed: bool
    coverage: float
    coverage_complete: bool
    failures: tuple[str, ...]  # short names of everything that failed (criteria, steps, fetch problems)

    @property
    def passed(self) -> bool:
        return not self.failures


def percentile(values: tuple[float, ...] | list[float], q: float) -> float | None:
    """Nearest-rank percentile (the value an operator could point at), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    import math

    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
