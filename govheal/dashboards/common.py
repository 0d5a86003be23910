"""What both boards share: the seed's success criteria, variables, states, and links."""

from __future__ import annotations

from govheal import names
from govheal.dashboards.model import Color, Link, State, Variable, VariableKind

# The seed's five success criteria (and the availability objective the boards colour against).
HEAL_SUCCESS_MIN = 0.98         # heal success rate ≥ 98 %
UI_LATENCY_MAX_S = 0.25         # governance UI < 250 ms
DELIVERY_MAX_S = 3.0            # alert delivery < 3 s
DOWNTIME_MAX_S = 120.0          # no unplanned downtime > 2 min
REPORT_MAX_AGE_S = 13 * 3600.0  # a verified daily report at most 13 h old (09:00 and 21:00 slots)
AVAILABILITY_SLO = 0.999        # per agent, maintenance left out

GOVERNANCE_UID = "govheal-governance"
BRIDGE_UID = "govheal-alert-bridge"
TAGS = ("govheal",)


def label_values(series: names.Series, label: str, *filters: str) -> str:
    matchers = ", ".join(f'{f}=~"${f}"' for f in filters)
    return f"label_values({series.name}{{{matchers}}}, {label})"


NODE_VAR = Variable("node", "Node", VariableKind.QUERY, label_values(names.AGENT_INFO, names.NODE),
                    "Nodes with a govheal exporter (govheal_agent_info).")
ROLE_VAR = Variable("role", "Role", VariableKind.QUERY, label_values(names.AGENT_INFO, names.ROLE, "node"),
                    "Agent roles from govheal.yaml (govheal_agent_info).")
AGENT_VAR = Variable("agent", "Agent", VariableKind.QUERY,
                     label_values(names.AGENT_INFO, names.AGENT, "node", "role"), "Agents of the selected roles.")
CHANNEL_VAR = Variable("channel", "Channel", VariableKind.QUERY,
                       label_values(names.NOTIFICATIONS, names.CHANNEL, "node"), "Alert bridge channels.")

# Where the links point. `govheal up` opens the boards with these set (?var-receiver_url=...); edit them
# under Dashboard settings → Variables for another install.
LINK_VARS = (
    Variable("receiver_url", "Receiver URL", VariableKind.TEXTBOX, "http://127.0.0.1:9827",
             "Base URL of the govheal receiver (serves /ops/governance)."),
    Variable("alertmanager_url", "Alertmanager URL", VariableKind.TEXTBOX, "http://127.0.0.1:9093",
             "Base URL of Alertmanager (alerts and silences)."),
    Variable("runbook_base_url", "Runbook base URL", VariableKind.TEXTBOX, "",
             "notifications.runbook_base_url of govheal.yaml: where docs/runbooks.md is served."),
)

RUNBOOKS = "${runbook_base_url}docs/runbooks.md"


def runbook(alert: str) -> Link:
    return Link(f"Runbook: {alert}", f"{RUNBOOKS}#{alert.lower()}", f"docs/runbooks.md#{alert.lower()}")


DASHBOARD_LINKS = (
    Link("Governance page", "${receiver_url}/ops/governance", "govheal's /ops/governance: switches, audit"),
    Link("Alertmanager", "${alertmanager_url}/#/alerts", "Firing alerts, grouped as routed"),
    Link("Silences", "${alertmanager_url}/#/silences", "Alertmanager silences (mute and maintenance switches)"),
    Link("Runbooks", RUNBOOKS, "docs/runbooks.md: one runbook per alert"),
)

# up + healthy: 0 down, 1 running but failing its check, 2 healthy
HEALTH_STATES = (State(0, "DOWN", Color.RED), State(1, "UNHEALTHY", Color.ORANGE), State(2, "HEALTHY", Color.GREEN))
CIRCUIT_STATES = (State(0, "closed", Color.GREEN), State(1, "half-open", Color.ORANGE), State(2, "OPEN", Color.RED))
ON_OFF_STATES = (State(0, "off", Color.TEXT), State(1, "ON", Color.BLUE))
ENABLED_STATES = (State(0, "remediation OFF", Color.ORANGE), State(1, "enabled", Color.GREEN))
UP_STATES = (State(0, "DOWN", Color.RED), State(1, "up", Color.GREEN))
CHECK_STATES = (State(0, "FAILING", Color.RED), State(1, "passing", Color.GREEN))
