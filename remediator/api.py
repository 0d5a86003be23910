"""The remediator's public contract with the receiver: requests in, results and events out.

The vocabulary is enums (str values, so they serialise as themselves): the engine emits only their members
and the metrics pre-create every member at 0 (docs/metrics.md), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from govheal.errors import GovhealError


class Action(StrEnum):
    RESTART = "restart"
    FAILOVER = "failover"


class Outcome(StrEnum):
    """How a request ended: ``Result.outcome``, the last audit line of a request, ``govheal_remediations_total``."""

    HEALED = "healed"
    ALREADY_RECOVERED = "already_recovered"
    FAILED = "failed"
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"
    CIRCUIT_OPEN = "circuit_open"
    FAILOVER_STARTED = "failover_started"
    FAILOVER_FAILED = "failover_failed"


class Step(StrEnum):
    """A progress line of the audit log (and an Event to listeners) before the request's outcome."""

    WAITING = "waiting"  # for a dependency, or for a start already in flight
    BACKOFF = "backoff"
    RESTARTING = "restarting"  # one attempt starts (with the diagnostics of the process it stops)
    ATTEMPT_FAILED = "failed"  # one attempt did not heal (the request goes on)
    REFUSED = "refused"  # the pid is not provably the agent's: nothing was signalled
    CIRCUIT_OPENED = "circuit_open"  # the circuit opened here, and a failover follows
    FAILOVER_RUNNING = "failover_running"
    RESOLVED = "resolved"  # the alert resolved (action "resolve")
    RESOLVED_UNKNOWN = "resolved_unknown"  # … for an incident this store never saw
    FAILED_BACK = "failed_back"  # an operator's failback (action "failback"): the agent serves again
    FAILBACK_FAILED = "failback_failed"  # … the agent did not come back healthy: the fallback keeps serving
    LISTENER_ERROR = "listener_error"
    ERROR = "error"  # an unexpected exception; the incident stays resumable


class SkipReason(StrEnum):
    """Why a request was not acted on: ``govheal_remediation_skips_total{reason}``."""

    PAUSED = "paused"
    DISABLED = "disabled"
    NO_RESTART_CONFIGURED = "no_restart_configured"
    NO_FALLBACK_CONFIGURED = "no_fallback_configured"
    BUSY = "busy"
    CIRCUIT_OPEN = "circuit_open"
    HEALTHY = "healthy"  # a failover asked by an alert while the agent is healthy
    CIRCUIT_NOT_OPEN = "circuit_not_open"  # … while its circuit is not open (restarts are still the answer)


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


ACTIONS = tuple(Action)
OUTCOMES = tuple(Outcome)
CIRCUIT_STATES = tuple(Circuit)


@dataclass(frozen=True)
class Request:
    agent: str  # must be a configured agent name; unknown → UnknownAgent
    action: Literal["restart", "failover"]
    incident: str  # dedupe key: f"{fingerprint}:{startsAt}" from an alert, or an explicit id
    reason: str = ""  # free text, never used in a command
    source: str = "cli"  # "alertmanager" | "cli" | ...


@dataclass(frozen=True)
class Result:
    agent: str
    node: str
    incident: str
    action: str
    outcome: str  # an Outcome
    attempts: int  # restart attempts made for this incident so far
    duration_seconds: float  # this action: start → verified (or failed)
    old_pid: int | None
    new_pid: int | None
    reason: str  # human-readable why (skip reason, failure reason)
    circuit: str  # a Circuit, after this action
    diagnostics: dict = field(default_factory=dict)  # hung agents: rss, cpu, threads, open files, log tail

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """Every decision and action; also exactly one JSON line of the audit log."""

    time: float
    agent: str
    node: str
    incident: str
    action: str  # an Action, or "resolve", or "failback" (govheal restart --failback)
    outcome: str  # an Outcome (the request's last line) or a Step
    duration_seconds: float
    old_pid: int | None
    new_pid: int | None
    reason: str
    attempt: int = 0
    circuit: str = "closed"
    diagnostics: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnknownAgent(GovhealError):
    """The request names an agent that is not in the config; the message lists the known ones (a usage error)."""

    exit_code = 2

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown agent {name!r}; known agents: {', '.join(known)}")


class RemediationError(GovhealError):
    """A request that cannot be carried out as given (e.g. failover with no fallback configured)."""
