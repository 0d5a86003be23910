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
from html.parser import HTMLParser

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
    """A range selector over exactly ``seconds`` (Prometheus's resolution is the millisecond). Rounding the
    window up to whole seconds counted up to a second of samples from before the window."""
    return f"{max(1, round(seconds * 1000))}ms"


Edge = tuple[float, float]  # (time, value) of one sample


def step_seconds(count: float, total: float, step: float, start: float, end: float, first: Edge | None,
                 last: Edge | None) -> tuple[float, float]:
    """(seconds seen, seconds weighted by the value) of a step series over [start, end].

    A sample stands for the step before it (the rule evaluated what the last scrape saw), so counting
    samples is exact only inside the window: the first sample's step begins up to one step before
    ``start`` (that part is cut off) and the last one's ends up to one step before ``end`` (its value
    holds until ``end``: the next evaluation is not due yet). Without these two edges a count is off by up
    to a step at each end of the window, whatever it measures.
    """
    seen, weighted = count * step, total * step
    if first is not None and start <= first[0] < start + step:
        cut = step - (first[0] - start)
        seen, weighted = seen - cut, weighted - cut * first[1]
    if last is not None and end - step < last[0] <= end:
        tail = end - last[0]
        seen, weighted = seen + tail, weighted + tail * last[1]
    return max(0.0, seen), max(0.0, weighted)


def _edges(prom: Prometheus, series: str, at: float) -> dict[tuple[str, str], Edge]:
    """The newest sample at or before ``at`` of each ``series``: its own time and its value."""
    times = {_key(s.labels): s.value for s in prom.query(f"timestamp({series})", at)}
    return {_key(s.labels): (times[_key(s.labels)], s.value) for s in prom.query(series, at)
            if _key(s.labels) in times}


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

    def timed(series: str, weighted: bool = False) -> dict[tuple[str, str], tuple[float, float]]:
        """Per label set (agent, node): seconds seen and (``weighted``) seconds x value, edges exact."""
        counts = {_key(lab): v for lab, v in q(f"count_over_time({series}[{w}])")}
        sums = {_key(lab): v for lab, v in q(f"sum_over_time({series}[{w}])")} if weighted else counts
        first, last = _edges(prom, series, start + step), _edges(prom, series, end)
        return {k: step_seconds(c, sums.get(k, 0.0), step, start, end, first.get(k), last.get(k))
                for k, c in counts.items()}

    try:
        healthy_step = timed(str(n.REPORT_HEALTHY_STEP), weighted=True)
        maint = {k: v[0] for k, v in timed(str(n.REPORT_MAINTENANCE_STEP)).items()}
        seen = timed(f'{n.REPORT_EXPORTER_UP_STEP}{{node="{node}"}}').get(("", node))
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
    stats.node_seen = seen[0] if seen else 0.0
    stats.agents = tuple(AgentStats(
        name=name, node=n, window=window.seconds, observed=healthy_step.get((name, n), (0.0, 0.0))[0],
        healthy=healthy_step.get((name, n), (0.0, 0.0))[1], maintenance=maint.get((name, n), 0.0),
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


UI_TIMEOUT = (1.0, 5.0)  # connect, read
UI_LOGIN_NAME = "govheal-report"  # the name the report logs in to the page with (it changes nothing)


class _HiddenField(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.value = name, None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") == self.name and self.value is None:
            self.value = a.get("value")


def _hidden(html: str, name: str) -> str | None:
    parser = _HiddenField(name)
    parser.feed(html)
    return parser.value


def ui_probe(url: str, token: str | None, *, no_token: str = "", session: requests.Session | None = None,
             samples: int = UI_SAMPLES, clock: Callable[[], float] = time.perf_counter) -> UiProbe:
    """Log in to the governance page the way its readers do (``<url>/login``: a name, the read or admin
    token and the form's CSRF token; the page takes no bearer token), then ``samples`` sequential views of
    the page with that session (one warm-up first), redirects not followed.

    Anything but the page itself is an error and the criterion FAILs with it, never passes: no token, a
    refused login, a redirect (to the login page), another status, nobody listening.
    """
    if not token:
        return UiProbe(url, False, None, (), error=no_token or "no token to log in to the page with")
    http = session or requests.Session()  # its own cookie jar: the session cookie lives in it
    login = url.rstrip("/") + "/login"
    times: list[float] = []

    def failed(status: int | None, why: str) -> UiProbe:
        return UiProbe(url, False, status, tuple(times), error=why)

    try:
        form = http.get(login, timeout=UI_TIMEOUT, allow_redirects=False)
        if form.status_code == 404:
            return failed(404, f"{login} answered HTTP 404: no governance page there (is reports.ui_url the "
                               "receiver's /ops/governance?)")
        csrf = _hidden(form.text, "csrf") if form.status_code == 200 else None
        if not csrf:
            return failed(form.status_code, f"{login} answered HTTP {form.status_code} without a login form")
        resp = http.post(login, data={"name": UI_LOGIN_NAME, "token": token, "csrf": csrf, "next": ""},
                         timeout=UI_TIMEOUT, allow_redirects=False)
        if resp.status_code == 401:
            return failed(401, "the page refused the report's token (HTTP 401 at login): it must be the "
                               "receiver's read or admin token (reports.ui_token_file, admin.read_token_file)")
        if resp.status_code not in (302, 303):
            return failed(resp.status_code, f"login at {login} answered HTTP {resp.status_code}")
        for i in range(samples + 1):
            t0 = clock()
            resp = http.get(url, timeout=UI_TIMEOUT, allow_redirects=False)
            elapsed = clock() - t0
            if resp.is_redirect:
                return failed(resp.status_code, f"the page sent the logged-in report to "
                                                f"{resp.headers.get('Location', '?')} (HTTP {resp.status_code})")
            if resp.status_code != 200:
                return failed(resp.status_code, f"the page answered HTTP {resp.status_code}")
            if i:  # the first view fills the page's cache and the connection: not what a view costs
                times.append(elapsed)
    except requests.RequestException as exc:
        return failed(None, f"unreachable ({type(exc).__name__})")
    return UiProbe(url, True, 200, tuple(times))


def ui_token(config: Config) -> tuple[str | None, str]:
    """The token the report logs in with, or None and why there is none. The read token first (the report
    only reads): reports.ui_token_file, else admin.read_token_file, $GOVHEAL_READ_TOKEN, admin.token_file,
    $GOVHEAL_ADMIN_TOKEN."""
    sources = (("reports.ui_token_file", config.reports.ui_token_file, None),
               ("admin.read_token_file", config.admin.read_token_file, "GOVHEAL_READ_TOKEN"),
               ("admin.token_file", config.admin.token_file, "GOVHEAL_ADMIN_TOKEN"))
    for key, spec, env in sources:
        if spec:
            path = config.path(spec)
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                return None, f"{key} {path} cannot be read ({getattr(exc, 'strerror', None) or exc})"
            if not value:
                return None, f"{key} {path} is empty"
            return value, ""
        if env and os.environ.get(env, "").strip():
            return os.environ[env].strip(), ""
    return None, ("no token to log in to the page with: set reports.ui_token_file (or admin.read_token_file) to "
                  "the receiver's read token, or GOVHEAL_READ_TOKEN")


def ui(config: Config) -> UiProbe:
    """The governance page measured the way a reader sees it (:func:`ui_probe`)."""
    token, why = ui_token(config)
    return ui_probe(ui_url(config), token, no_token=why)


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
