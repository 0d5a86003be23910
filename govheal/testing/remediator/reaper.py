"""Teardown for the live remediator tests: nothing a test started may outlive it.

A test starts demo agents directly, through the command strategy (detached into their own session, so
they survive the remediator by design), through a ``govheal restart`` subprocess, or through the fake
``launchctl``/``systemctl``. Every one of them names a path under the test's ``tmp_path`` on its command
line (pidfile, config), in its environment (``FAKE_SUPERVISOR_STATE``) or as its working directory,
even before it writes a pidfile (``--startup-delay``), so teardown finds them by that and kills their
process groups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil

from govheal.procs import pid_running


def started_under(root: Path) -> list[psutil.Process]:
    """Live processes (not this one) whose argv, environment or cwd names a path under ``root``."""
    prefix = str(root).rstrip("/") + "/"
    me = os.getpid()
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["pid"] == me or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            argv = p.info["cmdline"] or []
            named = any(prefix in a or a == prefix[:-1] for a in argv)
            if not named:
                named = any(prefix in v for v in p.environ().values()) or (p.cwd() + "/").startswith(prefix)
        except psutil.Error:
            continue
        if named:
            found.append(p)
    return found


def _kill(pid: int) -> None:
    """SIGKILL the process group the process leads (its detached session), else the process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        pgid = os.getpgid(pid)
        if pgid == pid and pgid != os.getpgid(0):
            os.killpg(pgid, signal.SIGCONT)
            os.killpg(pgid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


def kill_started_under(root: Path, timeout: float = 15.0) -> list[int]:
    """Kill everything :func:`started_under` finds, until none is left; returns the PIDs killed.

    Loops because a dying parent (a restart CLI, a fake supervisor) may have started one more child.
    Our own children are reaped so no zombie is left either.
    """
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while procs := started_under(root):
        for p in procs:
            _kill(p.pid)
            killed.append(p.pid)
        for p in procs:
            with contextlib.suppress(psutil.Error, ChildProcessError):
                if p.ppid() == os.getpid():
                    p.wait(timeout=5)  # reap our child
            while pid_running(p.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        if time.monotonic() >= deadline:
            left = [p.pid for p in started_under(root)]
            raise AssertionError(f"processes started under {root} still running after {timeout:g}s: {left}")
    return killed
