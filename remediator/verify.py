"""Is the agent up? Find its PID (zombies are not running), probe its health check, verify K in a row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from govheal.config import Agent, Config, HealthCheck
from govheal.matchers import MATCHERS, ScanContext
from govheal.probe import probe as http_probe
from govheal.procs import pid_running as running


def find_pid(config: Config, agent: Agent) -> int | None:
    """The agent's running (non-zombie) PID, or None; the exporter's matching, so both agree."""
    if agent.process is None:
        return None
    match = MATCHERS[agent.process.kind](agent.process.spec, ScanContext(resolve=config.path))
    return match.pid if running(match.pid) else None


def probe(health: HealthCheck) -> tuple[bool, str]:
    """One health check with the exporter's probe (so both agree on healthy): (passed, why not)."""
    r = http_probe(health)
    if r.ok:
        return True, ""
    why = {
        "bad_status": f"health check answered {r.status}, expected {health.expect_status}",
        "body_mismatch": "health check body does not match body_match",
        "timeout": f"health check timed out after {health.timeout:g}s",
        "refused": "health check refused: nothing listening",
    }.get(r.reason or "", f"health check failed ({r.reason})")
    return False, why


@dataclass(frozen=True)
class Observation:
    pid: int | None
    healthy: bool
    reason: str = ""


def observe(config: Config, agent: Agent) -> Observation:
    """Healthy = process found and not a zombie (local agents) and the health check passes (if any)."""
    pid = find_pid(config, agent)
    if agent.process is not None and pid is None:
        return Observation(None, False, "process not running")
    if agent.health is not None:
        ok, why = probe(agent.health)
        return Observation(pid, ok, why)
    return Observation(pid, True)


FIRST_POLL = 0.01  # seconds between observations until the first healthy one


@dataclass(frozen=True)
class Verdict:
    healed: bool
    pid: int | None
    reason: str
    observations: int


def verify(config: Config, agent: Agent, *, successes: int, interval: float, grace: float,
           clock: Callable[[], float], sleep: Callable[[float], None],
           look: Callable[[Config, Agent], Observation] = observe) -> Verdict:
    """Healed after ``successes`` healthy observations in a row, ``interval`` apart, within ``grace``.

    Failed when the grace runs out, or at once when a process seen running during it has exited.
    """
    start = clock()
    streak, seen, last = 0, 0, Observation(None, False, "not observed")
    started: int | None = None  # a PID seen running during this verification
    while True:
        last = look(config, agent)
        seen += 1
        streak = streak + 1 if last.healthy else 0
        if streak >= successes:
            return Verdict(True, last.pid, f"healthy {successes}x in a row", seen)
        if last.pid is not None:
            started = last.pid
        elif started is not None and agent.process is not None:
            # it was up and is gone (crashed during start-up): waiting out the grace cannot help
            return Verdict(False, None, f"pid {started} exited {clock() - start:.1f}s into verification", seen)
        # until the first healthy answer poll fast (start-up is what we wait for); then confirm at `interval`
        step = interval if streak else min(interval, FIRST_POLL)
        if clock() - start + step > grace:
            why = last.reason or "not healthy long enough"
            return Verdict(False, last.pid, f"not healthy {successes}x within start_grace {grace:g}s: {why}", seen)
        sleep(step)
