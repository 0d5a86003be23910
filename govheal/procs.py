"""Process facts every component agrees on: a zombie is not running (measured.md: PID 1 here reaps
detached orphans 1.4-1.9 s late, and psutil still finds them with status ``zombie``)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import psutil


def pid_running(pid: int | None) -> bool:
    """Alive and not a zombie."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_pidfile(path: Path) -> int | None:
    """The PID written in ``path``, or None when the file is missing or not a number."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSWORD|WEBHOOK|API_KEY|CHAT_ID", re.IGNORECASE)


def env_without_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment minus anything that looks like a secret (webhook token, bot token, chat id).

    Only the receiver needs those; agents, failover scripts and supervisors must not inherit them.
    """
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not SECRET_ENV.search(k)}


def child_env(extra: Mapping[str, str] | None = None, *, secrets: bool = False) -> dict[str, str]:
    """Our environment with this interpreter's bin dir first, so `govheal ...` argv resolve to this install.

    Secrets in it (tokens, webhook URLs, chat ids) go only to the child that needs them: the receiver.
    """
    env = dict(os.environ) if secrets else env_without_secrets()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env
