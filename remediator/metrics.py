"""The remediator's metrics (docs/metrics.md "Remediator"); every known label value exists at 0 from start-up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govheal.config import Config
from remediator.api import Action, Circuit, Outcome, SkipReason

BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class CircuitCollector(Collector):
    """``govheal_circuit_state``: read at scrape time, so open → half_open shows without an event."""

    def __init__(self, config: Config, state_of: Callable[[str], str]) -> None:
        self.config = config
        self.state_of = state_of

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("govheal_circuit_state", "Remediation circuit per agent: 1 for the current state "
                              "(closed, open, half_open), 0 for the others.", labels=["agent", "node", "state"])
        for a in self.config.agents:
            current = self.state_of(a.name)
            for s in Circuit:
                g.add_metric([a.name, self.config.node_of(a), s], 1.0 if s == current else 0.0)
        yield g


class RemediatorMetrics:
    def __init__(self, config: Config, registry: CollectorRegistry, state_of: Callable[[str], str]) -> None:
        self.remediations = Counter("govheal_remediations_total", "Remediation actions by outcome.",
                                    ["agent", "node", "action", "outcome"], registry=registry)
        self.duration = Histogram("govheal_remediation_duration_seconds",
                                  "Remediation action time from start to verified (or failed).",
                                  ["agent", "node", "action"], buckets=BUCKETS, registry=registry)
        self.skips = Counter("govheal_remediation_skips_total", "Remediation requests not acted on, by reason.",
                             ["agent", "node", "reason"], registry=registry)
        self.in_progress = Gauge("govheal_remediation_in_progress", "1 while a remediation of the agent runs.",
                                 ["agent", "node"], registry=registry)
        self.budget = Gauge("govheal_remediation_budget", "The agent's effective restart budget per budget_window "
                            "(remediation.budget, after its per-agent override); AgentFlapping compares against it.",
                            ["agent", "node"], registry=registry)
        registry.register(CircuitCollector(config, state_of))
        for a in config.agents:
            node = config.node_of(a)
            self.in_progress.labels(a.name, node)
            self.budget.labels(a.name, node).set(config.policy_for(a).budget)
            for action in Action:
                self.duration.labels(a.name, node, action)
                for outcome in Outcome:
                    self.remediations.labels(a.name, node, action, outcome)
            for reason in SkipReason:
                self.skips.labels(a.name, node, reason)
