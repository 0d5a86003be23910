"""Pure snapshot → metric families, and the collector that does it on every scrape (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from exporter.snapshot import READ_ERROR_REASONS, SWITCH_KINDS, AgentSnapshot, Snapshot
from govheal.probe import PROBE_REASONS

AGENT_LABELS = ("agent", "node")


def build(snapshot: Snapshot) -> list[Metric]:
    """Every metric family for one snapshot; no I/O, so a test can feed a hand-made snapshot."""
    g = GaugeMetricFamily
    info = g("govheal_agent_info", "Agent metadata; join on (agent, node) for role and criticality.",
             labels=[*AGENT_LABELS, "role", "critical", "matcher"])
    up = g("govheal_agent_up", "1 if the agent's process is running (a zombie is not); "
           "for a remote agent, 1 if its health endpoint answers HTTP.", labels=AGENT_LABELS)
    healthy = g("govheal_agent_healthy", "1 if the health check passes; equals govheal_agent_up without a check.",
                labels=AGENT_LABELS)
    enabled = g("govheal_agent_enabled", "1 unless a maintenance switch is in effect for the agent (its alerts "
                "fire; a paused agent stays 1).", labels=AGENT_LABELS)
    switch = g("govheal_agent_switch", "1 for each governance switch kind in effect for the agent, else 0.",
               labels=[*AGENT_LABELS, "kind"])
    start = g("govheal_agent_start_time_seconds", "Start time of the agent's process since the Unix epoch.",
              labels=AGENT_LABELS, unit="seconds")
    cpu = CounterMetricFamily("govheal_agent_cpu_seconds", "User and system CPU time of the agent's process.",
                              labels=AGENT_LABELS, unit="seconds")
    rss = g("govheal_agent_resident_memory_bytes", "Resident memory of the agent's process.",
            labels=AGENT_LABELS, unit="bytes")
    pdur = g("govheal_agent_probe_duration_seconds", "Duration of the last health probe (the timeout when it "
             "timed out).", labels=AGENT_LABELS, unit="seconds")
    pfail = g("govheal_agent_probe_failure", "1 for the reason the last health probe failed, else 0.",
              labels=[*AGENT_LABELS, "reason"])
    pstatus = g("govheal_agent_probe_http_status_code", "HTTP status of the last health probe (0: no answer).",
                labels=AGENT_LABELS)
    rerr = CounterMetricFamily("govheal_agent_read_errors", "Process reads that failed, by reason; the scrape "
                               "still succeeds.", labels=[*AGENT_LABELS, "reason"])
    streak = g("govheal_agent_health_consecutive_failures", "Health probes failed in a row (0 after one passes).",
               labels=AGENT_LABELS)
    threshold = g("govheal_agent_health_consecutive_failures_threshold", "Failed probes in a row at which "
                  "AgentUnhealthy fires (health.consecutive_failures).", labels=AGENT_LABELS)
    serving = g("govheal_agent_serving", "1 while the agent's fallback serves in its place (after a failover, until "
                "an operator fails back), 0 while the agent serves itself; agents with a fallback only.",
                labels=[*AGENT_LABELS, "fallback"])
    probed = g("govheal_agent_health_last_probe_timestamp_seconds", "When the last health probe finished, "
               "since the Unix epoch (how stale the probe series are).", labels=AGENT_LABELS, unit="seconds")
    for a in snapshot.agents:
        _agent(a, info, up, healthy, enabled, start, cpu, rss, pdur, pfail, pstatus, rerr)
        for kind in SWITCH_KINDS:
            switch.add_metric([a.name, a.node, kind], 1.0 if kind in a.switches else 0.0)
        _health(a, streak, threshold, probed)
        if a.fallback is not None:
            serving.add_metric([a.name, a.node, a.fallback], 1.0 if a.serving else 0.0)
    meta_ok = g("govheal_exporter_collector_success", "1 if the reading stage finished without an internal error.",
                labels=["collector"])
    meta_dur = g("govheal_exporter_collector_duration_seconds", "Wall time of the stage's last round (probe: the "
                 "longest of the agents' last probes).", labels=["collector"], unit="seconds")
    meta_at = g("govheal_exporter_collector_last_run_timestamp_seconds", "When the stage last finished a round "
                "(probe: the newest probe), since the Unix epoch.", labels=["collector"], unit="seconds")
    for c in snapshot.collectors:
        meta_ok.add_metric([c.name], 1.0 if c.success else 0.0)
        meta_dur.add_metric([c.name], c.duration)
        if c.finished_at is not None:
            meta_at.add_metric([c.name], c.finished_at)
    return [info, up, healthy, enabled, switch, serving, start, cpu, rss, pdur, pfail, pstatus, rerr, streak, threshold,
            probed, meta_ok, meta_dur, meta_at]


def _health(a: AgentSnapshot, streak: GaugeMetricFamily, threshold: GaugeMetricFamily,
            probed: GaugeMetricFamily) -> None:
    if a.failure_threshold is None:
        return  # no health check
    key = [a.name, a.node]
    streak.add_metric(key, float(a.consecutive_failures))
    threshold.add_metric(key, float(a.failure_threshold))
    if a.probed_at is not None:
        probed.add_metric(key, a.probed_at)


def _agent(a: AgentSnapshot, info: GaugeMetricFamily, up: GaugeMetricFamily, healthy: GaugeMetricFamily,
           enabled: GaugeMetricFamily, start: GaugeMetricFamily, cpu: CounterMetricFamily, rss: GaugeMetricFamily,
           pdur: GaugeMetricFamily, pfail: GaugeMetricFamily, pstatus: GaugeMetricFamily,
           rerr: CounterMetricFamily) -> None:
    key = [a.name, a.node]
    info.add_metric([*key, a.role, "true" if a.critical else "false", a.matcher], 1.0)
    up.add_metric(key, float(a.up))
    healthy.add_metric(key, float(a.healthy))
    enabled.add_metric(key, float(a.enabled))
    p = a.process
    if p is not None and p.running:
        if p.start_time is not None:
            start.add_metric(key, p.start_time)
        if p.cpu_seconds is not None:
            cpu.add_metric(key, p.cpu_seconds)
        if p.rss_bytes is not None:
            rss.add_metric(key, float(p.rss_bytes))
    if a.probe is not None:
        pdur.add_metric(key, a.probe.duration)
        pstatus.add_metric(key, float(a.probe.status or 0))
        for reason in PROBE_REASONS:
            pfail.add_metric([*key, reason], 1.0 if a.probe.reason == reason else 0.0)
    if not a.remote:
        for reason in READ_ERROR_REASONS:
            rerr.add_metric([*key, reason], float(a.read_errors.get(reason, 0)))


class SnapshotCollector(Collector):
    """Builds fresh families from ``source()`` on every scrape; register it in a dedicated registry."""

    def __init__(self, source: Callable[[], Snapshot], registry: CollectorRegistry | None = None) -> None:
        self.source = source
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield from build(self.source())

    def describe(self) -> list[Metric]:
        return []  # do not scrape at registration time
