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


@pytest.mark.live
def test_demo_agent_crash_with_delay_0_exits_as_soon_as_it_answered(tmp_path):
    a = DemoAgent("Z", free_port(), tmp_path / "Z.pid", tmp_path / "Z.log").start()
    try:
        t0 = time.monotonic()
        a.fault("crash", code=1, delay=0)
        assert a.proc.wait(timeout=5) == 1
        assert time.monotonic() - t0 < 0.04 + 0.5  # the default delay is 0.05 s; 0 does not wait for a timer
    finally:
        a.stop()


@pytest.mark.live
def test_demo_agent_sigterm_exits_at_once_even_while_hung(tmp_path):
    """The stop half of a restart: no wait for serve_forever's poll or for requests stuck in a hang."""
    import signal
    import subprocess
    import sys

    a = DemoAgent("H", free_port(), tmp_path / "H.pid", tmp_path / "H.log").start()
    try:
        a.fault("hang")
        with pytest.raises(OSError):
            http_get(a.health_url, timeout=0.2)  # a request is now stuck in a handler thread
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 0.5
        assert not a.pidfile.exists()
    finally:
        a.stop()
    # the same agent without the govheal CLI
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "govheal.demo_agent", "--name", "M", "--port", str(port)],
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health", timeout=0.5)[0] == 200, what="M healthy")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_demo_agent_fails_every_start_while_its_poison_file_exists(tmp_path):
    import subprocess
    import sys

    poison = tmp_path / "broken"
    poison.write_text("")
    argv = [sys.executable, "-m", "govheal", "demo-agent", "--name", "P", "--port", "0", "--exit-code", "3",
            "--fail-if-exists", str(poison), "--crash-after", "0.1"]
    assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 3
    poison.unlink()
    assert subprocess.run([*argv[:-2], "--crash-after", "0.2"], capture_output=True, timeout=30).returncode == 3
