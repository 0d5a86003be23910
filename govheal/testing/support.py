"""Helpers shared by the tests: free loopback ports, waiting, and real demo agents as subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

PYTHON = sys.executable


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})"
                                                                              if last_exc else ""))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback test URL
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def http_post(url: str, data: bytes = b"", timeout: float = 2.0, headers: dict | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method="POST", headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def is_running(pid: int) -> bool:
    """Alive and not a zombie (measured.md: orphans are reaped late here)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class DemoAgent:
    name: str
    port: int
    pidfile: Path
    log: Path
    proc: subprocess.Popen | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"

    def argv(self) -> list[str]:
        return [PYTHON, "-m", "govheal", "demo-agent", "--name", self.name, "--port", str(self.port),
                "--pidfile", str(self.pidfile), *self.extra]

    def start(self, wait: bool = True) -> DemoAgent:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 10.0) -> None:
        wait_until(lambda: http_get(self.health_url, timeout=0.5)[0] == 200, timeout, what=f"{self.name} healthy")

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def fault(self, kind: str, **params: object) -> None:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        http_post(f"{self.url}/fault/{kind}" + (f"?{query}" if query else ""))

    def signal(self, sig: int) -> None:
        pid = self.pid
        if pid:
            os.kill(pid, sig)

    def stop(self) -> None:
        for pid in {p for p in (self.pid, self.proc.pid if self.proc else None) if p}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        if self.proc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)


def demo_config_text(agents: list[DemoAgent], *, node: str = "test-node", extra: str = "",
                     agent_extra: dict[str, str] | None = None, health_timeout: str = "500ms") -> str:
    """A govheal.yaml for the given demo agents (command restart strategy, pidfile matching)."""
    lines = [f"node: {node}", "state_dir: state", "telemetry_log: telemetry/autoheal.log", extra, "agents:"]
    for a in agents:
        lines += [
            f"  - name: {a.name}",
            "    role: demo",
            f"    process: {{pidfile: {json.dumps(str(a.pidfile))}}}",
            f"    health: {{url: {json.dumps(a.health_url)}, timeout: {health_timeout}}}",
            "    start_grace: 5s",
            "    restart:",
            "      strategy: command",
            f"      argv: {json.dumps(a.argv())}",
            f"      log_file: {json.dumps(str(a.log))}",
        ]
        if agent_extra and a.name in agent_extra:
            lines += ["    " + line for line in agent_extra[a.name].splitlines()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def demo_fleet(tmp: Path, names: list[str], start: bool = True) -> Iterator[list[DemoAgent]]:
    agents = [DemoAgent(n, free_port(), tmp / "run" / f"{n}.pid", tmp / "logs" / f"{n}.log") for n in names]
    try:
        if start:
            for a in agents:
                a.start(wait=False)
            for a in agents:
                a.wait_healthy()
        yield agents
    finally:
        for a in agents:
            a.stop()
