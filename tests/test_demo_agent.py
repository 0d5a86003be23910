from __future__ import annotations

import json
import time

import pytest

from govheal.testing.support import DemoAgent, free_port, http_get, is_running, wait_until


@pytest.mark.live
def test_demo_agent_serves_health_and_injects_faults(fleet):
    a = fleet[0]
    status, body = http_get(a.health_url)
    assert status == 200 and json.loads(body)["agent"] == "A"

    a.fault("unhealthy")
    assert http_get(a.health_url)[0] == 503

    a.fault("recover")
    assert http_get(a.health_url)[0] == 200

    a.fault("slow", seconds=0.6)
    t0 = time.monotonic()
    assert http_get(a.health_url)[0] == 200
    assert time.monotonic() - t0 >= 0.5
    a.fault("recover")

    a.fault("hang")
    with pytest.raises(OSError):
        http_get(a.health_url, timeout=0.3)
    assert is_running(a.pid)
    a.fault("recover")
    assert http_get(a.health_url)[0] == 200


@pytest.mark.live
def test_demo_agent_crash_exits_with_the_code_and_pidfile_stays(fleet):
    a = fleet[1]
    pid = a.pid
    a.fault("crash", code=7)
    assert a.proc.wait(timeout=5) == 7
    assert not is_running(pid)


@pytest.mark.live
def test_demo_agent_removes_pidfile_on_sigterm(tmp_path):
    a = DemoAgent("T", free_port(), tmp_path / "T.pid", tmp_path / "T.log").start()
    try:
        a.proc.terminate()
        assert a.proc.wait(timeout=5) == 0
        wait_until(lambda: not a.pidfile.exists(), what="pidfile removed")
    finally:
        a.stop()
