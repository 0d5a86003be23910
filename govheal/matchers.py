"""How an agent's process is found: MATCHERS maps each ``process:`` key to one function.

A matcher answers "which PID is this agent?" and nothing else; whether that PID is running (and not a
zombie) is read afterwards by its caller (the exporter and the remediator both use these matchers, so they
never disagree about which process is the agent). Work that is the same for every agent (the process
table for cmdline, the socket table for port) is done at most once per scrape in :class:`ScanContext`.
External commands are argv lists with a timeout; a failure is data (``Match.error``), never an exception.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from govheal.config import ProcessSpec

COMMAND_TIMEOUT = 2.0  # seconds for one launchctl/systemctl call


@dataclass(frozen=True)
class Match:
    """The PID found (None: not running / not loaded) or why it could not be looked up."""

    pid: int | None
    error: str | None = None  # "access_denied" or "lookup_failed"
    detail: str = ""


Runner = Callable[[list[str], float], tuple[int, str]]


def run_command(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run argv (no shell) and return (exit code, stdout): 127 when the program is missing, 126 when
    it cannot be run, -1 when it did not finish within ``timeout`` (it is killed)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, ""
    except subprocess.TimeoutExpired:
        return -1, ""
    except OSError:
        return 126, ""
    return done.returncode, done.stdout


@dataclass
class ScanContext:
    """Per-scrape shared state: one process-table scan and one socket-table scan, at most."""

    resolve: Callable[[str], Path] = Path
    runner: Runner = run_command
    uid: int = field(default_factory=os.getuid)
    own_pid: int = field(default_factory=os.getpid)
    _cmdlines: list[tuple[int, str]] | None = None
    _listeners: dict[int, int | None] | None = None
    _listeners_denied: bool = False

    def cmdlines(self) -> list[tuple[int, str]]:
        if self._cmdlines is None:
            table = []
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmd = proc.info.get("cmdline")
                if cmd and proc.info["pid"] != self.own_pid:
                    table.append((proc.info["pid"], " ".join(cmd)))
            self._cmdlines = sorted(table)
        return self._cmdlines

    def listeners(self) -> dict[int, int | None] | None:
        """port → PID (None when the owner is not visible); None if the table itself is denied."""
        if self._listeners is None and not self._listeners_denied:
            try:
                conns = psutil.net_connections(kind="tcp")
            except psutil.AccessDenied:
                self._listeners_denied = True
                return None
            table: dict[int, int | None] = {}
            for c in conns:
                if c.status == psutil.CONN_LISTEN and c.laddr and table.get(c.laddr.port) is None:
                    table[c.laddr.port] = c.pid
            self._listeners = table
        return self._listeners


def match_pidfile(spec: ProcessSpec, ctx: ScanContext) -> Match:
    path = ctx.resolve(spec.pidfile or "")
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return Match(None)  # no pidfile: not running
    except PermissionError:
        return Match(None, "access_denied", f"cannot read {path}")
    except (OSError, UnicodeDecodeError) as exc:
        return Match(None, "lookup_failed", f"cannot read {path}: {exc}")
    if not text.isdigit() or int(text) <= 0:
        return Match(None, "lookup_failed", f"{path} does not hold a PID")
    return Match(int(text))


_regex_cache: dict[str, re.Pattern[str]] = {}


def match_cmdline(spec: ProcessSpec, ctx: ScanContext) -> Match:
    """The lowest PID whose space-joined command line matches the regex (the exporter never matches)."""
    pattern = spec.cmdline or ""
    regex = _regex_cache.get(pattern) or _regex_cache.setdefault(pattern, re.compile(pattern))
    for pid, cmd in ctx.cmdlines():
        if regex.search(cmd):
            return Match(pid)
    return Match(None)


_LAUNCHD_PID = re.compile(r"^\tpid = (\d+)\s*$", re.MULTILINE)


def parse_launchctl_print(text: str) -> int | None:
    """The service's own ``pid = N`` line (one tab deep) from ``launchctl print`` output."""
    found = _LAUNCHD_PID.search(text)
    return int(found.group(1)) if found else None


def match_launchd(spec: ProcessSpec, ctx: ScanContext) -> Match:
    domain = spec.launchd_domain.replace("{uid}", str(ctx.uid))
    code, out = ctx.runner(["launchctl", "print", f"{domain}/{spec.launchd}"], COMMAND_TIMEOUT)
    if code == 113:  # "Could not find service ... in domain": not loaded, so not running
        return Match(None)
    if code != 0:
        return Match(None, "lookup_failed", f"launchctl print exited {code}")
    return Match(parse_launchctl_print(out))


def match_systemd(spec: ProcessSpec, ctx: ScanContext) -> Match:
    argv = ["systemctl", "show", "--property=MainPID", "--value"]
    if spec.user_unit:
        argv.append("--user")
    code, out = ctx.runner([*argv, "--", spec.systemd or ""], COMMAND_TIMEOUT)
    text = out.strip()
    if code != 0 or not text.isdigit():
        return Match(None, "lookup_failed", f"systemctl show exited {code}")
    pid = int(text)
    return Match(pid if pid > 0 else None)


def match_port(spec: ProcessSpec, ctx: ScanContext) -> Match:
    table = ctx.listeners()
    if table is None:
        return Match(None, "access_denied", "the socket table needs more privileges here")
    if spec.port not in table:
        return Match(None)
    pid = table[spec.port]
    if pid is None:
        return Match(None, "access_denied", f"port {spec.port} listens but its owner is not visible")
    return Match(pid)


Matcher = Callable[[ProcessSpec, ScanContext], Match]

# The config validates `process:` keys against govheal.config.MATCHER_KEYS; a test keeps the two equal.
MATCHERS: dict[str, Matcher] = {
    "pidfile": match_pidfile,
    "cmdline": match_cmdline,
    "launchd": match_launchd,
    "systemd": match_systemd,
    "port": match_port,
}
