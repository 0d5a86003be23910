"""A state disk that refuses writes: /readyz fails, the condition is logged once (plus metrics), everything
resumes by itself when space is back.

Two ways of filling the disk: a real tmpfs of a few MB filled with a file (needs root to mount, as `make
test` runs here), under a real `govheal receiver`; and, always, an injected failing writer (every write
statement the state object's connections run raises SQLite's own SQLITE_FULL error) under the Flask test
client, which also drives a remediator that fails to write mid-incident.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal import state as state_module
from govheal.testing.support import demo_config_text, demo_fleet, free_port, http_get, http_post, is_running, wait_until
from tests.test_receiver_support import AUTH, TOKEN, FakeBridge, FakeRemediator, alert, body, receiver_config
from webhook_receiver.app import create_app


def disk_full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = state_module.SQLITE_FULL  # type: ignore[attr-defined]
    return exc


class FailingWrites:
    """While ``on``, every write statement on a state connection fails as SQLite fails on a full disk
    (``only``: just the statements containing one of these strings)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, only: tuple[str, ...] = ()) -> None:
        self.on = False
        self.failed = 0
        real_execute, real_many = state_module.TrackedConnection.execute, state_module.TrackedConnection.executemany
        gate = self

        def refuses(sql: str) -> bool:
            return gate.on and state_module._writes(sql) and (not only or any(o in sql for o in only))

        def execute(conn, sql, parameters=(), /):
            if refuses(sql):
                gate.failed += 1
                conn._failed(disk_full())
                raise disk_full()
            return real_execute(conn, sql, parameters)

        def executemany(conn, sql, parameters, /):
            if refuses(sql):
                gate.failed += 1
                conn._failed(disk_full())
                raise disk_full()
            return real_many(conn, sql, parameters)

        monkeypatch.setattr(state_module.TrackedConnection, "execute", execute)
        monkeypatch.setattr(state_module.TrackedConnection, "executemany", executemany)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


def test_readyz_fails_while_writes_fail_logged_once_and_everything_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    writes = FailingWrites(monkeypatch)
    registry = CollectorRegistry()
    remediator = FakeRemediator(["GG", "Mary", "Remote"])
    app = create_app(receiver_config(tmp_path), remediator=remediator, bridge=FakeBridge(), token=TOKEN,
                     registry=registry)
    svc, client = app.extensions["govheal"], app.test_client()
    monkeypatch.setattr(state_module, "PROBE_INTERVAL", 0.0)
    try:
        assert client.get("/readyz").status_code == 200
        assert registry.get_sample_value("govheal_state_writable") == 1
        writes.on = True
        assert client.get("/readyz").status_code == 503, "a full disk still grants the write lock: probe a write"
        assert client.get("/readyz").json["checks"]["store_writable"] is False
        for i in range(4):  # Alertmanager retrying
            resp = client.post("/alertmanager", data=body(alert("GG", fp=f"{i:016x}")), headers=AUTH,
                               content_type="application/json")
            assert resp.status_code == 503
        beat = client.post("/watchdog", data=body(alert("Watchdog")), headers=AUTH, content_type="application/json")
        assert beat.status_code == 200, "the heartbeat arrived: the dead-man's switch is not about the disk"
        assert svc.deadman.last_seen is not None
        assert registry.get_sample_value("govheal_state_writable") == 0
        assert registry.get_sample_value("govheal_state_write_errors_total") >= 6
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "fail: database or disk is full" in errors[0] and "resumes" in errors[0], errors
        assert tracebacks(caplog) == []
        writes.on = False
        assert client.get("/readyz").status_code == 200
        assert registry.get_sample_value("govheal_state_writable") == 1
        assert any("succeed again" in r.getMessage() for r in caplog.records)
        resp = client.post("/alertmanager", data=body(alert("GG")), headers=AUTH, content_type="application/json")
        assert resp.status_code == 200
        assert svc.dispatcher.wait_idle(10)
        assert [r.agent for r in remediator.submitted] == ["GG"]
    finally:
        svc.stop(2)


class WritesFailMidIncident(FakeRemediator):
    """The remediator's own writes (incident, lease) fail while the disk is full, as the real one's do."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.full = True
        self.failed = 0

    def submit(self, req, *, dry_run=False):
        if self.full:
            self.failed += 1
            raise disk_full()
        return super().submit(req, dry_run=dry_run)


def test_a_remediation_that_cannot_write_waits_for_space_instead_of_giving_up(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """It used to report "not attempted: internal error", finish the row, and log a traceback every 5 s."""
    caplog.set_level(logging.DEBUG)
    remediator, bridge = WritesFailMidIncident(["GG", "Mary", "Remote"]), FakeBridge()
    app = create_app(receiver_config(tmp_path), remediator=remediator, bridge=bridge, token=TOKEN,
                     registry=CollectorRegistry(), start=False)
    svc = app.extensions["govheal"]
    svc.dispatcher.retry_delay = 0.05
    svc.start()
    try:
        assert app.test_client().post("/alertmanager", data=body(alert("GG")), headers=AUTH,
                                      content_type="application/json").status_code == 200
        wait_until(lambda: remediator.failed >= 3, 5, what="three tries while the disk is full")
        assert [e.agent for e in svc.inbox.pending()] == ["GG"]
        assert [n.status for n in bridge.notices] == ["firing"]  # no "gave up"
        assert tracebacks(caplog) == []
        remediator.full = False
        assert svc.dispatcher.wait_idle(10)
        assert [r.agent for r in remediator.submitted] == ["GG"] and svc.inbox.pending() == []
        assert [n.status for n in bridge.notices] == ["firing", "restarting", "recovered"]
    finally:
        svc.stop(2)


def test_the_real_remediator_resumes_an_incident_whose_writes_failed_once_space_is_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The disk fills after the lease was taken: the attempt cannot be recorded, nor the lease released.

    When space is back the retried alert must restart the agent, not call its own stale lease
    "another remediation in progress" (a duplicate that left the agent down for good).
    """
    caplog.set_level(logging.DEBUG)
    writes = FailingWrites(monkeypatch, only=("rem_attempts", "DELETE FROM rem_leases"))
    with demo_fleet(tmp_path, ["A"]) as (a,):
        cfg = tmp_path / "govheal.yaml"
        cfg.write_text(demo_config_text([a]))
        from govheal.seams import parse_config

        config = parse_config(cfg.read_text(), cfg)
        bridge = FakeBridge()
        app = create_app(config, bridge=bridge, token=TOKEN, registry=CollectorRegistry(), start=False)
        svc = app.extensions["govheal"]
        svc.dispatcher.retry_delay = 0.1
        try:
            old = a.pid
            a.fault("crash", code=1)
            wait_until(lambda: not is_running(old), 10, what="A crashed")
            writes.on = True
            svc.start()
            resp = app.test_client().post("/alertmanager", data=body(alert("A")), headers=AUTH,
                                          content_type="application/json")
            assert resp.status_code == 200
            wait_until(lambda: writes.failed >= 2, 10, what="the attempt and the lease release refused")
            assert svc.inbox.pending() and a.pid in (None, old)
            writes.on = False
            assert svc.dispatcher.wait_idle(30)
            [entry] = svc.inbox.recent(1)
            assert entry["result"] == "healed", entry
            assert a.pid not in (None, old) and http_get(a.health_url, 1)[0] == 200
            assert bridge.notices[-1].status == "recovered"
            assert tracebacks(caplog) == []
        finally:
            svc.stop(5)


# ------------------------------------------------------------------------------------------------
# A real full disk: a tmpfs (root only)

def mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                         capture_output=True, text=True, timeout=10)
    return out.returncode == 0


def fill(where: Path) -> Path:
    filler = where / "filler"
    with open(filler, "ab", buffering=0) as f, contextlib.suppress(OSError):
        for size in (65536, 4096, 512):  # up to the last block
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    return filler


@pytest.mark.live
def test_on_a_real_full_disk_the_receiver_says_not_ready_logs_once_and_heals_when_space_is_back(
        tmp_path: Path) -> None:
    disk = tmp_path / "statefs"
    if not mount_tmpfs(disk, "4m"):
        pytest.skip("a real full disk needs root to mount a small tmpfs (Linux); the injected failing writer "
                    "tests above check the same contract on every machine")
    try:
        with demo_fleet(tmp_path, ["A"]) as (a,):
            cfg = tmp_path / "govheal.yaml"
            cfg.write_text(demo_config_text([a], extra="receiver: {deadman_timeout: 1h}").replace(
                "state_dir: state", f"state_dir: {disk / 'state'}"))
            port = free_port()
            log = tmp_path / "receiver.log"
            argv = [sys.executable, "-m", "govheal", "receiver", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"]
            with open(log, "ab") as out:
                receiver = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, "GOVHEAL_WEBHOOK_TOKEN": TOKEN})
            try:
                full_disk_scenario(f"http://127.0.0.1:{port}", log, disk, a)
            finally:  # the receiver first: a restart in flight must not start A again after the fleet is gone
                receiver.terminate()
                try:
                    receiver.wait(15)
                except subprocess.TimeoutExpired:
                    receiver.kill()
                    receiver.wait(5)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=10)


def full_disk_scenario(url: str, log: Path, disk: Path, a) -> None:
    wait_until(lambda: http_get(f"{url}/readyz", 1)[0] == 200, 30, what="receiver ready")
    filler = fill(disk)
    wait_until(lambda: http_get(f"{url}/readyz", 1)[0] == 503, 5, what="/readyz failing on the full disk")
    old = a.pid
    a.fault("crash", code=1)
    wait_until(lambda: not is_running(old), 10, what="A crashed")
    data = body(alert("A", fp="f0f0f0f0f0f0f0f0", starts="2026-12-01T10:00:00Z"))
    headers = {**AUTH, "Content-Type": "application/json"}
    for _ in range(3):  # Alertmanager retries
        assert http_post(f"{url}/alertmanager", data, headers=headers)[0] == 503
        time.sleep(1.5)
    assert "govheal_state_writable 0.0" in http_get(f"{url}/metrics")[1]
    text = log.read_text()
    assert text.count("level=ERROR") == 1 and "writes to" in text and "database or disk is full" in text, text
    assert "Traceback" not in text
    filler.unlink()  # space is back
    wait_until(lambda: http_get(f"{url}/readyz", 1)[0] == 200, 5, what="ready again")
    assert "succeed again" in log.read_text()
    assert http_post(f"{url}/alertmanager", data, headers=headers)[0] == 200  # the next retry
    wait_until(lambda: "outcome=healed" in log.read_text(), 30, what="A restarted once the disk took writes again")
    assert a.pid not in (None, old) and http_get(a.health_url, 1)[0] == 200
