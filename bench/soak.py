"""Soak: no false restarts over a long run, and repeated crashes healed under the shipped policy.

The two long-duration targets of issue 12, in ONE ``govheal up`` stack (real exporter, Prometheus 2.42,
Alertmanager 0.25, receiver + remediator, ``command`` strategy, shipped single-host profile) with the
shipped demo fleet's detection settings and the SHIPPED remediation policy (examples/govheal.yaml and
the PolicySpec defaults: budget 3 per 10 min, min_uptime 1 min, backoff 1 s x2 up to 1 min, cooldown
5 min), two CPU burners for the whole run, four agents side by side:

- ``Slow``: ``/health`` answers after 60 % of its timeout, every time (``/fault/slow``);
- ``Stall``: SIGSTOPped for 0.3 s now and then (every 0.5-1.2 s after the last stall, as the short test
  tests/test_false_restarts.py does);
- ``Burst4``: 4 crashes (exit 1) in 10 minutes (one every 150 s; in a short run every 65 s, so each heal
  still outlives min_uptime);
- ``Every90``: a crash every 90 s.

Per crash: fault → a new PID answers ``/health`` with 200 (the downtime). Restarts: the remediator's
``restarting`` lines in the audit log, and the agent's own start lines (new PIDs). Restart alerts:
Prometheus's ``ALERTS{remediation="restart"}`` over the run. AgentFlapping: polled every 2 s from
Prometheus's ``ALERTS`` and the Alertmanager API (govheal/client.py), and from ``ALERTS`` over the run.

``--minutes`` (default 15) sets the run length. Writes the table to stdout and everything as JSON to
``$GOVHEAL_BENCH_JSON`` (default ``.bench/soak.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.heal_latency import OWN_CHILDREN, Agent, Govheal, Reaper, free_port, inject, recover
from govheal import resources
from govheal.client import Alertmanager, Prometheus, ServerError, new_session
from govheal.seams import load_config
from govheal.testing.support import DemoAgent, demo_config_text

REPO = Path(__file__).resolve().parent.parent
SHIPPED = load_config(resources.example_config())
DETECTION = SHIPPED.detection_for(SHIPPED.agents[0])
SLOW_FRACTION = 0.6
PAUSE = 0.3
CRASH_EVERY = 90.0
BURST_EVERY = 150.0  # 4 crashes at 30, 180, 330, 480 s: all four inside 10 minutes
BURST_MIN_GAP = 65.0  # a short run: still more than min_uptime between heals
FIRST_CRASH = 30.0
POLL = 0.01
FLAP_POLL = 2.0


@dataclass
class Crash:
    agent: str
    at: float  # seconds since the run began
    old_pid: int | None
    new_pid: int | None = None
    downtime: float | None = None  # None: not healed before the run ended


@dataclass
class Watch:
    flapping_prom: dict[str, float] = field(default_factory=dict)  # agent → first seen (s into the run)
    flapping_am: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class SoakStack(Govheal):
    """``govheal up`` (bench/heal_latency.py's starter) around the soak's demo agents, shipped policy."""

    def __init__(self, tmp: Path, demo: list[DemoAgent]) -> None:
        super().__init__(tmp)
        self.demo = demo
        self.agents = [Agent(d.name, d.port, d.pidfile, d.log) for d in demo]

    def config_text(self) -> str:
        e = SHIPPED.exporter
        policy = SHIPPED.remediation.model_dump(mode="json")
        extra = "\n".join([
            f"listen: {{exporter: '127.0.0.1:{free_port()}', receiver: '127.0.0.1:{free_port()}'}}",
            f"exporter: {{process_interval: {e.process_interval}, probe_interval: {e.probe_interval}, "
            f"consecutive_failures: {e.consecutive_failures}}}",
            f"remediation: {json.dumps(policy)}",
        ])
        timeout_ms = round(DETECTION.timeout * 1000)
        return demo_config_text(self.demo, node="soak-node", extra=extra, health_timeout=f"{timeout_ms}ms")

    def stop(self) -> None:
        super().stop()
        for d in self.demo:
            d.stop()


def burners(n: int = 2) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    OWN_CHILDREN.update(p.pid for p in procs)
    return procs


def schedule(duration: float, every: float, limit: int | None = None) -> list[float]:
    out, t = [], FIRST_CRASH
    while t < duration - 20 and (limit is None or len(out) < limit):
        out.append(t)
        t += every
    return out


def crash_driver(a: Agent, offsets: list[float], t0: float, end: float, out: list[Crash], lock: threading.Lock,
                 stop: threading.Event) -> None:
    for off in offsets:
        if stop.wait(max(0.0, t0 + off - time.monotonic())):
            return
        h = a.health(timeout=0.5)
        old = h[1] if h is not None and h[0] == 200 else a.pid()
        c = Crash(a.name, time.monotonic() - t0, old)
        with lock:
            out.append(c)
        started = time.monotonic()
        inject("crash", a, old or 0)
        while time.monotonic() < end and not stop.is_set():
            pid = a.pid()
            if pid not in (None, old):
                h = a.health()
                if h is not None and h[0] == 200 and h[1] not in (None, old):
                    c.new_pid, c.downtime = h[1], time.monotonic() - started
                    break
            time.sleep(POLL)
        if c.downtime is None and old:
            recover("crash", a, old)


def staller(a: Agent, end: float, stop: threading.Event, counter: list[int], seed: int = 12) -> None:
    rng = random.Random(seed)
    while time.monotonic() < end and not stop.is_set():
        pid = a.pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                try:
                    time.sleep(PAUSE)
                finally:
                    os.kill(pid, signal.SIGCONT)
                counter[0] += 1
        stop.wait(rng.uniform(0.5, 1.2))


def flap_watcher(prom: Prometheus, am: Alertmanager, t0: float, stop: threading.Event, w: Watch) -> None:
    while not stop.wait(FLAP_POLL):
        now = time.monotonic() - t0
        try:
            for s in prom.query('ALERTS{alertname="AgentFlapping", alertstate="firing"}'):
                w.flapping_prom.setdefault(s.labels.get("agent", "?"), now)
            for al in am.alerts(['alertname="AgentFlapping"']):
                w.flapping_am.setdefault(al.labels.get("agent", "?"), now)
        except ServerError as exc:
            w.errors.append(f"{now:.0f}s: {exc}")


def audit_events(tmp: Path) -> list[dict]:
    log = tmp / "telemetry" / "autoheal.log"
    files = sorted(log.parent.glob("autoheal.log.*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit()
                   else 0)
    out = []
    for f in [*[f for f in files if f.suffix[1:].isdigit()], log]:
        with contextlib.suppress(OSError):
            for line in f.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
    return out


def run(quick: bool, minutes: float | None = None) -> str:
    minutes = minutes if minutes is not None else (2.0 if quick else 15.0)
    duration = minutes * 60
    lines: list[str] = []
    report: dict = {"minutes": minutes, "detection": {"timeout_s": DETECTION.timeout,
                                                      "consecutive_failures": DETECTION.consecutive_failures},
                    "policy": SHIPPED.remediation.model_dump(mode="json"), "started": time.time()}
    with Reaper(lambda: OWN_CHILDREN), tempfile.TemporaryDirectory(prefix="govheal-soak-") as tmpdir:
        tmp = Path(tmpdir)
        names = ["Slow", "Stall", "Burst4", "Every90"]
        demo = [DemoAgent(n, free_port(), tmp / "run" / f"{n}.pid", tmp / "logs" / f"{n}.log") for n in names]
        stack = SoakStack(tmp, demo)
        _slow, stall, burst, every = stack.agents
        hot: list[subprocess.Popen] = []
        crashes: list[Crash] = []
        watch = Watch()
        stop = threading.Event()
        stalls = [0]
        lock = threading.Lock()
        threads: list[threading.Thread] = []
        try:
            stack.start()
            prom = Prometheus(stack.urls["prometheus"], new_session())
            am = Alertmanager(stack.urls["alertmanager"], new_session())
            report["load_before"] = os.getloadavg()
            demo[0].fault("slow", seconds=round(SLOW_FRACTION * DETECTION.timeout, 3))
            hot = burners()
            t0 = time.monotonic()
            wall0 = time.time()
            end = t0 + duration
            burst_gap = BURST_EVERY if duration >= 10 * 60 else BURST_MIN_GAP
            plans = {burst.name: schedule(duration, burst_gap, limit=4), every.name: schedule(duration, CRASH_EVERY)}
            report["plans"] = plans
            threads = [
                threading.Thread(target=staller, args=(stall, end, stop, stalls), daemon=True),
                threading.Thread(target=flap_watcher, args=(prom, am, t0, stop, watch), daemon=True),
                *[threading.Thread(target=crash_driver, args=(a, plans[a.name], t0, end, crashes, lock, stop),
                                   daemon=True) for a in (burst, every)],
            ]
            for t in threads:
                t.start()
            while time.monotonic() < end:
                time.sleep(1.0)
            time.sleep(2.0)  # a late alert or restart from the last seconds reaches Prometheus and the audit log
            elapsed = time.monotonic() - t0
            report["load_after"] = os.getloadavg()
            w = f"[{int(elapsed) + 5}s]"
            restart_alerts = {}
            for s in prom.query(f'count_over_time(ALERTS{{remediation="restart", alertstate="firing"}}{w})'):
                key = f"{s.labels.get('agent', '?')}/{s.labels.get('alertname', '?')}"
                restart_alerts[key] = s.value
            flap_over_run = {s.labels.get("agent", "?"): s.value for s in prom.query(
                f'count_over_time(ALERTS{{alertname="AgentFlapping", alertstate="firing"}}{w})')}
            starts_changes = {s.labels.get("agent", "?"): s.value for s in prom.query(
                f"changes(govheal_agent_start_time_seconds{w})")}
            slowest = {s.labels.get("agent", "?"): s.value for s in prom.query(
                f"max_over_time(govheal_agent_probe_duration_seconds{w})")}
            streak = {s.labels.get("agent", "?"): s.value for s in prom.query(
                f"max_over_time(govheal_agent_health_consecutive_failures{w})")}
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)
            for p in hot:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
            starts = {a.name: a.starts() for a in stack.agents}
            events = audit_events(tmp)
            stack.stop()
    in_run = [e for e in events if e.get("time", 0) >= wall0]
    report.update(finished=time.time(), elapsed_s=elapsed, stalls=stalls[0], crashes=[asdict(c) for c in crashes],
                  restart_alerts=restart_alerts, flapping_over_run=flap_over_run,
                  flapping_first_seen_prometheus_s=watch.flapping_prom,
                  flapping_first_seen_alertmanager_s=watch.flapping_am, watch_errors=watch.errors,
                  start_time_changes=starts_changes, slowest_probe_s=slowest, max_failure_streak=streak,
                  agent_starts=starts, audit=in_run)

    rows = ["| agent | what | faults | healed | max downtime s | restarts (audit `restarting`) | new PIDs | "
            "false restarts | restart alerts | other remediator outcomes | AgentFlapping seen |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    what = {"Slow": f"/health answers in {SLOW_FRACTION:.0%} of its {DETECTION.timeout * 1000:.0f} ms timeout",
            "Stall": f"SIGSTOP {PAUSE} s every 0.5-1.2 s ({stalls[0]} stalls)",
            "Burst4": f"crash at {', '.join(f'{t:.0f}' for t in plans['Burst4'])} s",
            "Every90": f"crash every {CRASH_EVERY:.0f} s ({len(plans['Every90'])})"}
    summary = {}
    for a in stack.agents:
        mine = [c for c in crashes if c.agent == a.name]
        healed = [c for c in mine if c.downtime is not None]
        ev = [e for e in in_run if e.get("agent") == a.name]
        restarting = sum(1 for e in ev if e.get("outcome") == "restarting")
        outcomes: dict[str, int] = {}
        for e in ev:
            if e.get("outcome") not in ("restarting",):
                outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
        new_pids = starts[a.name] - 1
        false = max(restarting, new_pids) - len(mine)
        alerts = sum(v for k, v in restart_alerts.items() if k.startswith(a.name + "/"))
        alert_names = sorted({k.split("/", 1)[1] for k in restart_alerts if k.startswith(a.name + "/")})
        flap = [f"Prometheus {watch.flapping_prom[a.name]:.0f} s" if a.name in watch.flapping_prom else "",
                f"Alertmanager {watch.flapping_am[a.name]:.0f} s" if a.name in watch.flapping_am else ""]
        flap_text = ", ".join(x for x in flap if x) or ("yes (ALERTS)" if a.name in flap_over_run else "no")
        max_down = max((c.downtime for c in healed), default=None)
        summary[a.name] = {"faults": len(mine), "healed": len(healed), "max_downtime_s": max_down,
                           "restarting": restarting, "new_pids": new_pids, "false_restarts": false,
                           "restart_alert_evaluations": alerts, "outcomes": outcomes, "flapping": flap_text}
        alerts_text = f"{alerts:.0f} evaluations ({', '.join(alert_names)})" if alerts else "0"
        down_text = "-" if max_down is None else f"{max_down:.2f}"
        other = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "-"
        rows.append(f"| {a.name} | {what[a.name]} | {len(mine)} | {len(healed)} | {down_text} | {restarting} | "
                    f"{new_pids} | {false} | {alerts_text} | {other} | {flap_text} |")
    report["summary"] = summary
    out = Path(os.environ.get("GOVHEAL_BENCH_JSON", REPO / ".bench" / "soak.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    lines.append("\n".join(rows))
    lines.append("")
    downs = ", ".join(f"{c.agent}@{c.at:.0f}s {'-' if c.downtime is None else f'{c.downtime:.2f}'}" for c in crashes)
    lines.append(f"crash → healthy (s): {downs}")
    lines.append(f"slowest probe (s): {', '.join(f'{k} {v:.3f}' for k, v in sorted(slowest.items()))}; "
                 f"longest failed-probe streak: {', '.join(f'{k} {v:.0f}' for k, v in sorted(streak.items()))} "
                 f"(alert at {DETECTION.consecutive_failures})")
    lines.append(f"process starts seen by Prometheus (changes of start time): "
                 f"{', '.join(f'{k} {v:.0f}' for k, v in sorted(starts_changes.items()))}")
    la, lb = report["load_before"], report["load_after"]
    lines.append(f"load average (1/5/15 min) before: {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}, after: "
                 f"{lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}; ran {elapsed / 60:.1f} min; JSON: {out}")
    if watch.errors:
        lines.append(f"watcher errors: {len(watch.errors)} (first: {watch.errors[0]})")
    return "\n".join(lines)
