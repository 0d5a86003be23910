"""The governance board: who runs where, how healthy, what govheal did about it, the five criteria."""

from __future__ import annotations

from govheal import names as n
from govheal.dashboards import common as c
from govheal.dashboards.model import Color as C
from govheal.dashboards.model import Dashboard, Link, Row, Step, Target, Thresholds, Unit
from govheal.dashboards.panels import bargauge, stat, state_timeline, table, timeseries
from govheal.dashboards.promql import Not, Scope, by, increase, quantile

S = Scope(("node", "role", "agent"))
AGENT_LEGEND = "{{agent}} @ {{node}}"

HEALTH = f"{S.sel(n.AGENT_UP)} + {S.sel(n.AGENT_HEALTHY)}"  # 0 down, 1 unhealthy, 2 healthy
CIRCUIT = (f"{by(('agent', 'node'), 'max', S.sel(n.CIRCUIT_STATE, state='half_open'))}"
           f" + 2 * {by(('agent', 'node'), 'max', S.sel(n.CIRCUIT_STATE, state='open'))}")  # 0 closed 1 half 2 open
NEUTRAL = Thresholds((Step(C.BLUE, None),))


def count_or_zero(expr: str) -> str:
    return f"count({S.in_role(expr)}) or vector(0)"


def now_row() -> Row:
    role_map = stat(
        "Role map", "Every agent by role and node, coloured by health: HEALTHY (process up, health check "
        "passing), UNHEALTHY (running but failing its check: hung or erroring), DOWN (no process). "
        "When a tile is red or orange for more than a few seconds, govheal has not healed it: open the "
        "agent's row in the Remediation panels and the audit log (telemetry/autoheal.log); the runbooks "
        "AgentDown and AgentUnhealthy say what to check.",
        (Target(by(("role", "agent", "node"), "max",
                   f"({HEALTH}) * on (agent, node) group_left (role) {S.sel(n.AGENT_INFO)}"),
                "{{role}} · {{agent}} @ {{node}}", instant=True),),
        Unit.NONE, width=24, height=5, states=c.HEALTH_STATES, text_mode="value_and_name",
        links=(c.runbook("AgentDown"), c.runbook("AgentUnhealthy")))
    down = stat("Agents down", "Agents whose process is not running. Red: govheal restarts enabled agents "
                "within seconds; if it stays red, see the circuit state and runbook AgentDown.",
                (Target(count_or_zero(f"{S.sel(n.AGENT_UP)} == 0"), instant=True),), Unit.SHORT,
                width=5, thresholds=Thresholds.good_below(1), links=(c.runbook("AgentDown"),))
    unhealthy = stat(
        "Running but unhealthy", "Agents alive but failing their health check (hung, erroring, wrong body). "
        "Red for more than ~10 s: govheal could not heal it; runbook AgentUnhealthy.",
        (Target(count_or_zero(f"{S.sel(n.AGENT_HEALTHY)} == 0 and on (agent, node) {S.sel(n.AGENT_UP)} == 1"),
                instant=True),), Unit.SHORT, width=5, thresholds=Thresholds.good_below(1),
        links=(c.runbook("AgentUnhealthy"),))
    disabled = stat(
        "Remediation disabled", "Agents govheal will not remediate (a governance switch). Orange is "
        "expected during planned work; if nobody meant it, re-enable the agent on /ops/governance.",
        (Target(count_or_zero(f"{S.sel(n.AGENT_ENABLED)} == 0"), instant=True),), Unit.SHORT, width=5,
        thresholds=Thresholds((Step(C.GREEN, None), Step(C.ORANGE, 1))))
    circuits = stat(
        "Circuits open", "Agents govheal gave up restarting (restart budget spent). Red: a human is "
        "needed; runbook AgentCircuitOpen.",
        (Target(count_or_zero(f'{S.sel(n.CIRCUIT_STATE, state="open")} == 1'), instant=True),), Unit.SHORT,
        width=5, thresholds=Thresholds.good_below(1), links=(c.runbook("AgentCircuitOpen"),))
    alerts = stat(
        "Alerts firing", "Alerts firing now (the always-on Watchdog left out). Red: open Alertmanager "
        "(link above) for the alert and its runbook.",
        (Target(f'count({S.sel(n.ALERTS, alertstate="firing", alertname=Not("Watchdog"))}) or vector(0)',
                instant=True),), Unit.SHORT, width=4, thresholds=Thresholds.good_below(1))
    agents = table(
        "Agents now", "One row per agent: up, healthy, remediation enabled, circuit, restarts govheal made "
        "in 24 h, availability over 24 h with maintenance left out, and the unplanned outage in progress. "
        "A red cell names the agent to look at; the panels below show its history.",
        (Target(by(("role", "agent", "node"), "max",
                   f"{S.sel(n.AGENT_UP)} * on (agent, node) group_left (role) {S.sel(n.AGENT_INFO)}"),
                instant=True, table=True),
         Target(S.in_role(by(("agent", "node"), "max", S.sel(n.AGENT_HEALTHY))), instant=True, table=True),
         Target(S.in_role(by(("agent", "node"), "max", S.sel(n.AGENT_ENABLED))), instant=True, table=True),
         Target(S.in_role(CIRCUIT), instant=True, table=True),
         Target(S.in_role(S.sel(n.RESTARTS_1D)), instant=True, table=True),
         Target(S.in_role(S.sel(n.AVAILABILITY_UNLESS_MAINTENANCE_1D)), instant=True, table=True),
         Target(S.in_role(S.sel(n.UNPLANNED_DOWNTIME)), instant=True, table=True)),
        columns={"role": "Role", "node": "Node", "agent": "Agent", "Value #A": "Up", "Value #B": "Healthy",
                 "Value #C": "Remediation", "Value #D": "Circuit", "Value #E": "Restarts 24 h",
                 "Value #F": "Availability 24 h", "Value #G": "Down for"},
        units={"Value #A": Unit.NONE, "Value #B": Unit.NONE, "Value #C": Unit.NONE, "Value #D": Unit.NONE,
               "Value #E": Unit.SHORT, "Value #F": Unit.PERCENT_UNIT, "Value #G": Unit.SECONDS},
        states={"Value #A": c.UP_STATES, "Value #B": c.CHECK_STATES, "Value #C": c.ENABLED_STATES,
                "Value #D": c.CIRCUIT_STATES},
        height=8)
    return Row("Now", (role_map, down, unhealthy, disabled, circuits, alerts, agents))


def history_row() -> Row:
    timeline = state_timeline(
        "Uptime history", "Health of every agent over the selected time: green healthy, orange running but "
        "unhealthy, red down. Short red/orange bands are faults govheal healed; a long one is an outage: "
        "see Remediation outcomes and the audit log for that time.",
        (Target(S.in_role(by(("agent", "node"), "max", HEALTH)), AGENT_LEGEND),), c.HEALTH_STATES, height=9)
    slo = Thresholds.good_above(c.AVAILABILITY_SLO)
    day = bargauge(
        f"Availability 24 h vs SLO {c.AVAILABILITY_SLO:.1%} (maintenance left out)",
        "Fraction of the last 24 h each agent was healthy, not counting time in a maintenance switch. Red: "
        "below the objective; find the outages in Uptime history and whether restarts failed.",
        (Target(S.in_role(S.sel(n.AVAILABILITY_UNLESS_MAINTENANCE_1D)), "{{agent}}", instant=True),),
        Unit.PERCENT_UNIT, slo, min=0.95, max=1, decimals=2)
    week = bargauge(
        f"Availability 7 d vs SLO {c.AVAILABILITY_SLO:.1%} (maintenance left out)",
        "Fraction of the last 7 days each agent was healthy, maintenance left out. Red: the agent misses "
        "the objective over the week; compare with 24 h to see whether it is getting better.",
        (Target(S.in_role(S.sel(n.AVAILABILITY_UNLESS_MAINTENANCE_7D)), "{{agent}}", instant=True),),
        Unit.PERCENT_UNIT, slo, min=0.95, max=1, decimals=2)
    return Row("Uptime and availability", (timeline, day, week))


def healing_row() -> Row:
    restarts = timeseries(
        "Restarts by govheal", "Restarts govheal performed (healed or failed) per agent. Many bars for one "
        "agent: it keeps failing; read its restarting lines in the audit log (AgentFlapping and the circuit "
        "breaker stop the loop).",
        (Target(S.in_role(by(("agent", "node"), "sum", increase(
            S.sel(n.REMEDIATIONS, action="restart", outcome=("healed", "failed"))))), AGENT_LEGEND),),
        Unit.SHORT, bars=True, stack=True, links=(c.runbook("AgentFlapping"),))
    outcomes = bargauge(
        "Remediation outcomes (24 h)", "What became of remediation requests in 24 h. failed or "
        "failover_failed above 0: read the agent's lines in the audit log (runbook AgentRemediationFailed); "
        "circuit_open: a human is needed.",
        (Target(by("outcome", "sum", S.in_role(increase(S.sel(n.REMEDIATIONS), "1d"))), "{{outcome}}",
                instant=True),), Unit.SHORT, NEUTRAL, width=6, decimals=0,
        links=(c.runbook("AgentRemediationFailed"),))
    skips = bargauge(
        "Skipped requests (24 h)", "Requests govheal did not act on, by reason (paused, disabled, busy, "
        "circuit_open, nothing configured). Unexpected paused/disabled: check the switches below.",
        (Target(by("reason", "sum", S.in_role(increase(S.sel(n.REMEDIATION_SKIPS), "1d"))), "{{reason}}",
                instant=True),), Unit.SHORT, NEUTRAL, width=6, decimals=0)
    ttr = timeseries(
        "Time to recover (24 h)", "Remediation start to verified healthy, over the last 24 h per node "
        "(p50, p99). A rising p99: restarts take longer (slow start, backoff); check the agent's start_grace.",
        (Target(S.sel(n.RECOVERY_P50_1D), "p50 {{node}}"), Target(S.sel(n.RECOVERY_P99_1D), "p99 {{node}}")),
        Unit.SECONDS)
    mean = bargauge(
        "Mean time to recover by agent (24 h)", "Average remediation time per agent over 24 h. Red above "
        "30 s: that agent starts slowly or needs several attempts; see its restarts.",
        (Target(S.in_role(S.sel(n.RECOVERY_MEAN_1D)), "{{agent}}", instant=True),), Unit.SECONDS,
        Thresholds.good_below(30, warn=10))
    circuit = state_timeline(
        "Circuit state", "The remediator's circuit breaker per agent: closed (restarting allowed), half-open "
        "(one trial restart after the cooldown), OPEN (gave up: failover, a human is needed).",
        (Target(S.in_role(CIRCUIT), AGENT_LEGEND),), c.CIRCUIT_STATES, height=7,
        links=(c.runbook("AgentCircuitOpen"),))
    return Row("Healing", (restarts, outcomes, skips, ttr, mean, circuit))


def governance_row() -> Row:
    enabled = state_timeline(
        "Remediation enabled", "Whether govheal may remediate each agent (govheal_agent_enabled). Orange "
        "bands: a pause or maintenance switch; if nobody set it, enable the agent on /ops/governance.",
        (Target(S.in_role(by(("agent", "node"), "max", S.sel(n.AGENT_ENABLED))), AGENT_LEGEND),),
        c.ENABLED_STATES, width=12, height=7)
    switches = state_timeline(
        "Switches and silences", "Governance switches per agent and kind: mute and maintenance are "
        "Alertmanager silences (see Silences above), pause stops remediation only. An unexpected ON: the "
        "audit on /ops/governance says who set it and until when.",
        (Target(S.in_role(by(("agent", "node", "kind"), "max", S.sel(n.AGENT_SWITCH))), "{{agent}} {{kind}}"),),
        c.ON_OFF_STATES, width=12, height=7)
    return Row("Governance", (enabled, switches))


def criteria_row() -> Row:
    heal = stat(
        f"Heal success ≥ {c.HEAL_SUCCESS_MIN:.0%} (24 h)", "Healed / remediations that ran, over 24 h (worst "
        "node). Red: some restarts fail; see Remediation outcomes and runbook HealSuccessRateLow.",
        (Target(f"min({S.sel(n.HEAL_SUCCESS_1D)})", instant=True),), Unit.PERCENT_UNIT, width=5,
        thresholds=Thresholds.good_above(c.HEAL_SUCCESS_MIN), decimals=1, no_value="no remediation in 24 h",
        links=(c.runbook("HealSuccessRateLow"),))
    ui = stat(
        f"UI latency p99 < {c.UI_LATENCY_MAX_S * 1000:.0f} ms (24 h)", "p99 response time of the govheal "
        "receiver, which serves /ops/governance, over 24 h (its request-duration histogram). Red: the "
        "receiver is slow; check its CPU and the dispatch queue.",
        (Target(quantile(0.99, increase(S.sel(n.WEBHOOK_REQUEST_DURATION, "bucket"), "1d")), instant=True),),
        Unit.SECONDS, width=5, thresholds=Thresholds.good_below(c.UI_LATENCY_MAX_S), decimals=3,
        no_value="no requests in 24 h")
    delivery = stat(
        f"Alert delivery p99 < {c.DELIVERY_MAX_S:.0f} s (24 h)", "Accepted by the receiver to acknowledged "
        "by Discord/Telegram, p99 over 24 h, all channels. Red: see the Alert bridge board.",
        (Target(quantile(0.99, increase(S.sel(n.DELIVERY, "bucket"), "1d")), instant=True),), Unit.SECONDS,
        width=5, thresholds=Thresholds.good_below(c.DELIVERY_MAX_S), decimals=2, no_value="no delivery in 24 h",
        links=(c.runbook("AlertBridgeDegraded"),))
    downtime = stat(
        f"No unplanned downtime > {c.DOWNTIME_MAX_S / 60:.0f} min (24 h)", "Longest outage of any agent in "
        "24 h, maintenance left out (1800 s = at least 30 min). Red: find it in Uptime history; why did "
        "healing not bring it back?",
        (Target(f"max({S.in_role(f'max_over_time({S.sel(n.UNPLANNED_DOWNTIME)}[1d])')})", instant=True),),
        Unit.SECONDS, width=5, thresholds=Thresholds.good_below(c.DOWNTIME_MAX_S), decimals=0)
    report = stat(
        "Daily report verified (< 13 h)", "Age of the last verified daily ops report (09:00 and 21:00). "
        "Red: a slot was missed or failed verification; read the report's FAIL lines (runbook DailyReportMissing).",
        (Target(f"max(time() - {S.sel(n.DAILY_REPORT_LAST_SUCCESS)})", instant=True),), Unit.SECONDS, width=4,
        thresholds=Thresholds.good_below(c.REPORT_MAX_AGE_S), decimals=0, no_value="no verified report",
        links=(c.runbook("DailyReportMissing"),))
    return Row("Success criteria", (heal, ui, delivery, downtime, report))


def board() -> Dashboard:
    return Dashboard(
        uid=c.GOVERNANCE_UID, title="govheal / Governance",
        description="Agents by role and node, health and uptime, healing, switches, and the five success "
                    "criteria. What each panel means: docs/dashboards.md.",
        tags=c.TAGS, variables=(c.NODE_VAR, c.ROLE_VAR, c.AGENT_VAR, *c.LINK_VARS),
        rows=(criteria_row(), now_row(), history_row(), healing_row(), governance_row()),
        links=(*c.DASHBOARD_LINKS, Link("Alert bridge board", f"/d/{c.BRIDGE_UID}", "Deliveries, outbox")))
