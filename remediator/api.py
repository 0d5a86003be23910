"""The remediator's public contract with the receiver: requests in, results and events out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from govheal.errors import GovhealError

ACTIONS = ("restart", "failover")
OUTCOMES = (
    "healed",
    "already_recovered",
    "failed",
    "skipped",
    "duplicate",
    "circuit_open",
    "failover_started",
    "failover_failed",
)
CIRCUIT_STATES = ("closed", "open", "half_open")


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
    outcome: str  # one of OUTCOMES
    attempts: int  # restart attempts made for this incident so far
    duration_seconds: float  # this action: start → verified (or failed)
    old_pid: int | None
    new_pid: int | None
    reason: str  # human-readable why (skip reason, failure reason)
    circuit: str  # "closed" | "open" | "half_open" after this action
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
    action: str
    outcome: str
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
