"""Governance on the receiver: the ``/ops/governance`` page, ``/api/agents``, the silence retry loop, the mute
feed and the notice filter (docs/governance.md). :func:`build` makes the parts, :func:`install` mounts them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask

from govheal.client import Alertmanagers, Prometheus, new_session
from govheal.config import Config
from govheal.endpoints import resolve
from govheal.governance.defaults import local_zone, page_url
from govheal.governance.recurrence import utc_text
from govheal.governance.service import Governance
from webhook_receiver.governance import auth
from webhook_receiver.governance.board import Latency, Sources
from webhook_receiver.governance.loop import GovernanceLoop, GovernedBridge
from webhook_receiver.governance.promcache import PromCache
from webhook_receiver.governance.views import GovernanceContext, api, page

log = logging.getLogger("govheal.receiver.governance")


@dataclass
class Parts:
    governance: Governance
    loop: GovernanceLoop | None
    cache: PromCache
    tokens: auth.Tokens
    sources: Sources

    def start(self) -> None:
        self.cache.start()
        if self.loop is not None:
            self.loop.start()

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        self.cache.stop()


def build(config: Config, conn: sqlite3.Connection, *, clock: Callable[[], float], webhook_token: str | None,
          store: Any,
          feed: Callable[[list[dict[str, Any]]], None] | None, audit: Any = None,
          alertmanagers: Any = None, prometheus: Any = None, tokens: auth.Tokens | None = None) -> Parts:
    """The governance parts of one receiver. ``conn``: the state's connection for :data:`GOVERNANCE`;
    ``alertmanagers``/``prometheus`` default to the config's."""
    session = new_session()
    where = resolve(config)  # the config's prometheus/alertmanager keys, else what a running `govheal up` started
    urls = list(where.alertmanagers)
    am = alertmanagers if alertmanagers is not None else (Alertmanagers.from_urls(urls, session, timeout=2.0)
                                                          if urls else None)
    purl = where.prometheus
    prom = prometheus if prometheus is not None else (Prometheus(purl, session, timeout=5.0) if purl else None)
    tz = config.admin.timezone or local_zone()
    gov = Governance(config, conn, alertmanager=am, audit=audit, clock=clock,
                     page_url=page_url(config), horizon=config.admin.silence_horizon, default_tz=tz)
    cache = PromCache(prom, clock=clock, interval=config.admin.prometheus_refresh)
    links = {}
    if config.admin.grafana_url:
        base = config.admin.grafana_url.rstrip("/")
        links["Grafana: governance"] = f"{base}/d/govheal-governance"
        links["Grafana: alert bridge"] = f"{base}/d/govheal-bridge"
    am_link = config.admin.alertmanager_url or (urls[0] if urls else None)
    if am_link:
        links["Alertmanager"] = am_link.rstrip("/") + "/#/alerts"
        links["Silences"] = am_link.rstrip("/") + "/#/silences"
    if purl:
        links["Prometheus"] = purl.rstrip("/") + "/alerts"
    sources = Sources(config=config, governance=gov, store=store, prom=cache.snapshot, latency=Latency(),
                      clock=clock, links=links)
    loop = GovernanceLoop(gov, interval=config.admin.sync_interval, feed=feed) if feed is not None else None
    return Parts(gov, loop, cache, tokens or auth.load_tokens(config, webhook_token), sources)


def filtered(bridge: Any, parts: Parts) -> GovernedBridge:
    return GovernedBridge(bridge, parts.governance)


def install(app: Flask, parts: Parts) -> None:
    """Mount the page and the API on ``app``; the session key comes from the state dir."""
    config = parts.sources.config
    app.secret_key = auth.session_key(config)
    app.session_interface = auth.SlidingSession()
    app.config.update(SESSION_COOKIE_NAME="govheal_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=page_url(config).startswith("https:"),
                      PERMANENT_SESSION_LIFETIME=timedelta(seconds=config.admin.session_lifetime))
    app.extensions["govheal.governance"] = GovernanceContext(parts.governance, parts.sources, parts.tokens,
                                                             config.admin.refresh, parts.governance.default_tz)
    app.jinja_env.filters["duration"] = human
    app.jinja_env.filters["utc"] = lambda t: utc_text(t) if t else ""
    app.register_blueprint(page)
    app.register_blueprint(api)


def human(seconds: float | None) -> str:
    """3725 → "1h 2m": the two largest units."""
    if seconds is None:
        return "?"
    s, parts = int(max(0, seconds)), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size}{unit}")
            s %= size
    return " ".join(parts[:2])


def make_feed(services_getter: Callable[[], Any]) -> Callable[[list[dict[str, Any]]], None]:
    """Alerts from the mute feed into the inbox and dispatch, exactly as the webhook takes them."""
    from webhook_receiver.inbox import NewAlert
    from webhook_receiver.models import Alert
    from webhook_receiver.routing import route

    def feed(bodies: list[dict[str, Any]]) -> None:
        svc = services_getter()
        alerts = [Alert.model_validate(b) for b in bodies]
        routed = [NewAlert(a, route(svc.config, a), "governance:mute", 0) for a in alerts]
        entries = svc.inbox.accept(routed, svc.clock())
        for new, entry in zip(routed, entries, strict=True):
            svc.metrics.alerts.labels(new.routing.outcome if entry is not None else "duplicate").inc()
            if entry is not None and entry.state == "pending":
                svc.dispatcher.enqueue(entry)
        log.info("governance: fed %d alert(s) held by mute silences to dispatch", len(bodies))
    return feed
