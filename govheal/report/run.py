"""One run of the daily cycle: plan the slot → claim it → fetch a frozen snapshot → judge → render → write →
digest → record. Shaped like the exporter: all I/O sits in the :class:`Sources` hooks, judging and
rendering are pure, and the clock is injected (tests run a missed 09:00 at 11:30 without waiting).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import requests

from govheal import __version__, endpoints
from govheal.client import Prometheus, new_session
from govheal.config import Config
from govheal.report import canary as canary_mod
from govheal.report import digest, fetch, output, schedule, steps
from govheal.report.judge import judge, secs
from govheal.report.model import Bounds, Canary, RunInfo, Snapshot, Verdict, Window
from govheal.report.render import render_json, render_text
from govheal.slots import SLOTS, SlotStore
from govheal.state import State
from govheal.types import display_url
from webhook_receiver.bridge.outbox import OUTBOX

LEASE_MARGIN = 300.0  # on top of the canary deadline and the steps' timeouts
DIGEST_WAIT = 10.0


@dataclass
class Options:
    date: str | None = None
    slot: str | None = None
    window: float | None = None
    out: str | None = None
    send: bool = True
    prometheus: str | None = None
    alertmanagers: Sequence[str] = ()
    digest_wait: float = DIGEST_WAIT  # how long to wait for the receiver to deliver the digest


@dataclass
class Sources:
    """The I/O of a run, replaceable one hook at a time (tests, benchmarks)."""

    health: Callable[[Config], tuple] = fetch.health
    prometheus: Callable[[Config, str, float, float], fetch.PromStats] | None = None
    canary: Callable[[Config, Sequence[str], str], Canary] | None = None
    ui: Callable[[Config], object] | None = None
    steps: Callable[[Config], tuple] = steps.run_all
    is_mount: Callable = os.path.ismount
    session: requests.Session = field(default_factory=new_session)


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    slot_id: str | None
    path: str | None = None
    verdict: Verdict | None = None
    message: str = ""


def prometheus_url(config: Config, opts: Options) -> str:
    """--prometheus, else ``prometheus.url`` of the config, else what a running ``govheal up`` recorded."""
    return opts.prometheus or endpoints.resolve(config).prometheus or ""


def alertmanager_urls(config: Config, opts: Options) -> list[str]:
    """The canary's Alertmanagers: --alertmanager, else reports.canary.alertmanagers, else every one known."""
    return list(opts.alertmanagers) or list(config.reports.canary.alertmanagers) or \
        list(endpoints.resolve(config).alertmanagers)


class DailyRun:
    def __init__(self, config: Config, opts: Options, *, sources: Sources | None = None,
                 clock: Callable[[], float] = time.time, out: TextIO | None = None) -> None:
        self.config = config
        self.opts = opts
        self.src = sources or Sources()
        self.clock = clock
        self.out = out or sys.stdout
        # one state object for the run (govheal/state.py): the slots, and the bridge's outbox for the digest
        self.state = State.open(config.state_path)
        self.conn = self.state.connection(SLOTS)
        self.outbox_conn = self.state.connection(OUTBOX)
        self.store = SlotStore(self.conn, clock=clock)

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    # -- planning
    def plan(self, now: float) -> schedule.Plan | None:
        spec = self.config.reports
        if self.opts.date or self.opts.slot:
            slot = schedule.parse_slot(self.opts.date, self.opts.slot, now, spec)
            return schedule.plan_manual(slot, now, self.opts.window or spec.window)
        rows = self.store.all()
        produced = {r.slot for r in rows}
        last = max((r.scheduled_at for r in rows if r.scheduled_at is not None), default=None)
        return schedule.plan_due(now, spec, produced, last, self.opts.window)

    # -- the run
    def run(self) -> Outcome:
        try:
            return self._run()
        finally:
            self.state.close()

    def _run(self) -> Outcome:
        now = self.clock()
        t = output.target(self.config, self.opts.out, self.src.is_mount)
        for moved in output.flush_pending(t):
            self.say(f"govheal report: moved {moved.name} from {t.pending} to {t.directory} (the volume is back)")
        plan = self.plan(now)
        if plan is None:
            due = schedule.latest_due(now, self.config.reports)
            return Outcome(0, due.id, message=f"slot {due.id} is already produced; nothing is due (slots "
                                              f"{', '.join(self.config.reports.slots)})")
        run_id = f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{secrets.token_hex(3)}"
        spec = self.config.reports
        lease = spec.canary.deadline + sum(s.timeout for s in spec.steps) + LEASE_MARGIN
        claim = self.store.claim(plan.slot.id, run_id, lease=lease, scheduled_at=plan.slot.scheduled_at,
                                 catch_up=plan.catch_up, lateness=plan.lateness, rerun=plan.manual)
        if not claim.won:
            h = claim.holder
            why = {"verified": f"it has a verified report ({h.path if h else '?'}), which is never overwritten",
                   "running": f"run {h.run_id if h else '?'} (pid {h.pid if h else '?'} on {h.host if h else '?'}) "
                              "is producing it now",
                   "finished": f"it was produced already ({h.state if h else '?'}); give --date/--slot to re-run it"}
            return Outcome(0, plan.slot.id, message=f"slot {plan.slot.id} not produced again: {why[claim.reason]}")
        for m in plan.missed:
            self.store.mark_missed(m.id, m.scheduled_at, plan.slot.id)
        try:
            return self._produce(plan, run_id, t)
        except BaseException as exc:
            self.store.finish(plan.slot.id, run_id, verified=False, path=None,
                              summary={"error": f"{type(exc).__name__}: {exc}"[:500]})
            raise

    def _produce(self, plan: schedule.Plan, run_id: str, t: output.Target) -> Outcome:
        cfg, spec = self.config, self.config.reports
        if plan.catch_up:
            self.say(f"govheal report: catch-up of slot {plan.slot.id}, {secs(plan.lateness)} late")
        run = RunInfo(slot_id=plan.slot.id, date=plan.slot.day.isoformat(), slot=plan.slot.label,
                      slot_time=plan.slot.time, timezone=schedule.zone_name(spec),
                      scheduled_at=plan.slot.scheduled_at, started_at=self.clock(), lateness=plan.lateness,
                      catch_up=plan.catch_up, manual=plan.manual, node=cfg.node, run_id=run_id, version=__version__,
                      missed=tuple(m.id for m in plan.missed))
        snapshot = self.fetch(run, plan, t)
        verdict = judge(snapshot)
        path = output.write(t, plan.slot.stem, render_text(snapshot, verdict), render_json(snapshot, verdict))
        self.say(f"govheal report: {'PASS' if verdict.passed else 'FAIL'} {plan.slot.id}: {path}")
        for c in verdict.criteria:
            self.say(f"  {'PASS' if c.passed else 'FAIL'} {c.title}: {c.measured} (bound {c.bound})")
        if t.problem:
            self.say(f"govheal report: error: {t.problem}")
        sent = self.send_digest(snapshot, verdict, str(path), run_id) if self.opts.send and spec.send else {}
        summary = {"passed": verdict.passed, "failures": list(verdict.failures), "digest": sent,
                   "criteria": {c.name: {"passed": c.passed, "value": c.value} for c in verdict.criteria},
                   "catch_up": plan.catch_up, "lateness": plan.lateness, "pending": bool(t.problem)}
        if not self.store.finish(plan.slot.id, run_id, verified=verdict.passed, path=str(path), summary=summary):
            self.say(f"govheal report: warning: the claim on {plan.slot.id} was taken over while this run worked")
        return Outcome(0 if verdict.passed else 1, plan.slot.id, str(path), verdict)

    def fetch(self, run: RunInfo, plan: schedule.Plan, t: output.Target) -> Snapshot:
        cfg, spec, src = self.config, self.config.reports, self.src
        crit = spec.criteria
        bounds = Bounds(crit.heal_success_min, crit.ui_latency_max, crit.delivery_max, crit.downtime_max,
                        crit.coverage_min)
        problems: list[str] = []
        health = src.health(cfg)
        prom_url = prometheus_url(cfg, self.opts)
        if src.prometheus is not None:
            stats = src.prometheus(cfg, prom_url, plan.window_start, plan.window_end)
        elif prom_url:
            stats = fetch.prometheus_stats(Prometheus(prom_url, src.session), cfg, plan.window_start,
                                           plan.window_end)
        else:
            stats = fetch.PromStats(Window(plan.window_start, plan.window_end, None),
                                    problems=["no Prometheus to ask: set prometheus.url in the config (or "
                                              "--prometheus URL)"])
        problems += stats.problems
        canary = None
        if spec.canary.enabled:
            cid = f"{run.slot_id}-{secrets.token_hex(3)}"
            ams = alertmanager_urls(cfg, self.opts)
            canary = src.canary(cfg, ams, cid) if src.canary is not None else \
                canary_mod.run(cfg, ams, self.conn, cid, session=src.session)  # real time: the receiver's
        ui = src.ui(cfg) if src.ui is not None else fetch.ui(cfg)
        switches, note = fetch.switches(self.conn, plan.window_end)
        ran = src.steps(cfg)
        shown = display_url(prom_url) if prom_url else ""
        return Snapshot(run=run, window=stats.window, bounds=bounds, destination=t.destination(),
                        prometheus_url=shown, health=health, agents=stats.agents, node_seen=stats.node_seen,
                        incidents=stats.incidents, remediation=stats.remediation, channels=stats.channels,
                        canary=canary, ui=ui, switches=switches, switches_note=note, steps=ran,  # type: ignore[arg-type]
                        problems=tuple(problems))

    def send_digest(self, s: Snapshot, v: Verdict, path: str, run_id: str) -> dict[str, str]:
        n = digest.notice(s, v, path)
        channels = digest.send(self.config, self.outbox_conn, n, dedupe_id=f"report:{s.run.slot_id}:{run_id}",
                               clock=self.clock)
        if not channels:
            self.say("govheal report: digest: no channel wants it (none configured, or min_severity above it)")
            return {}
        self.say(f"govheal report: digest ({n.severity.upper()}) queued for {', '.join(channels)}")
        states = digest.wait_delivered(self.outbox_conn, n.key, channels, self.opts.digest_wait)
        late = [ch for ch, st in states.items() if st not in ("sent", "merged")]
        if late:
            self.say(f"govheal report: digest not delivered yet to {', '.join(late)} (is the receiver running? it "
                     "sends from the outbox)")
        return states
