"""What the messages say: an alert, the remediator's progress and verdict, the pipeline's own pages → Notice.

Pure functions beside the renderer (``render.py`` turns a Notice into Discord/Telegram markup). Dispatch
and the dead-man's switch only decide *when* to tell; the words live here, one place to read and change.
"""

from __future__ import annotations

from dataclasses import replace

from govheal.types import format_duration
from remediator.api import Event, Result
from webhook_receiver.models import Alert
from webhook_receiver.routing import AlertOutcome, Routing

from .model import Notice, NoticeStatus

SEVERITIES = {"info": "info", "warning": "warning", "warn": "warning", "critical": "critical",
              "crit": "critical", "page": "critical", "error": "critical"}
# Labels shown elsewhere in the message, so not repeated as fields.
SHOWN_LABELS = {"alertname", "agent", "node", "severity", "remediation"}

NOT_ACTED = {
    AlertOutcome.IGNORED_OTHER_NODE: "not remediated here: the agent belongs to another node",
    AlertOutcome.IGNORED_UNKNOWN_AGENT: "not remediated: this agent is not in the receiver's config",
    AlertOutcome.IGNORED_UNKNOWN_REMEDIATION: "not remediated: the remediation label is not restart, failover or "
                                              "none",
}


def severity_of(labels: dict[str, str]) -> str:
    return SEVERITIES.get(labels.get("severity", "").lower(), "warning")


def alert_notice(alert: Alert, routing: Routing, received: float, *, left_out: int = 0) -> Notice:
    """The alert itself (firing or resolved); key = the incident id, so every later state edits it.
    ``left_out``: alerts of its group that Alertmanager did not send (every message of the group says so)."""
    ann = alert.annotations
    where = f" on {routing.node}" if routing.node else ""
    title = f"{alert.alertname}: {routing.agent}{where}" if routing.agent else f"{alert.alertname}{where}"
    action = NOT_ACTED.get(routing.outcome)
    if routing.outcome is AlertOutcome.ACCEPTED and alert.status == "firing":
        action = f"{routing.action} requested"
    return Notice(
        key=alert.incident, severity=severity_of(alert.labels), status=NoticeStatus(alert.status),  # type: ignore[arg-type]
        title=title, summary=ann.get("summary", ""), agent=routing.agent, node=routing.node,
        alertname=alert.alertname, action=action, runbook_url=ann.get("runbook_url") or None,
        description=ann.get("description", ""),
        fields=tuple((k, v) for k, v in sorted(alert.labels.items()) if k not in SHOWN_LABELS), created=received,
        left_out=left_out)


def _pids(old: int | None, new: int | None) -> str:
    if old and new:
        return f", PID {old} → {new}"
    return f", PID {new}" if new else ""


def result_notice(base: Notice, r: Result) -> Notice | None:
    """The remediator's verdict as an update of the incident's message; None when nothing changed."""
    verb = "restarted" if r.action == "restart" else "failed over"
    tries = f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}"
    why = f": {r.reason}" if r.reason else ""
    table: dict[str, tuple[str, str]] = {
        "healed": (NoticeStatus.RECOVERED, f"{verb} in {r.duration_seconds:.1f} s{_pids(r.old_pid, r.new_pid)}"),
        "already_recovered": (NoticeStatus.RECOVERED, f"no {r.action} needed: healthy again before acting{why}"),
        "skipped": (base.status, f"no {r.action}{why}"),
        "failed": (NoticeStatus.GAVE_UP, f"{r.action} failed after {tries}{why}"),
        "circuit_open": (NoticeStatus.GAVE_UP, f"gave up after {tries} — circuit open{why}"),
        "failover_started": (NoticeStatus.GAVE_UP, f"gave up after {tries} — circuit open, failover started"),
        "failover_failed": (NoticeStatus.GAVE_UP, f"gave up after {tries} — circuit open, failover failed{why}"),
    }
    if r.outcome not in table:
        return None  # "duplicate": the incident is already handled and its message already says so
    status, action = table[r.outcome]
    return replace(base, status=status, action=action)


def progress_notice(base: Notice, e: Event) -> Notice | None:
    if e.outcome != "restarting":
        return None
    attempt = f" (attempt {e.attempt})" if e.attempt else ""
    return replace(base, status=NoticeStatus.RESTARTING, action=f"{e.action} in progress{attempt}")


def not_attempted(base: Notice, action: str, exc: BaseException) -> Notice:
    """The remediator raised (a bug or an OS error): the incident's message must not stay at "requested"."""
    return replace(base, status=NoticeStatus.GAVE_UP, action=f"{action} not attempted: internal error "
                                                             f"({type(exc).__name__}); see the receiver log")


# ---------------------------------------------------------------------------------------------
# The pipeline's own pages (sent past Alertmanager, straight to every channel)


def pipeline_silent(key: str, node: str, silent_for: float, limit: float, now: float) -> Notice:
    return Notice(
        key=key, severity="critical", status=NoticeStatus.FIRING, title=f"Alert pipeline silent on {node}",
        summary=f"No Watchdog heartbeat from Alertmanager for {format_duration(round(silent_for))} "
                f"(limit {format_duration(limit)}). Prometheus, Alertmanager or the route to this "
                "receiver is down: other alerts cannot reach you until it is fixed.",
        node=node, alertname="Watchdog", action="paged directly by the receiver", created=now)


def pipeline_back(key: str, node: str, silent_for: float, now: float) -> Notice:
    return Notice(
        key=key, severity="info", status=NoticeStatus.RESOLVED, title=f"Alert pipeline back on {node}",
        summary=f"Watchdog heartbeats arrive again after {format_duration(round(silent_for))} of silence.",
        node=node, alertname="Watchdog", action="heartbeat received", created=now)


def alertmanager_unreachable(key: str, node: str, where: str, silent_for: float, limit: float, now: float) -> Notice:
    return Notice(
        key=key, severity="critical", status=NoticeStatus.FIRING, title=f"Alertmanager unreachable from {node}",
        summary=f"No answer from Alertmanager ({where}) for {format_duration(round(silent_for))} (limit "
                f"{format_duration(limit)}). Alerts cannot reach this receiver: nothing new is remediated or "
                "announced until it answers again. Check that it runs and is not frozen or overloaded.",
        node=node, alertname="AlertmanagerUnreachable", action="paged directly by the receiver", created=now)


def alertmanager_back(key: str, node: str, silent_for: float, now: float) -> Notice:
    return Notice(
        key=key, severity="info", status=NoticeStatus.RESOLVED, title=f"Alertmanager reachable again from {node}",
        summary=f"Alertmanager answers again after {format_duration(round(silent_for))}; alerts flow again (it "
                "re-sends what still fires at its next group interval).",
        node=node, alertname="AlertmanagerUnreachable", action="Alertmanager answered", created=now)
