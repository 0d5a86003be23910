"""Fetch: the report's I/O besides the canary and the steps. Each function returns plain model values and
says what it could not get (``problems``) instead of raising: one unreachable part costs its section, never
the report.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from govheal import names as n
from govheal.client import Prometheus, ServerError
from govheal.config import Config
from govheal.report.model import AgentHealth, AgentStats, ChannelStats, Incident, Remediation, Switch, UiProbe, Window

REPORT_GROUP = "govheal-report"  # prometheus/rules/recording.yml: the step series
UI_SAMPLES = 20
MAX_POINTS = 10_000  # below Prometheus's 11,000 points per series limit for range queries


# ---------------------------------------------------------------------------------------------- health


def health(config: Config) -> tuple[AgentHealth, ...]:
    """Every agent checked now, the way the exporter does it (same matchers, same probes)."""
    from exporter.reader import FleetReader

    reader = FleetReader(config)
    try:
        snap = reader.read()
    finally:
        reader.close()
    out = []
    for a in snap.agents:
        detail = ""
        if a.probe is not None and not a.probe.ok:
            detail = a.probe.reason or ""
            if a.probe.status:
                detail += f" (HTTP {a.probe.status})"
        elif not a.up:
            detail = "process not running" if not a.remote else "endpoint unreachable"
        out.append(AgentHealth(a.name, a.node, a.role, a.up, a.healthy, detail))
    return tuple(out)


# ---------------------------------------------------------------------------------------------- Prometheus


@dataclass
class PromStats:
    window: Window
    agents: tuple[AgentStats, ...] = ()
    node_seen: float | None = None
    incidents: tuple[Incident, ...] = ()
    remediation: Remediation = field(default_factory=Remediation)
    channels: tuple[ChannelStats, ...] = ()
    problems: list[str] = field(default_factory=list)


def _rng(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def _key(labels: Mapping[str, str]) -> tuple[str, str]:
    return labels.get("agent", ""), labels.get("node", "")


Row = tuple[Mapping[str, str], float]


def vector(prom: Prometheus, expr: str, at: float) -> list[Row]:
    """An instant query as (labels, value) pairs; NaN (0/0, no data) dropped."""
    return [(s.labels, s.value) for s in prom.query(expr, at) if not math.isnan(s.value)]


def prometheus_stats(prom: Prometheus, config: Config, start: float, end: float) -> PromStats:
    window = Window(start, end, None)
    stats = PromStats(window)
    try:
        step = prom.rule_group_intervals().get(REPORT_GROUP)
    except ServerError as exc:
        stats.problems.append(str(exc))
        return stats
    if step is None:
        stats.problems.append(f"Prometheus {prom.url} has no rule group {REPORT_GROUP!r} (prometheus/rules/"
                              "recording.yml): availability and coverage cannot be computed; load the govheal rules")
        return stats
    window = stats.window = Window(start, end, step)
    w = _rng(window.seconds)
    node = config.node
    wanted = {(a.name, config.node_of(a)) for a in config.agents}

    def q(expr: str) -> list[Row]:
        return vector(prom, expr, end)

    try:
        observed = {_key(lab): v for lab, v in q(f"count_over_time({n.REPORT_HEALTHY_STEP}[{w}])")}
        healthy = {_key(lab): v for lab, v in q(f"sum_over_time({n.REPORT_HEALTHY_STEP}[{w}])")}
        maint = {_key(lab): v for lab, v in q(f"count_over_time({n.REPORT_MAINTENANCE_STEP}[{w}])")}
        seen = q(f'count_over_time({n.REPORT_EXPORTER_UP_STEP}{{node="{node}"}}[{w}])')
        # A (re)start is a new value of the process start time. changes() misses the one between the last
        # sample before the window and the first inside it: a first value that is itself a start time inside
        # the window is that (re)start (start times only grow).
        restarts = {_key(lab): v for lab, v in q(f"changes({n.AGENT_START_TIME}[{w}])")}
        for lab, first in q(f"min_over_time({n.AGENT_START_TIME}[{w}])"):
            if first > start:
                restarts[_key(lab)] = restarts.get(_key(lab), 0.0) + 1
        ours = {_key(lab): v for lab, v in q(
            f'sum by (agent, node) (increase({n.REMEDIATIONS}{{action="restart",'
            f'outcome=~"healed|failed"}}[{w}]))')}
        circuit = {_key(lab): lab.get("state", "") for lab, _ in q(f"{n.CIRCUIT_STATE} == 1")}
        opened = {_key(lab) for lab, v in q(f'max_over_time({n.CIRCUIT_STATE}{{state="open"}}[{w}])') if v >= 1}
        outcomes = {lab.get("outcome", ""): v for lab, v in q(
            f'sum by (outcome) (increase({n.REMEDIATIONS}{{node="{node}",'
            f'outcome=~"healed|failed|failover_failed"}}[{w}]))')}
    except ServerError as exc:
        stats.problems.append(str(exc))
        return stats
    stats.node_seen = seen[0][1] * step if seen else 0.0
    stats.agents = tuple(AgentStats(
        name=name, node=n, window=window.seconds, observed=observed.get((name, n), 0.0) * step,
        healthy=healthy.get((name, n), 0.0) * step, maintenance=maint.get((name, n), 0.0) * step,
        restarts=round(restarts.get((name, n), 0.0)), govheal_restarts=round(ours.get((name, n), 0.0)),
        circuit=circuit.get((name, n)), circuit_opened=(name, n) in opened)
        for name, n in sorted(wanted, key=lambda k: [a.name for a in config.agents].index(k[0])))
    try:
        stats.remediation = _remediation(prom, node, w, end, outcomes)
        stats.channels = _channels(prom, node, w, end)
        stats.incidents = _incidents(prom, window, wanted)
    except ServerError as exc:
        stats.problems.append(str(exc))
    return stats


def _one(rows: list[Row]) -> float | None:
    vals = [v for _, v in rows if not math.isinf(v)]
    return vals[0] if vals else None


def _remediation(prom: Prometheus, node: str, w: str, end: float, outcomes: dict[str, float]) -> Remediation:
    sel = f'{{node="{node}"}}'
    mean = _one(vector(prom, f"sum(increase({n.REMEDIATION_DURATION.sum}{sel}[{w}])) / "
                             f"(sum(increase({n.REMEDIATION_DURATION.count}{sel}[{w}])) > 0)", end))
    quant = {q: _one(vector(prom, f"histogram_quantile({q}, sum by (le) (increase("
                                  f"{n.REMEDIATION_DURATION.bucket}{sel}[{w}])))", end))
             for q in (0.5, 0.99)}
    return Remediation(healed=round(outcomes.get("healed", 0.0)), failed=round(outcomes.get("failed", 0.0)),
                       failover_failed=round(outcomes.get("failover_failed", 0.0)), ttr_mean=mean,
                       ttr_p50=quant[0.5], ttr_p99=quant[0.99])


def _channels(prom: Prometheus, node: str, w: str, end: float) -> tuple[ChannelStats, ...]:
    sel = f'node="{node}"'
    counts: dict[str, dict[str, float]] = {}
    for lab, v in vector(prom, f"sum by (channel, outcome) (increase({n.NOTIFICATIONS}{{{sel}}}[{w}]))",
                         end):
        counts.setdefault(lab.get("channel", ""), {})[lab.get("outcome", "")] = v
    quant: dict[float, dict[str, float]] = {}
    for q in (0.95, 0.99):
        rows = vector(prom, f"histogram_quantile({q}, sum by (channel, le) (increase("
                            f"{n.DELIVERY.bucket}{{{sel}}}[{w}])))", end)
        quant[q] = {lab.get("channel", ""): v for lab, v in rows if not math.isinf(v)}
    return tuple(ChannelStats(ch, round(c.get("sent", 0)), round(c.get("failed", 0)),
                              round(c.get("dropped_permanent", 0)), quant[0.95].get(ch), quant[0.99].get(ch))
                 for ch, c in sorted(counts.items()))


def _incidents(prom: Prometheus, window: Window, wanted: set[tuple[str, str]]) -> tuple[Incident, ...]:
    """Unplanned downtime intervals from the step series; a gap (nothing recorded) ends an interval."""
    assert window.step is not None
    res = max(window.step, math.ceil(window.seconds / MAX_POINTS))
    series = prom.query_range(f"min_over_time({n.REPORT_HEALTHY_STEP}[{_rng(res)}])",
                              window.start + res, window.end, res)
    out: list[Incident] = []
    for labels, values in ((s.labels, s.points) for s in series):
        if _key(labels) not in wanted:
            continue
        agent = labels.get("agent", "")
        run: list[float] = []
        prev_t: float | None = None
        gap_before = False
        for t, v in values:
            gap = prev_t is not None and t - prev_t > res * 1.5
            if run and (gap or v >= 1):
                out.append(Incident(agent, run[0] - res, run[-1], at_gap=gap_before or gap))
                run = []
            if v < 1:
                if not run:
                    gap_before = gap or (prev_t is None and t > window.start + 2 * res)
                run.append(t)
            prev_t = t
        if run:
            out.append(Incident(agent, run[0] - res, run[-1], at_gap=gap_before))
    return tuple(sorted(out, key=lambda i: (i.start, i.agent)))


# ---------------------------------------------------------------------------------------------- the UI


def ui_probe(url: str, token: str | None, session: requests.Session | None = None, samples: int = UI_SAMPLES,
             clock: Callable[[], float] = time.perf_counter) -> UiProbe:
    """``samples`` sequential GETs of the governance page (one warm-up first); on 404 the receiver's /healthz
    is measured instead and the page is reported missing (a FAIL, never a pass)."""
    http = session or requests.Session()
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def measure(target: str) -> tuple[int | None, list[float], str]:
        times: list[float] = []
        status = None
        for i in range(samples + 1):
            t0 = clock()
            try:
                resp = http.get(target, headers=headers, timeout=(1.0, 5.0))
            except requests.RequestException as exc:
                return None, times, f"{type(exc).__name__}"
            elapsed = clock() - t0
            status = resp.status_code
            if status >= 400:
                return status, times, ""
            if i:  # the first request opens the connection: not what a page view costs
                times.append(elapsed)
        return status, times, ""

    status, times, error = measure(url)
    if error:
        return UiProbe(url, False, None, (), error=f"unreachable ({error})")
    if status == 404:
        base = url.split("/ops/")[0] if "/ops/" in url else url.rsplit("/", 1)[0]
        fallback = base + "/healthz"
        _, times, error = measure(fallback)
        return UiProbe(url, False, 404, tuple(times), measured_url=fallback, error=error)
    if status is not None and status >= 400:
        return UiProbe(url, True, status, (), error=f"HTTP {status}")
    return UiProbe(url, True, status, tuple(times))


def ui_token(config: Config) -> str | None:
    spec = config.reports
    if spec.ui_token_file:
        try:
            return config.path(spec.ui_token_file).read_text().strip() or None
        except OSError:
            return None
    return os.environ.get("GOVHEAL_READ_TOKEN") or os.environ.get("GOVHEAL_ADMIN_TOKEN")


def ui_url(config: Config) -> str:
    """reports.ui_url, else the receiver a running ``govheal up`` recorded, else listen.receiver."""
    if config.reports.ui_url:
        return config.reports.ui_url
    from govheal import endpoints

    stack = endpoints.recorded(config)
    base = stack.receiver if stack and stack.receiver else f"http://{config.listen.receiver}"
    return base.rstrip("/") + "/ops/governance"


# ---------------------------------------------------------------------------------------------- switches


def switches(conn: sqlite3.Connection, now: float) -> tuple[tuple[Switch, ...], str]:
    """Governance switches in effect at ``now`` (govheal/switches.py), each with its expiry."""
    from govheal.switches import SwitchStore

    try:
        found = SwitchStore(conn).in_effect(at=now)
    except sqlite3.Error as exc:
        return (), f"switches could not be read: {exc}"
    return tuple(Switch(s.agent, str(s.kind), s.owner, s.reason, s.expiry) for s in found), ""
