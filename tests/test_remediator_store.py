"""The rem_* store (leases, switches, reopen) and the audit log's rotation that loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from remediator.api import Event
from remediator.audit import AuditLog, read_events
from remediator.policy import CircuitState
from remediator.store import Store, Switches


def test_a_lease_is_exclusive_until_released_or_its_holder_dies(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    one, two = Store(db), Store(db)
    assert one.acquire_lease("A", "one", 0.0, 60) is None
    assert two.acquire_lease("A", "two", 1.0, 60) == "one"
    assert two.acquire_lease("A", "two", 61.0, 60) is None, "an expired lease can be taken over"
    one.release_lease("A", "one")  # not the holder any more: no effect
    assert one.acquire_lease("A", "one", 62.0, 60) == "two"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with two.lock:
        two.conn.execute("UPDATE rem_leases SET pid = ? WHERE agent = 'A'", (dead.pid,))
    assert one.acquire_lease("A", "one", 63.0, 60) is None, "a lease held by a dead process on this host is stale"


def test_switches_expire_and_circuits_survive_reopening(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    s = Store(db)
    s.set_switches("A", Switches(disabled=True, owner="ops", reason="decommissioning", expires_at=100.0))
    s.save_circuit("A", CircuitState(state="open", opened_at=5.0, attempts=(1.0, 2.0), streak=2))
    s.close()
    again = Store(db)
    assert again.switches("A", 99.0) == Switches(False, True, "ops", "decommissioning", 100.0)
    assert again.switches("A", 100.0) == Switches()
    assert again.circuit("A") == CircuitState(state="open", opened_at=5.0, attempts=(1.0, 2.0), streak=2)
    assert again.circuit("B") == CircuitState()


def event(i: int, who: str = "t") -> Event:
    return Event(time=float(i), agent="A", node="n", incident=f"{who}-{i}", action="restart", outcome="healed",
                 duration_seconds=0.1, old_pid=1, new_pid=2, reason="x" * 50)


def test_rotation_keeps_every_line_across_threads_and_processes(tmp_path: Path) -> None:
    path = tmp_path / "telemetry" / "autoheal.log"
    log = AuditLog(path, max_bytes=4096, backups=100)
    writer = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from pathlib import Path
        from remediator.audit import AuditLog
        from tests.test_remediator_store import event
        log = AuditLog(Path({str(path)!r}), max_bytes=4096, backups=100)
        for i in range(300):
            log.write(event(i, "proc"))
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer])
    threads = [threading.Thread(target=lambda w=w: [log.write(event(i, f"th{w}")) for i in range(150)])
               for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(60) == 0
    lines = read_events(path)
    assert len(lines) == 600 and len({e["incident"] for e in lines}) == 600
    assert len(list(path.parent.glob("autoheal.log.*[0-9]"))) > 3
    for f in path.parent.glob("autoheal.log*[0-9g]"):
        assert f.stat().st_size <= 4096
        for line in f.read_text().splitlines():
            json.loads(line)


def test_rotation_keeps_at_most_n_backups(tmp_path: Path) -> None:
    path = tmp_path / "autoheal.log"
    log = AuditLog(path, max_bytes=1024, backups=2)
    for i in range(100):
        log.write(event(i))
    assert sorted(p.name for p in tmp_path.glob("autoheal.log*") if not p.name.endswith(".lock")) == [
        "autoheal.log", "autoheal.log.1", "autoheal.log.2"]
    assert read_events(path)[-1]["incident"] == "t-99"


def test_started_agents_do_not_inherit_the_receivers_secrets(monkeypatch) -> None:
    from govheal.procs import allowlisted_env as child_env

    monkeypatch.setenv("GOVHEAL_WEBHOOK_TOKEN", "s3cret")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = child_env()
    assert "GOVHEAL_WEBHOOK_TOKEN" not in env and "TELEGRAM_BOT_TOKEN" not in env and env["LANG"] == "C.UTF-8"


def test_wal_checkpoints_run_in_the_background_not_in_a_commit(tmp_path: Path, monkeypatch) -> None:
    import remediator.store as rs
    from govheal.testing.support import wait_until

    monkeypatch.setattr(rs, "CHECKPOINT_INTERVAL", 0.05)
    db = tmp_path / "s.sqlite3"
    s = Store(db)
    assert s.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0, "commits must not checkpoint"
    before = db.stat().st_size
    for i in range(300):
        s.save_circuit(f"agent-{i}", CircuitState(attempts=(float(i),) * 20))
    # in WAL mode only a checkpoint copies pages into the main file: it grows while the store stays open
    wait_until(lambda: db.stat().st_size > before, 10, what="background checkpoint")
    s.close()
    assert not s._checkpointer.is_alive()
    again = Store(db)
    assert again.circuit("agent-299").attempts == (299.0,) * 20, "nothing committed is lost"
    again.close()
