"""Bearer-token auth for the webhook endpoints: one shared secret, compared in constant time."""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import stat

from govheal.config import Config
from govheal.errors import GovhealError

TOKEN_ENV = "GOVHEAL_WEBHOOK_TOKEN"  # noqa: S105 - the variable name, not a secret
log = logging.getLogger("govheal.receiver.auth")


class TokenError(GovhealError):
    exit_code = 2


def load_token(config: Config, environ: dict[str, str] | None = None) -> str:
    """The token from ``receiver.token_file`` (relative to the config) or else ``$GOVHEAL_WEBHOOK_TOKEN``.

    ``token_file``, when set, wins: the environment variable is then not read (a warning says so when it
    is set too). The receiver refuses to start without one: an open remediation endpoint restarts things
    for anyone. A token file that other users can read is used, with a warning saying how to fix it.
    """
    env = os.environ if environ is None else environ
    spec = config.receiver.token_file
    if spec:
        path = config.path(spec)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise TokenError(f"receiver.token_file {path} does not exist; create it with a random token that only "
                             f"you can read: `(umask 077; openssl rand -hex 32 > {path})`, or remove "
                             f"receiver.token_file from the config and set {TOKEN_ENV}") from None
        except (OSError, UnicodeDecodeError) as exc:
            why, fix = ("is a directory", "point it at the token file") if path.is_dir() else (
                ("is not UTF-8 text", "write a random token into it") if isinstance(exc, UnicodeDecodeError)
                else (f"cannot be read ({getattr(exc, 'strerror', None) or exc})", "fix its permissions"))
            raise TokenError(f"receiver.token_file {path} {why}; {fix}") from None
        if not token:
            raise TokenError(f"receiver.token_file {path} is empty; write a random token into it")
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o044:
                log.warning("receiver.token_file %s can be read by other users (mode %04o); run: chmod 600 %s",
                            path, mode, path)
        if env.get(TOKEN_ENV, "").strip():
            log.warning("%s is set but not used: receiver.token_file takes precedence", TOKEN_ENV)
        return token
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise TokenError(f"no webhook token: set receiver.token_file in the config or {TOKEN_ENV}")
    return token


def bearer_ok(header: str | None, token: str) -> bool | None:
    """None if no bearer credentials were sent, else whether they match (constant-time)."""
    if not header:
        return None
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
