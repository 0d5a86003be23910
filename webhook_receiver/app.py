"""Flask application factory: one blueprint per surface (webhook, health); ``/metrics`` mounted beside it.

``create_app`` wires the inbox, dispatcher and dead-man's switch around the given (or real) remediator
and bridge, all sharing one registry. The webhook answers once alerts are in the inbox, never after
restarts or deliveries.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from prometheus_client import CollectorRegistry, make_wsgi_app
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from govheal.config import Config
from govheal.slots import SLOTS, ReportCollector, SlotStore
from govheal.state import State, log_failure
from govheal.types import format_duration
from webhook_receiver.auth import bearer_ok, load_token
from webhook_receiver.canary import CANARY, Canary
from webhook_receiver.deadman import Deadman
from webhook_receiver.dispatch import Dispatcher
from webhook_receiver.ha import HA, Announcer, Episodes, receiver_down_alerts
from webhook_receiver.inbox import Inbox, NewAlert
from webhook_receiver.metrics import ReceiverMetrics, StateCollector
from webhook_receiver.models import Alert, PayloadError, parse_payload
from webhook_receiver.routing import AlertOutcome, route
from webhook_receiver.server import too_large_message
from webhook_receiver.upstream import AlertmanagerWatch, Probe, WatchCollector, alertmanager_health

log = logging.getLogger("govheal.receiver")
WEBHOOK_PATHS = ("/alertmanager", "/watchdog")
INBOX_RETENTION = 30 * 86400  # finished rows (idempotency keys) kept this long
UNKNOWN_AGENT_WARN_EVERY = 3600.0  # one warning per unknown agent name this often
UNKNOWN_AGENT_NAMES = 1000  # names remembered for that (label values are untrusted: bounded)


class UnknownAgents:
    """Warn once per ``every`` about each agent name that no agent in the config has (then stay quiet)."""

    def __init__(self, config: Config, clock: Callable[[], float], every: float = UNKNOWN_AGENT_WARN_EVERY) -> None:
        self.known = ", ".join(a.name for a in config.agents)
        self.clock = clock
        self.every = every
        self.warned: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, name: str) -> None:
        now = self.clock()
        with self._lock:
            if now - self.warned.get(name, float("-inf")) < self.every:
                return
            if len(self.warned) >= UNKNOWN_AGENT_NAMES:
                self.warned.pop(min(self.warned, key=self.warned.__getitem__))
            self.warned[name] = now
        log.warning("webhook: an alert names agent %r, which is not in the config (agents: %s): it is told, not "
                    "remediated. Add the agent under agents: or fix the alert's agent label (warned at most every "
                    "%s per agent; govheal_webhook_alerts_total{outcome=\"ignored_unknown_agent\"} counts them)",
                    name[:200], self.known[:500], format_duration(self.every))


@dataclass
class Services:
    """Everything behind the app; ``app.extensions["govheal"]``."""

    config: Config
    inbox: Inbox
    dispatcher: Dispatcher
    deadman: Deadman
    watch: AlertmanagerWatch
    metrics: ReceiverMetrics
    registry: CollectorRegistry
    remediator: Any
    bridge: Any
    token: str
    clock: Callable[[], float]
    state: State
    unknown_agents: UnknownAgents
    episodes: Episodes
    announcer: Announcer
    owns_state: bool = False
    governance: Any = None  # webhook_receiver.governance.Parts: page, API, silence loop

    def start(self) -> None:
        try:
            forgotten = self.inbox.prune(self.clock() - INBOX_RETENTION)
        except sqlite3.Error as exc:  # a full disk: start anyway (not ready), prune at the next start
            log_failure(log, "inbox: could not prune old rows", exc)
            forgotten = 0
        if forgotten:
            log.info("inbox: forgot %d finished alert(s) older than %d days", forgotten, INBOX_RETENTION // 86400)
        try:
            self.episodes.prune(self.clock() - INBOX_RETENTION)
            self.announcer.prune(self.clock() - INBOX_RETENTION)
        except sqlite3.Error as exc:
            log_failure(log, "ha: could not prune old rows", exc)
        self.sync_peers()
        if hasattr(self.bridge, "start"):
            self.bridge.start()
        self.dispatcher.start()
        self.deadman.start()
        self.watch.start()
        if self.governance is not None:
            self.governance.start()

    def count_server_error(self, path: str, status: int) -> None:
        """An answer the HTTP server gave itself (waitress: body over the limit, headers too large)."""
        if path in WEBHOOK_PATHS:
            self.metrics.requests.labels(str(status)).inc()

    def sync_peers(self) -> None:
        """Several nodes: learn from Alertmanager which receivers are down now (ours too: while we were down,
        our deputy spoke for us), before pending work is picked up again. Unreachable: keep what we know."""
        if not self.announcer.enabled:
            return
        from govheal.client import ServerError, new_session
        from govheal.endpoints import NoEndpoint, alertmanagers_for

        session = new_session()
        try:
            for member in alertmanagers_for(self.config, session, timeout=2.0).members:
                try:
                    active = member.alerts(['alertname="ReceiverDown"'], silenced=False, inhibited=False)
                except ServerError as exc:
                    log.info("ha: %s", exc)
                    continue
                self.announcer.sync(receiver_down_alerts(active))
                return
            log.warning("ha: no Alertmanager answered; which peer receivers are down is what this receiver knew")
        except NoEndpoint as exc:
            log.warning("ha: %s", exc)
        except sqlite3.Error as exc:
            log_failure(log, "ha: could not record which peer receivers are down", exc)
        finally:
            session.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful: finish what workers hold (bounded), flush the bridge, close the remediator."""
        self.deadman.stop()
        self.watch.stop()
        if self.governance is not None:
            self.governance.stop()
        self.dispatcher.stop(timeout)
        for part in (self.bridge, self.remediator):
            closer = getattr(part, "stop", None) or getattr(part, "close", None)
            if closer:
                try:
                    closer()
                except Exception:
                    log.exception("stop: %s did not stop cleanly", type(part).__name__)
        if self.owns_state:
            self.state.close()


def services() -> Services:
    return current_app.extensions["govheal"]


def error(status: int, message: str, field: str = "") -> tuple[Any, int]:
    body = {"error": message}
    if field:
        body["field"] = field
    return jsonify(body), status


# ---------------------------------------------------------------------------------------------
# Webhook surface

webhook = Blueprint("webhook", __name__)


@webhook.before_request
def authenticate() -> Any:
    g.started = time.perf_counter()
    ok = bearer_ok(request.headers.get("Authorization"), services().token)
    if ok is None:
        resp, status = error(401, "missing bearer token: send 'Authorization: Bearer <token>' (Alertmanager: "
                                  "http_config.authorization.credentials_file)", "Authorization")
    elif not ok:
        resp, status = error(401, "invalid bearer token", "Authorization")
    else:
        return None
    resp.headers["WWW-Authenticate"] = 'Bearer realm="govheal"'
    return resp, status


def read_body() -> bytes:
    """The body, at most ``max_body_bytes``: werkzeug checks Content-Length; a chunked body is cut at the
    limit by the stream wrapper, so one more byte from the server's buffer tells us it was longer."""
    data = request.get_data(cache=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(data) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data


def read_payload() -> Any:
    try:
        return parse_payload(read_body())
    except PayloadError as exc:
        log.info("webhook: rejected %s status=%d field=%r: %s", request.path, exc.status, exc.field,
                 exc.message)
        raise


@webhook.post("/alertmanager")
def alertmanager() -> Any:
    svc = services()
    payload = read_payload()
    now = svc.clock()
    routed: list[NewAlert] = []
    try:
        alerts = svc.episodes.canonical(payload.alerts)  # an HA Prometheus pair: one incident per episode
        routed = [NewAlert(alert, route(svc.config, alert), payload.groupKey, payload.truncatedAlerts)
                  for alert in alerts]
        entries = svc.inbox.accept(routed, now)
    except Exception as exc:
        log_failure(log, "webhook: could not persist %d alert(s); answered 503", exc, len(routed))
        return error(503, "could not persist the alerts; Alertmanager will retry")
    outcomes = []
    for new, entry in zip(routed, entries, strict=True):
        outcome = new.routing.outcome if entry is not None else AlertOutcome.DUPLICATE
        svc.metrics.alerts.labels(outcome).inc()
        outcomes.append({"fingerprint": new.alert.fingerprint, "status": new.alert.status, "outcome": outcome})
        if entry is not None and entry.state == "pending":
            svc.dispatcher.enqueue(entry)
        elif entry is None and new.routing.acts and new.alert.status == "firing":
            look_again_if_ended(svc, new.alert)
        if entry is not None and outcome is AlertOutcome.IGNORED_UNKNOWN_AGENT and new.routing.agent:
            svc.unknown_agents.seen(new.routing.agent)
    if payload.truncatedAlerts:
        log.warning("webhook: Alertmanager left %d alert(s) of group %r out of this request (webhook "
                    "max_alerts): they were not received; each message of the group says so",
                    payload.truncatedAlerts, payload.groupKey[:200])
    log.info("webhook: group=%r alerts=%d new=%d", payload.groupKey[:200], len(routed),
             sum(e is not None for e in entries))
    return jsonify({"status": "accepted", "alerts": outcomes}), 200


def look_again_if_ended(svc: Services, alert: Alert) -> None:
    """A repeat of a firing alert whose incident has ended: the dispatcher looks again (``repeated``)."""
    try:
        ended = svc.inbox.ended_still_firing(alert.fingerprint, alert.startsAt)
    except Exception as exc:  # the alert is recorded already: a look missed now is the next repeat's
        log_failure(log, "webhook: could not read the inbox for a repeated alert", exc)
        return
    if ended is not None:
        svc.dispatcher.repeated(ended)


@webhook.post("/watchdog")
def watchdog() -> Any:
    read_payload()
    svc = services()
    svc.deadman.beat()
    return jsonify({"status": "ok", "last_seen": svc.deadman.last_seen}), 200


@webhook.errorhandler(PayloadError)
def payload_error(exc: PayloadError) -> Any:
    return jsonify(exc.as_json()), exc.status


# ---------------------------------------------------------------------------------------------
# Ops surface: what the receiver did with recent alerts (same bearer token; label values are data)

ops = Blueprint("ops", __name__, url_prefix="/ops")
ops.before_request(authenticate)


@ops.get("/recent")
def recent() -> Any:
    svc = services()
    try:
        limit = min(500, max(1, int(request.args.get("limit", "50"))))
    except ValueError:
        return error(400, "limit must be an integer from 1 to 500", "limit")
    last_seen, silent_since = svc.inbox.watchdog()
    return jsonify({"node": svc.config.node, "queue_depth": svc.dispatcher.depth(), "counts": svc.inbox.counts(),
                    "watchdog": {"last_seen": last_seen, "silent_since": silent_since},
                    "alerts": svc.inbox.recent(limit)}), 200


# ---------------------------------------------------------------------------------------------
# Health surface

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"}), 200


@health.get("/readyz")
def readyz() -> Any:
    svc = services()
    checks = {"store_writable": svc.state.writable(), "workers_alive": svc.dispatcher.alive(),
              "deadman_alive": svc.deadman.alive(), "alertmanager_watch_alive": svc.watch.alive()}
    ok = all(checks.values())
    return jsonify({"status": "ready" if ok else "not ready", "checks": checks,
                    "queue_depth": svc.dispatcher.depth()}), 200 if ok else 503


# ---------------------------------------------------------------------------------------------


def create_app(config: Config, *, remediator: Any = None, bridge: Any = None, state: State | None = None,
               clock: Callable[[], float] = time.time, registry: CollectorRegistry | None = None,
               token: str | None = None, start: bool = True,
               alertmanager_probe: Callable[[], Probe] | None = None,
               governance: dict[str, Any] | None = None) -> Flask:
    """Build the receiver. Missing collaborators are built from ``config`` (the real remediator and bridge).

    ``state``: the process's state object (``govheal receiver`` opens it once and locks the state dir);
    without one the app opens its own and closes it on ``stop()``. ``start=False`` leaves the workers and
    the dead-man's thread stopped (``app.extensions["govheal"]`` has ``start()``/``stop()``), for tests that
    drive dispatch by hand. ``alertmanager_probe``: how the Alertmanager watch asks whether Alertmanager
    answers (default: the Alertmanagers the config knows, through the client).
    """
    from govheal.governance.service import GOVERNANCE
    from webhook_receiver import governance as gov
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ReceiverMetrics(registry)
    owns_state = state is None
    state = state if state is not None else State.open(config.state_path, clock=clock)
    registry.register(StateCollector(state.health))
    inbox = Inbox(state)
    if remediator is None:
        from remediator.engine import Remediator

        remediator = Remediator(config, clock=clock, registry=registry, state=state)
    if bridge is None:
        from webhook_receiver.bridge import Bridge

        bridge = Bridge(config, state=state, registry=registry, clock=clock)
    send_direct = getattr(bridge, "send_direct", bridge.notify)
    canary = Canary(state.connection(CANARY), send_direct, sink=config.state_path / "canary-sink.jsonl",
                    clock=clock)
    token = token if token is not None else load_token(config)
    holder: dict[str, Services] = {}
    parts = gov.build(config, state.connection(GOVERNANCE), clock=clock, webhook_token=token,
                      store=getattr(remediator, "store", None),
                      feed=gov.make_feed(lambda: holder["svc"]), audit=getattr(remediator, "audit", None),
                      **(governance or {}))
    episodes = Episodes(state.connection(HA), config.receiver.replica_skew, clock=clock)
    announcer = Announcer(config, state.connection(HA), clock=clock, episodes=episodes)
    dispatcher = Dispatcher(config, inbox, remediator=remediator, bridge=gov.filtered(bridge, parts),
                            metrics=metrics, clock=clock, canary=canary, announcer=announcer)
    registry.register(ReportCollector(SlotStore(state.connection(SLOTS), clock=clock)))  # govheal_daily_report_*
    deadman = Deadman(config, inbox, send_direct, clock=clock, metrics=metrics)
    watch = AlertmanagerWatch(config, inbox, send_direct, alertmanager_probe or alertmanager_health(config),
                              clock=clock)
    registry.register(WatchCollector(watch))
    svc = Services(config=config, inbox=inbox, dispatcher=dispatcher, deadman=deadman, watch=watch, metrics=metrics,
                   registry=registry, remediator=remediator, bridge=bridge,
                   token=token, clock=clock, state=state, unknown_agents=UnknownAgents(config, clock),
                   episodes=episodes, announcer=announcer, owns_state=owns_state, governance=parts)
    holder["svc"] = svc

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.receiver.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = config.receiver.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["govheal"] = svc
    app.register_blueprint(webhook)
    app.register_blueprint(health)
    app.register_blueprint(ops)
    gov.install(app, parts)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        messages = {413: too_large_message(config.receiver.max_body_bytes),
                    404: "no such endpoint; Alertmanager posts to /alertmanager and /watchdog",
                    405: f"method {request.method} not allowed here"}
        status = exc.code or 500
        return error(status, messages.get(status, exc.description or exc.name))

    @app.after_request
    def count(resp: Any) -> Any:
        if request.path in WEBHOOK_PATHS:
            svc.metrics.requests.labels(str(resp.status_code)).inc()
            if "started" in g:
                svc.metrics.request_seconds.observe(time.perf_counter() - g.started)
        return resp

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Any:
        log.exception("receiver: unhandled error on %s", request.path)
        return error(500, "internal error; see the receiver log")

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_wsgi_app(registry)})  # type: ignore[method-assign]
    if start:
        svc.start()
    return app
