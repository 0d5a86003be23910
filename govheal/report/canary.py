"""The end-to-end canary, report side: post a test alert to every Alertmanager (API v2), wait for it at the
receiver (its ``canary_*`` tables in the shared state file) and at every channel (the outbox), time every
hop, and resolve it at once.

It is marked as a test everywhere: ``alertname=GovhealCanary``, ``govheal_canary="true"``, ``remediation=
none``, and a summary that says TEST. The receiver never remediates it (webhook_receiver/canary.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import requests

from govheal.client import Alertmanager, PostableAlert, ServerError, new_session
from govheal.config import Config
from govheal.report.model import Canary, CanaryDelivery, CanaryTarget
from govheal.types import display_url
from webhook_receiver import canary as receiver_canary

DELIVERED = ("sent", "merged")
LOCAL_SINK = "local sink"


def canary_alert(canary_id: str, target: int, node: str, starts: float, ends: float) -> PostableAlert:
    return PostableAlert(
        labels={"alertname": receiver_canary.ALERTNAME, receiver_canary.LABEL: "true", "canary_id": canary_id,
                "canary_target": str(target), "node": node, "severity": "info", "remediation": "none"},
        annotations={
            "summary": f"TEST: govheal canary {canary_id} (not an incident; resolves at once)",
            "description": "Posted by the daily ops cycle (govheal report daily) to prove that an alert reaches "
                           "the receiver and the channels. Never remediated; ignore it.",
            "runbook_url": "docs/runbooks.md#govhealcanary"},
        starts_at=datetime.fromtimestamp(starts, UTC), ends_at=datetime.fromtimestamp(ends, UTC))


def run(config: Config, am_urls: Sequence[str], conn: sqlite3.Connection, canary_id: str, *,
        deadline: float | None = None, clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None,
        poll: float = 0.05) -> Canary:
    deadline = deadline if deadline is not None else config.reports.canary.deadline
    if not am_urls:
        return Canary(canary_id, deadline, (), None, (),
                      error="no Alertmanager to post to: set alertmanager.urls in the config (or --alertmanager)")
    http = session or new_session()
    channels = [n for n, s in config.notifications.channels.items() if s.enabled]
    node = config.node
    starts = clock()
    # endsAt in the future: should this run die, Alertmanager resolves the canary by itself soon after
    ends = starts + deadline + 60
    targets: dict[int, dict] = {}
    for i, url in enumerate(am_urls):
        am = Alertmanager(url, http)
        posted = clock()
        entry = {"url": url, "posted": posted, "accepted": None, "received": None, "resolved": None, "error": ""}
        try:
            am.post_alerts([canary_alert(canary_id, i, node, starts, ends)])
            entry["accepted"] = clock()
        except ServerError as exc:
            entry["error"] = str(exc)
        targets[i] = entry

    def resolve(i: int) -> None:
        now = clock()
        try:
            Alertmanager(targets[i]["url"], http).post_alerts([canary_alert(canary_id, i, node, starts, now)])
        except ServerError as exc:
            targets[i]["error"] = targets[i]["error"] or f"resolve: {exc}"
        targets[i]["resolved"] = now

    end_at = starts + deadline
    trace = receiver_canary.Trace()
    while True:
        trace = receiver_canary.trace(conn, canary_id)
        for i, t in targets.items():
            got = trace.arrivals.get((str(i), "firing"))
            if got is not None and t["received"] is None:
                t["received"] = got
                resolve(i)  # resolved at once: it never lingers in Alertmanager or on a board
        arrived = all(t["received"] is not None or t["accepted"] is None for t in targets.values())
        if (arrived and _delivered(trace, channels)) or clock() >= end_at:
            break
        sleep(poll)
    for i, t in targets.items():
        if t["resolved"] is None and t["accepted"] is not None:
            resolve(i)
    return Canary(
        canary_id=canary_id, deadline=deadline,
        targets=tuple(CanaryTarget(index=i, url=display_url(t["url"]), posted_at=t["posted"],
                                   accepted_at=t["accepted"], received_at=t["received"], resolved_at=t["resolved"],
                                   error=t["error"]) for i, t in sorted(targets.items())),
        handed_at=trace.handed_at, deliveries=_deliveries(trace, channels))


def _delivered(trace: receiver_canary.Trace, channels: list[str]) -> bool:
    if not channels:
        return trace.sink is not None
    states = {d.channel: d.state for d in trace.deliveries}
    return all(states.get(ch) in DELIVERED for ch in channels)


def _deliveries(trace: receiver_canary.Trace, channels: list[str]) -> tuple[CanaryDelivery, ...]:
    if not channels:
        return (CanaryDelivery(LOCAL_SINK, "written" if trace.sink else "missing", trace.sink_at,
                               "" if trace.sink else "not written (no channel configured)"),)
    last = {d.channel: d for d in trace.deliveries}
    out = []
    for ch in channels:
        d = last.get(ch)
        if d is None:
            out.append(CanaryDelivery(ch, "missing", None, "never queued for this channel"))
        else:
            out.append(CanaryDelivery(ch, d.state, d.done_at if d.state in DELIVERED else None, d.error or ""))
    return tuple(out)
