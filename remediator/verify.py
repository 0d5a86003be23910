"""Is the agent up? Find its PID (zombies are not running), probe its health check, verify K in a row."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from govheal.config import Agent, Config, HealthCheck


def running(pid: int | None) -> bool:
    """Alive and not a zombie (measured.md: detached orphans stay zombies 1.4-1.9 s here)."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pidfile(config: Config, agent: Agent, value: str) -> int | None:
    try:
        pid = int(config.path(value).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if running(pid) else None


def _cmdline(config: Config, agent: Agent, value: str) -> int | None:
    rx = re.compile(value)
    me = os.getpid()
    for p in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if p.info["pid"] != me and p.info["cmdline"] and rx.search(" ".join(p.info["cmdline"])) \
                    and running(p.info["pid"]):
                return int(p.info["pid"])
    return None


def _port(config: Config, agent: Agent, value: int) -> int | None:
    with contextlib.suppress(psutil.Error):
        for c in psutil.net_connections("tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == value and running(c.pid):
                return c.pid
    return None


def _systemd(config: Config, agent: Agent, value: str) -> int | None:
    argv = ["systemctl", *(["--user"] if agent.process and agent.process.user_unit else []), "show", "-p",
            "MainPID", "--value", "--", value]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        pid = int(out)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return pid if pid > 0 and running(pid) else None


def _launchd(config: Config, agent: Agent, value: str) -> int | None:
    domain = (agent.process.launchd_domain if agent.process else "gui/{uid}").format(uid=os.getuid())
    try:
        out = subprocess.run(["launchctl", "print", f"{domain}/{value}"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^\s*pid = (\d+)", out, re.MULTILINE)
    return int(m.group(1)) if m and running(int(m.group(1))) else None


# How a PID is found, keyed like govheal.config.MATCHER_KEYS; to be pointed at exporter/matchers.py.
FINDERS: dict[str, Callable[[Config, Agent, object], int | None]] = {
    "pidfile": _pidfile, "cmdline": _cmdline, "port": _port, "systemd": _systemd, "launchd": _launchd,  # type: ignore[dict-item]
}


def find_pid(config: Config, agent: Agent) -> int | None:
    """The agent's running (non-zombie) PID, or None; remote agents have none."""
    if agent.process is None:
        return None
    return FINDERS[agent.process.kind](config, agent, agent.process.value)


def probe(health: HealthCheck) -> tuple[bool, str]:
    """One health check: (passed, why not)."""
    try:
        with urllib.request.urlopen(str(health.url), timeout=health.timeout) as resp:  # noqa: S310 - config URL
            status, body = resp.status, resp.read(65536).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, ""
    except (OSError, ValueError) as exc:
        return False, f"health check failed: {type(exc).__name__}"
    if status != health.expect_status:
        return False, f"health check answered {status}, expected {health.expect_status}"
    if health.body_match and not re.search(health.body_match, body):
        return False, "health check body does not match body_match"
    return True, ""


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


@dataclass(frozen=True)
class Verdict:
    healed: bool
    pid: int | None
    reason: str
    observations: int


def verify(config: Config, agent: Agent, *, successes: int, interval: float, grace: float,
           clock: Callable[[], float], sleep: Callable[[float], None],
           look: Callable[[Config, Agent], Observation] = observe) -> Verdict:
    """Healed after ``successes`` healthy observations in a row within ``grace`` seconds; else failed."""
    start = clock()
    streak, seen, last = 0, 0, Observation(None, False, "not observed")
    while True:
        last = look(config, agent)
        seen += 1
        streak = streak + 1 if last.healthy else 0
        if streak >= successes:
            return Verdict(True, last.pid, f"healthy {successes}x in a row", seen)
        if clock() - start + interval > grace:
            why = last.reason or "not healthy long enough"
            return Verdict(False, last.pid, f"not healthy {successes}x within start_grace {grace:g}s: {why}", seen)
        sleep(interval)
