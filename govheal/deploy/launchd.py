"""launchd: the plan's services as user LaunchAgents, and ``launchctl bootstrap``/``bootout`` in ``gui/<uid>``.

One convention for every plist (ecosystem-facts.md §6.1): ``Label`` equals the file name, absolute argv in
``ProgramArguments`` (launchd expands nothing), explicit ``StandardOutPath``/``StandardErrorPath``,
``PATH`` and ``PYTHONUNBUFFERED`` set, config outside the plist. Long-running jobs: ``RunAtLoad`` and
``KeepAlive`` with a ``ThrottleInterval`` of 10 s (launchd's floor). The daily cycle:
``StartCalendarInterval`` per slot (local time; a sleeping Mac runs a missed one on wake) and ``RunAtLoad``
so a login after the Mac was off catches up (the report itself decides what is due; a run with nothing
due exits at once).
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from govheal.deploy.services import Plan, Service
from govheal.errors import GovhealError

THROTTLE = 10  # seconds; lower values are reported not to take effect
Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]


def plist(s: Service) -> dict[str, Any]:
    d: dict[str, Any] = {
        "Label": s.label,
        "ProgramArguments": list(s.argv),
        "WorkingDirectory": s.workdir,
        "EnvironmentVariables": dict(s.env),
        "StandardOutPath": s.stdout,
        "StandardErrorPath": s.stderr,
        "ExitTimeOut": s.stop_timeout,
    }
    if s.long_running:
        d.update({"RunAtLoad": True, "KeepAlive": True, "ThrottleInterval": THROTTLE})
    else:
        d.update({"RunAtLoad": True, "ProcessType": "Background", "StartCalendarInterval": [
            {"Hour": int(t[:2]), "Minute": int(t[3:])} for t in s.calendar]})
    return d


def render(p: Plan) -> dict[str, bytes]:
    """File name → plist bytes."""
    return {f"{s.label}.plist": plistlib.dumps(plist(s), sort_keys=False) for s in p.services}


def write(p: Plan, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in render(p).items():
        path = directory / name
        path.write_bytes(data)
        out.append(path)
    return out


# ---------------------------------------------------------------------------------------------- launchctl


class LaunchctlError(GovhealError):
    pass


def run(argv: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def domain(uid: int | None = None) -> str:
    return f"gui/{os.getuid() if uid is None else uid}"


def loaded(label: str, runner: Runner = run, uid: int | None = None) -> bool:
    return runner(["launchctl", "print", f"{domain(uid)}/{label}"]).returncode == 0


def bootout(label: str, *, runner: Runner = run, uid: int | None = None, wait: float = 10.0,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> bool:
    """Stop and unload ``label``; True if it was loaded. ``bootout`` returns before the job is gone
    (ecosystem-facts.md §6.2): poll ``launchctl print`` until it fails, so a bootstrap right after works."""
    if not loaded(label, runner, uid):
        return False
    runner(["launchctl", "bootout", f"{domain(uid)}/{label}"])
    end = clock() + wait
    while loaded(label, runner, uid):
        if clock() >= end:
            raise LaunchctlError(f"launchctl bootout {domain(uid)}/{label}: still loaded after {wait:g} s; see "
                                 f"`launchctl print {domain(uid)}/{label}`")
        sleep(0.2)
    return True


def bootstrap(path: Path, label: str, *, runner: Runner = run, uid: int | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Load ``path``; a job still on its way out answers "Bootstrap failed: 5": retried once after a moment."""
    for attempt in (1, 2):
        done = runner(["launchctl", "bootstrap", domain(uid), str(path)])
        if done.returncode == 0:
            return
        if attempt == 1:
            sleep(1.0)
    raise LaunchctlError(f"launchctl bootstrap {domain(uid)} {path} failed (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()}; check the plist with `plutil -lint {path}` and "
                         f"`launchctl print {domain(uid)}/{label}`")


def install(p: Plan, directory: Path, *, runner: Runner = run, uid: int | None = None,
            sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Write the plists into ``directory`` and (re)load each; the labels loaded, in order."""
    paths = write(p, directory)
    for path, s in zip(paths, p.services, strict=True):
        bootout(s.label, runner=runner, uid=uid, sleep=sleep)
        bootstrap(path, s.label, runner=runner, uid=uid, sleep=sleep)
    return [s.label for s in p.services]


def uninstall(p: Plan, directory: Path, *, runner: Runner = run, uid: int | None = None,
              sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Unload every job (daily first, so no report starts while the rest go) and remove the plists."""
    gone = []
    for s in sorted(p.services, key=lambda s: s.long_running):
        if bootout(s.label, runner=runner, uid=uid, sleep=sleep):
            gone.append(s.label)
        (directory / f"{s.label}.plist").unlink(missing_ok=True)
    return gone
