"""The pure builder: a fixed, hand-made snapshot → exposition text compared with a golden file.

Regenerate the golden file after an intended change with
``GOVHEAL_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_exporter_collector.py`` and review
the diff: metric names and labels are a public API (docs/metrics.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from exporter.collector import SnapshotCollector
from exporter.snapshot import AgentSnapshot, CollectorResult, ProcessReading, Snapshot
from govheal.probe import ProbeResult
from tests.conftest import require_binary

GOLDEN = Path(__file__).parent / "golden" / "exporter.txt"


def fixed_snapshot() -> Snapshot:
    running = ProcessReading(4242, running=True, start_time=1_790_000_000.25, cpu_seconds=12.5, rss_bytes=52_428_800)
    return Snapshot(
        agents=(
            AgentSnapshot("GG", "demo-node", "orchestrator", True, "pidfile", True, running,
                          ProbeResult(0.0042, None, 200), failure_threshold=3, probed_at=1_790_000_400.5,
                          switches=frozenset({"mute"}), fallback="GG-mini"),
            AgentSnapshot("Mary", "demo-node", "research-assistant", False, "cmdline", True,
                          ProcessReading(4300, running=True, start_time=1_790_000_100.0, cpu_seconds=1.0,
                                         rss_bytes=1024),
                          ProbeResult(0.5, "timeout", None), consecutive_failures=2, failure_threshold=3,
                          probed_at=1_790_000_401.0),
            AgentSnapshot("CLS", "demo-node", "ops-cycle", True, "pidfile", False,
                          ProcessReading(0, running=False), ProbeResult(0.0003, "refused", None),
                          read_errors={"vanished": 2}, consecutive_failures=40, failure_threshold=5,
                          probed_at=1_790_000_402.0, switches=frozenset({"maintenance"}), fallback="Worker-mirror",
                          serving=True),
            AgentSnapshot("Paula", "demo-node", "planner", False, "launchd", True,
                          ProcessReading(4400, running=True, start_time=1_790_000_200.0), None,
                          read_errors={"access_denied": 7}),
            AgentSnapshot("Hybrid", "demo-node", "hybrid-router", False, "port", True,
                          ProcessReading(4500, running=True, start_time=1_790_000_300.0, cpu_seconds=0.5,
                                         rss_bytes=2048),
                          ProbeResult(0.0101, "body_mismatch", 200), consecutive_failures=1, failure_threshold=3,
                          probed_at=1_790_000_403.0),
            AgentSnapshot("Worker-mirror", "linux-mini", "worker", False, "remote", True, None,
                          ProbeResult(0.02, "bad_status", 503), consecutive_failures=7, failure_threshold=3,
                          probed_at=1_790_000_404.0),
            # a check that has not been probed yet (exporter just started): threshold known, no timestamp
            AgentSnapshot("Fresh", "demo-node", "worker", False, "pidfile", True,
                          ProcessReading(4600, running=True, start_time=1_790_000_500.0), None, failure_threshold=3),
        ),
        collectors=(CollectorResult("process", True, 0.0125, 1_790_000_404.5),
                    CollectorResult("probe", True, 0.5031, 1_790_000_404.0)),
    )


def exposition(snapshot: Snapshot) -> tuple[CollectorRegistry, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot))
    return registry, generate_latest(registry).decode()


def test_exposition_matches_the_golden_file():
    _, text = exposition(fixed_snapshot())
    if os.environ.get("GOVHEAL_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "exposition changed; if intended, regenerate with GOVHEAL_REGEN_GOLDEN=1"


def test_golden_exposition_passes_promtool_check_metrics():
    promtool = require_binary("promtool")
    done = subprocess.run([promtool, "check", "metrics"], input=GOLDEN.read_bytes(), capture_output=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_values_follow_the_snapshot():
    registry, _ = exposition(fixed_snapshot())

    def v(name: str, agent: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"agent": agent, "node": labels.pop("node", "demo-node"), **labels})

    assert v("govheal_agent_up", "GG") == 1
    assert v("govheal_agent_healthy", "GG") == 1
    assert v("govheal_agent_up", "Mary") == 1 and v("govheal_agent_healthy", "Mary") == 0  # hung
    assert v("govheal_agent_probe_failure", "Mary", reason="timeout") == 1
    assert v("govheal_agent_probe_failure", "Mary", reason="refused") == 0
    assert v("govheal_agent_up", "CLS") == 0
    assert v("govheal_agent_cpu_seconds_total", "CLS") is None  # no process: series missing, not 0
    assert v("govheal_agent_read_errors_total", "CLS", reason="vanished") == 2
    assert v("govheal_agent_enabled", "CLS") == 0
    # No health check: healthy equals up; AccessDenied on resources leaves only the start time.
    assert v("govheal_agent_healthy", "Paula") == 1
    assert v("govheal_agent_probe_duration_seconds", "Paula") is None
    assert v("govheal_agent_resident_memory_bytes", "Paula") is None
    assert v("govheal_agent_start_time_seconds", "Paula") == 1_790_000_200.0
    # A remote endpoint answering 503 is up (reachable) but not healthy.
    assert v("govheal_agent_up", "Worker-mirror", node="linux-mini") == 1
    assert v("govheal_agent_healthy", "Worker-mirror", node="linux-mini") == 0
    assert v("govheal_agent_probe_http_status_code", "Worker-mirror", node="linux-mini") == 503
    assert v("govheal_agent_info", "GG", role="orchestrator", critical="true", matcher="pidfile") == 1
    # The probe schedule's state: failures in a row, the threshold the rule compares with, staleness.
    assert v("govheal_agent_health_consecutive_failures", "GG") == 0
    assert v("govheal_agent_health_consecutive_failures", "Mary") == 2
    assert v("govheal_agent_health_consecutive_failures_threshold", "CLS") == 5
    assert v("govheal_agent_health_last_probe_timestamp_seconds", "Mary") == 1_790_000_401.0
    assert v("govheal_agent_health_consecutive_failures", "Paula") is None  # no check, no series
    assert v("govheal_agent_health_consecutive_failures_threshold", "Fresh") == 3
    assert v("govheal_agent_health_last_probe_timestamp_seconds", "Fresh") is None  # not probed yet
    assert registry.get_sample_value("govheal_exporter_collector_last_run_timestamp_seconds",
                                     {"collector": "process"}) == 1_790_000_404.5
    assert registry.get_sample_value("govheal_exporter_collector_success", {"collector": "probe"}) == 1
    # which one serves: only agents with a fallback have the series; 1 while the fallback serves
    assert v("govheal_agent_serving", "GG", fallback="GG-mini") == 0
    assert v("govheal_agent_serving", "CLS", fallback="Worker-mirror") == 1
    assert registry.get_sample_value("govheal_agent_serving", {"agent": "Mary", "node": "demo-node",
                                                               "fallback": ""}) is None


def test_a_remote_agent_that_does_not_answer_is_down():
    snap = Snapshot((AgentSnapshot("W", "n", "", False, "remote", True, None, ProbeResult(0.5, "timeout")),))
    registry, _ = exposition(snap)
    assert registry.get_sample_value("govheal_agent_up", {"agent": "W", "node": "n"}) == 0


def test_every_probe_failure_reason_is_present_at_zero_for_a_healthy_agent():
    registry, _ = exposition(fixed_snapshot())
    for reason in ("timeout", "refused", "bad_status", "body_mismatch", "error"):
        assert registry.get_sample_value("govheal_agent_probe_failure",
                                         {"agent": "GG", "node": "demo-node", "reason": reason}) == 0


def test_each_scrape_builds_fresh_families():
    snaps = iter([fixed_snapshot(), Snapshot(())])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: next(snaps)))
    assert registry.get_sample_value("govheal_agent_up", {"agent": "GG", "node": "demo-node"}) == 1
    assert registry.get_sample_value("govheal_agent_up", {"agent": "GG", "node": "demo-node"}) is None
