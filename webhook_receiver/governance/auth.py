"""Who may read and who may change: the admin token, the read token, the page's session and its CSRF token.

- ``admin.token_file`` / ``$GOVHEAL_ADMIN_TOKEN``: changes switches (API ``Authorization: Bearer``, or a page
  login). Never the webhook token: the receiver refuses to start when they are equal.
- ``admin.read_token_file`` / ``$GOVHEAL_READ_TOKEN``: reads the page and ``GET /api/agents`` (optional).
- The page logs in with either token and a name; the session is Flask's signed cookie (HttpOnly,
  SameSite=Lax), its key a file in the state dir created 0600 on first start. The owner of a change made
  from the page is the logged-in name.
- CSRF: every form carries the session's random token in a hidden field and the server compares it with
  the one in the signed session cookie (the synchronizer-token pattern; the cookie is signed, so a
  sub-domain cannot plant its own). SameSite=Lax already keeps the cookie off cross-site POSTs; the token
  covers older browsers and same-site attackers.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask.sessions import SecureCookieSessionInterface

from govheal.config import Config
from govheal.errors import GovhealError

ADMIN_ENV = "GOVHEAL_ADMIN_TOKEN"
READ_ENV = "GOVHEAL_READ_TOKEN"
SESSION_KEY_FILE = "admin_session.key"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
ADMIN, READ = "admin", "read"


class AdminConfigError(GovhealError):
    exit_code = 2


@dataclass(frozen=True)
class Tokens:
    admin: str | None
    read: str | None

    def role(self, given: str | None) -> str | None:
        """``admin``, ``read`` or None for a presented token (constant-time comparisons)."""
        if not given:
            return None
        value = given.strip().encode()
        if self.admin and hmac.compare_digest(value, self.admin.encode()):
            return ADMIN
        if self.read and hmac.compare_digest(value, self.read.encode()):
            return READ
        return None


def _read_secret(config: Config, key: str, spec: str | None, env_name: str, environ: dict[str, str]) -> str | None:
    if spec:
        path = config.path(spec)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise AdminConfigError(f"admin.{key} {path} does not exist; create it with a random token (e.g. "
                                   f"`(umask 077; openssl rand -hex 32 > {path})`) or set {env_name}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AdminConfigError(f"admin.{key} {path} cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                                   "fix its permissions or point it at the token file") from None
        if not value:
            raise AdminConfigError(f"admin.{key} {path} is empty; write a random token into it")
        return value
    return environ.get(env_name, "").strip() or None


def load_tokens(config: Config, webhook_token: str | None = None, environ: dict[str, str] | None = None) -> Tokens:
    env = dict(os.environ) if environ is None else environ
    admin = _read_secret(config, "token_file", config.admin.token_file, ADMIN_ENV, env)
    read = _read_secret(config, "read_token_file", config.admin.read_token_file, READ_ENV, env)
    for what, value in (("admin", admin), ("read", read)):
        if value is not None and len(value) < 16:
            raise AdminConfigError(f"the {what} token is shorter than 16 characters; use a random one "
                                   "(`openssl rand -hex 32`)")
        if value is not None and webhook_token and hmac.compare_digest(value.encode(), webhook_token.encode()):
            raise AdminConfigError(f"the {what} token equals the webhook token; they must differ (Alertmanager "
                                   "holds the webhook token and must not be able to change switches)")
    if admin and read and hmac.compare_digest(admin.encode(), read.encode()):
        raise AdminConfigError("admin and read tokens are the same; make the read token a different one")
    return Tokens(admin, read)


def session_key(config: Config) -> bytes:
    """The session signing key: ``admin.session_key_file`` or ``<state_dir>/admin_session.key`` (made 0600)."""
    path = config.path(config.admin.session_key_file) if config.admin.session_key_file else \
        config.state_path / SESSION_KEY_FILE
    try:
        return path.read_bytes().strip() or _new_key(path, replace=True)
    except FileNotFoundError:
        return _new_key(path)
    except OSError as exc:
        raise AdminConfigError(f"admin.session_key_file {path} cannot be read ({exc.strerror}); fix its "
                               "permissions or remove it (a new one is made, and everyone logs in again)") from None


def _new_key(path: Path, replace: bool = False) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


SESSION_REFRESH = 60  # seconds: a logged-in session's cookie (and its expiry) is re-sent at most this often
VERIFIED_FOR = 1.0  # seconds: a cookie verified once is taken as verified for this long
VERIFIED_MAX = 256  # cookies remembered so (a few operators, one cookie each per minute)


class SlidingSession(SecureCookieSessionInterface):
    """Flask's signed cookie session, verified on every request as before; only the re-signing is rarer.
    Flask re-signs a permanent session on every response to slide its expiry forward (an HMAC and a zlib
    compression per page view, a tenth of a page view's time); here the cookie is re-sent when the session
    changed or at most every ``SESSION_REFRESH`` seconds (``t`` in it: when it was last sent), so a session
    still ends ``admin.session_lifetime`` after the last use, give or take a minute.

    Verifying a cookie (base64, HMAC, zlib, JSON, a serializer built per request) was ~150 µs of a ~220 µs
    page view; the same cookie string verifies the same way, so its data is reused for ``VERIFIED_FOR``
    (an expired or forged cookie is refused as before: expiry is honoured within that second, and only a
    cookie that verified is remembered)."""

    def __init__(self) -> None:
        self._verified: dict[str, tuple[float, dict[str, Any]]] = {}

    def open_session(self, app: Any, request: Any) -> Any:
        val = request.cookies.get(self.get_cookie_name(app))
        now = time.monotonic()
        hit = self._verified.get(val) if val else None
        if hit is not None and now < hit[0]:
            return self.session_class(dict(hit[1]))
        session = super().open_session(app, request)
        if val and session:  # verified (a bad signature gives an empty session, never remembered)
            if len(self._verified) >= VERIFIED_MAX:
                self._verified.clear()
            self._verified[val] = (now + VERIFIED_FOR, dict(session))
        return session

    def should_set_cookie(self, app: Any, session: Any) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        return time.time() - float(session.get("t", 0)) >= SESSION_REFRESH

    def save_session(self, app: Any, session: Any, response: Any) -> None:
        if session and self.should_set_cookie(app, session):
            session["t"] = int(time.time())
        super().save_session(app, session, response)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(str(given).encode(), str(expected).encode())


def check_name(name: str | None) -> str | None:
    """A login name: letters, digits, space and ._@- (what goes into createdBy and the audit log)."""
    name = (name or "").strip()
    return name if NAME_RE.match(name) else None
