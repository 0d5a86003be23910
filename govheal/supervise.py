"""Start child processes in order, wait until each is ready, keep them running, stop them in reverse.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only ``govheal up``, which then
stops the children in order) with its output in a log file. A supervised child that dies is restarted
with backoff; an unsupervised one (a fleet agent: healing it is the remediator's job) is only reported.

A supervised child with a ``health`` check (Prometheus and Alertmanager ``/-/healthy``, the exporter's and
receiver's ``/healthz``) is also restarted when it is alive but stops answering: ``unhealthy_after``
failed checks in a row (one every ``health_interval``, each bounded by the check's own timeout) and it is
killed (a frozen process cannot stop gracefully) and restarted like a dead one.
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
from pathlib import Path

import psutil

from govheal.errors import GovhealError

Printer = Callable[[str], None]


class StartFailed(GovhealError):
    """A component did not become ready; the message names it and its log."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    ready: Callable[[], bool]
    url: str = ""
    cwd: Path | None = None
    env: dict[str, str] | None = None
    supervised: bool = True
    ready_timeout: float = 30.0
    stop_timeout: float = 10.0
    extra_stop: Callable[[], None] | None = None  # e.g. an agent the remediator restarted under a new pid
    health: Callable[[], bool] | None = None  # answers while running; bounded by its own timeout
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_restart: float = 0.0
    reported_exit: bool = False
    started_at: float = field(default=0.0)
    failed_checks: int = 0
    next_health: float = 0.0
    answered: bool = False  # passed a health check (or its start) since it was spawned

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Owns the children of one ``govheal up``; ``stop_event`` ends every wait early."""

    def __init__(self, out: Printer = print, clock: Callable[[], float] = time.monotonic,
                 stop_event: threading.Event | None = None, *, health_interval: float = 1.0,
                 unhealthy_after: int = 3, stable_after: float = 5.0) -> None:
        self.children: list[Child] = []
        self.out = out
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self.health_interval = health_interval
        self.unhealthy_after = unhealthy_after
        self.stable_after = stable_after

    # -- start ------------------------------------------------------------------------------------

    def spawn(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log, "ab") as log:
            child.proc = subprocess.Popen(child.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=child.cwd, env=child.env,
                                          start_new_session=True)
        child.started_at = self.clock()
        child.reported_exit = False
        child.failed_checks = 0
        child.answered = False
        child.next_health = child.started_at + self.health_interval

    def start(self, child: Child) -> None:
        """Spawn ``child`` and wait until it is ready; StartFailed (with its log tail) otherwise."""
        self.children.append(child)
        self.spawn(child)
        deadline = child.started_at + child.ready_timeout
        while not self.stop_event.is_set():
            if not child.alive():
                code = child.proc.returncode if child.proc else None
                raise StartFailed(f"{child.name} exited with code {code} while starting; "
                                  f"log {child.log}:\n{tail(child.log)}")
            if _safe(child.ready):
                child.answered = True
                took = self.clock() - child.started_at
                self.out(f"  {child.name:<14} ready     {child.url or ''}  ({took:.1f}s, pid {child.pid})")
                return
            if self.clock() > deadline:
                raise StartFailed(f"{child.name} was not ready after {child.ready_timeout:.0f}s; "
                                  f"log {child.log}:\n{tail(child.log)}")
            self.stop_event.wait(0.1)

    # -- supervise --------------------------------------------------------------------------------

    def check(self) -> None:
        """One supervision pass: restart dead or unresponsive supervised children (with backoff), report
        the others."""
        now = self.clock()
        for child in self.children:
            if child.alive() and not self._unresponsive(child, now):
                if child.supervised and child.restarts and now - child.started_at > 60:
                    child.restarts = 0  # stable for a minute: forget the backoff
                continue
            code = child.proc.returncode if child.proc else None
            if not child.supervised:
                if not child.reported_exit:
                    self.out(f"  {child.name:<14} exited with code {code}; left to the remediator")
                    child.reported_exit = True
                continue
            if not child.reported_exit:
                delay = self._delay(child, now)
                child.next_restart = now + delay
                child.reported_exit = True
                self.out(f"  {child.name:<14} exited with code {code}; restarting {_when(delay)} "
                         f"(log {child.log})")
            elif now >= child.next_restart:
                child.restarts += 1
                self.spawn(child)
                self.out(f"  {child.name:<14} restarted (pid {child.pid})")

    def _unresponsive(self, child: Child, now: float) -> bool:
        """Run the child's health check when due; after ``unhealthy_after`` failures in a row kill it (its
        restart then follows the dead-child path) and return True."""
        if not child.supervised or child.health is None or now < child.next_health:
            return False
        child.next_health = now + self.health_interval
        if _safe(child.health):
            child.failed_checks, child.answered = 0, True
            return False
        if not child.answered and now - child.started_at < child.ready_timeout and not _stopped(child):
            return False  # (re)starting: not answering yet is not a hang (a stopped one is, at once)
        child.failed_checks += 1
        if child.failed_checks < self.unhealthy_after:
            return False
        delay = self._delay(child, now)
        self.out(f"  {child.name:<14} not answering its health check ({child.failed_checks} in a row); killed it, "
                 f"restarting {_when(delay)} (log {child.log})")
        kill_child(child)
        child.reported_exit, child.next_restart = True, now + delay
        return True

    def _delay(self, child: Child, now: float) -> float:
        """Backoff before the next start: none for a child that answered and ran ``stable_after`` (killed or
        crashed once, not a crash loop: its users wait for nothing), else 1, 2, 4 … 30 s by restarts so far."""
        if child.answered and now - child.started_at >= self.stable_after:
            child.restarts = 0
            return 0.0
        return min(30.0, 2.0 ** child.restarts)

    def run_until_stopped(self, interval: float = 0.5) -> None:
        while not self.stop_event.wait(interval):
            self.check()

    # -- stop -------------------------------------------------------------------------------------

    def stop_all(self) -> None:
        for child in reversed(self.children):
            stop_child(child)
            self.out(f"  {child.name:<14} stopped")
        self.children.clear()


def _when(delay: float) -> str:
    return f"in {delay:.0f}s" if delay else "now"


def _stopped(child: Child) -> bool:
    """Is the child frozen by a signal (SIGSTOP, state T)? It cannot be merely slow to start then."""
    try:
        return child.proc is not None and psutil.Process(child.proc.pid).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def kill_child(child: Child) -> None:
    """SIGKILL the child's process group at once and reap it (a hung child cannot stop gracefully)."""
    proc = child.proc
    if proc is not None:
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def stop_child(child: Child) -> None:
    """SIGTERM the child's process group, wait ``stop_timeout``, then SIGKILL it; reap it."""
    proc = child.proc
    if proc is not None and proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        _signal_group(proc.pid, signal.SIGCONT)  # a stopped (SIGSTOP) child handles the SIGTERM only once resumed
        try:
            proc.wait(timeout=child.stop_timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
    if proc is not None:
        # The group may outlive its leader (a grandchild); make sure nothing of it is left.
        _signal_group(proc.pid, signal.SIGKILL)
    if child.extra_stop is not None:
        child.extra_stop()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "    (no log)"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:]) or "    (empty log)"
