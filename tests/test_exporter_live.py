"""A real exporter process over real demo agents: crash, hang (SIGSTOP), recover, remote reachability."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from govheal.testing.support import demo_config_text, demo_fleet, http_get, wait_until
from tests.conftest import require_binary

pytestmark = pytest.mark.live

PROBE_TIMEOUT = 0.5  # demo_config_text gives every agent a 500ms health timeout
SCRAPE_BUDGET = 0.25
MARGIN = 1.0  # two shared cores: generous, this is not a benchmark


def scrape(url: str) -> tuple[dict[tuple[str, str, str], float], str, float]:
    t0 = time.monotonic()
    status, text = http_get(f"{url}/metrics", timeout=10)
    elapsed = time.monotonic() - t0
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, s.labels.get("agent", ""), s.labels.get("reason", ""))] = s.value
    return values, text, elapsed


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, list]]:
    with demo_fleet(tmp_path, ["A", "B", "C", "R"]) as agents:
        local, remote = agents[:3], agents[3]
        text = demo_config_text(local, extra=f"exporter: {{scrape_budget: {int(SCRAPE_BUDGET * 1000)}ms}}")
        text += (f"  - name: R\n    role: mirror\n    node: backup\n"
                 f"    health: {{url: {json.dumps(remote.health_url)}}}\n")
        cfg = tmp_path / "govheal.yaml"
        cfg.write_text(text)
        proc = subprocess.Popen([sys.executable, "-m", "govheal", "exporter", "--config", str(cfg),
                                 "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            line = proc.stdout.readline()
            assert "/metrics" in line, f"exporter did not start: {line}{proc.stdout.read() if proc.poll() else ''}"
            url = line.split("metrics on ")[1].strip().removesuffix("/metrics")
            yield url, agents
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_exporter_follows_crash_hang_and_recovery(stack):
    url, (a, b, _c, r) = stack
    assert http_get(f"{url}/healthz")[0] == 200

    def value(name: str, agent: str, reason: str = "") -> float | None:
        return scrape(url)[0].get((name, agent, reason))

    wait_until(lambda: all(value("govheal_agent_healthy", n) == 1 for n in "ABCR"), 20, what="all healthy")
    values, text, _ = scrape(url)
    assert values[("govheal_agent_up", "R", "")] == 1  # remote: reachable
    assert values[("govheal_agent_start_time_seconds", "A", "")] > 0
    promtool = require_binary("promtool")
    check = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True,
                           timeout=30, check=False)
    assert check.returncode == 0, check.stdout + check.stderr

    # Crash: the demo agent exits (and stays a zombie: this test is its parent) → up 0.
    a.fault("crash", code=3)
    wait_until(lambda: value("govheal_agent_up", "A") == 0, 20, what="A down after crash")
    assert value("govheal_agent_healthy", "A") == 0  # at once: a process seen gone is not healthy
    # the probe runs on its own schedule: it fails at its next run, up to one interval later
    wait_until(lambda: value("govheal_agent_probe_failure", "A", "refused") == 1, 5, what="A's probe refused")

    # Hang: SIGSTOP keeps the process but nobody answers → healthy 0, up 1, the scrape stays fast.
    os.kill(b.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: value("govheal_agent_healthy", "B") == 0, 20, what="B unhealthy when stopped")
        for _ in range(3):
            values, _, elapsed = scrape(url)
            assert values[("govheal_agent_up", "B", "")] == 1
            assert values[("govheal_agent_probe_failure", "B", "timeout")] == 1
            assert elapsed < PROBE_TIMEOUT + SCRAPE_BUDGET + MARGIN, f"scrape took {elapsed:.2f}s with B hung"
        assert values[("govheal_agent_healthy", "C", "")] == 1  # the others are unaffected
    finally:
        os.kill(b.pid, signal.SIGCONT)
    wait_until(lambda: value("govheal_agent_healthy", "B") == 1, 20, what="B healthy after SIGCONT")
    assert value("govheal_agent_probe_failure", "B", "timeout") == 0

    # A restarted agent is up again with a new start time.
    a.start()
    wait_until(lambda: value("govheal_agent_up", "A") == 1 and value("govheal_agent_healthy", "A") == 1, 20,
               what="A back")

    # Remote endpoint: up tracks reachability.
    r.stop()
    wait_until(lambda: value("govheal_agent_up", "R") == 0, 20, what="R unreachable")
    values, _, _ = scrape(url)
    assert all(v == 1 for (n, _, _), v in values.items() if n == "govheal_exporter_collector_success")


def test_bad_listen_address_is_a_clear_error_without_traceback(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "govheal", "exporter", "--listen", "nonsense"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--listen" in done.stderr and "HOST:PORT" in done.stderr and "Traceback" not in done.stderr
