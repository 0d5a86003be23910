"""Two blueprints: ``/ops/governance`` (server-rendered page, login, forms) and ``/api/agents`` (JSON).

Reading: the read or admin token (``Authorization: Bearer``), or a page login. Changing: the admin token
(API) or a login made with it (page, CSRF-checked forms). A wrong or missing credential is a JSON 401/403
for the API and the login page for the browser, never a traceback.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request, session, url_for
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from govheal.governance.service import Governance, GovernanceError, parse_time
from govheal.types import parse_duration
from webhook_receiver.governance import auth
from webhook_receiver.governance.board import Sources, agents

page = Blueprint("governance", __name__, url_prefix="/ops/governance", template_folder="templates")
api = Blueprint("governance_api", __name__, url_prefix="/api")


def ctx() -> GovernanceContext:
    return current_app.extensions["govheal.governance"]


CACHE_SECONDS = 1.0  # a view is at most this stale (changes made here show at once); the page reloads every 10 s
CSRF_MARK = "__GOVHEAL_CSRF__"


class ViewCache:
    """Built values by name, each valid for its ``key``; one thread rebuilds a stale one while the others keep
    serving the previous value (no herd of rebuilds under load). Two uses: the views' bodies and tables, keyed
    on ``GovernanceContext.key()`` (valid ``CACHE_SECONDS``, or until a change is made here: local state
    written by another process, the CLI or the remediator, shows within a second); and each login's finished
    page, keyed on the tables it was built from (``size``: at most that many, the least recently built out).

    A hit takes no lock (one dict read; writers replace whole entries): a lock here was where 20 clients
    queued, the GIL preempting its holder and every other request thread then blocking on it."""

    def __init__(self, size: int | None = None) -> None:
        self._data: dict[Any, tuple[Any, Any]] = {}
        self._building: set[Any] = set()
        self._size = size
        self._lock = threading.Lock()

    def get(self, name: Any, key: Any, build: Callable[[], Any]) -> Any:
        hit = self._data.get(name)
        if hit is not None and (hit[0] is key or hit[0] == key):
            return hit[1]
        with self._lock:
            hit = self._data.get(name)
            if hit is not None and (hit[0] is key or hit[0] == key):
                return hit[1]
            if hit is not None and name in self._building:
                return hit[1]
            self._building.add(name)
        try:
            value = build()
            with self._lock:
                self._data.pop(name, None)  # re-inserted last: the dict's order is the order of building
                self._data[name] = (key, value)
                while self._size is not None and len(self._data) > self._size:
                    del self._data[next(iter(self._data))]
            return value
        finally:
            with self._lock:
                self._building.discard(name)


class Body:
    """A built response body as bytes, with its gzip variant made once, the first time a client asks for it."""

    __slots__ = ("_gz", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._gz: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gz is None:  # two threads may both make it: same bytes, no harm
            self._gz = gzip.compress(self.raw, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gz


GZIP_LEVEL = 6  # 152 KB page → ~15 KB in ~1.5 ms, once per built body
SESSION_PAGES = 64  # finished pages kept per (role, user, CSRF token); a few operators each, a few KB gzipped


def send(body: Body, mimetype: str) -> Response:
    """``body`` gzipped when the client accepts it (browsers always do), else as is; ``Vary: Accept-Encoding``
    either way so a cache in between keeps the two apart."""
    zipped = request.accept_encodings["gzip"] > 0
    resp = Response(body.gzipped() if zipped else body.raw, mimetype=mimetype)
    if zipped:
        resp.headers["Content-Encoding"] = "gzip"
    resp.vary.add("Accept-Encoding")
    return resp


class GovernanceContext:
    """What the views need; ``app.extensions["govheal.governance"]``."""

    def __init__(self, governance: Governance, sources: Sources, tokens: auth.Tokens, refresh: float,
                 default_tz: str) -> None:
        self.governance = governance
        self.sources = sources
        self.tokens = tokens
        self.refresh = refresh
        self.default_tz = default_tz
        self.cache = ViewCache()
        self.pages = ViewCache(size=SESSION_PAGES)  # each login's finished page (its name and CSRF token are in it)

    def key(self) -> tuple[Any, ...]:
        snap = self.sources.prom()
        return (int(time.monotonic() / CACHE_SECONDS), self.governance.changes, snap.now_at, snap.history_at,
                snap.error)


def _error(status: int, message: str, field: str = "") -> tuple[Response, int]:
    body = {"error": message}
    if field:
        body["field"] = field
    resp = jsonify(body)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="govheal-admin"'
    return resp, status


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _session_role() -> str | None:
    return session.get("role") if session.get("user") else None


# ---------------------------------------------------------------------------------------------
# API


class SwitchRequest(BaseModel):
    """``POST /api/agents/<name>/switch`` (docs/governance.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: str = Field(description="mute | pause | maintenance | enable")
    owner: str
    reason: str
    for_: str | float | None = Field(None, alias="for")
    until: str | None = None
    start: str | None = None
    every: str | None = None


@api.before_request
def api_auth() -> Any:
    token = _bearer()
    role = ctx().tokens.role(token) if token else None
    if token and role is None:
        return _error(401, "invalid bearer token for the governance API (admin.token_file / GOVHEAL_ADMIN_TOKEN, "
                           "admin.read_token_file / GOVHEAL_READ_TOKEN)", "Authorization")
    if role is None and request.method == "GET":
        role = _session_role()
    if role is None:
        return _error(401, "send 'Authorization: Bearer <admin or read token>'", "Authorization")
    if request.method != "GET" and role != auth.ADMIN:
        return _error(403, "changing a switch needs the admin token (the read token only reads)", "Authorization")
    if request.method != "GET" and not token:
        return _error(401, "changing a switch through the API needs 'Authorization: Bearer <admin token>'",
                      "Authorization")
    g.role = role
    return None


@api.get("/agents")
def api_agents() -> Any:
    c = ctx()
    body = c.cache.get("api", c.key(), lambda: Body(json.dumps(_timed(lambda: agents(c.sources)),
                                                                ensure_ascii=False).encode()))
    return send(body, "application/json")


@api.get("/agents/<name>")
def api_agent(name: str) -> Any:
    data = agents(ctx().sources, only=name, history=50)
    if not data["agents"]:
        return _error(404, f"unknown agent {name!r}; GET /api/agents lists them", "name")
    return jsonify(data["agents"][0])


@api.post("/agents/<name>/switch")
def api_switch(name: str) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "send a JSON object, e.g. {\"kind\": \"pause\", \"for\": \"2h\", \"owner\": \"alice\", "
                           "\"reason\": \"deploying\"}")
    try:
        req = SwitchRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "body"
        return _error(400, f"{field}: {err['msg']}", field)
    if auth.check_name(req.owner) is None:
        return _error(400, "owner: letters, digits, space and ._@- only (at most 64)", "owner")
    try:
        change = apply(name, req.kind, owner=req.owner, reason=req.reason, via="api", duration=req.for_,
                       until=req.until, start=req.start, every=req.every)
    except GovernanceError as exc:
        status = 404 if exc.field == "agent" else 400
        return _error(status, str(exc), exc.field)
    return jsonify(change.to_dict()), 200


def apply(name: str, kind: str, *, owner: str, reason: str, via: str, duration: Any = None, until: str | None = None,
          start: str | None = None, every: str | None = None) -> Any:
    """The one place the page and the API turn their inputs into a change."""
    c = ctx()
    if kind == "enable":
        return c.governance.enable(name, owner=owner, reason=reason, via=via)
    seconds = None
    if duration not in (None, ""):
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise GovernanceError(f"for: {exc}", "for") from None
    return c.governance.set(name, kind, owner=owner, reason=reason, via=via, duration=seconds,
                            until=parse_time(until, c.default_tz) if until else None,
                            start=parse_time(start, c.default_tz, "start") if start else None,
                            every=every or None)


def c_am_missing() -> bool:
    am = ctx().governance.am
    return am is None or not am.members


def _timed(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = build()
    ctx().sources.latency.add(time.perf_counter() - t0)
    return data


# ---------------------------------------------------------------------------------------------
# Page



def strip_html(cells: list[dict[str, Any]]) -> Markup:
    """The 24 h strip: runs of equal cells as one element each (a healthy day is one element, not 96)."""
    if not cells:
        return Markup('<span class="strip none">no history from Prometheus</span>')
    out: list[str] = []
    run_cls, run = "", 0
    for c in [*cells, None]:
        if c is None:
            cls = ""
        else:
            v = c["healthy"]
            cls = "m" if c["maintenance"] else "n" if v is None else "g" if v >= 0.999 else "r" if v < 0.5 else "a"
        if cls != run_cls and run:
            out.append(f'<b class={run_cls} style="width:{2 * run}px"></b>')
            run = 0
        run_cls, run = cls, run + 1
    # only our own constant class names and numbers go in: nothing from the request or the store
    return Markup('<span class="strip" title="last 24 h, 15 min per cell, oldest left">' +  # noqa: S704
                  "".join(out) + "</span>")


def _login_required() -> Any:
    if _session_role() is None:
        if request.method == "GET":
            return redirect(url_for("governance.login", next=request.path))
        return render_template("governance/login.html", error="log in first", csrf=_csrf(), next=request.path), 401
    return None


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = auth.new_csrf()
    return str(session["csrf"])


def _check_csrf() -> bool:
    return auth.csrf_ok(request.form.get("csrf"), session.get("csrf"))


@page.get("")
@page.get("/")
def board() -> Any:
    denied = _login_required()
    if denied is not None:
        return denied
    t0 = time.perf_counter()
    c = ctx()
    role, user, csrf = session.get("role"), session.get("user"), _csrf()
    message, error = session.pop("message", None), session.pop("error", None)
    data, tables = c.cache.get(f"page:{role}", c.key(), lambda: _tables(role))

    def build() -> Body:
        body = Body(render_template("governance/page.html", data=data, tables=tables.replace(CSRF_MARK, csrf),
                                    csrf=csrf, user=user, role=role, refresh=int(c.refresh), message=message,
                                    error=error).encode())
        body.gzipped()  # here, by the one thread that builds: every browser asks for gzip
        return body

    # a one-time message is rendered for this view only; otherwise this login's page for these tables
    body = build() if message or error else c.pages.get((role, user, csrf), tables, build)
    resp = send(body, "text/html")
    c.sources.latency.add(time.perf_counter() - t0)
    return resp


def _tables(role: str | None) -> tuple[dict[str, Any], Markup]:
    """The agent tables (the costly part of the page), with a mark where each form's CSRF token goes."""
    data = agents(ctx().sources)
    histories = ctx().governance.histories(5)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in data["agents"]:
        a["strip_html"] = strip_html(a["uptime_strip"])
        a["history"] = histories.get(a["name"], [])
        groups.setdefault((a["role"] or "(no role)", a["node"]), []).append(a)
    tables = render_template("governance/tables.html", groups=sorted(groups.items()), csrf=CSRF_MARK, role=role)
    return data, Markup(tables)  # noqa: S704 - rendered by our autoescaping template


@page.get("/login")
def login() -> Any:
    return render_template("governance/login.html", error=None, csrf=_csrf(), next=request.args.get("next", ""),
                           configured=ctx().tokens.admin is not None or ctx().tokens.read is not None)


@page.post("/login")
def login_post() -> Any:
    if not _check_csrf():
        return render_template("governance/login.html", error="the form expired (CSRF token missing or wrong); "
                               "try again", csrf=_csrf(), next=""), 403
    name = auth.check_name(request.form.get("name"))
    role = ctx().tokens.role(request.form.get("token"))
    if name is None or role is None:
        why = "give your name (letters, digits, space and ._@-)" if name is None else "wrong token"
        return render_template("governance/login.html", error=why, csrf=_csrf(), next=""), 401
    session.clear()
    session.permanent = True
    session.update(user=name, role=role, csrf=auth.new_csrf())
    target = request.form.get("next") or ""
    return redirect(target if target.startswith("/ops/governance") else url_for("governance.board"))


@page.post("/logout")
def logout() -> Any:
    if _check_csrf():
        session.clear()
    return redirect(url_for("governance.login"))


@page.post("/agents/<name>/switch")
def switch(name: str) -> Any:
    denied = _login_required()
    if denied is not None:
        return denied
    if not _check_csrf():
        return render_template("governance/login.html", error="refused: the form's CSRF token is missing or wrong; "
                               "reload the page and try again", csrf=_csrf(), next=""), 403
    if session.get("role") != auth.ADMIN:
        session["error"] = "you are logged in with the read token: changing switches needs the admin token"
        return redirect(url_for("governance.board")), 303
    f = request.form
    kind = f.get("kind", "")
    try:
        change = apply(name, kind, owner=str(session["user"]), reason=f.get("reason", ""), via="page",
                       duration=f.get("for") or None, until=f.get("until") or None, every=f.get("every") or None)
    except GovernanceError as exc:
        session["error"] = f"{name}: {exc}"
    else:
        pending = ""
        if change.to_dict()["pending"]:
            pending = (" (no Alertmanager configured: the switch applies locally only)"
                       if c_am_missing() else " (silence pending: Alertmanager unreachable, it lands when it is back)")
        session["message"] = f"{name}: {change.op} by {session['user']}{pending}"
    return redirect(url_for("governance.board") + f"#agent-{name}"), 303
