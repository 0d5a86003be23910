"""How an agent is restarted: one name→implementation map, keyed like ``govheal.config.STRATEGY_NAMES``.

A strategy gets the agent's current PID (None if not running) and returns the PID it started when it
knows it. It raises :class:`StrategyError` with a reason an operator can act on. Commands are argv
lists (no shell) with timeouts; values from alert labels never reach them: only the config does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from govheal.config import (
    STRATEGY_NAMES,
    Agent,
    CommandRestart,
    Config,
    LaunchdRestart,
    SignalRestart,
    SystemdRestart,
)
from govheal.procs import env_without_secrets
from govheal.procs import pid_running as running


class StrategyError(Exception):
    """The restart could not be carried out; the message says why."""


@dataclass(frozen=True)
class Outcome:
    new_pid: int | None = None
    detail: str = ""  # e.g. "SIGKILL after 5s: SIGTERM ignored"


class Strategy(Protocol):
    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome: ...

    def start(self, config: Config, agent: Agent) -> Outcome: ...


def _run(argv: list[str], timeout: float) -> None:
    """Run a supervisor command; a non-zero exit or a timeout is a StrategyError naming the program."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env=child_env())
    except FileNotFoundError:
        raise StrategyError(f"{argv[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise StrategyError(f"{' '.join(argv)} timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise StrategyError(f"{' '.join(argv)} exited {proc.returncode}: {err[-1] if err else 'no output'}"[:300])


class Launchd:
    """``launchctl kickstart -k <domain>/<label>``: launchd kills the running instance and starts it again."""

    def _target(self, agent: Agent) -> tuple[str, float]:
        spec = agent.restart
        assert isinstance(spec, LaunchdRestart)
        label = spec.label or (agent.process.launchd if agent.process else None)
        return f"{spec.domain.format(uid=os.getuid())}/{label}", spec.timeout

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        target, timeout = self._target(agent)
        _run(["launchctl", "kickstart", "-k", target], timeout)
        return Outcome(detail=f"launchctl kickstart -k {target}")

    def start(self, config: Config, agent: Agent) -> Outcome:
        target, timeout = self._target(agent)
        _run(["launchctl", "kickstart", target], timeout)
        return Outcome(detail=f"launchctl kickstart {target}")


class Systemd:
    """``systemctl [--user] restart UNIT`` (systemd stops with the unit's KillMode and starts again)."""

    def _argv(self, agent: Agent, verb: str) -> tuple[list[str], float]:
        spec = agent.restart
        assert isinstance(spec, SystemdRestart)
        unit = spec.unit or (agent.process.systemd if agent.process else None)
        return ["systemctl", *(["--user"] if spec.user else []), verb, "--", str(unit)], spec.timeout

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        argv, timeout = self._argv(agent, "restart")
        _run(argv, timeout)
        return Outcome(detail=" ".join(argv))

    def start(self, config: Config, agent: Agent) -> Outcome:
        argv, timeout = self._argv(agent, "start")
        _run(argv, timeout)
        return Outcome(detail=" ".join(argv))


def stop_process(pid: int, grace: float, *, poll: float = 0.02) -> str:
    """SIGTERM (the process group if it leads one), wait ``grace``, then SIGKILL the group. Returns what it took."""
    try:
        group = os.getpgid(pid) if os.getpgid(pid) == pid and pid != os.getpgid(0) else None
    except ProcessLookupError:
        return "already gone"

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig) if group else os.kill(pid, sig)
            # a stopped (hung with SIGSTOP) process only acts on TERM once continued
            os.killpg(group, signal.SIGCONT) if group else os.kill(pid, signal.SIGCONT)

    send(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not running(pid):
            return "stopped by SIGTERM"
        time.sleep(poll)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while running(pid) and time.monotonic() < deadline:
        time.sleep(poll)
    if running(pid):
        raise StrategyError(f"pid {pid} still running 5s after SIGKILL")
    return f"SIGKILL after {grace:g}s: SIGTERM not obeyed"


def child_env() -> dict[str, str]:
    """The receiver's environment minus anything that looks like a secret (its webhook token, bot tokens)."""
    return env_without_secrets()


@dataclass
class Command:
    """Stop gracefully (TERM, grace, KILL the group), then start the argv detached in its own session."""

    popen: Callable[..., subprocess.Popen] = subprocess.Popen
    _children: list[subprocess.Popen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reap(self) -> None:
        """Collect children we started that have exited (no zombies left behind by a long-lived receiver)."""
        with self._lock:
            self._children = [c for c in self._children if c.poll() is None]

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        spec = agent.restart
        assert isinstance(spec, CommandRestart)
        stopped = stop_process(pid, spec.stop_timeout) if pid else "was not running"
        started = self.start(config, agent)
        return Outcome(started.new_pid, f"{stopped}; {started.detail}")

    def start(self, config: Config, agent: Agent) -> Outcome:
        spec = agent.restart
        assert isinstance(spec, CommandRestart)
        return Outcome(*self.spawn(config, spec.argv, cwd=spec.cwd, env=spec.env, log_file=spec.log_file))

    def spawn(self, config: Config, argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
              log_file: str | None = None) -> tuple[int, str]:
        self.reap()
        workdir = config.path(cwd) if cwd else (config.source.parent if config.source else None)
        log = config.path(log_file) if log_file else None
        try:
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
            out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
            try:
                child = self.popen(argv, cwd=workdir, env={**child_env(), **(env or {})}, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
            finally:
                if log is not None:
                    out.close()  # type: ignore[union-attr]
        except OSError as exc:
            raise StrategyError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        with self._lock:
            self._children.append(child)
        return child.pid, f"started {argv[0]} as pid {child.pid}"


class Signal:
    """Send the configured signal (e.g. HUP to reload, CONT to a stopped process); the PID stays."""

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        spec = agent.restart
        assert isinstance(spec, SignalRestart)
        if not pid:
            raise StrategyError(f"no running process to send SIG{spec.signal} to")
        try:
            os.kill(pid, getattr(signal, f"SIG{spec.signal}"))
        except ProcessLookupError:
            raise StrategyError(f"pid {pid} exited before SIG{spec.signal} was sent") from None
        except PermissionError:
            raise StrategyError(f"not permitted to signal pid {pid}") from None
        return Outcome(pid, f"sent SIG{spec.signal} to pid {pid}")

    def start(self, config: Config, agent: Agent) -> Outcome:
        raise StrategyError("the signal strategy cannot start a stopped agent; give it a command strategy")


def default_strategies() -> dict[str, Strategy]:
    """A fresh map per Remediator (the command strategy keeps its children to reap them)."""
    return {"launchd": Launchd(), "systemd": Systemd(), "command": Command(), "signal": Signal()}


STRATEGIES: dict[str, Strategy] = default_strategies()

assert tuple(STRATEGIES) == STRATEGY_NAMES, "STRATEGIES must match govheal.config.STRATEGY_NAMES"
