"""The reader end to end in-process: partial failure is data, never a failed scrape; a scrape never waits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter import reader as reader_mod
from exporter.reader import FleetReader
from exporter.server import make_registry
from govheal import testing
from govheal.seams import parse_config


def config(tmp_path: Path, agents: str):
    path = tmp_path / "govheal.yaml"
    path.write_text(f"node: n1\nagents:\n{agents}")
    return parse_config(path.read_text(), source=path)


AGENTS = """\
  - name: me
    role: self
    process: {pidfile: me.pid}
  - name: garbage
    process: {pidfile: garbage.pid}
  - name: broken
    process: {cmdline: "anything"}
  - name: nolaunchd
    process: {launchd: com.example.x}
"""


def sample(registry: CollectorRegistry, name: str, agent: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"agent": agent, "node": "n1", **labels})


def test_one_broken_agent_never_fails_the_scrape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture):
    (tmp_path / "me.pid").write_text(str(os.getpid()))
    (tmp_path / "garbage.pid").write_text("not a pid")
    monkeypatch.setenv("PATH", str(tmp_path))  # no launchctl here

    def exploding(spec, ctx):
        raise RuntimeError("matcher bug")

    cfg = config(tmp_path, AGENTS)  # first: the config model is built from the real MATCHERS
    monkeypatch.setitem(reader_mod.MATCHERS, "cmdline", exploding)
    reader = FleetReader(cfg)
    try:
        reader.refresh()
        generate_latest(make_registry(reader.read))  # a whole scrape succeeds
        reader.refresh()
        snap = reader.read()
        registry = make_registry(lambda: snap)
        assert sample(registry, "govheal_agent_up", "me") == 1
        assert sample(registry, "govheal_agent_resident_memory_bytes", "me") > 0
        assert sample(registry, "govheal_agent_up", "garbage") == 0
        assert sample(registry, "govheal_agent_up", "broken") == 0
        assert sample(registry, "govheal_agent_up", "nolaunchd") == 0
        # error counters accumulate across rounds (two so far)
        assert sample(registry, "govheal_agent_read_errors_total", "garbage", reason="lookup_failed") == 2
        assert sample(registry, "govheal_agent_read_errors_total", "nolaunchd", reason="lookup_failed") == 2
        assert sample(registry, "govheal_agent_read_errors_total", "me", reason="lookup_failed") == 0
        assert registry.get_sample_value("govheal_exporter_collector_success", {"collector": "process"}) == 0
        assert registry.get_sample_value("govheal_exporter_collector_success", {"collector": "probe"}) == 1
        bugs = [r for r in caplog.records if "reading agent broken failed" in r.getMessage()]
        assert len(bugs) == 1 and bugs[0].exc_info  # logged once, with the traceback, though read twice
    finally:
        reader.close()


def test_enabled_is_read_through_one_injectable_function(tmp_path: Path):
    (tmp_path / "me.pid").write_text(str(os.getpid()))
    cfg = config(tmp_path, "  - name: me\n    process: {pidfile: me.pid}\n  - name: paused\n"
                           "    process: {pidfile: paused.pid}\n")
    reader = FleetReader(cfg, enabled=lambda agent: agent.name != "paused")
    try:
        reader.refresh()
        snap = reader.read()
        assert {a.name: a.enabled for a in snap.agents} == {"me": True, "paused": False}
        assert FleetReader(cfg).enabled(cfg.agents[1]) is True  # the default until governance lands
    finally:
        reader.close()


def test_a_remote_agent_without_a_process_is_up_when_reachable(tmp_path: Path):
    from govheal.testing.support import free_port

    cfg = config(tmp_path, f'  - name: mirror\n    node: other\n    health: {{url: "http://127.0.0.1:{free_port()}/h"}}\n')
    reader = FleetReader(cfg)
    try:
        reader.refresh()
        (agent,) = reader.read().agents
        assert agent.remote and agent.node == "other" and not agent.up and agent.probe.reason == "refused"
    finally:
        reader.close()


@pytest.mark.live
def test_launchd_lookups_run_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Four agents behind a slow launchctl (the fake replays real `launchctl print` output) cost one delay."""
    fakes = testing.FAKES
    bin_dir, state = tmp_path / "bin", tmp_path / "services"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "launchctl").symlink_to(fakes / "launchctl")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GOVHEAL_FAKE_SERVICES", str(state))
    monkeypatch.setenv("GOVHEAL_FAKE_SLEEP", "0.6")
    for i in range(4):
        (state / f"com.example.a{i}").write_text(f"{os.getpid()}\n")
    agents = "".join(f"  - name: a{i}\n    process: {{launchd: com.example.a{i}}}\n" for i in range(4))
    reader = FleetReader(config(tmp_path, agents))
    try:
        t0 = time.monotonic()
        reader.poll_processes()
        snap = reader.read()
        elapsed = time.monotonic() - t0
        assert all(a.up for a in snap.agents)
        assert elapsed < 4 * 0.6, f"lookups ran one after another ({elapsed:.2f}s)"
    finally:
        reader.close()


def test_a_scrape_returns_at_once_while_a_probe_is_hung(tmp_path: Path):
    """Probes run on their own schedule: read() never waits for one, however long it takes."""
    import threading

    from exporter.snapshot import ProbeResult

    release = threading.Event()

    def hung(check):
        release.wait(10)
        return ProbeResult(0.3, "timeout")

    (tmp_path / "me.pid").write_text(str(os.getpid()))
    cfg = config(tmp_path, '  - name: me\n    process: {pidfile: me.pid}\n'
                           '    health: {url: "http://127.0.0.1:1/h", timeout: 300ms, interval: 50ms}\n')
    reader = FleetReader(cfg, probe_fn=hung)
    try:
        reader.poll_processes()
        reader.scheduler.start()
        for _ in range(20):
            t0 = time.monotonic()
            (agent,) = reader.read().agents
            assert time.monotonic() - t0 < 0.05
            assert agent.up and agent.probe is None and agent.consecutive_failures == 0
        release.set()
        wait_for(lambda: reader.read().agents[0].consecutive_failures >= 2)
        (agent,) = reader.read().agents
        assert agent.probe.reason == "timeout" and agent.failure_threshold == 3 and agent.probed_at > 0
    finally:
        release.set()
        reader.close()


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_costly_matcher_is_reused_while_its_pid_runs_and_asked_again_when_it_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import subprocess
    import sys

    from govheal.matchers import Match

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    calls = []

    def cmdline(spec, ctx):
        calls.append(1)
        return Match(child.pid if child.poll() is None else None)

    cfg = config(tmp_path, '  - name: c\n    process: {cmdline: "sleep"}\n')
    monkeypatch.setitem(reader_mod.MATCHERS, "cmdline", cmdline)
    reader = FleetReader(cfg)
    try:
        for _ in range(3):
            reader.poll_processes()
        assert len(calls) == 1 and reader.read().agents[0].up
        child.kill()
        child.wait()
        reader.poll_processes()  # the reused PID is gone: asked again at once, not after LOOKUP_REFRESH
        assert len(calls) == 2 and not reader.read().agents[0].up
    finally:
        child.kill()
        child.wait()
        reader.close()
