"""What this receiver does with one alert: act, only tell, or tell that it did not act (and why).

:func:`route` is pure. Label values are data: they select a configured agent by exact name, never execute.
:class:`AlertOutcome` is the one list of outcomes: the code returns them, the metric
``govheal_webhook_alerts_total{outcome}`` creates every one at 0, docs/receiver.md explains each.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from govheal.config import Agent, Config
from remediator.api import ACTIONS
from webhook_receiver.models import Alert

NO_REMEDIATION = ("", "none")
# The daily ops cycle's test alert (govheal/report/canary.py, webhook_receiver/canary.py): never acted on.
CANARY_LABEL = "govheal_canary"


class AlertOutcome(StrEnum):
    ACCEPTED = "accepted"  # remediation requested for a configured agent of this node
    NOTIFY_ONLY = "notify_only"  # no remediation asked (or no agent): only told
    DUPLICATE = "duplicate"  # the same (fingerprint, status, startsAt) was recorded before: nothing again
    IGNORED_OTHER_NODE = "ignored_other_node"
    IGNORED_UNKNOWN_AGENT = "ignored_unknown_agent"
    IGNORED_UNKNOWN_REMEDIATION = "ignored_unknown_remediation"
    CANARY = "canary"  # the daily ops cycle's test alert: recorded, told as a TEST, never remediated


@dataclass(frozen=True)
class Routing:
    """The decision for one alert (recorded with it in the inbox)."""

    outcome: AlertOutcome
    agent: str | None  # the ``agent`` label as sent (may name no configured agent)
    node: str | None  # the ``node`` label, else the configured agent's node
    action: str | None = None  # restart | failover when ``outcome`` is ACCEPTED

    @property
    def acts(self) -> bool:
        return self.outcome is AlertOutcome.ACCEPTED and bool(self.action and self.agent)


def _agent(config: Config, name: str) -> Agent | None:
    return next((a for a in config.agents if a.name == name), None)


def route(config: Config, alert: Alert) -> Routing:
    """Decide what this receiver does with ``alert``; only a configured agent of this node is acted on."""
    labels = alert.labels
    name = labels.get("agent")
    agent = _agent(config, name) if name else None
    node = labels.get("node") or (config.node_of(agent) if agent else None)
    remediation = labels.get("remediation", "")

    def decided(outcome: AlertOutcome, action: str | None = None) -> Routing:
        return Routing(outcome, agent=name, node=node, action=action)

    if labels.get(CANARY_LABEL) == "true":
        return decided(AlertOutcome.CANARY)  # a test, whatever else it says (agent=, remediation=restart)
    if node is not None and (node != config.node or (agent is not None and config.node_of(agent) != config.node)):
        return decided(AlertOutcome.IGNORED_OTHER_NODE)  # told, never acted on: only that node's receiver may
    if name and agent is None:
        return decided(AlertOutcome.IGNORED_UNKNOWN_AGENT)
    if remediation in NO_REMEDIATION or agent is None:
        return decided(AlertOutcome.NOTIFY_ONLY)
    if remediation not in ACTIONS:
        return decided(AlertOutcome.IGNORED_UNKNOWN_REMEDIATION)
    return decided(AlertOutcome.ACCEPTED, action=remediation)
