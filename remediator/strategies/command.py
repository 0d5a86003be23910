"""``strategy: command``: stop gracefully (TERM, grace, KILL the group), then start ``argv`` detached.

The process is checked to be the agent before any signal (remediator/identity.py). The new process runs
in its own session with stdin from /dev/null and an allowlisted environment plus ``env`` (govheal/procs.py),
so it outlives the receiver and never inherits its secrets.
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
from typing import ClassVar, Literal

import psutil
from pydantic import Field

from govheal.config import Agent, Config, RestartSpec, regex_field
from govheal.procs import allowlisted_env
from govheal.types import Duration
from remediator import identity
from remediator.strategies.base import Outcome, StrategyError

KILL_WAIT = 5.0  # after SIGKILL, how long the process may take to disappear


class SignalsPid(RestartSpec):
    """Options of every strategy that signals the agent's PID itself (command, signal)."""

    allow_other_users: bool = Field(False, description="may signal a process of another user (e.g. as root)")
    expect_cmdline: regex_field("restart.expect_cmdline regex") | None = Field(
        None, description="regex the process's command line must match before it is signalled "
                          "(default: it must run the program of restart.argv)")


class Spec(SignalsPid):
    strategy: Literal["command"]
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    log_file: str | None = None
    stop_timeout: Duration = Field(5.0, description="SIGTERM, wait this long, then SIGKILL the group")
    needs_process: ClassVar[bool] = False

    def describe(self, agent: Agent) -> str:
        return (f"command: SIGTERM, wait {self.stop_timeout:g}s, SIGKILL the group; then start {self.argv} "
                f"detached" + (f", log {self.log_file}" if self.log_file else ""))

    def bound(self) -> float:
        return self.stop_timeout + KILL_WAIT

    def agent_log(self) -> str | None:
        return self.log_file


def stop_process(pid: int, grace: float, *, poll: float = 0.02, proc: psutil.Process | None = None) -> str:
    """SIGTERM (the process group if it leads one), wait ``grace``, then SIGKILL the group. Returns what it took.

    ``proc`` (from :func:`remediator.identity.check`) pins the process by its start time: a PID that exits
    and is reused while we wait is never signalled.
    """
    try:
        proc = proc or psutil.Process(pid)
        group = os.getpgid(pid) if os.getpgid(pid) == pid and pid != os.getpgid(0) else None
    except (ProcessLookupError, psutil.NoSuchProcess):
        return "already gone"

    def alive() -> bool:
        try:
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def send(*sigs: int) -> None:
        for sig in sigs:
            if not alive():
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig) if group else os.kill(pid, sig)

    # a stopped (hung with SIGSTOP) process only acts on TERM once continued
    send(signal.SIGTERM, signal.SIGCONT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive():
            return "stopped by SIGTERM"
        time.sleep(poll)
    send(signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT
    while alive() and time.monotonic() < deadline:
        time.sleep(poll)
    if alive():
        raise StrategyError(f"pid {pid} still running {KILL_WAIT:g}s after SIGKILL")
    return f"SIGKILL after {grace:g}s: SIGTERM not obeyed"


@dataclass
class Command:
    """Stop gracefully (TERM, grace, KILL the group), then start the argv detached in its own session."""

    Spec: ClassVar[type[Spec]] = Spec
    popen: Callable[..., subprocess.Popen] = subprocess.Popen
    _children: list[subprocess.Popen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reap(self) -> None:
        """Collect children we started that have exited (no zombies left behind by a long-lived receiver)."""
        with self._lock:
            self._children = [c for c in self._children if c.poll() is None]

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        spec = self._spec(agent)
        stopped = "was not running"
        if pid:
            proc = identity.check(config, agent, pid, allow_other_users=spec.allow_other_users,
                                  expect_cmdline=spec.expect_cmdline, argv=spec.argv)
            stopped = stop_process(pid, spec.stop_timeout, proc=proc) if proc is not None else "already gone"
        started = self.start(config, agent)
        return Outcome(started.new_pid, f"{stopped}; {started.detail}")

    def start(self, config: Config, agent: Agent) -> Outcome:
        spec = self._spec(agent)
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
                child = self.popen(argv, cwd=workdir, env=allowlisted_env(env),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True)
            finally:
                if log is not None:
                    out.close()  # type: ignore[union-attr]
        except OSError as exc:
            raise StrategyError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        with self._lock:
            self._children.append(child)
        return child.pid, f"started {argv[0]} as pid {child.pid}"

    @staticmethod
    def _spec(agent: Agent) -> Spec:
        assert isinstance(agent.restart, Spec)
        return agent.restart
