"""The user's five success criteria, each PASS/FAIL with its measured value and bound. Pure.

Nothing measured is never a pass, except where "nothing happened" is the good case (no remediation ran:
the heal success rate has nothing to fail on). A part that could not be fetched fails the criterion that
needs it and makes the report unverified.
"""

from __future__ import annotations

from govheal.report.canary import DELIVERED
from govheal.report.model import Canary, Criterion, Snapshot, Verdict

TITLES = {
    "heal_success": "heal success",
    "ui_latency": "governance UI latency",
    "alert_delivery": "alert delivery",
    "no_unplanned_downtime": "no unplanned downtime",
    "report_verified": "report generated and verified",
}


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def secs(x: float) -> str:
    if x == 0:
        return "0 s"
    if x < 1:
        return f"{x * 1000:.0f} ms"
    if x < 120:
        return f"{x:.1f} s"
    m, s = divmod(round(x), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


# ---------------------------------------------------------------------------------------------- canary


def canary_problems(c: Canary | None) -> list[str]:
    """Why the canary did not pass (empty: it passed)."""
    if c is None:
        return ["canary disabled (reports.canary.enabled)"]
    if c.error:
        return [c.error]
    out: list[str] = []
    first = c.first_post or 0.0
    for t in c.targets:
        name = f"Alertmanager #{t.index} ({t.url})"
        if t.accepted_at is None:
            out.append(f"{name} refused the post: {t.error}")
        elif t.received_at is None:
            out.append(f"{name}: not seen at the receiver within {secs(c.deadline)}")
        elif t.received_at - t.posted_at > c.deadline:
            out.append(f"{name}: reached the receiver after {secs(t.received_at - t.posted_at)}, deadline "
                       f"{secs(c.deadline)}")
    if c.handed_at is None and any(t.received_at for t in c.targets):
        out.append("the receiver did not hand the TEST message to the bridge")
    for d in c.deliveries:
        if d.state not in (*DELIVERED, "written"):
            out.append(f"{d.channel}: {d.state}" + (f" ({d.error})" if d.error else ""))
        elif d.done_at is not None and d.done_at - first > c.deadline:
            out.append(f"{d.channel}: delivered after {secs(d.done_at - first)}, deadline {secs(c.deadline)}")
    return out


def canary_end_to_end(c: Canary | None) -> float | None:
    """Post to the first Alertmanager → the last channel's acknowledgement (or the local sink)."""
    if c is None or not c.targets or c.error:
        return None
    done = [d.done_at for d in c.deliveries if d.done_at is not None]
    if not done or len(done) < len(c.deliveries):
        return None
    return max(done) - c.targets[0].posted_at


# ---------------------------------------------------------------------------------------------- coverage


def coverage(s: Snapshot) -> tuple[float, bool, list[str]]:
    """The share of the window seen (the worst of Prometheus itself and each agent) and whether it is complete:
    at most one evaluation step, or (1 - coverage_min) of the window, unseen."""
    w = s.window
    if w.step is None or s.node_seen is None:
        return 0.0, False, ["Prometheus data missing: " + ("; ".join(s.problems) or "no step series")]
    slack = max(w.step, (1 - s.bounds.coverage_min) * w.seconds)
    gaps = []
    seen = [("Prometheus", s.node_seen)] + [(a.name, a.observed + a.maintenance) for a in s.agents]
    worst = 1.0
    for name, got in seen:
        share = 0.0 if w.seconds <= 0 else min(1.0, got / w.seconds)
        worst = min(worst, share)
        if w.seconds - got > slack:
            gaps.append(f"{name} unseen for {secs(w.seconds - got)} ({pct(1 - share)} of the window)")
    return worst, not gaps, gaps


# ---------------------------------------------------------------------------------------------- criteria


def _heal(s: Snapshot) -> Criterion:
    bound = s.bounds.heal_success_min
    r = s.remediation
    b = f"≥ {bound * 100:g} %"
    if s.window.step is None:
        return Criterion("heal_success", TITLES["heal_success"], False, None, "not measured", b,
                         "Prometheus data missing")
    if r.success is None:
        return Criterion("heal_success", TITLES["heal_success"], True, None, "no remediation ran", b)
    return Criterion("heal_success", TITLES["heal_success"], r.success >= bound, r.success,
                     f"{pct(r.success)} ({r.healed} of {r.attempts} healed)", b)


def _ui(s: Snapshot) -> Criterion:
    bound = s.bounds.ui_latency_max
    b = f"< {secs(bound)}"
    ui = s.ui
    if ui is None:
        return Criterion("ui_latency", TITLES["ui_latency"], False, None, "not measured", b)
    if not ui.present or ui.error or ui.p99 is None:  # the page itself was not measured: never a pass
        return Criterion("ui_latency", TITLES["ui_latency"], False, None, "not measured", b,
                         f"{ui.url}: {ui.error or 'no sample'}")
    return Criterion("ui_latency", TITLES["ui_latency"], ui.p99 < bound, ui.p99,
                     f"p99 {secs(ui.p99)} (p50 {secs(ui.p50 or 0)}, {len(ui.samples)} requests)", b)


def _delivery(s: Snapshot) -> Criterion:
    bound = s.bounds.delivery_max
    b = f"< {secs(bound)}"
    parts: list[tuple[str, float]] = []
    e2e = canary_end_to_end(s.canary)
    if e2e is not None:
        parts.append(("canary, Alertmanager → channel", e2e))
    for ch in s.channels:
        if ch.p99 is not None and ch.sent:
            parts.append((f"{ch.channel} p99 over the window", ch.p99))
    if not parts:
        why = "no canary delivery and no notification in the window"
        return Criterion("alert_delivery", TITLES["alert_delivery"], False, None, "not measured", b, why)
    name, worst = max(parts, key=lambda p: p[1])
    detail = "; ".join(f"{n}: {secs(v)}" for n, v in parts)
    return Criterion("alert_delivery", TITLES["alert_delivery"], worst < bound, worst, f"{secs(worst)} ({name})", b,
                     detail)


def _downtime(s: Snapshot) -> Criterion:
    bound = s.bounds.downtime_max
    b = f"none > {secs(bound)}"
    if s.window.step is None:
        return Criterion("no_unplanned_downtime", TITLES["no_unplanned_downtime"], False, None, "not measured", b,
                         "Prometheus data missing")
    if not s.incidents:
        return Criterion("no_unplanned_downtime", TITLES["no_unplanned_downtime"], True, 0.0, "no downtime", b)
    longest = max(s.incidents, key=lambda i: i.seconds)
    over = [i for i in s.incidents if i.seconds > bound]
    detail = f"{len(over)} incident(s) over the bound" if over else f"{len(s.incidents)} shorter incident(s)"
    return Criterion("no_unplanned_downtime", TITLES["no_unplanned_downtime"], not over, longest.seconds,
                     f"longest {secs(longest.seconds)} ({longest.agent})", b, detail)


def _verified(s: Snapshot, canary_ok: list[str], cov: float, complete: bool, gaps: list[str]) -> Criterion:
    why = [*("canary: " + p for p in canary_ok), *gaps]
    if s.destination.problem:
        why.append(s.destination.problem)
    why += [p for p in s.problems if p not in " ".join(gaps)]
    b = f"canary passed, coverage ≥ {pct(s.bounds.coverage_min)}"
    measured = ("canary passed" if not canary_ok else "canary FAILED") + f", coverage {pct(cov)}"
    return Criterion("report_verified", TITLES["report_verified"], not why, cov, measured, b, "; ".join(why))


def judge(s: Snapshot) -> Verdict:
    canary_ok = canary_problems(s.canary)
    cov, complete, gaps = coverage(s)
    criteria = (_heal(s), _ui(s), _delivery(s), _downtime(s), _verified(s, canary_ok, cov, complete, gaps))
    failures = [c.name for c in criteria if not c.passed]
    failures += [f"step {st.name}" for st in s.steps if not st.ok]
    return Verdict(criteria=criteria, canary_passed=not canary_ok, coverage=cov, coverage_complete=complete,
                   failures=tuple(failures))

