"""Pure remediation policy: backoff, restart budget and the circuit breaker. No clock inside: pass ``now``.

Circuit per agent:

- ``closed``: restarts allowed while fewer than ``budget`` were made in the last ``budget_window``;
  the n-th restart of a streak waits ``backoff(n)`` after the previous one ended.
- ``open``: the budget is spent (or a half-open trial failed). No restarts; after ``cooldown`` it
  becomes ``half_open``.
- ``half_open``: exactly one trial restart. A new incident after the trial re-opens the circuit.
- A restart that healed is on probation: if the agent stays healthy for ``min_uptime`` (no new incident
  in that time) the restart is forgiven: it leaves the budget and the streak (backoff) starts again at
  0; a half-open trial that holds closes the circuit and forgets the crash loop before it. A crash
  within ``min_uptime`` keeps the restart counted, as does every failed restart: a crash loop still
  opens the circuit after exactly ``budget`` restarts, a busy day does not.
- Healthy for ``healthy_reset`` (since the last heal or resolve, with no incident since) closes the
  circuit, forgets the streak and the budget window (failed restarts too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from govheal.config import PolicySpec
from remediator.api import Circuit

CLOSED, OPEN, HALF_OPEN = Circuit.CLOSED, Circuit.OPEN, Circuit.HALF_OPEN


@dataclass(frozen=True)
class CircuitState:
    """What the policy remembers about one agent (persisted in ``rem_circuits``)."""

    state: str = CLOSED
    opened_at: float | None = None
    attempts: tuple[float, ...] = ()  # start times of restarts in the current streak (pruned to the window)
    streak: int = 0  # restarts since the last healthy reset: drives the backoff
    last_attempt_at: float | None = None  # end of the last attempt (its start while it runs)
    healthy_since: float | None = None  # set on heal/resolve, cleared by a new incident
    trial_used: bool = False
    failover_at: float | None = None  # when the fallback last started (one failover per opening)
    probation: float | None = None  # start of the restart that healed, until it held for min_uptime


@dataclass(frozen=True)
class Decision:
    allow: bool
    circuit: str
    wait: float = 0.0  # seconds to wait before the attempt (backoff)
    reason: str = ""
    opened: bool = False  # this decision opened the circuit (CRIT + failover)


def backoff(policy: PolicySpec, streak: int) -> float:
    """Delay before the restart that follows ``streak`` earlier ones: 0, initial, initial·m, … ≤ max."""
    if streak <= 0:
        return 0.0
    return min(policy.backoff_max, policy.backoff_initial * policy.backoff_multiplier ** (streak - 1))


def in_window(policy: PolicySpec, state: CircuitState, now: float) -> tuple[float, ...]:
    return tuple(t for t in state.attempts if now - t < policy.budget_window)


def refresh(policy: PolicySpec, state: CircuitState, now: float) -> CircuitState:
    """Apply the time-driven transitions: open → half_open after cooldown; healthy period → closed."""
    if state.healthy_since is not None and now - state.healthy_since >= policy.healthy_reset:
        return CircuitState(healthy_since=state.healthy_since)
    if state.probation is not None and state.healthy_since is not None \
            and now - state.healthy_since >= policy.min_uptime:
        state = _forgive(state)
    if state.state == OPEN and state.opened_at is not None and now - state.opened_at >= policy.cooldown:
        state = replace(state, state=HALF_OPEN, trial_used=False)
    return replace(state, attempts=in_window(policy, state, now))


def _forgive(state: CircuitState) -> CircuitState:
    """The restart on probation held for min_uptime: it was a heal, not a crash loop. A half-open trial that
    held closes the circuit like a healthy period does (the crash loop before it is over)."""
    if state.state == HALF_OPEN:
        return CircuitState(healthy_since=state.healthy_since)
    attempts = list(state.attempts)
    if state.probation in attempts:
        attempts.remove(state.probation)
    return replace(state, attempts=tuple(attempts), streak=0, probation=None)


def on_incident(policy: PolicySpec, state: CircuitState, now: float) -> CircuitState:
    """A new incident: the agent is not healthy any more (after the healthy-period and probation checks).
    A restart still on probation did not hold for ``min_uptime``: it stays counted."""
    return replace(refresh(policy, state, now), healthy_since=None, probation=None)


def decide(policy: PolicySpec, state: CircuitState, now: float) -> Decision:
    """May we restart now? (Call :func:`refresh` first; the caller persists the opened state.)"""
    if state.state == OPEN:
        left = (state.opened_at or now) + policy.cooldown - now
        return Decision(False, OPEN, reason=f"circuit open: restart budget spent; half-open in {left:.0f}s")
    if state.state == HALF_OPEN:
        if state.trial_used:
            return Decision(False, OPEN, reason="circuit re-opened: the half-open trial did not hold", opened=True)
        return Decision(True, HALF_OPEN, reason="half-open trial restart")
    used = len(in_window(policy, state, now))
    if used >= policy.budget:
        return Decision(False, OPEN, opened=True,
                        reason=f"restart budget spent: {used} restarts in {policy.budget_window:g}s (budget "
                               f"{policy.budget}); circuit opened")
    wait = 0.0
    if state.last_attempt_at is not None:
        wait = max(0.0, state.last_attempt_at + backoff(policy, state.streak) - now)
    return Decision(True, CLOSED, wait=wait, reason=f"restart {used + 1}/{policy.budget} in window")


def opened(state: CircuitState, now: float) -> CircuitState:
    return replace(state, state=OPEN, opened_at=now, trial_used=False)


def on_attempt(state: CircuitState, now: float) -> CircuitState:
    """A restart starts now (recorded before it runs, so a crash mid-restart still counts)."""
    return replace(state, attempts=(*state.attempts, now), streak=state.streak + 1, last_attempt_at=now,
                   trial_used=state.state == HALF_OPEN or state.trial_used)


def on_result(policy: PolicySpec, state: CircuitState, now: float, healed: bool) -> CircuitState:
    """After verification: a failed half-open trial, or a failure that spent the budget, opens the circuit."""
    state = replace(state, last_attempt_at=now)  # the backoff counts from the end of an attempt
    if healed:  # on probation until it has held for min_uptime (see refresh)
        return replace(state, healthy_since=now, probation=state.attempts[-1] if state.attempts else None)
    if state.state == HALF_OPEN or len(in_window(policy, state, now)) >= policy.budget:
        return opened(state, now)
    return state


def on_healthy(state: CircuitState, now: float) -> CircuitState:
    """Seen healthy (resolved alert, already recovered): start the healthy period if not started."""
    return state if state.healthy_since is not None else replace(state, healthy_since=now)


def on_failover(state: CircuitState, now: float) -> CircuitState:
    return replace(state, failover_at=now)
