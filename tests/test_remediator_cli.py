"""`govheal restart` end to end on real demo agents: dry-run, unknown agent, a real restart, a SIGKILL
mid-incident with the state intact afterwards, and an always-crashing agent that opens the circuit."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from govheal.seams import parse_config
from govheal.store import db_path
from govheal.testing.remediator.reaper import kill_started_under, started_under
from govheal.testing.support import DemoAgent, demo_config_text, demo_fleet, wait_until
from remediator.api import Request
from remediator.audit import read_events
from remediator.engine import Remediator
from remediator.store import Store
from remediator.verify import running

REPO = Path(__file__).resolve().parent.parent
FAST_POLICY = """remediation:
  verify_successes: 3
  verify_interval: 200ms
  backoff_initial: 100ms
  backoff_max: 1s
  budget: 3
"""

pytestmark = pytest.mark.live


@pytest.fixture(autouse=True)
def _nothing_outlives_the_test(tmp_path: Path):
    """Kill what the test started (directly, detached by the command strategy, by a CLI or a fake supervisor)."""
    yield
    kill_started_under(tmp_path)


def write_config(tmp: Path, agents: list[DemoAgent], restart_extra: list[str] | None = None, *,
                 start_grace: str = "20s", health_timeout: str = "3s", agent_extra: dict[str, str] | None = None,
                 ) -> Path:
    """Generous start_grace and health timeout by default: on a loaded 2-core machine an agent's interpreter
    start alone can take seconds, and a slow answer must not read as down (these are not benchmarks)."""
    text = demo_config_text(agents, extra=FAST_POLICY, agent_extra=agent_extra)
    text = text.replace("start_grace: 5s", f"start_grace: {start_grace}").replace(
        "timeout: 500ms", f"timeout: {health_timeout}")
    if restart_extra:
        for a in agents:
            old = json.dumps(a.argv())
            text = text.replace(old, json.dumps([*a.argv(), *restart_extra]))
    path = tmp / "govheal.yaml"
    path.write_text(text)
    return path


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "govheal", "restart", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A"]) as (a,):
        cfg = write_config(tmp_path, [a])
        a.fault("unhealthy")
        pid = a.pid
        out = cli("A", "--config", str(cfg), "--dry-run")
        assert out.returncode == 0, out.stderr
        assert "would restart with command: SIGTERM, wait 5s, SIGKILL the group" in out.stdout
        assert "unhealthy" in out.stdout and "health check answered 503" in out.stdout
        assert a.pid == pid and running(pid)
        assert Store(db_path(tmp_path / "state")).attempts("A") == []


def test_unknown_agent_is_refused_with_the_known_names(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A", "B"], start=False) as agents:
        out = cli("Nope", "--config", str(write_config(tmp_path, agents)))
    assert out.returncode == 2  # a usage error, like every other bad CLI input
    assert "unknown agent 'Nope'; known agents: A, B" in out.stderr and "Traceback" not in out.stderr


def test_a_real_restart_of_an_unhealthy_agent_is_verified_and_audited(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A"]) as (a,):
        cfg = write_config(tmp_path, [a])
        a.fault("unhealthy")
        old = a.pid
        out = cli("A", "--config", str(cfg), "--incident", "op-1")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "A: healed" in out.stdout
        wait_until(lambda: a.pid not in (None, old), 15, what="new pid")
        events = read_events(tmp_path / "telemetry" / "autoheal.log")
        final = events[-1]
        assert (final["outcome"], final["old_pid"], final["new_pid"]) == ("healed", old, a.pid)
        assert events[0]["outcome"] == "restarting" and events[0]["diagnostics"]["rss_bytes"] > 0
        assert any('"GET /health HTTP/1.' in line and '" 503' in line for line in events[0]["diagnostics"]["log_tail"])
        again = cli("A", "--config", str(cfg), "--incident", "op-1")
        assert "A: duplicate" in again.stdout and a.pid == final["new_pid"]


def new_agent_pids(tmp: Path, old: int | None) -> list[int]:
    """Demo agents started under ``tmp`` other than ``old`` (found by argv: before they write a pidfile)."""
    out = []
    for p in started_under(tmp):
        with contextlib.suppress(psutil.Error):
            if p.pid != old and "demo-agent" in p.cmdline():
                out.append(p.pid)
    return out


def test_sigkill_mid_incident_then_run_again_state_intact_and_no_second_restart(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A"]) as (a,):
        cfg = write_config(tmp_path, [a], restart_extra=["--startup-delay", "4"])
        a.fault("unhealthy")
        old = a.pid
        proc = subprocess.Popen([sys.executable, "-m", "govheal", "restart", "A", "--config", str(cfg),
                                 "--incident", "inc-9"], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            log = tmp_path / "telemetry" / "autoheal.log"
            wait_until(lambda: log.exists() and any(e["outcome"] == "restarting" for e in read_events(log)), 20,
                       what="restart started")
            wait_until(lambda: not running(old), 20, what="old agent stopped")
            # the spawn follows the stop: under load it can lag, and a SIGKILL before it is another case
            # (nothing in flight); wait for the new agent process itself
            wait_until(lambda: new_agent_pids(tmp_path, old), 20, what="new agent spawned")
            proc.send_signal(signal.SIGKILL)  # mid-verification: the new agent is still in its start-up delay
            proc.wait(5)
        finally:
            proc.kill()
        store = Store(db_path(tmp_path / "state"))
        inc = store.incident("A", "inc-9")
        assert inc is not None and (inc.status, inc.attempts, inc.first_pid) == ("in_progress", 1, old)
        assert len(store.circuit("A").attempts) == 1
        assert store.attempts("A")[0]["finished_at"] is None
        # run again at once: the agent started detached survived the remediator's death and is still in its
        # start-up delay; the new run verifies it (pid changed since the incident began) instead of killing it
        out = cli("A", "--config", str(cfg), "--incident", "inc-9")
        assert out.returncode == 0 and "A: already_recovered" in out.stdout, out.stdout + out.stderr
        assert len(store.attempts("A")) == 1 and len(store.circuit("A").attempts) == 1
        assert store.incident("A", "inc-9").status == "done"
        assert store.attempts("A")[0]["outcome"] == "healed" and store.attempts("A")[0]["reason"].startswith("resumed")


def test_an_always_crashing_agent_ends_with_the_circuit_open_after_exactly_the_budget(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A"]) as (a,):
        # a crash fails an attempt at once; the grace only bounds a start whose pid was never seen
        cfg_path = write_config(tmp_path, [a], restart_extra=["--crash-after", "0.3"], start_grace="8s")
        a.stop()
        rem = Remediator(parse_config(cfg_path.read_text(), cfg_path))
        try:
            outcomes = []
            for i in range(6):
                r = rem.submit(Request("A", "restart", f"crash-{i}"))
                outcomes.append(r.outcome)
                if r.outcome == "circuit_open":
                    break
                wait_until(lambda: not rem.look(rem.config, rem.config.agent("A")).healthy, 15, what="crashed")
            assert outcomes[-1] == "circuit_open", outcomes
            attempts = rem.store.attempts("A")
            assert len(attempts) == 3 and {x["outcome"] for x in attempts} <= {"failed", "healed"}
            assert any("exited" in x["reason"] for x in attempts), "a crash fails fast, not after start_grace"
            assert rem.circuit_state("A") == "open"
            assert rem.submit(Request("A", "restart", "crash-later")).outcome == "circuit_open"
            assert len(rem.store.attempts("A")) == 3
        finally:
            rem.close()
            pid = a.pid
            if pid and running(pid):
                a.stop()


def test_a_hung_agent_is_killed_with_its_diagnostics_in_the_audit_event(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A"]) as (a,):
        cfg_path = write_config(tmp_path, [a], health_timeout="1s")  # each look at the hung agent waits this
        a.fault("hang")  # alive, accepting, never answering
        old = a.pid
        rem = Remediator(parse_config(cfg_path.read_text(), cfg_path))
        try:
            r = rem.submit(Request("A", "restart", "hung-1", reason="AgentUnhealthy firing"))
        finally:
            rem.close()
        assert r.outcome == "healed" and r.old_pid == old and r.new_pid != old
        d = r.diagnostics
        assert d["rss_bytes"] > 0 and d["threads"] >= 1 and d["open_files"] >= 3 and "cpu_seconds_total" in d
        assert any(f"demo agent A pid {old}" in line for line in d["log_tail"])
        restarting = [e for e in read_events(tmp_path / "telemetry" / "autoheal.log") if e["outcome"] == "restarting"]
        assert restarting[0]["diagnostics"] == d and "timed out" in restarting[0]["reason"]


def test_two_processes_restarting_one_agent_make_one_restart(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A"]) as (a,):
        cfg = write_config(tmp_path, [a])
        a.fault("unhealthy")
        procs = [subprocess.Popen([sys.executable, "-m", "govheal", "restart", "A", "--config", str(cfg),
                                   "--incident", f"p{i}", "--json"], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        events = read_events(tmp_path / "telemetry" / "autoheal.log")
        why = f"{outs}\n" + "\n".join(f"{e['incident']} {e['outcome']}: {e['reason']}" for e in events)
        outcomes = sorted(json.loads(out)["outcome"] for out, _ in outs)
        assert outcomes == ["already_recovered", "healed"], why
        assert len(Store(db_path(tmp_path / "state")).attempts("A")) == 1, why


def test_failover_from_the_cli_starts_the_fallback_agent_for_real(tmp_path: Path) -> None:
    with demo_fleet(tmp_path, ["A", "B"]) as (a, b):
        path = write_config(tmp_path, [a, b], agent_extra={"A": "fallback: {agent: B}"})
        b.stop()
        wait_until(lambda: b.pid is None or not running(b.pid), 15, what="B stopped")
        out = cli("A", "--config", str(path), "--failover")
        assert out.returncode == 0 and "A: failover_started" in out.stdout, out.stdout + out.stderr
        b.wait_healthy(20)
        assert "started fallback agent B" in read_events(tmp_path / "telemetry" / "autoheal.log")[-1]["reason"]
