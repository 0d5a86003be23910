"""Contract: every restart strategy through success, failure to start, TERM ignored (→ KILL) and timeout.

Real demo agents. launchd and systemd use fake ``launchctl``/``systemctl`` programs on PATH
(govheal/testing/remediator/) that record their argv and act on the demo agent the way launchd/systemd
would; on macOS/systemd hosts the real programs are what the strategies call.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from govheal import testing
from govheal.seams import parse_config
from govheal.testing.remediator.reaper import kill_started_under
from govheal.testing.support import DemoAgent, free_port, wait_until
from remediator.strategies import STRATEGIES, StrategyError, default_strategies
from remediator.verify import find_pid, running, verify

FAKES = testing.FAKES / "remediator"
LABEL = "com.govheal.test.agent"
UNIT = "govheal-test-agent.service"
SCENARIOS = ("success", "fail_to_start", "term_ignored", "timeout")
# generous: on a loaded 2-core machine a demo agent's interpreter start alone can take seconds
GRACE = 6
SUPERVISOR_TIMEOUT = 5  # the fake launchctl/systemctl is a Python start plus a stop and a spawn


@pytest.fixture(autouse=True)
def _nothing_outlives_the_test(tmp_path: Path):
    """Kill what the test started (directly, detached by the command strategy, by a CLI or a fake supervisor)."""
    yield
    kill_started_under(tmp_path)


def restart_yaml(strategy: str, scenario: str, agent: DemoAgent, tmp: Path) -> str:
    if strategy == "command":
        argv = agent.argv()
        pin = ""
        if scenario == "fail_to_start":
            argv = ["/nonexistent/govheal-agent-binary"]
            pin = ", expect_cmdline: 'demo-agent --name agent'"  # the running one is still the old program
        if scenario == "timeout":
            argv = [*argv, "--startup-delay", str(GRACE * 5)]  # far past the grace
        return (f"{{strategy: command, argv: {json.dumps(argv)}, log_file: {json.dumps(str(agent.log))}, "
                f"stop_timeout: 500ms{pin}}}")
    # the supervisor call gets only the allowlisted environment plus restart.env: the fakes' state goes there
    env = json.dumps({"FAKE_SUPERVISOR_STATE": str(tmp / "supervisor.json"),
                      "FAKE_SUPERVISOR_LOG": str(tmp / "supervisor-calls.jsonl")})
    if strategy == "launchd":
        return f"{{strategy: launchd, label: {LABEL}, timeout: {SUPERVISOR_TIMEOUT}s, env: {env}}}"
    if strategy == "systemd":
        return f"{{strategy: systemd, unit: {UNIT}, user: true, timeout: {SUPERVISOR_TIMEOUT}s, env: {env}}}"
    # timeout: WINCH is ignored by default, so the stopped agent stays hung
    sig = {"success": "CONT", "fail_to_start": "CONT", "term_ignored": "TERM", "timeout": "WINCH"}[scenario]
    return f"{{strategy: signal, signal: {sig}}}"


@pytest.mark.live
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_strategy_contract(strategy: str, scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = ["--ignore-term"] if scenario == "term_ignored" else []
    agent = DemoAgent("agent", free_port(), tmp_path / "run" / "agent.pid", tmp_path / "logs" / "agent.log",
                      extra=extra)
    calls = tmp_path / "supervisor-calls.jsonl"
    mode = {"fail_to_start": "fail", "timeout": "hang"}.get(scenario, "ok")
    (tmp_path / "supervisor.json").write_text(json.dumps({
        "mode": mode, "kill_grace": 0.5,
        "services": {name: {"argv": agent.argv(), "pidfile": str(agent.pidfile), "log": str(agent.log)}
                     for name in (LABEL, UNIT)}}))
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    cfg_path = tmp_path / "govheal.yaml"
    cfg_path.write_text(
        "agents:\n  - name: agent\n"
        f"    process: {{pidfile: {json.dumps(str(agent.pidfile))}}}\n"
        f"    health: {{url: {json.dumps(agent.health_url)}, timeout: 2s}}\n"
        f"    start_grace: {GRACE}s\n"
        f"    restart: {restart_yaml(strategy, scenario, agent, tmp_path)}\n")
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    spec = cfg.agent("agent")
    impl = default_strategies()[strategy]
    try:
        agent.start()
        old = agent.pid
        assert old and find_pid(cfg, spec) == old
        if strategy == "signal" and scenario != "fail_to_start":
            os.kill(old, signal.SIGSTOP)  # hung: /health stops answering
            wait_until(lambda: psutil.Process(old).status() == psutil.STATUS_STOPPED, 5, what="stopped")
        if strategy == "signal" and scenario == "term_ignored":
            os.kill(old, signal.SIGCONT)
            agent.fault("unhealthy")
        if strategy == "signal" and scenario == "fail_to_start":
            agent.stop()
        pid = find_pid(cfg, spec)

        def attempt() -> tuple[bool, str, int | None]:
            try:
                out = impl.restart(cfg, spec, pid)
            except StrategyError as exc:
                return False, str(exc), None
            v = verify(cfg, spec, successes=2, interval=0.1, grace=spec.start_grace,
                       clock=time.monotonic, sleep=time.sleep)
            return v.healed, f"{out.detail}; {v.reason}", v.pid

        healed, reason, new = attempt()
        expect = EXPECT[strategy][scenario]
        assert healed is expect[0], reason
        assert expect[1] in reason
        if healed and strategy != "signal":
            assert new and new != old and not running(old), "the old process is gone and a new one answers"
        if strategy == "signal" and healed:
            assert new == old
        if strategy in ("launchd", "systemd"):
            argv = [json.loads(line) for line in calls.read_text().splitlines()]
            want = (["launchctl", "kickstart", "-k", f"gui/{os.getuid()}/{LABEL}"] if strategy == "launchd"
                    else ["systemctl", "--user", "restart", "--", UNIT])
            assert want in argv
    finally:
        if old := agent.pid:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(old, sig)
        agent.stop()
        wait_until(lambda: agent.pid is None or not running(agent.pid), 5, what="agent gone")


EXPECT: dict[str, dict[str, tuple[bool, str]]] = {
    "command": {
        "success": (True, "stopped by SIGTERM"),
        "fail_to_start": (False, "cannot start /nonexistent/govheal-agent-binary"),
        "term_ignored": (True, "SIGKILL after 0.5s"),
        "timeout": (False, f"not healthy 2x within start_grace {GRACE}s"),
    },
    "launchd": {
        "success": (True, "healthy 2x"),
        "fail_to_start": (False, f"launchctl kickstart -k gui/{os.getuid()}/{LABEL} exited 1: Job failed"),
        "term_ignored": (True, "healthy 2x"),
        "timeout": (False, f"launchctl kickstart -k gui/{os.getuid()}/{LABEL} timed out after {SUPERVISOR_TIMEOUT}s"),
    },
    "systemd": {
        "success": (True, "healthy 2x"),
        "fail_to_start": (False, f"systemctl --user restart -- {UNIT} exited 1"),
        "term_ignored": (True, "healthy 2x"),
        "timeout": (False, f"systemctl --user restart -- {UNIT} timed out after {SUPERVISOR_TIMEOUT}s"),
    },
    "signal": {
        "success": (True, "sent SIGCONT"),
        "fail_to_start": (False, "no running process to send SIGCONT to"),
        "term_ignored": (False, "health check answered 503"),
        "timeout": (False, f"within start_grace {GRACE}s"),
    },
}


@pytest.mark.live
def test_command_start_uses_cwd_env_and_log_file_in_its_own_session(tmp_path: Path) -> None:
    """Detached into its own session (so it never dies with the receiver), env merged over the receiver's
    minus its secrets, cwd and log file resolved against the config file's directory."""
    script = ("import os, sys, time; print('cwd=' + os.getcwd(), 'mode=' + os.environ['MODE'], "
              "'token=' + os.environ.get('GOVHEAL_WEBHOOK_TOKEN', 'none'), flush=True); time.sleep(60)")
    (tmp_path / "work").mkdir()
    cfg_path = tmp_path / "govheal.yaml"
    cfg_path.write_text(
        "agents:\n  - name: agent\n    process: {pidfile: run/agent.pid}\n"
        f"    restart: {{strategy: command, argv: {json.dumps([sys.executable, '-c', script])}, cwd: work, "
        "env: {MODE: blue}, log_file: logs/agent.log}\n")
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    os.environ["GOVHEAL_WEBHOOK_TOKEN"] = "s3cret"
    try:
        out = default_strategies()["command"].start(cfg, cfg.agent("agent"))
    finally:
        del os.environ["GOVHEAL_WEBHOOK_TOKEN"]
    assert out.new_pid and running(out.new_pid)
    assert os.getsid(out.new_pid) == out.new_pid != os.getsid(0), "a session leader of its own"
    log = tmp_path / "logs" / "agent.log"
    wait_until(lambda: log.exists() and "mode=" in log.read_text(), 20, what="child output in its log file")
    assert f"cwd={tmp_path / 'work'} mode=blue token=none" in log.read_text()


def test_the_launchd_domain_is_configurable_and_label_values_never_reach_argv(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.strategies import base

    calls: list[list[str]] = []
    monkeypatch.setattr(base, "run_supervisor", lambda argv, timeout, env=None: calls.append(argv))
    cfg_path = tmp_path / "govheal.yaml"
    cfg_path.write_text("agents:\n  - name: agent\n    process: {launchd: com.example.agent}\n"
                        "    restart: {strategy: launchd, domain: 'user/{uid}'}\n")
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    launchd = default_strategies()["launchd"]
    launchd.restart(cfg, cfg.agent("agent"), 123)
    launchd.start(cfg, cfg.agent("agent"))
    assert calls == [["launchctl", "kickstart", "-k", f"user/{os.getuid()}/com.example.agent"],
                     ["launchctl", "kickstart", f"user/{os.getuid()}/com.example.agent"]]


@pytest.mark.live
def test_stop_kills_the_whole_process_group_when_term_is_ignored(tmp_path: Path) -> None:
    from remediator.strategies import stop_process

    script = ("import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "child = subprocess.Popen(['sleep', '120']); print(child.pid, flush=True); time.sleep(120)")
    leader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True, cwd=tmp_path)
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    how = stop_process(leader.pid, 0.3)
    assert how == "SIGKILL after 0.3s: SIGTERM not obeyed"
    leader.wait(10)
    wait_until(lambda: not running(child), 10, what="the leader's child killed with its group")


def test_verification_needs_k_healthy_in_a_row_within_the_grace() -> None:
    from govheal.testing.remediator.world import FakeClock
    from remediator.verify import Observation

    def run(script: list[bool], k: int, grace: float):
        seen = iter(script)
        clock = FakeClock()
        agent = parse_config("agents:\n  - name: a\n    health: {url: 'http://127.0.0.1:1/'}\n").agent("a")
        return verify(None, agent, successes=k, interval=0.1, grace=grace, clock=clock, sleep=clock.sleep,
                      look=lambda c, a: Observation(None, ok := next(seen, False), "" if ok else "503"))

    v = run([True, False, True, True, True], 3, 10)
    assert v.healed and v.observations == 5, "an unhealthy answer restarts the count"
    v = run([True, True, False] * 20, 3, 1.0)
    assert not v.healed and "not healthy 3x within start_grace 1s" in v.reason, v.reason
