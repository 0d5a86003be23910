"""How an agent's process is found: MATCHERS maps each ``process:`` key to its config model and function.

Each matcher declares its own model: a field named after the matcher (its key in ``process:``) and its
options (``user_unit``, ``launchd_domain``); govheal.config builds ``process:`` from these models, so a
new matcher is one model, one function and one MATCHERS line here, plus its test and docs/config.md.

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
from typing import Any

import psutil
from pydantic import BaseModel, Field

from govheal.config import Strict, regex_field

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


class PidfileSpec(Strict):
    pidfile: str = Field(description="a file holding the PID (relative to the config file)")


def match_pidfile(spec: PidfileSpec, ctx: ScanContext) -> Match:
    path = ctx.resolve(spec.pidfile)
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


class CmdlineSpec(Strict):
    cmdline: regex_field("cmdline regex") = Field(description="regex searched in the space-joined command line")


def match_cmdline(spec: CmdlineSpec, ctx: ScanContext) -> Match:
    """The lowest PID whose space-joined command line matches the regex (the exporter never matches)."""
    pattern = spec.cmdline
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


class LaunchdSpec(Strict):
    launchd: str = Field(description="launchd label, resolved with `launchctl print`")
    launchd_domain: str = Field("gui/{uid}", description="launchd domain; {uid} is the current uid")


def match_launchd(spec: LaunchdSpec, ctx: ScanContext) -> Match:
    domain = spec.launchd_domain.replace("{uid}", str(ctx.uid))
    code, out = ctx.runner(["launchctl", "print", f"{domain}/{spec.launchd}"], COMMAND_TIMEOUT)
    if code == 113:  # "Could not find service ... in domain": not loaded, so not running
        return Match(None)
    if code != 0:
        return Match(None, "lookup_failed", f"launchctl print exited {code}")
    return Match(parse_launchctl_print(out))


class SystemdSpec(Strict):
    systemd: str = Field(description="systemd unit, resolved with `systemctl show`")
    user_unit: bool = Field(False, description="a --user unit")


def match_systemd(spec: SystemdSpec, ctx: ScanContext) -> Match:
    argv = ["systemctl", "show", "--property=MainPID", "--value"]
    if spec.user_unit:
        argv.append("--user")
    code, out = ctx.runner([*argv, "--", spec.systemd], COMMAND_TIMEOUT)
    text = out.strip()
    if code != 0 or not text.isdigit():
        return Match(None, "lookup_failed", f"systemctl show exited {code}")
    pid = int(text)
    return Match(pid if pid > 0 else None)


class PortSpec(Strict):
    port: int = Field(ge=1, le=65535, description="a TCP port the process listens on")


def match_port(spec: PortSpec, ctx: ScanContext) -> Match:
    table = ctx.listeners()
    if table is None:
        return Match(None, "access_denied", "the socket table needs more privileges here")
    if spec.port not in table:
        return Match(None)
    pid = table[spec.port]
    if pid is None:
        return Match(None, "access_denied", f"port {spec.port} listens but its owner is not visible")
    return Match(pid)


@dataclass(frozen=True)
class Matcher:
    """One ``process:`` key: its config model and the function that finds the PID from it."""

    spec: type[BaseModel]
    find: Callable[[Any, ScanContext], Match]

    def __call__(self, spec: Any, ctx: ScanContext) -> Match:
        return self.find(spec, ctx)


# The one list of matchers: govheal.config builds `process:` from it (via govheal/seams.py).
MATCHERS: dict[str, Matcher] = {
    "pidfile": Matcher(PidfileSpec, match_pidfile),
    "cmdline": Matcher(CmdlineSpec, match_cmdline),
    "launchd": Matcher(LaunchdSpec, match_launchd),
    "systemd": Matcher(SystemdSpec, match_systemd),
    "port": Matcher(PortSpec, match_port),
}
