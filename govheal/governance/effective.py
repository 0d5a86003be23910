"""What the switches of one agent mean right now: muted (nobody is told), paused (no remediation), or both.

Pure: switches and ``now`` in, an :class:`Effective` out. Every reader (the remediator, the exporter,
the receiver's notice filter, the page) goes through :func:`effective`, so a recurring window means the
same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from govheal.governance import schedule

KINDS = ("mute", "pause", "maintenance")
SILENCED = ("mute", "maintenance")  # kinds that are Alertmanager silences
WHAT = {  # kind → (tells people, remediates)
    "mute": (False, True),
    "pause": (True, False),
    "maintenance": (False, False),
}


class SwitchLike(schedule.Timed, Protocol):
    agent: str
    kind: str
    owner: str
    reason: str


@dataclass(frozen=True)
class Effective:
    active: tuple[SwitchLike, ...] = ()  # switches in effect now, in KINDS order

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.active)

    @property
    def muted(self) -> bool:
        """Nobody is told: no message from the bridge (Alertmanager silences it too)."""
        return any(not WHAT[k][0] for k in self.kinds)

    @property
    def paused(self) -> bool:
        """No remediation: the remediator skips the agent with the reason."""
        return any(not WHAT[k][1] for k in self.kinds)

    @property
    def maintenance(self) -> bool:
        """Out of service: no alerts (``govheal_agent_enabled`` 0) and left out of availability."""
        return "maintenance" in self.kinds

    def why(self, kind_filter: Iterable[str] = KINDS) -> str:
        """"paused by alice until 2026-11-29T16:00:00Z: deploying" for the first matching switch."""
        wanted = set(kind_filter)
        for sw in self.active:
            if sw.kind in wanted:
                until = f" until {_utc(sw.expiry)}" if sw.expiry else ""
                return f"{_PAST[sw.kind]} by {sw.owner}{until}: {sw.reason}"
        return ""


_PAST = {"mute": "muted", "pause": "paused", "maintenance": "in maintenance"}


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def effective(switches: Iterable[SwitchLike], now: float) -> Effective:
    on = [s for s in switches if schedule.in_effect(s, now)]
    on.sort(key=lambda s: KINDS.index(s.kind) if s.kind in KINDS else len(KINDS))
    return Effective(tuple(on))
