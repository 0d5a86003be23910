"""The servers govheal runs and talks to: ``listen:``, ``exporter:``, ``receiver:``, ``notifications:``
(the alert bridge's channels; build.py puts each channel type's own model in), ``prometheus:``, ``alertmanager:``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from govheal.config.agents import MIN_PROBE_INTERVAL
from govheal.config.common import NAME_RE, Strict
from govheal.types import Duration, HttpUrl, Listen


class ListenSpec(Strict):
    exporter: Listen = "127.0.0.1:9826"
    receiver: Listen = "127.0.0.1:9827"


class ExporterSpec(Strict):
    probe_workers: int = Field(32, ge=1, le=512, description="concurrent health probes (one per agent at a time)")
    scrape_budget: Duration = Field(
        0.25, gt=0, description="unused since probes run on their own schedule; kept so existing files load"
    )
    probe_interval: Duration = Field(
        0.25, ge=MIN_PROBE_INTERVAL, le=3600,
        description="default time between health probe starts of one agent (health.interval overrides)")
    consecutive_failures: int = Field(
        3, ge=1, le=100,
        description="default failed probes in a row before AgentUnhealthy (health.consecutive_failures overrides)")
    process_interval: Duration = Field(
        0.1, ge=0.02, le=60, description="how often every agent's process is looked at (pid gone → AgentDown)")


class ChannelSpec(Strict):
    """What every channel's model (``Spec`` beside its notifier in webhook_receiver/bridge/notifiers/) has."""

    type: str
    min_severity: Literal["info", "warning", "critical"] = "info"
    enabled: bool = True
    agents: list[str] = Field(default_factory=list, description="only notices about these agents (empty: all)")
    alertnames: list[str] = Field(default_factory=list, description="only these alerts (empty: all)")


class NotificationsSpec(Strict):
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)  # the built model: each channel's own Spec
    runbook_base_url: HttpUrl | None = Field(
        None, description="relative runbook_url annotations (docs/runbooks.md#x) are links under this URL")


class ReceiverSpec(Strict):
    token_file: str | None = Field(None, description="bearer token for POST /alertmanager (or GOVHEAL_WEBHOOK_TOKEN)")
    max_body_bytes: int = Field(1_048_576, ge=1024)
    workers: int = Field(4, ge=1, le=64)
    threads: int = Field(8, ge=1, le=64, description="waitress request threads")
    deadman_timeout: Duration = Field(180.0, gt=0, description="no Watchdog for this long → CRIT")
    alertmanager_unreachable_after: Duration = Field(
        60.0, ge=0, description="no answer from any Alertmanager for this long → CRIT straight to the channels "
                                "(0 = do not watch)")
    max_connections: int = Field(1000, ge=10, le=65536, description="open connections the server accepts")
    max_connections_per_ip: int = Field(100, ge=1, le=65536,
                                        description="of those, from one non-loopback address")
    request_timeout: Duration = Field(10.0, gt=0, le=600,
                                      description="a request must arrive whole (headers and body) within this")
    peers: list[str] = Field(
        default_factory=list, description="the other nodes whose receivers get the same alerts from one Alertmanager "
        "cluster: this receiver then announces only its own node's alerts, and a peer's while that peer's receiver "
        "is down (docs/ha.md)")
    takeover_grace: Duration = Field(
        10.0, ge=0, description="a peer's alerts that started up to this long before its ReceiverDown are announced "
        "by its deputy too (a scrape and an evaluation interval: the fleet profile's 5 s + 5 s)")
    replica_skew: Duration = Field(
        0.0, ge=0, le=300, description="an HA pair of Prometheus servers: one alert may arrive with startsAt this far "
        "apart (one scrape plus one evaluation interval); every startsAt within it of an open incident is that "
        "incident. 0: one Prometheus")

    @field_validator("peers")
    @classmethod
    def _peer_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.match(NAME_RE, name):
                raise ValueError(f"{name!r} is not a node name; use letters, digits, '_', '.', '-'")
        if len(set(v)) != len(v):
            raise ValueError("a peer is listed twice; list each node once")
        return v


class PrometheusSpec(Strict):
    url: HttpUrl | None = Field(
        None, description="base URL of Prometheus (with its route prefix); default: the one `govheal up` started")


class AlertmanagerSpec(Strict):
    urls: list[HttpUrl] = Field(
        default_factory=list, description="every Alertmanager of the cluster; default: the ones `govheal up` started")

    @field_validator("urls")
    @classmethod
    def _each_once(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for url in v:
            key = url.rstrip("/")
            if key in seen:
                raise ValueError(f"{url!r} is listed twice; list each Alertmanager once")
            seen.add(key)
        return v
