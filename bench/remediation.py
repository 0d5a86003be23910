"""Remediation: action start → verified healthy per strategy, beside the demo agent's own cold start; and
the policy + store + audit overhead of one decision.

Real demo agents on loopback. launchd/systemd go through the fake ``launchctl``/``systemctl`` of
govheal/testing/remediator (a Python script each, so their own interpreter start is in the numbers).
Verification here is K=1 (the first healthy answer); the default K=3 adds (K-1)·verify_interval by design.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from govheal import testing
from govheal.seams import parse_config
from govheal.testing.remediator.world import World
from govheal.testing.support import DemoAgent, free_port
from remediator.api import Request
from remediator.engine import Remediator
from remediator.verify import running

FAKES = testing.FAKES / "remediator"
# K=1; no backoff; attempts leave the 1 ms budget window at once, so the circuit never opens and the
# persisted state stays the size it has in real use (a few attempts), however many runs the benchmark makes
POLICY = "remediation: {verify_successes: 1, verify_interval: 200ms, budget_window: 1ms, backoff_initial: 0s}\n"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


def cold_start(agent: DemoAgent) -> float:
    """Popen → first 200 from /health, polling every 10 ms (the remediator's first-answer poll)."""
    t0 = time.perf_counter()
    agent.start(wait=False)
    while not healthy(agent.health_url):
        time.sleep(0.01)
    dt = time.perf_counter() - t0
    agent.stop()
    return dt


def graceful_stop(agent: DemoAgent) -> float:
    """The agent's own SIGTERM → exited (part of any restart, not the remediator's overhead)."""
    agent.start()
    pid = agent.pid
    assert pid
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGTERM)
    while running(pid):
        time.sleep(0.002)
    dt = time.perf_counter() - t0
    agent.stop()
    return dt


def restart_yaml(strategy: str, agent: DemoAgent) -> str:
    return {
        "command": f"{{strategy: command, argv: {json.dumps(agent.argv())}, log_file: {json.dumps(str(agent.log))}}}",
        "launchd": "{strategy: launchd, label: com.govheal.bench}",
        "systemd": "{strategy: systemd, unit: govheal-bench.service}",
        "signal": "{strategy: signal, signal: CONT}",
    }[strategy]


def strategy_runs(strategy: str, n: int, tmp: Path) -> list[float]:
    agent = DemoAgent("bench", free_port(), tmp / strategy / "bench.pid", tmp / strategy / "bench.log")
    state = tmp / strategy / "supervisor.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"mode": "ok", "kill_grace": 5, "services": {
        k: {"argv": agent.argv(), "pidfile": str(agent.pidfile), "log": str(agent.log)}
        for k in ("com.govheal.bench", "govheal-bench.service")}}))
    env = {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_SUPERVISOR_STATE": str(state),
           "FAKE_SUPERVISOR_LOG": str(tmp / strategy / "calls.jsonl")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    cfg_path = tmp / strategy / "govheal.yaml"
    cfg_path.write_text(POLICY + "state_dir: state\nagents:\n  - name: bench\n"
                        f"    process: {{pidfile: {json.dumps(str(agent.pidfile))}}}\n"
                        f"    health: {{url: {json.dumps(agent.health_url)}, timeout: 500ms}}\n"
                        f"    restart: {restart_yaml(strategy, agent)}\n")
    rem = Remediator(parse_config(cfg_path.read_text(), cfg_path))
    out: list[float] = []
    try:
        agent.start()
        for i in range(n):
            pid = agent.pid
            assert pid
            if strategy == "signal":
                os.kill(pid, signal.SIGSTOP)
            else:
                agent.fault("unhealthy")
            r = rem.submit(Request("bench", "restart", f"bench-{i}"))
            if r.outcome != "healed":
                raise RuntimeError(f"{strategy}: {r.outcome}: {r.reason}")
            out.append(r.duration_seconds)
    finally:
        rem.close()
        pid = agent.pid
        if pid:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        agent.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def decision_runs(n: int, tmp: Path) -> tuple[list[float], list[float]]:
    """Full submit() with an instant fake world: (already_recovered path, restart+verify path)."""
    cfg_path = tmp / "decision" / "govheal.yaml"
    cfg_path.parent.mkdir(parents=True)
    cfg_path.write_text(POLICY + "state_dir: state\nagents:\n  - name: A\n    process: {pidfile: run/A.pid}\n"
                        "    restart: {strategy: command, argv: [/bin/true]}\n")
    world = World(healthy={"A": True})
    strategy = world.strategy()
    rem = Remediator(parse_config(cfg_path.read_text(), cfg_path), look=world.look,
                     strategies=dict.fromkeys(("launchd", "systemd", "command", "signal"), strategy))
    ok, restart = [], []
    for i in range(n):
        t0 = time.perf_counter()
        rem.submit(Request("A", "restart", f"ok-{i}"))
        ok.append(time.perf_counter() - t0)
        world.healthy["A"] = False
        t0 = time.perf_counter()
        rem.submit(Request("A", "restart", f"r-{i}"))
        restart.append(time.perf_counter() - t0)
    rem.close()
    return ok, restart


def run(quick: bool) -> str:
    n = 5 if quick else 20
    tmp = Path(tempfile.mkdtemp(prefix="govheal-bench-rem-"))
    rows = ["| measure | p50 | p99 | n |", "|---|---|---|---|"]
    cold_agent = DemoAgent("cold", free_port(), tmp / "cold" / "cold.pid", tmp / "cold" / "cold.log")
    cold = [cold_start(cold_agent) for _ in range(n)]
    rows.append(f"| demo agent alone: cold start → first 200 | {pct(cold, 50) * 1000:.0f} ms | "
                f"{pct(cold, 99) * 1000:.0f} ms | {n} |")
    stop = [graceful_stop(cold_agent) for _ in range(n)]
    rows.append(f"| demo agent alone: SIGTERM → exited | {pct(stop, 50) * 1000:.0f} ms | "
                f"{pct(stop, 99) * 1000:.0f} ms | {n} |")
    for strategy in ("command", "launchd", "systemd", "signal"):
        xs = strategy_runs(strategy, n, tmp)
        rows.append(f"| `{strategy}`: action start → verified healthy | {pct(xs, 50) * 1000:.0f} ms | "
                    f"{pct(xs, 99) * 1000:.0f} ms | {n} |")
        if strategy == "command":
            own = pct(xs, 50) - pct(cold, 50) - pct(stop, 50)
            rows.append(f"| `command` minus the agent's own stop and cold start (remediator overhead) | "
                        f"{own * 1000:.0f} ms | | |")
    m = 100 if quick else 500
    ok, restart = decision_runs(m, tmp)
    rows.append(f"| decision, agent already healthy (policy + store + audit) | {pct(ok, 50) * 1000:.2f} ms | "
                f"{pct(ok, 99) * 1000:.2f} ms | {m} |")
    rows.append(f"| decision + fake restart + verify (policy + store + audit) | {pct(restart, 50) * 1000:.2f} ms | "
                f"{pct(restart, 99) * 1000:.2f} ms | {m} |")
    rows.append(f"\nmean cold start {statistics.mean(cold) * 1000:.0f} ms; python {sys.version.split()[0]}")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return "\n".join(rows)
