"""The state object: one per process, it opens and migrates the SQLite file and hands out connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import govheal.state
import govheal.store
from govheal.state import Component, State
from tests.test_receiver_support import TOKEN, receiver_config
from webhook_receiver.app import create_app
from webhook_receiver.bridge.secrets import Secrets

THING = Component("thing", ["CREATE TABLE thing_rows (id INTEGER PRIMARY KEY, v TEXT)",
                            "ALTER TABLE thing_rows ADD COLUMN w TEXT"])


def test_it_migrates_each_component_once_and_hands_each_a_connection_of_its_own(tmp_path: Path) -> None:
    state = State.open(tmp_path, components=[THING])
    try:
        one, two = state.connection(THING), state.connection(THING)
        assert one is not two
        one.execute("INSERT INTO thing_rows (v, w) VALUES ('a', 'b')")
        assert two.execute("SELECT v, w FROM thing_rows").fetchone()[:] == ("a", "b")
        version = one.execute("SELECT version FROM schema_version WHERE component = 'thing'").fetchone()[0]
        assert version == 2
        assert one.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert one.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # the state object checkpoints
    finally:
        state.close()
    with pytest.raises(sqlite3.ProgrammingError):
        one.execute("SELECT 1")  # closed with the state object
    again = State.open(tmp_path, components=[THING])  # a second start: migrations already applied
    try:
        assert again.connection(THING).execute("SELECT COUNT(*) FROM thing_rows").fetchone()[0] == 1
    finally:
        again.close()


def test_the_receiver_opens_the_file_once_and_no_component_opens_its_own(tmp_path: Path, monkeypatch) -> None:
    """Before the state object: five connect() calls from four places, one only to learn the file name."""
    opened: list[Path] = []
    real = govheal.store.connect

    def counting(path: Path, **kw):
        opened.append(path)
        return real(path, **kw)

    monkeypatch.setattr(govheal.store, "connect", counting)
    monkeypatch.setattr("govheal.state.connect", counting)
    monkeypatch.setattr("remediator.store.connect", counting)
    config = receiver_config(tmp_path, extra="notifications:\n  channels:\n    d: {type: discord}\n")
    from webhook_receiver.bridge import Bridge

    state = State.open(config.state_path)
    bridge = Bridge(config, state=state, secrets=Secrets.load(config, {
        "GOVHEAL_DISCORD_WEBHOOK_URL": "https://discord.example/api/webhooks/1/never-contacted"}))
    app = create_app(config, state=state, bridge=bridge, token=TOKEN, registry=CollectorRegistry(), start=False)
    svc = app.extensions["govheal"]
    try:
        # the state object's own (migrations, checkpoints, probe) + inbox + outbox + remediator + the canary
        # and the daily report's slots (read for /metrics) + the HA episodes and announcer (each serialises
        # its own statements under its own lock, so one connection each) + the governance service
        assert len(opened) == 9 and set(opened) == {state.path}
        handed = state._handed
        assert svc.inbox.conn in handed and bridge.outbox.conn in handed and svc.remediator.store.conn in handed
        assert svc.dispatcher.canary.conn in handed and svc.governance.governance.conn in handed
        assert len({id(c) for c in handed}) == 8
    finally:
        svc.stop(2)
        bridge.stop()
        state.close()


def test_only_a_write_that_changed_rows_says_the_disk_takes_writes_again(tmp_path: Path) -> None:
    """On a really full disk the governance loop's UPDATE matching no row 'succeeded' and the receiver said
    writes succeed again after 4 s, with the disk still full (tests/test_receiver_full_disk.py)."""
    state = State.open(tmp_path, components=[THING])
    try:
        conn = state.connection(THING)
        full = sqlite3.OperationalError("database or disk is full")
        full.sqlite_errorcode = govheal.state.SQLITE_FULL  # type: ignore[attr-defined]
        conn.execute("INSERT INTO thing_rows (id, v) VALUES (1, 'a')")
        state.health.failed(full)
        conn.execute("UPDATE thing_rows SET v = 'x' WHERE id = -1")
        conn.execute("INSERT INTO thing_rows (id, v) VALUES (1, 'a') ON CONFLICT (id) DO NOTHING")
        assert state.health.failing_since is not None, "a statement that wrote nothing is no evidence"
        conn.execute("UPDATE thing_rows SET v = 'b' WHERE id = 1")
        assert state.health.failing_since is None
    finally:
        state.close()
