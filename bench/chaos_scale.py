"""``make chaos SCALE=1``: N nodes x M agents on loopback (default 1, 3, 5 nodes x 10 agents), fleet profile.

Each point starts the whole topology (govheal/testing/topology.py: one exporter and one receiver per node,
two clustered Alertmanagers, one Prometheus scraping every node), lets it settle, then for ``--window``
seconds crashes one random agent of each node every 20 s and measures: the exporters' scrape cost (wall
time Prometheus records, CPU of the exporters), fault → restart and alert → restart latency, the CPU of
Prometheus, of the Alertmanager cluster and of the receivers, and the messages the fake Discord took
per minute. One row per node count: the curve docs/benchmarks.md shows.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import psutil

from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.topology import Topology

WINDOW = 120.0
SETTLE = 20.0
CRASH_EVERY = 20.0  # per node


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def cpu(pid: int | None) -> float:
    try:
        t = psutil.Process(pid).cpu_times() if pid else None
    except psutil.Error:
        return 0.0
    return (t.user + t.system) if t else 0.0


def point(nodes: int, agents: int, window: float = WINDOW, seed: int = 1) -> dict:
    rng = random.Random(seed)
    base = Path(tempfile.mkdtemp(prefix=f"govheal-scale-{nodes}x{agents}-"))
    with FakeDiscord() as discord:
        env = {"GOVHEAL_DISCORD_WEBHOOK_URL": discord.url}
        names = {f"n{i}": [f"n{i}a{j}" for j in range(agents)] for i in range(1, nodes + 1)}
        topo = Topology(base, names, alertmanagers=2, prometheus=1, profile="fleet", channels=env,
                        channel_config="discord: {type: discord}", replica_skew="0s")
        t_start = time.monotonic()
        with topo:
            started = time.monotonic() - t_start
            time.sleep(SETTLE)
            pids = {name: child.pid for name, child in topo.children.items()}
            cpu0 = {name: cpu(pid) for name, pid in pids.items()}
            msgs0 = len(discord.received)
            t0, wall0 = time.monotonic(), time.time()
            faults: list[tuple[str, str, float]] = []
            next_at = {n: t0 + rng.uniform(0, CRASH_EVERY) for n in topo.nodes}
            while time.monotonic() - t0 < window:
                now = time.monotonic()
                for n, at in next_at.items():
                    if now >= at:
                        victim = rng.choice(list(topo.nodes[n].agents.values()))
                        victim.fault("crash", code=1)
                        faults.append((n, victim.name, time.time()))
                        next_at[n] = at + CRASH_EVERY
                time.sleep(0.1)
            time.sleep(15)  # the last faults heal
            elapsed = time.monotonic() - t0
            cpu1 = {name: cpu(pid) for name, pid in pids.items()}
            msgs = len(discord.received) - msgs0
            prom = topo.prometheus_client()
            scrape = prom.query('avg_over_time(scrape_duration_seconds{job="govheal-exporter"}[2m])')
            samples = prom.query('avg_over_time(scrape_samples_scraped{job="govheal-exporter"}[2m])')
            fault_action, alert_action, unhealed = [], [], 0
            for n, agent, t in faults:
                node = topo.nodes[n]
                ev = [e for e in node.audit() if e["agent"] == agent and e["outcome"] == "restarting"
                      and t <= e["time"] < t + 60]
                if not ev:
                    unhealed += 1
                    continue
                fault_action.append(ev[0]["time"] - t)
                got = _received(node.state / "govheal.sqlite3", agent, t)
                if got is not None:
                    alert_action.append(ev[0]["time"] - got)

            def share(prefix: str) -> float:
                return sum(cpu1[k] - cpu0[k] for k in pids if k.startswith(prefix)) / elapsed * 100

            return {
                "nodes": nodes, "agents_per_node": agents, "agents": nodes * agents, "start_s": round(started, 1),
                "window_s": round(elapsed, 1), "faults": len(faults), "not_restarted": unhealed,
                "exporter_scrape_ms": round(1000 * sum(s.value for s in scrape) / max(1, len(scrape)), 1),
                "exporter_samples_per_scrape": round(sum(s.value for s in samples) / max(1, len(samples))),
                "exporter_cpu_pct_per_node": round(share("exporter-") / nodes, 2),
                "prometheus_cpu_pct": round(share("prometheus"), 2),
                "alertmanager_cluster_cpu_pct": round(share("alertmanager-"), 2),
                "receivers_cpu_pct": round(share("receiver-"), 2),
                "fault_to_action_p50_s": pct(fault_action, 50), "fault_to_action_p99_s": pct(fault_action, 99),
                "alert_to_action_p50_s": pct(alert_action, 50), "alert_to_action_p99_s": pct(alert_action, 99),
                "messages_per_min": round(msgs / (elapsed / 60), 1), "load_after": os.getloadavg()[0],
                "started_wall": wall0,
            }


def _received(db: Path, agent: str, since: float) -> float | None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT MIN(received) FROM inbox_alerts WHERE agent = ? AND status = 'firing' AND "
                           "received >= ?", (agent, since)).fetchone()
    finally:
        conn.close()
    return row[0] if row and row[0] is not None else None


def table(points: list[dict], machine: str) -> str:
    f = lambda x, d=2: "-" if x is None else f"{x:.{d}f}"  # noqa: E731
    lines = [f"machine: {machine}; fleet profile (5 s scrape and evaluation), 2 Alertmanagers, 1 Prometheus", "",
             "| nodes | agents | exporter scrape ms | samples/scrape | exporter CPU %/node | Prometheus CPU % | "
             "Alertmanager cluster CPU % | receivers CPU % | fault → restart p50 / p99 s | alert → restart p50 / p99 s"
             " | msgs/min | faults (not restarted) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        lines.append(f"| {p['nodes']} | {p['agents']} | {p['exporter_scrape_ms']} | "
                     f"{p['exporter_samples_per_scrape']} | "
                     f"{p['exporter_cpu_pct_per_node']} | {p['prometheus_cpu_pct']} | "
                     f"{p['alertmanager_cluster_cpu_pct']} | {p['receivers_cpu_pct']} | "
                     f"{f(p['fault_to_action_p50_s'])} / {f(p['fault_to_action_p99_s'])} | "
                     f"{f(p['alert_to_action_p50_s'], 3)} / {f(p['alert_to_action_p99_s'], 3)} | "
                     f"{p['messages_per_min']} | {p['faults']} ({p['not_restarted']}) | {p['load_after']:.1f} |")
    return "\n".join(lines)


def run_scale(nodes: list[int], agents: int, out: Path | None, window: float = WINDOW) -> int:
    from bench.__main__ import machine

    m = machine()
    print(f"machine: {m}; load average {os.getloadavg()}", flush=True)
    points = []
    for n in nodes:
        print(f"  {n} node(s) x {agents} agents ...", flush=True)
        points.append(point(n, agents, window))
        print(f"    {points[-1]}", flush=True)
    print(table(points, m))
    out = out or Path(".govheal") / "chaos" / f"scale-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": m, "points": points}, indent=1))
    print(f"\nJSON: {out}")
    return 0
