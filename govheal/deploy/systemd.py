"""systemd: the plan's services as **user** units (``~/.config/systemd/user``), the daily cycle as a oneshot
service plus a timer with one ``OnCalendar=`` per slot and ``Persistent=true`` (a slot missed while the
machine was off runs at the next boot; the report then knows it is a catch-up).

Facts kept (ecosystem-facts.md §6.3): no end-of-line comments (a ``# ...`` after a value becomes part of
it), ``StartLimit*`` in ``[Unit]`` (ignored in ``[Service]``), an explicit ``RestartSec`` (the 100 ms
default burns the start limit in half a second), absolute argv quoted for systemd's own parser.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from govheal.deploy.services import Plan, Service
from govheal.errors import GovhealError

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]
START_LIMIT_INTERVAL = 300
START_LIMIT_BURST = 5
RESTART_SEC = 5


def quote(arg: str) -> str:
    """One argv element as systemd's ExecStart parser reads it back: ``%`` and ``$`` doubled (specifiers,
    variables), quoted when it has whitespace, quotes or backslashes."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\n\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _path(value: str) -> str:
    """A path setting (WorkingDirectory=, StandardOutput=append:): taken verbatim but for specifiers."""
    return value.replace("%", "%%")


def _env(s: Service) -> list[str]:
    """Environment= takes specifiers but no variables; quoted when the value has whitespace."""
    out = []
    for k, v in s.env.items():
        item = f"{k}={v}".replace("%", "%%")
        out.append(f'Environment="{item}"' if any(c.isspace() for c in item) else f"Environment={item}")
    return out


def service_unit(s: Service) -> str:
    lines = ["[Unit]", f"Description={s.description}"]
    if s.long_running:
        lines += [f"StartLimitIntervalSec={START_LIMIT_INTERVAL}", f"StartLimitBurst={START_LIMIT_BURST}"]
    lines += ["", "[Service]", "Type=simple" if s.long_running else "Type=oneshot",
              "ExecStart=" + " ".join(quote(a) for a in s.argv), f"WorkingDirectory={_path(s.workdir)}", *_env(s),
              f"StandardOutput=append:{_path(s.stdout)}", f"StandardError=append:{_path(s.stderr)}"]
    if s.long_running:
        lines += ["Restart=always", f"RestartSec={RESTART_SEC}", f"TimeoutStopSec={s.stop_timeout}",
                  "", "[Install]", "WantedBy=default.target"]
    else:
        lines += [f"TimeoutStartSec={s.run_timeout}"]
    return "\n".join(lines) + "\n"


def timer_unit(s: Service) -> str:
    zone = f" {s.timezone}" if s.timezone else ""
    lines = ["[Unit]", f"Description=Run {s.unit}.service at {', '.join(s.calendar)}{zone}", "", "[Timer]",
             *(f"OnCalendar=*-*-* {t}:00{zone}" for t in s.calendar), "Persistent=true", "AccuracySec=1s",
             f"Unit={s.unit}.service", "", "[Install]", "WantedBy=timers.target"]
    return "\n".join(lines) + "\n"


def render(p: Plan) -> dict[str, str]:
    """File name → unit text."""
    out: dict[str, str] = {}
    for s in p.services:
        out[f"{s.unit}.service"] = service_unit(s)
        if s.calendar:
            out[f"{s.unit}.timer"] = timer_unit(s)
    return out


def write(p: Plan, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in render(p).items():
        (directory / name).write_text(text, encoding="utf-8")
        out.append(directory / name)
    return out


def enabled_units(p: Plan) -> list[str]:
    """What ``enable --now`` gets: the long-running services and the timer (never the daily oneshot itself)."""
    return [f"{s.unit}.service" for s in p.services if s.long_running] + \
        [f"{s.unit}.timer" for s in p.services if s.calendar]


class SystemctlError(GovhealError):
    pass


def run(argv: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def _check(done: subprocess.CompletedProcess, argv: Sequence[str]) -> None:
    if done.returncode == 0:
        return
    text = (done.stderr or done.stdout).strip()
    hint = "see `journalctl --user -xe`"
    if "Failed to connect to bus" in text or "XDG_RUNTIME_DIR" in text:
        hint = ("this shell has no systemd user manager (a root shell, sudo, or no login session): run it as the "
                "user who owns the agents, in a login session (ssh), and `loginctl enable-linger <user>` so the units "
                "run while nobody is logged in")
    raise SystemctlError(f"{' '.join(argv)} failed (exit {done.returncode}): {text}; {hint}")


def require_systemd(system: str | None = None) -> None:
    system = system or platform.system()
    if system != "Linux" or shutil.which("systemctl") is None:
        where = "macOS: use `govheal launchd install`" if system == "Darwin" else f"{system} has no systemctl"
        raise GovhealError(f"systemd install works on a Linux node with systemd only ({where}); `govheal systemd "
                           "render` still writes the units")


def install(p: Plan, directory: Path, *, runner: Runner = run) -> list[str]:
    write(p, directory)
    units = enabled_units(p)
    for argv in (["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", *units]):
        _check(runner(argv), argv)
    return units


def uninstall(p: Plan, directory: Path, *, runner: Runner = run) -> list[str]:
    units = enabled_units(p)
    argv = ["systemctl", "--user", "disable", "--now", *reversed(units)]
    runner(argv)  # units that are not installed answer non-zero; removing the files is what counts
    for name in render(p):
        (directory / name).unlink(missing_ok=True)
    argv = ["systemctl", "--user", "daemon-reload"]
    _check(runner(argv), argv)
    return units
