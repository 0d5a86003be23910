"""The alert-bridge board: deliveries to Discord/Telegram, latency against 3 s, outbox, failures, dead-man."""

from __future__ import annotations

from govheal import names as n
from govheal.dashboards import common as c
from govheal.dashboards.model import Color as C
from govheal.dashboards.model import Dashboard, Link, Row, State, Target, Thresholds, Unit
from govheal.dashboards.panels import stat, state_timeline, timeseries
from govheal.dashboards.promql import Not, Scope, by, increase, quantile, rate

S = Scope(("node", "channel"))
DELIVERY_BOUND = Thresholds.good_below(c.DELIVERY_MAX_S)
DEGRADED_STATES = (State(0, "OK", C.GREEN), State(1, "DEGRADED", C.RED))
SILENT_STATES = (State(0, "heartbeat OK", C.GREEN), State(1, "SILENT: CRIT sent", C.RED))


def delivery_row() -> Row:
    p99 = stat(
        f"Delivery p99 (24 h) vs {c.DELIVERY_MAX_S:.0f} s", "Accepted by the receiver to acknowledged by the "
        "channel, p99 over 24 h, per channel. Red: messages reach people late; look at retries (429 "
        "pacing) and the oldest queued notice below.",
        (Target(quantile(0.99, increase(S.sel(n.DELIVERY, "bucket"), "1d"), ("channel",)), "{{channel}}",
                instant=True),), Unit.SECONDS, width=8, thresholds=DELIVERY_BOUND, decimals=2,
        text_mode="value_and_name", no_value="no delivery in 24 h", links=(c.runbook("AlertBridgeDegraded"),))
    degraded = stat(
        "Degraded channels", "1 after a permanent error (bad token, deleted webhook, chat not found) until "
        "the next success. Red: fix the channel's secret or id (runbook AlertBridgeDegraded); its notices "
        "are copied to the other channels meanwhile.",
        (Target(by("channel", "max", S.sel(n.CHANNEL_DEGRADED)), "{{channel}}", instant=True),), Unit.NONE,
        width=8, states=DEGRADED_STATES, text_mode="value_and_name", links=(c.runbook("AlertBridgeDegraded"),))
    sent = timeseries(
        "Notices sent per minute", "Notices acknowledged by each channel. A channel at zero while others "
        "send: it is failing (see Failures below) or filtered; check min_severity, agents and alertnames in "
        "govheal.yaml.",
        (Target(f"60 * {by('channel', 'sum', rate(S.sel(n.NOTIFICATIONS, outcome='sent')))}", "{{channel}}"),),
        Unit.PER_MINUTE, width=8)
    latency = timeseries(
        f"Delivery latency vs {c.DELIVERY_MAX_S:.0f} s bound", "Quantiles of the delivery time per channel; "
        "the dashed line is the 3 s bound. Above it: the channel paces us (429) or answers slowly; gaps "
        "mean nothing was delivered then. Above the line for long: check the channel's Failures below.",
        tuple(Target(quantile(q, rate(S.sel(n.DELIVERY, "bucket")), ("channel",)), f"p{round(q * 100)} {{{{channel}}}}")
              for q in (0.5, 0.9, 0.99)), Unit.SECONDS, width=24, bound=DELIVERY_BOUND)
    return Row("Delivery", (p99, degraded, sent, latency))


def queue_row() -> Row:
    depth = timeseries(
        "Outbox depth", "Notices queued per channel. Growing without draining: the channel is down or "
        "pacing us; see failures below.",
        (Target(by("channel", "max", S.sel(n.OUTBOX_DEPTH)), "{{channel}}"),), Unit.SHORT, width=8)
    age = timeseries(
        "Oldest queued notice", "Age of the oldest notice waiting per channel; 0 when empty. Above 2 min "
        "(red line) AlertBridgeDegraded fires: the channel is not draining; check its failures below.",
        (Target(by("channel", "max", S.sel(n.OUTBOX_OLDEST_AGE)), "{{channel}}"),), Unit.SECONDS, width=8,
        bound=Thresholds.good_below(120, warn=30), links=(c.runbook("AlertBridgeDegraded"),))
    dispatch = timeseries(
        "Dispatch queue", "Alerts accepted by the receiver and waiting for (or in) dispatch: notice and "
        "remediation. Staying above 0: the workers are stuck; check the receiver log.",
        (Target(f"max({S.sel(n.DISPATCH_QUEUE_DEPTH)})", "queued"),), Unit.SHORT, width=8)
    return Row("Outbox", (depth, age, dispatch))


def failures_row() -> Row:
    notices = timeseries(
        "Notification failures by outcome", "failed: a request failed (network, 5xx, 4xx); retried: "
        "scheduled again (429, 5xx); dropped_permanent: given up on the channel after a permanent error. "
        "Any dropped_permanent: fix the channel (runbook AlertBridgeDegraded).",
        (Target(by(("channel", "outcome"), "sum", increase(
            S.sel(n.NOTIFICATIONS, outcome=("failed", "retried", "dropped_permanent")))),
            "{{channel}} {{outcome}}"),), Unit.SHORT, width=8, bars=True, stack=True)
    webhook = timeseries(
        "Webhook requests refused by status", "Alertmanager → receiver requests not answered 200. 401: the "
        "bearer token differs from Alertmanager's (fix receiver.token_file); 400/422: a malformed payload; 5xx: "
        "the receiver failed (Alertmanager retries; read the receiver log).",
        (Target(by("status", "sum", increase(S.sel(n.WEBHOOK_REQUESTS, status=Not("200")))), "{{status}}"),),
        Unit.SHORT, width=8, bars=True, stack=True, links=(c.runbook("ReceiverDown"),))
    dispatch = timeseries(
        "Dispatch errors by stage", "Dispatch steps that raised: notify (retried) or remediate (reported in "
        "the incident's message). Any: read the receiver log for the traceback.",
        (Target(by("stage", "sum", increase(S.sel(n.DISPATCH_ERRORS))), "{{stage}}"),), Unit.SHORT, width=8,
        bars=True, stack=True)
    return Row("Failures", (notices, webhook, dispatch))


def deadman_row() -> Row:
    watchdog = stat(
        "Watchdog last seen", "Time since Alertmanager's last Watchdog heartbeat reached the receiver (every "
        "~30 s). Red above 3 min: Prometheus or Alertmanager is broken and the receiver has paged (runbook "
        "Watchdog): check that both are up and Alertmanager routes to POST /watchdog.",
        (Target(f"time() - max({S.sel(n.WATCHDOG_LAST_SEEN)} > 0)", instant=True),), Unit.SECONDS, width=6,
        thresholds=Thresholds.good_below(180, warn=60), decimals=0, no_value="never",
        links=(c.runbook("Watchdog"),))
    silent = stat(
        "Dead-man's switch", "SILENT: the receiver considers the alert pipeline dead (no Watchdog for "
        "receiver.deadman_timeout) and has sent a CRIT directly. Fix Prometheus/Alertmanager; it clears on "
        "the next heartbeat.",
        (Target(f"max({S.sel(n.PIPELINE_SILENT)})", instant=True),), Unit.NONE, width=6, states=SILENT_STATES,
        links=(c.runbook("Watchdog"),))
    scraped = state_timeline(
        "Exporter and receiver scraped", "Whether Prometheus reaches govheal's exporter and receiver. Red: "
        "ExporterDown / ReceiverDown; nothing on that node is observed (exporter) or healed and sent "
        "(receiver). Check the process and its log (govheal up: logs/).",
        (Target(by(("job", "node"), "max", S.sel(n.UP, job=(n.EXPORTER_JOB, n.RECEIVER_JOB))), "{{job}} @ {{node}}"),),
        c.UP_STATES, width=12, height=6, links=(c.runbook("ExporterDown"), c.runbook("ReceiverDown")))
    return Row("Dead-man's switch", (watchdog, silent, scraped))


def board() -> Dashboard:
    return Dashboard(
        uid=c.BRIDGE_UID, title="govheal / Alert bridge",
        description="Discord/Telegram deliveries, latency against the 3 s bound, outbox, failures, and the "
                    "dead-man's switch. What each panel means: docs/dashboards.md.",
        tags=c.TAGS, variables=(c.NODE_VAR, c.CHANNEL_VAR, *c.LINK_VARS),
        rows=(delivery_row(), queue_row(), failures_row(), deadman_row()),
        links=(*c.DASHBOARD_LINKS, Link("Governance board", f"/d/{c.GOVERNANCE_UID}", "Agents, healing")))
