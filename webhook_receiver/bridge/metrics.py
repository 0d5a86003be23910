"""The bridge's metrics: counters and the latency histogram are instrumented; depth and age are read from
the outbox on every scrape (a collector), so they are right even when another process fills the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class Delivery(StrEnum):
    """``govheal_notifications_total{outcome}`` (docs/notifications.md); every one created at 0 per channel."""

    SENT = "sent"
    FAILED = "failed"
    RETRIED = "retried"
    DROPPED_PERMANENT = "dropped_permanent"
    MERGED = "merged"


LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry, channels: Iterable[str],
                 outbox_stats: Callable[[], dict[str, tuple[int, float]]]) -> None:
        self.notifications = Counter(
            "govheal_notifications_total", "Notices by channel and outcome (see docs/notifications.md).",
            ["channel", "outcome"], registry=registry)
        self.delivery = Histogram(
            "govheal_notification_delivery_seconds", "Accepted → acknowledged by the channel.",
            ["channel"], buckets=LATENCY_BUCKETS, registry=registry)
        self.degraded = Gauge(
            "govheal_channel_degraded", "1 after a permanent error on the channel until a success.",
            ["channel"], registry=registry)
        self.channels = list(channels)
        for ch in self.channels:
            for outcome in Delivery:
                self.notifications.labels(ch, outcome)
            self.delivery.labels(ch)
            self.degraded.labels(ch).set(0)
        registry.register(OutboxCollector(self.channels, outbox_stats))

    def count(self, channel: str, outcome: Delivery, n: int = 1) -> None:
        if n:
            self.notifications.labels(channel, outcome).inc(n)


class OutboxCollector(Collector):
    def __init__(self, channels: list[str], stats: Callable[[], dict[str, tuple[int, float]]]) -> None:
        self.channels = channels
        self.stats = stats

    def collect(self):
        depth = GaugeMetricFamily("govheal_outbox_depth", "Notices queued for the channel.", labels=["channel"])
        age = GaugeMetricFamily("govheal_outbox_oldest_age_seconds",
                                "Age of the oldest queued notice (0 when empty).", labels=["channel"])
        stats = self.stats()
        for ch in self.channels:
            n, oldest = stats.get(ch, (0, 0.0))
            depth.add_metric([ch], n)
            age.add_metric([ch], oldest)
        yield depth
        yield age
