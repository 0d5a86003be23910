"""Is this PID still the agent? Checked right before a strategy signals it (command, signal strategies).

A pidfile can be stale (the agent died, its PID was reused) and a loose regex can match the wrong
process; a kill aimed there hits an unrelated program and its whole process group. So before any
signal: never PID 1 or govheal itself; the same user unless ``restart.allow_other_users``; for a
pidfile, a process not started after the file was written; what the matcher says (the pidfile still
names it, the regex still matches it, the unit or label still has it as main PID, it still listens on
the port); and its command line: ``restart.expect_cmdline`` when given, else the restart ``argv`` (for
``process: {cmdline: ...}`` the regex itself). Any doubt is a :class:`Refused` with the fix.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Sequence

import psutil

from govheal.config import Agent, Config
from govheal.matchers import MATCHERS, ScanContext
from remediator.strategies.base import Refused

# psutil's create_time is the boot time (whole seconds in /proc/stat) plus clock ticks, so it can read up
# to ~1 s off the wall clock that stamped the pidfile; a reused PID starts after the file, usually by far.
PIDFILE_SLACK = 2.0


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def argv_matches(argv: Sequence[str], cmdline: Sequence[str]) -> bool:
    """``cmdline`` runs the program of ``argv`` (from the config): an element whose file name is argv[0]'s (an
    interpreter may come first: ``python -m x``, a #! script), followed by argv's arguments up to its first
    ``--option`` (the subcommand, script or ``-m module``). Options may change without changing identity."""
    if not argv or not cmdline:
        return False
    head = os.path.basename(argv[0])
    tail: list[str] = []
    for arg in argv[1:]:
        if arg.startswith("--"):
            break
        tail.append(arg)
    for i, part in enumerate(cmdline):
        if os.path.basename(part) == head and list(cmdline[i + 1:i + 1 + len(tail)]) == tail:
            return True
    return False


def check(config: Config, agent: Agent, pid: int, *, allow_other_users: bool = False,
          expect_cmdline: str | None = None, argv: Sequence[str] | None = None) -> psutil.Process | None:
    """The process to signal, None when it is already gone; :class:`Refused` when it is not the agent."""
    if pid <= 1:
        raise Refused(f"refused to signal pid {pid}: that is init, never an agent")
    if pid == os.getpid():
        raise Refused(f"refused to signal pid {pid}: that is govheal itself")
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            uid, created, cmdline = proc.uids().real, proc.create_time(), proc.cmdline()
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        raise Refused(f"refused to signal pid {pid}: it cannot be inspected (access denied), so it cannot be "
                      "shown to be the agent") from None
    shown = " ".join(cmdline)[:200] or "?"
    if uid != os.getuid() and not allow_other_users:
        raise Refused(f"refused to signal pid {pid} ({shown}): it belongs to {_user(uid)}, govheal runs as "
                      f"{_user(os.getuid())}; if it really is {agent.name}, set restart.allow_other_users: true")
    spec = agent.process
    if spec is None:
        return proc
    if spec.kind == "pidfile":
        path = config.path(spec.value)
        try:
            written = path.stat().st_mtime
        except OSError:
            written = None
        if written is not None and created > written + PIDFILE_SLACK:
            raise Refused(f"refused to signal pid {pid} ({shown}): it started {created - written:.0f}s after "
                          f"{path} was written, so the pidfile is stale and the pid was reused; remove the "
                          "pidfile (the agent rewrites it when it starts)")
    if spec.kind == "cmdline":
        still = re.search(spec.value, " ".join(cmdline)) is not None
    else:
        still = MATCHERS[spec.kind](spec.spec, ScanContext(resolve=config.path)).pid == pid
    if not still:
        raise Refused(f"refused to signal pid {pid} ({shown}): process.{spec.kind} no longer names it")
    if expect_cmdline is not None:
        if re.search(expect_cmdline, " ".join(cmdline)) is None:
            raise Refused(f"refused to signal pid {pid}: its command line ({shown}) does not match "
                          f"restart.expect_cmdline {expect_cmdline!r}")
    elif argv and spec.kind != "cmdline" and not argv_matches(argv, cmdline):
        raise Refused(f"refused to signal pid {pid}: it runs {shown!r}, not the program of restart.argv "
                      f"{list(argv)}, so it is "
                      f"not {agent.name}; if the agent rewrites its command line or runs through a wrapper, set "
                      "restart.expect_cmdline to a regex of its command line")
    return proc
