"""No false restarts, short form: healthy but slow or briefly stalled agents never raise a restart alert.

Through the real detection chain: demo agents → `govheal exporter` (probe schedule) → Prometheus 2.42
(shipped single-host profile and rules) → Alertmanager 0.25 (shipped routes) → a recording sink.

Why a sink and not the receiver + remediator: a restart can only start from an AgentDown or
AgentUnhealthy alert (`remediation=restart`) reaching the receiver, so "no such alert arrived" is the
stricter claim: the remediator would still skip an alert for an agent that is healthy again when it
looks (`already_recovered`), which would hide a false alarm. The restart path itself is tested in
tests/test_up.py and measured in bench/heal_latency.py.

The agents use the shipped demo fleet's detection settings (examples/govheal.yaml: health timeout,
probe interval, failures in a row), two CPU burners load both cores, and for ~20 s:
- S answers /health after 60 % of its timeout, every time;
- P is SIGSTOPped for 0.3 s about once a second (a GC pause, a busy moment).
Then the test shows the same chain does fire: P stalled longer than its tolerated stall, and H hung.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govheal import resources
from govheal.chain import start_chain
from govheal.client import Prometheus, new_session
from govheal.seams import load_config
from govheal.supervise import Supervisor
from govheal.testing.support import demo_fleet
from govheal.testing.webhook_sink import WebhookSink

pytestmark = pytest.mark.live

SHIPPED = load_config(resources.example_config())
DETECTION = SHIPPED.detection_for(SHIPPED.agents[0])
RUN_SECONDS = 20.0
PAUSE = 0.3


def fleet_config(agents) -> str:
    e = SHIPPED.exporter
    lines = ["node: fr-node", "state_dir: state", "telemetry_log: telemetry/autoheal.log",
             f"exporter: {{process_interval: {e.process_interval}, probe_interval: {e.probe_interval}, "
             f"consecutive_failures: {e.consecutive_failures}}}", "agents:"]
    for a in agents:
        lines += [f"  - name: {a.name}", f"    process: {{pidfile: {json.dumps(str(a.pidfile))}}}",
                  f"    health: {{url: {json.dumps(a.health_url)}, timeout: {DETECTION.timeout}}}"]
    return "\n".join(lines) + "\n"


def burners(n: int = 2) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def query(prometheus: str, expr: str) -> float:
    (sample,) = Prometheus(f"http://{prometheus}", new_session()).query(expr)
    return sample.value


def restart_alerts(sink: WebhookSink, since: int, agent: str) -> list[str]:
    return [a["labels"]["alertname"] for d in sink.deliveries[since:] for a in d.body.get("alerts", [])
            if a["labels"].get("agent") == agent and a["labels"].get("remediation") == "restart"
            and a["status"] == "firing"]


def test_slow_and_briefly_stalled_agents_raise_no_restart_alert_under_cpu_load(tmp_path: Path):
    assert DETECTION.tolerated_stall > PAUSE  # else the test's pauses would be real outages
    token = tmp_path / "token"
    token.write_text("fr-token\n")
    hot: list[subprocess.Popen] = []
    with WebhookSink() as sink, demo_fleet(tmp_path, ["S", "P", "H"]) as (s, p, h):
        cfg = tmp_path / "govheal.yaml"
        cfg.write_text(fleet_config([s, p, h]))
        sup = Supervisor(out=lambda line: None)
        try:
            ends = start_chain(sup, cfg, "fr-node", tmp_path, sink.url, token)
            s.fault("slow", seconds=round(0.6 * DETECTION.timeout, 3))
            mark = len(sink.deliveries)
            hot = burners()
            rng = random.Random(12)
            stop_at = time.monotonic() + RUN_SECONDS
            pauses = 0
            while time.monotonic() < stop_at:
                p.signal(signal.SIGSTOP)
                time.sleep(PAUSE)
                p.signal(signal.SIGCONT)
                pauses += 1
                time.sleep(rng.uniform(0.5, 1.2))
            time.sleep(1.0)  # anything the last pause caused has reached the sink by now
            for proc in hot:
                proc.kill()
            assert restart_alerts(sink, mark, "S") == [], "slow but within its timeout: restarted"
            assert restart_alerts(sink, mark, "P") == [], f"{pauses} pauses of {PAUSE}s: restarted"
            window = f"[{int(RUN_SECONDS)}s]"
            slowest = query(ends.prometheus,
                            f'max_over_time(govheal_agent_probe_duration_seconds{{agent="S"}}{window})')
            assert slowest >= 0.5 * DETECTION.timeout, "S was not actually slow"
            streak = query(ends.prometheus,
                           f'max_over_time(govheal_agent_health_consecutive_failures{{agent="P"}}{window})')
            assert 1 <= streak < DETECTION.consecutive_failures, \
                "P's pauses were not seen as failed probes, or reached the threshold"

            # The same chain fires when it should: a stall longer than the tolerated one, and a hang.
            mark = len(sink.deliveries)
            p.signal(signal.SIGSTOP)
            try:
                sink.wait_for(lambda d: "AgentUnhealthy" in restart_alerts(sink, mark, "P"), timeout=15, since=mark)
            finally:
                p.signal(signal.SIGCONT)
            h.fault("hang")
            sink.wait_for(lambda d: "AgentUnhealthy" in restart_alerts(sink, mark, "H"), timeout=15, since=mark)
        finally:
            for proc in hot:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            sup.stop_all()
