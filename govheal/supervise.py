"""Start child processes in order, wait until each is ready, keep them running, stop them in reverse.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only ``govheal up``, which then
stops the children in order) with its output in a log file. A supervised child that dies is restarted
with backoff; an unsupervised one (a fleet agent: healing it is the remediator's job) is only reported.
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
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_restart: float = 0.0
    reported_exit: bool = False
    started_at: float = field(default=0.0)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Owns the children of one ``govheal up``; ``stop_event`` ends every wait early."""

    def __init__(self, out: Printer = print, clock: Callable[[], float] = time.monotonic,
                 stop_event: threading.Event | None = None) -> None:
        self.children: list[Child] = []
        self.out = out
        self.clock = clock
        self.stop_event = stop_event or threading.Event()

    # -- start ------------------------------------------------------------------------------------

    def spawn(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log, "ab") as log:
            child.proc = subprocess.Popen(child.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=child.cwd, env=child.env,
                                          start_new_session=True)
        child.started_at = self.clock()
        child.reported_exit = False

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
                took = self.clock() - child.started_at
                self.out(f"  {child.name:<14} ready     {child.url or ''}  ({took:.1f}s, pid {child.pid})")
                return
            if self.clock() > deadline:
                raise StartFailed(f"{child.name} was not ready after {child.ready_timeout:.0f}s; "
                                  f"log {child.log}:\n{tail(child.log)}")
            self.stop_event.wait(0.1)

    # -- supervise --------------------------------------------------------------------------------

    def check(self) -> None:
        """One supervision pass: restart dead supervised children (with backoff), report the others."""
        now = self.clock()
        for child in self.children:
            if child.alive():
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
                delay = min(30.0, 2.0 ** child.restarts)
                child.next_restart = now + delay
                child.reported_exit = True
                self.out(f"  {child.name:<14} exited with code {code}; restarting in {delay:.0f}s "
                         f"(log {child.log})")
            elif now >= child.next_restart:
                child.restarts += 1
                self.spawn(child)
                self.out(f"  {child.name:<14} restarted (pid {child.pid})")

    def run_until_stopped(self, interval: float = 0.5) -> None:
        while not self.stop_event.wait(interval):
            self.check()

    # -- stop -------------------------------------------------------------------------------------

    def stop_all(self) -> None:
        for child in reversed(self.children):
            stop_child(child)
            self.out(f"  {child.name:<14} stopped")
        self.children.clear()


def stop_child(child: Child) -> None:
    """SIGTERM the child's process group, wait ``stop_timeout``, then SIGKILL it; reap it."""
    proc = child.proc
    if proc is not None and proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
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
