"""The bridge's input: a :class:`Notice` is one thing to tell people, rendered per channel."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
SEVERITY_LABEL: dict[str, str] = {"info": "INFO", "warning": "WARN", "critical": "CRIT"}


class NoticeStatus(StrEnum):
    """Where an incident's message stands; the renderer has a label for each (``render.STATUS_LABEL``)."""

    FIRING = "firing"
    RESTARTING = "restarting"
    RECOVERED = "recovered"
    RESOLVED = "resolved"
    GAVE_UP = "gave_up"
    INFO = "info"


@dataclass(frozen=True)
class Notice:
    """One thing to tell people; same ``key`` = same message, updated in place where the channel allows."""

    key: str
    severity: Severity
    status: str  # a NoticeStatus (a plain str once read back from the outbox)
    title: str
    summary: str  # untrusted
    agent: str | None = None
    node: str | None = None
    alertname: str | None = None
    action: str | None = None
    runbook_url: str | None = None
    description: str = ""  # untrusted, may be large: trimmed by the renderer
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # untrusted
    created: float = 0.0  # accepted time (for delivery latency)
    left_out: int = 0  # alerts of the same Alertmanager group that were not sent to us (truncatedAlerts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fields"] = [list(p) for p in self.fields]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Notice:
        d = dict(d)
        d["fields"] = tuple((str(k), str(v)) for k, v in d.get("fields") or ())
        return cls(**d)


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(minimum, 0)
