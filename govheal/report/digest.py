"""The digest: one message per slot through the alert bridge (INFO when everything passed, CRIT naming what
failed, a catch-up stamped as such).

The report process does not deliver it itself: it writes the notice into the bridge's durable outbox (the
same SQLite file, :class:`~webhook_receiver.bridge.outbox.Outbox`) for the channels that want it, and the
receiver's channel workers send it within a second, with their pacing, retries and fallbacks. No second
sender races them over the same rows; if the receiver is down, the digest waits in the outbox.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from govheal.config import Config
from govheal.report.judge import TITLES, secs
from govheal.report.model import Snapshot, Verdict
from webhook_receiver.bridge import Notice, wants
from webhook_receiver.bridge.outbox import Outbox, deliveries


def notice(s: Snapshot, v: Verdict, path: str) -> Notice:
    r = s.run
    late = f" (CATCH-UP, {secs(r.lateness)} late)" if r.catch_up else ""
    if v.passed:
        title = f"Daily ops report {r.date} {r.slot} on {r.node}: PASS{late}"
        summary = "All five success criteria passed; the canary went through every hop."
    else:
        failed = ", ".join(TITLES.get(f, f) for f in v.failures)
        title = f"Daily ops report {r.date} {r.slot} on {r.node}: FAIL{late}"
        summary = f"Failed: {failed}."
    if r.catch_up:
        summary += f" This slot ran {secs(r.lateness)} late (the machine slept or was off)."
    fields = tuple((("PASS " if c.passed else "FAIL ") + c.title, f"{c.measured} (bound {c.bound})")
                   for c in v.criteria)
    fields += tuple((f"FAIL step {st.name}", st.error) for st in s.steps if not st.ok)
    return Notice(key=f"report:{r.slot_id}", severity="info" if v.passed else "critical",
                  status="info" if v.passed else "firing", title=title, summary=summary, node=r.node,
                  alertname="DailyReport", action=f"report: {path}", fields=fields,
                  runbook_url="docs/GOVERNANCE_MANUAL.md#the-daily-report", created=s.run.started_at)


def send(config: Config, conn: sqlite3.Connection, n: Notice, dedupe_id: str,
         clock: Callable[[], float] = time.time) -> list[str]:
    """Queue ``n`` for every enabled channel that wants it; the channel names (empty: nobody to tell)."""
    channels = [name for name, spec in config.notifications.channels.items() if spec.enabled and wants(spec, n)]
    if not channels:
        return []
    if Outbox(conn).enqueue(channels, n, clock(), dedupe_id=dedupe_id) is None:
        return []  # this run's digest was queued before (a retry of the same run)
    return channels


def wait_delivered(conn: sqlite3.Connection, key: str, channels: list[str], timeout: float,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Each channel's state once all are delivered or ``timeout`` passed (the receiver sends it)."""
    end = clock() + timeout
    while True:
        last = {ch: state for ch, state, *_ in deliveries(conn, key)}
        states = {ch: last.get(ch, "missing") for ch in channels}
        if all(st in ("sent", "merged") for st in states.values()) or clock() >= end:
            return states
        sleep(0.1)
