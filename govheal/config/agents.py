"""The ``agents:`` entries: how each agent is found, probed, restarted and healed, and its fallback.

``process:`` and ``restart:`` are bases here; build.py puts each matcher's and strategy's own model in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from govheal.config.common import NAME_RE, Strict, _compile
from govheal.types import Duration, HttpUrl


class ProcessSpec(Strict):
    """Exactly one way to find the agent's process. The built model has every matcher's fields (a matcher's
    model names its key after the matcher, e.g. ``pidfile``, plus its own options, e.g. ``user_unit``)."""

    matchers: ClassVar[Mapping[str, type[BaseModel]]] = {}
    _spec: BaseModel | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _exactly_one(self) -> ProcessSpec:
        names = tuple(self.matchers)
        given = [k for k in names if getattr(self, k, None) is not None]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of {', '.join(names)} (got {got})")
        own = self.matchers[given[0]]
        for key in sorted(self.model_fields_set - set(own.model_fields)):
            owner = next((n for n, m in self.matchers.items() if key in m.model_fields), "another matcher")
            raise ValueError(f"{key} is an option of process.{owner}, not of process.{given[0]}; remove it")
        self._spec = own.model_validate({k: getattr(self, k) for k in own.model_fields})
        return self

    @property
    def kind(self) -> str:
        return next(k for k in self.matchers if getattr(self, k, None) is not None)

    @property
    def value(self) -> Any:
        return getattr(self, self.kind)

    @property
    def spec(self) -> Any:
        """The matcher's own model (govheal/matchers.py), holding only its key and options."""
        return self._spec


MIN_PROBE_INTERVAL = 0.05  # seconds; faster than this the probes themselves become the load


class HealthCheck(Strict):
    url: HttpUrl
    timeout: Duration = Field(1.0, gt=0, le=60)
    expect_status: int = Field(200, ge=100, le=599)
    body_match: str | None = None
    interval: Duration | None = Field(
        None, ge=MIN_PROBE_INTERVAL, le=3600,
        description="time between probe starts; default exporter.probe_interval (docs/alerting.md)")
    consecutive_failures: int | None = Field(
        None, ge=1, le=100,
        description="failed probes in a row before AgentUnhealthy fires; default exporter.consecutive_failures")

    @field_validator("body_match")
    @classmethod
    def _body_compiles(cls, v: str | None) -> str | None:
        return None if v is None else _compile(v, "body_match regex")


class RestartSpec(Strict):
    """What every restart strategy's model (``Spec`` in remediator/strategies/<name>.py) has in common."""

    strategy: str
    needs_process: ClassVar[bool] = True  # False: it can act on an agent with no local process (a command)

    def check(self, agent: Agent) -> str | None:
        """A rule across the agent's keys (e.g. a label that may come from ``process:``): the message, or None."""
        return None

    def describe(self, agent: Agent) -> str:
        """What a restart runs, for ``govheal restart --dry-run``."""
        return f"{self.strategy}: {self.model_dump(exclude={'strategy'})}"

    def bound(self) -> float:
        """The longest one restart (the stop and start commands, not verification) may take: sizes the lease."""
        return 30.0

    def agent_log(self) -> str | None:
        """The agent's log this strategy writes (its tail goes into the diagnostics), if any."""
        return None


class FallbackSpec(Strict):
    """What to do when the primary cannot be healed: start another agent, run a command, or both."""

    agent: str | None = Field(None, description="name of a fallback agent in this config to start")
    argv: list[str] | None = Field(None, min_length=1, description="a command to run, e.g. to activate a backup")
    note: str = ""

    @model_validator(mode="after")
    def _something(self) -> FallbackSpec:
        if self.agent is None and self.argv is None:
            raise ValueError("give fallback.agent or fallback.argv")
        return self


class PolicySpec(Strict):
    """Remediation policy; global defaults, overridable per agent."""

    verify_successes: int = Field(3, ge=1, le=100, description="consecutive healthy observations = healed")
    verify_interval: Duration = Field(0.2, gt=0)
    backoff_initial: Duration = 1.0
    backoff_max: Duration = 60.0
    backoff_multiplier: float = Field(2.0, ge=1.0)
    budget: int = Field(3, ge=1, description="restarts allowed per budget_window before the circuit opens")
    budget_window: Duration = 600.0
    min_uptime: Duration = Field(60.0, description="a restart that healed and stayed healthy this long does not "
                                 "count against the budget (and resets the backoff)")
    cooldown: Duration = Field(300.0, description="open → half-open after this long")
    healthy_reset: Duration = Field(600.0, description="healthy this long closes the circuit and resets backoff")


class PolicyOverride(Strict):
    verify_successes: int | None = Field(None, ge=1, le=100)
    verify_interval: Duration | None = None
    backoff_initial: Duration | None = None
    backoff_max: Duration | None = None
    backoff_multiplier: float | None = Field(None, ge=1.0)
    budget: int | None = Field(None, ge=1)
    budget_window: Duration | None = None
    min_uptime: Duration | None = None
    cooldown: Duration | None = None
    healthy_reset: Duration | None = None


class Agent(Strict):
    name: str = Field(pattern=NAME_RE)
    role: str = ""
    node: str | None = Field(None, description="defaults to the top-level node")
    critical: bool = False
    process: ProcessSpec | None = None
    health: HealthCheck | None = None
    restart: RestartSpec | None = None  # the built model: the union of every strategy's Spec
    start_grace: Duration = Field(10.0, gt=0)
    fallback: FallbackSpec | None = None
    depends_on: list[str] = Field(default_factory=list)
    log_file: str | None = Field(None, description="tail of this file goes into the audit event before a kill")
    remediation: PolicyOverride | None = None

    @model_validator(mode="after")
    def _process_or_health(self) -> Agent:
        if self.process is None and self.health is None:
            raise ValueError("give process (a local agent) or health (a remote endpoint), or both")
        if self.process is None and self.restart is not None and self.restart.needs_process:
            raise ValueError(
                f"restart.strategy {self.restart.strategy} needs a local process; add process or use a command"
            )
        if self.restart is not None and (why := self.restart.check(self)):
            raise ValueError(why)
        return self

    @property
    def remote(self) -> bool:
        """A remote endpoint: up means its health check answers."""
        return self.process is None


@dataclass(frozen=True)
class Detection:
    """One agent's effective health-probe schedule (its health: keys, else the exporter: defaults)."""

    interval: float
    timeout: float
    consecutive_failures: int

    @property
    def tolerated_stall(self) -> float:
        """An agent that stops answering for less than this is never reported unhealthy.

        While it stalls, every probe waits its full timeout and the next one starts when it ends (or one
        interval after the previous start, when that is later); the N-th failure in a row ends
        (N-1)·max(timeout, interval) + timeout after the first failing probe started.
        """
        return (self.consecutive_failures - 1) * max(self.timeout, self.interval) + self.timeout

    @property
    def worst_detection(self) -> float:
        """Fault → the N-th failed probe ends, at worst (the stall plus one interval of phase)."""
        return self.interval + self.tolerated_stall
