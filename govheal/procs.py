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


# What a child started by the remediator (a restarted agent, a failover command, launchctl/systemctl) gets
# from our environment: the basics of a login session, nothing else. Whatever an agent needs beyond that
# is given in its config (`restart.env`), where it is visible.
CHILD_ENV = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
    "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",  # systemctl --user finds the user's manager through these
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",  # where the trusted CAs are (paths)
})
CHILD_ENV_PREFIXES = ("LC_",)


def allowlisted_env(extra: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
                    ) -> dict[str, str]:
    """A child's environment: only :data:`CHILD_ENV` (and ``LC_*``) from ours, plus ``extra`` (its config's
    ``env:``). Secrets in our environment (tokens, ``DATABASE_URL``, cloud keys, whatever their names)
    never reach it, because nothing is passed by default."""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if k in CHILD_ENV or k.startswith(CHILD_ENV_PREFIXES)}
    env.update(extra or {})
    return env


SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSW|WEBHOOK|HOOK_URL|API_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|CHAT_ID|"
                        r"DATABASE_URL|DSN|_PAT$|^AWS_|^GH_|^GITHUB_", re.IGNORECASE)


def env_without_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment minus anything whose name looks like a secret (webhook token, bot token, chat id).

    For ``govheal up``'s own components (exporter, Prometheus, Alertmanager), which need the rest of the
    operator's environment; what the remediator starts gets :func:`allowlisted_env` instead.
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
