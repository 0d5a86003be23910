"""Snapshot + verdict → the human-readable report (fixed sections) and its JSON twin. Pure, golden-tested.

Sections, always in this order and always present (an empty one says so): header and RESULT, 1 success
criteria, 2 health checks, 3 canary, 4 availability, 5 incidents, 6 remediation, 7 notifications,
8 circuits and switches, 9 extra steps, 10 notes. docs/GOVERNANCE_MANUAL.md explains how to read them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from govheal.report.judge import TITLES, canary_problems, pct, secs
from govheal.report.model import Snapshot, Verdict

SCHEMA = "govheal.daily-report/1"
SECTIONS = ("Success criteria", "Health checks (live)", "Canary", "Availability", "Incidents longer than the bound",
            "Remediation", "Notifications", "Circuits and switches", "Extra steps", "Notes")


def _tz(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the machine's zone


def _at(ts: float | None, tz: tzinfo | None, with_date: bool = True) -> str:
    if ts is None:
        return "-"
    d = datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts).astimezone()
    return d.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _hop(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"+{secs(max(0.0, b - a))}"


def render_text(s: Snapshot, v: Verdict) -> str:
    tz = _tz(s.run.timezone)
    r = s.run
    out: list[str] = []
    title = f"CLS_DAILY {r.date} {r.slot} · node {r.node} · govheal {r.version}"
    out += [title, "=" * len(title)]
    if v.passed:
        out.append(f"RESULT: PASS: {len(v.criteria)} of {len(v.criteria)} criteria, canary passed, coverage "
                   f"{pct(v.coverage)}")
    else:
        out.append(f"RESULT: FAIL: {', '.join(TITLES.get(f, f) for f in v.failures)}")
    when = "manual run" if r.manual else ("on time" if not r.catch_up else "")
    if r.catch_up:
        out.append(f"CATCH-UP: this slot ran {secs(r.lateness)} late (the machine slept or was off at "
                   f"{r.slot_time}); it covers the missed time.")
    after = f", {secs(r.lateness)} after the slot" if r.lateness >= 1 and not r.manual else ""
    out.append(f"Slot:   {r.date} {r.slot_time} ({r.timezone}); ran {_at(r.started_at, tz)}"
               + (f", {when}" if when else "") + after)
    step = f", step {secs(s.window.step)}" if s.window.step else ", step unknown"
    out.append(f"Window: {_at(s.window.start, tz)} → {_at(s.window.end, tz)} ({secs(s.window.seconds)}{step})")
    if r.missed:
        out.append(f"Missed: {', '.join(r.missed)} (nobody ran them; this report's window covers them)")
    problem = f"  ({s.destination.problem})" if s.destination.problem else ""
    out.append(f"Report: {s.destination.written_to}{problem}")
    out.append(f"Run:    {r.run_id}; Prometheus {s.prometheus_url or '-'}")

    def section(n: int) -> None:
        out.extend(["", f"== {n}. {SECTIONS[n - 1]} =="])

    section(1)
    rows = [("", "CRITERION", "MEASURED", "BOUND")]
    rows += [("PASS" if c.passed else "FAIL", c.title, c.measured, c.bound) for c in v.criteria]
    out += _table(rows)
    for c in v.criteria:
        if c.detail:
            out.append(f"  {c.title}: {c.detail}")

    section(2)
    if not s.health:
        out.append("  (no agents checked)")
    else:
        rows = [("AGENT", "ROLE", "NODE", "UP", "HEALTHY", "DETAIL")]
        rows += [(h.name, h.role or "-", h.node, "yes" if h.up else "NO", "yes" if h.healthy else "NO",
                  h.detail or "") for h in s.health]
        out += _table(rows)

    section(3)
    c = s.canary
    if c is None:
        out.append("  disabled (reports.canary.enabled: false)")
    else:
        problems = canary_problems(c)
        out.append(f"  {'PASS' if not problems else 'FAIL'} canary {c.canary_id}, deadline {secs(c.deadline)} "
                   "(a TEST alert: alertname=GovhealCanary, govheal_canary=\"true\", never remediated)")
        if c.error:
            out.append(f"  {c.error}")
        for t in c.targets:
            out.append(f"  Alertmanager #{t.index} {t.url}: post {_hop(t.posted_at, t.accepted_at)}, receiver "
                       f"{_hop(t.posted_at, t.received_at)}, resolved {_hop(t.posted_at, t.resolved_at)}"
                       + (f"  [{t.error}]" if t.error else ""))
        first = c.first_post
        if c.targets:
            out.append(f"  receiver → bridge: {_hop(first, c.handed_at)} after the first post")
        for d in c.deliveries:
            out.append(f"  → {d.channel}: {d.state} {_hop(first, d.done_at)}" + (f"  [{d.error}]" if d.error else ""))
        for p in problems:
            out.append(f"  problem: {p}")

    section(4)
    if not s.agents:
        out.append("  (no data: " + ("; ".join(s.problems) or "nothing recorded") + ")")
    else:
        seen = "-" if s.node_seen is None else pct(min(1.0, s.node_seen / s.window.seconds))
        out.append(f"  Prometheus saw {seen} of the window; coverage {pct(v.coverage)} "
                   f"({'complete' if v.coverage_complete else 'INCOMPLETE'}). Maintenance is left out of "
                   "availability; unseen time counts as not proven healthy.")
        rows = [("AGENT", "NODE", "AVAILABILITY", "DOWNTIME", "MAINTENANCE", "UNSEEN", "RESTARTS", "BY GOVHEAL")]
        for a in s.agents:
            av = "-" if a.availability is None else pct(a.availability)
            rows.append((a.name, a.node, av, secs(a.downtime), secs(a.maintenance), secs(a.unobserved),
                         str(a.restarts), str(a.govheal_restarts)))
        out += _table(rows)

    section(5)
    bound = s.bounds.downtime_max
    long = [i for i in s.incidents if i.seconds > bound]
    if not long:
        out.append(f"  none longer than {secs(bound)} ({len(s.incidents)} shorter incident(s) in the window)")
    else:
        rows = [("AGENT", "FROM", "TO", "LASTED")]
        rows += [(i.agent, _at(i.start, tz), _at(i.end, tz), secs(i.seconds) + (" or more" if i.at_gap else ""))
                 for i in long]
        out += _table(rows)

    section(6)
    m = s.remediation
    rate = "-" if m.success is None else pct(m.success)
    out.append(f"  attempts {m.attempts}: healed {m.healed}, failed {m.failed}, failover failed {m.failover_failed}; "
               f"success {rate}")
    ttr = [f"{k} {secs(x)}" for k, x in (("mean", m.ttr_mean), ("p50", m.ttr_p50), ("p99", m.ttr_p99)) if x is not None]
    out.append(f"  time to recover: {', '.join(ttr) if ttr else '-'}")

    section(7)
    if not s.channels:
        out.append("  no notification sent in the window (or no channel configured)")
    else:
        rows = [("CHANNEL", "SENT", "FAILED", "DROPPED", "P95", "P99")]
        rows += [(ch.channel, str(ch.sent), str(ch.failed), str(ch.dropped), "-" if ch.p95 is None else secs(ch.p95),
                  "-" if ch.p99 is None else secs(ch.p99)) for ch in s.channels]
        out += _table(rows)

    section(8)
    odd = [a for a in s.agents if (a.circuit and a.circuit != "closed") or a.circuit_opened]
    if not odd:
        out.append("  circuits: all closed for the whole window")
    for a in odd:
        was = ", was open in the window" if a.circuit_opened else ""
        out.append(f"  circuit {a.name}: now {a.circuit or '-'}{was}")
    end = s.window.end
    if not s.switches:
        out.append("  switches: none active")
    for sw in s.switches:
        soon = sw.until is not None and sw.until - end <= 86400
        until = "no expiry" if sw.until is None else f"until {_at(sw.until, tz)}" + (" (expires within 24 h)"
                                                                                     if soon else "")
        out.append(f"  switch {sw.agent}: {sw.kind} by {sw.owner or '?'}, {until}: {sw.reason or '-'}")
    if s.switches_note:
        out.append(f"  ({s.switches_note})")

    section(9)
    if not s.steps:
        out.append("  none configured (reports.steps)")
    for st in s.steps:
        out.append(f"  {'PASS' if st.ok else 'FAIL'} {st.name}: {' '.join(st.argv)} (in {st.cwd}, "
                   f"{secs(st.seconds)}, timeout {secs(st.timeout)})" + (f": {st.error}" if st.error else ""))
        for line in st.output.splitlines()[-5:]:
            out.append(f"      | {line}")

    section(10)
    notes = list(s.problems)
    if r.catch_up:
        notes.append(f"catch-up: {secs(r.lateness)} late; the window reaches back to cover the missed slot(s)")
    out += [f"  - {n}" for n in notes] or ["  none"]
    return "\n".join(out) + "\n"


def _plain(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, tuple | list):
        return [_plain(i) for i in x]
    return x


def render_json(s: Snapshot, v: Verdict) -> dict[str, Any]:
    """The JSON twin: every input value plus the verdict (``passed``, ``criteria`` by name)."""
    return {
        "schema": SCHEMA,
        "slot": s.run.slot_id,
        "passed": v.passed,
        "failures": list(v.failures),
        "criteria": {c.name: {"passed": c.passed, "value": c.value, "measured": c.measured, "bound": c.bound,
                              "detail": c.detail} for c in v.criteria},
        "coverage": {"share": v.coverage, "complete": v.coverage_complete},
        "canary_passed": v.canary_passed,
        "snapshot": _plain(s),
    }
