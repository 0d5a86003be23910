"""Governance switches at the base (govheal/switches.py): the pure rules, the store, and every reader
(remediator, exporter in-process, a real `govheal exporter` process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.reader import FleetReader
from exporter.server import make_registry
from govheal.seams import parse_config
from govheal.store import connect, db_path
from govheal.switches import (
    Switch,
    SwitchKind,
    SwitchReader,
    SwitchStore,
    agent_enabled,
    in_effect,
    kinds_in_effect,
)
from govheal.testing.support import http_get, wait_until
from remediator.store import Store, Switches

T0 = 1_800_000_000.0


def switch(kind: SwitchKind, agent: str = "A", start: float = T0, expiry: float | None = T0 + 60, **kw) -> Switch:
    return Switch(agent=agent, kind=kind, owner="ana", reason="migrating the database", start=start, expiry=expiry,
                  **kw)


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- the pure rules ---------------------------------------------------------------------------------


def test_a_switch_is_in_effect_from_its_start_until_its_expiry():
    s = switch(SwitchKind.PAUSE)
    assert [s.in_effect(t) for t in (T0 - 1, T0, T0 + 59.9, T0 + 60)] == [False, True, True, False]
    forever = switch(SwitchKind.PAUSE, expiry=None)
    assert forever.in_effect(T0 + 10**9)


def test_maintenance_disables_the_agent_pause_and_mute_do_not():
    # a paused agent keeps alerting (alerts and messages go on; the remediator skips it): enabled stays 1
    assert agent_enabled([switch(SwitchKind.PAUSE)], "A", T0), "pause: alerts and messages go on"
    assert not agent_enabled([switch(SwitchKind.MAINTENANCE)], "A", T0)
    assert agent_enabled([switch(SwitchKind.MUTE)], "A", T0), "mute silences notifications; healing goes on"
    assert agent_enabled([switch(SwitchKind.MAINTENANCE)], "B", T0), "another agent's switch"
    assert agent_enabled([switch(SwitchKind.MAINTENANCE)], "A", T0 + 60), "expired"


def test_kinds_in_effect_per_agent():
    switches = [switch(SwitchKind.MUTE), switch(SwitchKind.MAINTENANCE), switch(SwitchKind.PAUSE, agent="B",
                                                                                start=T0 + 10)]
    assert kinds_in_effect(switches, T0) == {"A": frozenset({SwitchKind.MUTE, SwitchKind.MAINTENANCE})}
    assert kinds_in_effect(switches, T0 + 10)["B"] == frozenset({SwitchKind.PAUSE})
    assert in_effect(switches, T0 + 100) == []


def test_a_switch_needs_an_owner_a_reason_and_an_expiry_after_its_start():
    with pytest.raises(ValueError, match="expiry must be after start"):
        switch(SwitchKind.PAUSE, expiry=T0)
    with pytest.raises(ValueError):
        Switch(agent="A", kind="pause", owner="", reason="x", start=T0)
    with pytest.raises(ValueError):
        Switch(agent="A", kind="holiday", owner="ana", reason="x", start=T0)


# -- the store --------------------------------------------------------------------------------------


def test_the_store_keeps_every_field_across_reopening(tmp_path: Path):
    db = tmp_path / "govheal.sqlite3"
    clock = Clock()
    store = SwitchStore(connect(db), clock=clock)
    kept = store.add(switch(SwitchKind.MAINTENANCE, recurrence="Sun 02:00 for 1h UTC"))
    assert kept.id is not None
    store.set_silences(kept.id, ["5c0f-silence-1", "5c0f-silence-2"])
    store.conn.close()
    again = SwitchStore(connect(db), clock=clock)
    (back,) = again.all("A")
    assert back == kept.model_copy(update={"silence_ids": ("5c0f-silence-1", "5c0f-silence-2")})
    # a recurring switch is in effect only inside its windows (govheal/governance/schedule.py)
    inside = back.in_effect(clock.t)
    assert again.enabled("A") is not inside and again.in_effect() == ([back] if inside else [])
    clock.t = T0 + 61
    assert again.enabled("A") and again.in_effect() == [], "the injected clock decides what is in effect"
    assert again.remove(back.id) and not again.remove(back.id)
    assert again.all() == []


# -- every reader -----------------------------------------------------------------------------------


def test_the_remediator_reads_the_base_switches(tmp_path: Path):
    db = tmp_path / "govheal.sqlite3"
    rem = Store(db)
    try:
        writer = SwitchStore(connect(db))  # another process's connection, as the governance API will be
        writer.add(switch(SwitchKind.MUTE))
        assert rem.switches("A", T0) == Switches(), "mute does not stop remediation"
        writer.add(switch(SwitchKind.PAUSE))
        assert rem.switches("A", T0) == Switches(paused=True, owner="ana", reason="migrating the database",
                                                 expires_at=T0 + 60)
        writer.add(Switch(agent="A", kind="maintenance", owner="ops", reason="disk swap", start=T0))
        sw = rem.switches("A", T0)
        assert sw.paused and sw.disabled and sw.owner == "ops", "maintenance rules the message"
        assert rem.switches("A", T0 + 60) == Switches(disabled=True, owner="ops", reason="disk swap")
    finally:
        rem.close()


def config(tmp_path: Path):
    path = tmp_path / "govheal.yaml"
    path.write_text("node: n1\nstate_dir: state\nagents:\n  - name: A\n    process: {pidfile: a.pid}\n"
                    "  - name: B\n    process: {pidfile: b.pid}\n")
    return parse_config(path.read_text(), source=path)


def test_the_exporter_publishes_enabled_and_one_series_per_kind(tmp_path: Path):
    cfg = config(tmp_path)
    db = db_path(cfg.state_path)
    clock = Clock()
    SwitchStore(connect(db)).add(switch(SwitchKind.MAINTENANCE))
    SwitchStore(connect(db)).add(switch(SwitchKind.MUTE, agent="B"))
    reader = FleetReader(cfg, switches=SwitchReader(db, clock=clock).kinds)
    registry = make_registry(reader.read)
    try:
        def value(name: str, agent: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, {"agent": agent, "node": "n1", **labels})
        reader.poll_processes()  # switches are read once per process round (every 100 ms), never in a scrape
        assert value("govheal_agent_enabled", "A") == 0.0 and value("govheal_agent_enabled", "B") == 1.0
        assert [value("govheal_agent_switch", "A", kind=k) for k in ("mute", "pause", "maintenance")] == [0, 0, 1]
        assert [value("govheal_agent_switch", "B", kind=k) for k in ("mute", "pause", "maintenance")] == [1, 0, 0]
        clock.t = T0 + 60
        reader.poll_processes()
        assert value("govheal_agent_enabled", "A") == 1.0
        assert value("govheal_agent_switch", "A", kind="maintenance") == 0
    finally:
        reader.close()


def test_unreadable_switches_leave_every_agent_enabled_and_the_scrape_whole(tmp_path: Path, caplog):
    cfg = config(tmp_path)
    (tmp_path / "not-a-dir").write_text("")
    reader = FleetReader(cfg, switches=SwitchReader(tmp_path / "not-a-dir" / "govheal.sqlite3").kinds)
    registry = make_registry(reader.read)
    try:
        reader.poll_processes()
        assert registry.get_sample_value("govheal_agent_enabled", {"agent": "A", "node": "n1"}) == 1.0
        assert "reading the governance switches failed" in caplog.text
    finally:
        reader.close()


@pytest.mark.live
def test_a_real_exporter_reads_a_switch_written_while_it_runs(tmp_path: Path):
    cfg = config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "govheal", "exporter", "--config", str(cfg.source),
                             "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        url = line.split("metrics on ")[1].strip()
        assert 'govheal_agent_enabled{agent="A",node="n1"} 1.0' in http_get(url)[1]
        SwitchStore(connect(db_path(cfg.state_path))).add(switch(SwitchKind.MAINTENANCE, start=time.time() - 1,
                                                                 expiry=time.time() + 600))
        wait_until(lambda: 'govheal_agent_enabled{agent="A",node="n1"} 0.0' in http_get(url)[1], 10,
                   what="the maintenance published")
        assert 'govheal_agent_switch{agent="A",kind="maintenance",node="n1"} 1.0' in http_get(url)[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
