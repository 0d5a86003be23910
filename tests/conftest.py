from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import psutil
import pytest

from govheal.testing.support import demo_fleet

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def require_binary(name: str, *alternatives: str) -> str:
    """The path of a binary `make test` installs; a missing one is an install bug, so fail loudly."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path:
            return path
    pytest.fail(f"{name} not on PATH: `make test` installs it (apt-get install prometheus prometheus-alertmanager)")


@pytest.fixture
def fleet(tmp_path: Path):
    """Three running demo agents A, B, C (real processes on free loopback ports)."""
    with demo_fleet(tmp_path, ["A", "B", "C"]) as agents:
        yield agents


# ------------------------------------------------------------------------------------------------
# Leak check: every process a test starts (demo agents, exporters, receivers, Prometheus,
# Alertmanager) carries a path under pytest's base temp dir on its command line. After each test
# module, any such process still running is a leak: it is killed and the module's tests are
# reported as leaking, so the next test never inherits a stray agent on a port.

_LEAKS: list[str] = []


def _strays(base: str) -> list[psutil.Process]:
    me = os.getpid()
    found = [c for c in _children() if base not in " ".join(_cmdline(c))]  # forked ones carry pytest's line
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] != me and base in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _children() -> list[psutil.Process]:
    """pytest's own live descendants: a forked child left running keeps the interpreter from exiting
    (multiprocessing joins them at exit), so CI would hang after the summary line."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


@pytest.fixture(autouse=True, scope="module")
def _no_leaked_processes(request, tmp_path_factory):
    yield
    base = str(tmp_path_factory.getbasetemp())
    strays = _strays(base)
    if not strays:
        return
    # a process may still be on its way out (SIGTERM just sent): give it a moment
    _, alive = psutil.wait_procs(strays, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            _LEAKS.append(f"{request.node.nodeid}: pid {proc.pid} {' '.join(_cmdline(proc))[:160]}")
            proc.kill()


def pytest_terminal_summary(terminalreporter):
    if _LEAKS:
        terminalreporter.section("leaked processes (killed)")
        for line in _LEAKS:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    if _LEAKS and exitstatus == 0:
        session.exitstatus = 1  # a test that leaves processes behind fails the run
