"""The page's and the API's data: local state (switches, silences, remediation, circuits) joined with the
Prometheus cache. One read of each table per view, no query to Prometheus (docs/governance.md, "API").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from govheal.config import Config
from govheal.governance import schedule
from govheal.governance.effective import effective
from govheal.governance.recurrence import utc_text
from govheal.governance.service import Governance, switch_dict
from govheal.serving import fallback_name
from remediator import policy as pol
from webhook_receiver.governance.promcache import PromSnapshot

DAY = 86400.0
HEAL_BOUND, UI_BOUND, DELIVERY_BOUND, DOWNTIME_BOUND, REPORT_BOUND = 0.98, 0.250, 3.0, 120.0, 13 * 3600.0
HEALED, NOT_HEALED = ("healed",), ("failed", "failover_failed")


class Latency:
    """Server-side time to build the page, the last 500 views (the "governance UI < 250 ms" criterion)."""

    def __init__(self, size: int = 500) -> None:
        self._d: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._d.append(seconds)  # atomic: no lock on every view (20 clients queued on one)

    def p99(self) -> float | None:
        data = sorted(self._d.copy())  # a consistent copy (deque.copy holds the GIL throughout)
        return data[min(len(data) - 1, int(len(data) * 0.99))] if data else None


@dataclass
class Sources:
    config: Config
    governance: Governance
    store: Any  # remediator.store.Store, or None (a receiver built without a real remediator)
    prom: Callable[[], PromSnapshot]
    latency: Latency
    clock: Callable[[], float]
    links: dict[str, str]


def agents(src: Sources, only: str | None = None, history: int = 0) -> dict[str, Any]:
    """Every agent (or one) as the API's JSON; ``history`` audit lines per agent (the detail view)."""
    now = src.clock()
    snap = src.prom()
    switches: dict[str, list[Any]] = {}
    for sw in src.governance.switches(only):
        switches.setdefault(sw.agent, []).append(sw)
    silences: dict[str, list[Any]] = {}
    for row in src.governance.silences(only):
        silences.setdefault(row.agent, []).append(row)
    store = src.store
    circuits = store.circuits() if store is not None else {}
    last = store.last_incidents() if store is not None else {}
    restarts = store.attempt_counts(now - DAY) if store is not None else {}
    served = store.serving.all() if store is not None else {}  # a failover's fallback serves (govheal/serving.py)
    out = []
    for a in src.config.agents:
        if only is not None and a.name != only:
            continue
        sws = switches.get(a.name, [])
        eff = effective(sws, now)
        p = snap.agent(a.name)
        circuit = pol.refresh(src.config.policy_for(a), circuits[a.name], now).state if a.name in circuits \
            else "closed"
        inc = last.get(a.name)
        row: dict[str, Any] = {
            "name": a.name, "role": a.role, "node": src.config.node_of(a), "critical": a.critical,
            "health": _health(p.up, p.healthy, eff.maintenance),
            "up": p.up, "healthy": p.healthy, "uptime_seconds": _round(p.uptime),
            "availability_24h": _round(p.availability, 5), "restarts_24h": p.restarts,
            "govheal_restarts_24h": restarts.get(a.name, 0),
            "uptime_strip": [{"healthy": _round(v, 3), "maintenance": m} for v, m in p.strip],
            "last_remediation": None if inc is None else {
                "outcome": inc["outcome"] or inc["status"], "time": utc_text(inc["updated_at"]),
                "reason": inc["reason"], "attempts": inc["attempts"]},
            "circuit": circuit,
            "fallback": fallback_name(a),
            "serving": None if a.name not in served else {
                "fallback": served[a.name].fallback, "since": utc_text(served[a.name].since),
                "incident": served[a.name].incident},
            "muted": eff.muted, "paused": eff.paused, "maintenance": eff.maintenance,
            "switches": [{**switch_dict(s), "in_effect": schedule.in_effect(s, now),
                          "next_change": _utc(schedule.next_change(s, now))} for s in sws],
            "silences": [r.to_dict() for r in silences.get(a.name, [])],
        }
        if history:
            row["history"] = src.governance.history(a.name, history)
        out.append(row)
    return {"node": src.config.node, "generated_at": utc_text(now), "prometheus": _prom_status(snap, now),
            "criteria": criteria(src, snap, now) if only is None else None, "links": src.links, "agents": out}


def _health(up: bool | None, healthy: bool | None, maintenance: bool) -> str:
    if maintenance:
        return "maintenance"
    if up is None:
        return "unknown"
    if not up:
        return "down"
    return "healthy" if healthy else "unhealthy"


def _prom_status(snap: PromSnapshot, now: float) -> dict[str, Any]:
    if not snap.configured:
        return {"ok": False, "missing": "no Prometheus configured (prometheus.url): health, uptime and "
                "availability are not shown"}
    if snap.now_at is None and not snap.error:
        return {"ok": False, "missing": "waiting for the first answer from Prometheus"}
    if snap.error:
        age = f"; values shown are {now - snap.now_at:.0f} s old" if snap.now_at else ""
        return {"ok": False, "missing": f"Prometheus unreachable since {_utc(snap.error_since)}: {snap.error}{age}",
                "as_of": _utc(snap.now_at)}
    return {"ok": True, "as_of": _utc(snap.now_at), "history_as_of": _utc(snap.history_at)}


def criteria(src: Sources, snap: PromSnapshot, now: float) -> list[dict[str, Any]]:
    """The seed's five success criteria; PASS / FAIL / NO DATA, each with its value and bound."""
    out = []
    counts = src.store.outcome_counts(now - DAY) if src.store is not None else {}
    healed = sum(counts.get(k, 0) for k in HEALED)
    ran = healed + sum(counts.get(k, 0) for k in NOT_HEALED)
    out.append(_crit("heal success", "≥ 98 % of remediations in 24 h heal",
                     None if not ran else healed / ran >= HEAL_BOUND,
                     f"{healed}/{ran} = {100 * healed / ran:.1f} %" if ran else "no remediation ran in 24 h"))
    p99 = src.latency.p99()
    out.append(_crit("governance UI", "page built in < 250 ms (p99 of the last 500 views)",
                     None if p99 is None else p99 < UI_BOUND, f"{1000 * p99:.1f} ms" if p99 is not None else "—"))
    d = snap.delivery_p99
    out.append(_crit("alert delivery", "p99 < 3 s over 1 h", None if d is None else d < DELIVERY_BOUND,
                     f"{d:.2f} s" if d is not None else "no delivery in the last hour (or Prometheus missing)"))
    agents_prom = [snap.agent(a.name).long_downtime for a in src.config.agents]
    known = [x for x in agents_prom if x is not None]
    bad = [a.name for a in src.config.agents if snap.agent(a.name).long_downtime]
    out.append(_crit("no unplanned downtime > 2 min", "24 h, maintenance left out",
                     None if not known else not bad, ("down > 2 min: " + ", ".join(bad)) if bad else
                     ("none" if known else "no data from Prometheus")))
    r = snap.report_last_success
    out.append(_crit("daily report verified", "last verified report < 13 h ago",
                     None if not snap.history_at else (r is not None and now - r < REPORT_BOUND),
                     f"{(now - r) / 3600:.1f} h ago" if r else "no verified daily report yet"))
    return out


def _crit(name: str, bound: str, ok: bool | None, value: str) -> dict[str, Any]:
    return {"name": name, "bound": bound, "status": "NO DATA" if ok is None else ("PASS" if ok else "FAIL"),
            "value": value}


def _round(v: float | None, digits: int = 0) -> float | None:
    if v is None:
        return None
    return round(v, digits) if digits else round(v)


def _utc(t: float | None) -> str | None:
    return None if t is None else utc_text(t)
