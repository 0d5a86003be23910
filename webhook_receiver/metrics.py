"""The receiver's own metrics, on the dedicated registry it shares with the remediator and the bridge."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from govheal.state import WriteHealth
from webhook_receiver.routing import AlertOutcome

# Statuses the webhook endpoints answer with on purpose (docs/receiver.md); all created at 0.
REQUEST_STATUSES = ("200", "400", "401", "404", "405", "413", "422", "431", "500", "503")


class DispatchStage(StrEnum):
    """``govheal_dispatch_errors_total{stage}``: which step of handling an accepted alert raised."""

    NOTIFY = "notify"
    REMEDIATE = "remediate"


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("govheal_webhook_requests", "Webhook requests (/alertmanager, /watchdog) by "
                                "HTTP status.", ["status"], registry=registry)
        self.alerts = Counter("govheal_webhook_alerts", "Alerts received, by what the receiver did with them.",
                              ["outcome"], registry=registry)
        self.request_seconds = Histogram(
            "govheal_webhook_request_duration_seconds", "Time to answer a webhook request (accept, not act).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=registry)
        self.queue_depth = Gauge("govheal_dispatch_queue_depth", "Accepted alerts waiting for or in dispatch.",
                                 registry=registry)
        self.dispatch_errors = Counter("govheal_dispatch_errors", "Dispatch steps that raised, by stage.",
                                       ["stage"], registry=registry)
        self.watchdog_last_seen = Gauge("govheal_watchdog_last_seen_timestamp_seconds",
                                        "When the last Watchdog heartbeat arrived (0 = none yet).",
                                        registry=registry)
        self.pipeline_silent = Gauge("govheal_alert_pipeline_silent",
                                     "1 while the dead-man's switch considers the alert pipeline silent.",
                                     registry=registry)
        for status in REQUEST_STATUSES:
            self.requests.labels(status)
        for outcome in AlertOutcome:
            self.alerts.labels(outcome)
        for stage in DispatchStage:
            self.dispatch_errors.labels(stage)


class StateCollector(Collector):
    """Whether the state file takes writes (a full disk stops remediation): read at scrape time."""

    def __init__(self, health: WriteHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("govheal_state_writable", "1 while writes to the state file succeed, 0 while the "
                                "disk refuses them (full, I/O error, read-only).", value=int(self.health.writable))
        yield CounterMetricFamily("govheal_state_write_errors", "Writes to the state file the disk refused.",
                                  value=self.health.errors)
