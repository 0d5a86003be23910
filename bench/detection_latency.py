"""Detection latency: SIGKILL of an agent → AgentDown webhook arriving at a recording sink
(and SIGSTOP → AgentUnhealthy, which adds the failed probes in a row the rule waits for).

The real chain with the shipped single-host profile (1 s scrape and evaluation) and the shipped
Alertmanager routes: demo agents → `govheal exporter` → Prometheus 2.42 → Alertmanager 0.25 → sink.
Agents are killed one at a time, round-robin, each restarted once its alert arrived and killed again
only after its alert resolved (so every kill opens a fresh episode, as in production).
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from govheal.chain import start_chain
from govheal.supervise import Supervisor
from govheal.testing.support import demo_config_text, demo_fleet
from govheal.testing.webhook_sink import WebhookSink

# measured.md: `up == 0`, for 0s, scrape = evaluation = 1 s, group_wait 0s (n=12).
FLOOR_1S = {"median": 1.49, "min": 0.92, "max": 1.87}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[rank]


def fault_to_alert(sink: WebhookSink, agent, alertname: str, fault, recover) -> float:
    """Apply ``fault`` to the agent, time until ``alertname`` fires at the sink, ``recover``, wait for resolved."""

    def seen(d, status: str) -> bool:
        return any(a["labels"].get("agent") == agent.name for a in d.alerts(alertname, status))

    mark = sink.mark()
    t0 = time.monotonic()
    fault()
    try:
        got = sink.wait_for(lambda d: seen(d, "firing"), timeout=30, since=mark)
    finally:
        recover()
    sink.wait_for(lambda d: seen(d, "resolved"), timeout=30, since=mark)
    return got.received - t0


def measure(kills: int, hangs: int) -> tuple[list[float], list[float]]:
    latencies: list[float] = []
    hang_latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="govheal-bench-") as tmpdir:
        tmp = Path(tmpdir)
        token = tmp / "token"
        token.write_text("bench\n")
        with WebhookSink() as sink, demo_fleet(tmp, ["K1", "K2", "K3", "K4"]) as agents:
            cfg = tmp / "govheal.yaml"
            cfg.write_text(demo_config_text(agents, node="bench"))
            sup = Supervisor(out=lambda line: None)
            try:
                start_chain(sup, cfg, "bench", tmp, sink.url, token)
                time.sleep(5)  # Prometheus has discovered Alertmanager and scraped a few times
                for i in range(kills):
                    a = agents[i % len(agents)]

                    def kill(a=a) -> None:
                        os.kill(a.pid, signal.SIGKILL)
                        a.proc.wait(timeout=5)  # reap at once: a zombie would count as not running anyway

                    latencies.append(fault_to_alert(sink, a, "AgentDown", kill, a.start))
                for i in range(hangs):
                    a = agents[i % len(agents)]
                    hang_latencies.append(fault_to_alert(
                        sink, a, "AgentUnhealthy", lambda a=a: os.kill(a.pid, signal.SIGSTOP),
                        lambda a=a: os.kill(a.pid, signal.SIGCONT)))
            finally:
                sup.stop_all()
    return latencies, hang_latencies


def run(quick: bool) -> str:
    kills, hangs = (5, 2) if quick else (24, 10)
    lat, hang = measure(kills, hangs)
    rows = [
        "| what | n | p50 | p99 | min | max |",
        "|---|---|---|---|---|---|",
        f"| govheal chain, single-host profile (kill → AgentDown at webhook) | {len(lat)} | "
        f"{statistics.median(lat):.2f} s | {percentile(lat, 0.99):.2f} s | {min(lat):.2f} s | {max(lat):.2f} s |",
        "| govheal chain, single-host profile (SIGSTOP → AgentUnhealthy at webhook; 500 ms probe timeout, "
        f"3 failed probes in a row) | {len(hang)} | {statistics.median(hang):.2f} s | {percentile(hang, 0.99):.2f} s | "
        f"{min(hang):.2f} s | {max(hang):.2f} s |",
        f"| floor for 1 s scrape/evaluation (measured.md, `up == 0`, n=12) | 12 | {FLOOR_1S['median']:.2f} s | "
        f"- | {FLOOR_1S['min']:.2f} s | {FLOOR_1S['max']:.2f} s |",
        "",
        "Targets: p50 ≤ 2 s, p99 ≤ 3.5 s.",
    ]
    return "\n".join(rows)
