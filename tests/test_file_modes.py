"""State and audit files hold alert bodies and diagnostics: only their owner may read them (issue 13.5).
The webhook token's hint makes a private file, a token file others can read is warned about, and the
precedence of receiver.token_file over GOVHEAL_WEBHOOK_TOKEN is what the messages say."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

import pytest

from govheal.store import connect, db_path, tx
from remediator.api import Event
from remediator.audit import AuditLog
from remediator.store import Store, Switches


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _usual_umask():
    old = os.umask(0o022)  # what a login shell has: files 0644, dirs 0755 unless we ask otherwise
    yield
    os.umask(old)


def test_the_state_dir_and_every_sqlite_file_are_private(tmp_path: Path) -> None:
    path = db_path(tmp_path / ".govheal" / "state")
    store = Store(path)
    store.set_switches("A", Switches(paused=True))
    try:
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert oct(mode(path.parent)) == "0o700" and oct(mode(path.parent.parent)) == "0o700"
    finally:
        store.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "state" / "govheal.sqlite3"
    path.parent.mkdir()
    conn = connect(path)
    with tx(conn):
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    os.chmod(path, 0o644)  # made by an older govheal
    conn = connect(path)
    try:
        assert oct(mode(path)) == "0o600"
    finally:
        conn.close()


def event(i: int) -> Event:
    return Event(time=float(i), agent="A", node="n", incident=f"t-{i}", action="restart", outcome="healed",
                 duration_seconds=0.1, old_pid=1, new_pid=2, reason="x" * 200)


def test_the_audit_log_its_backups_its_lock_and_its_new_dir_are_private(tmp_path: Path) -> None:
    path = tmp_path / "telemetry" / "autoheal.log"
    log = AuditLog(path, max_bytes=1024, backups=2)
    for i in range(30):
        log.write(event(i))
    log.close()
    files = sorted(tmp_path.glob("telemetry/autoheal.log*"))
    assert len(files) == 4  # the log, .1, .2 and .lock
    assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
    assert oct(mode(path.parent)) == "0o700"
    os.chmod(path, 0o644)
    AuditLog(path).close()
    assert oct(mode(path)) == "0o600", "an existing log is tightened when opened"


def receiver_config(tmp_path: Path, token_file: str | None):
    from govheal.seams import parse_config

    extra = f"receiver: {{token_file: {token_file}}}\n" if token_file else ""
    path = tmp_path / "govheal.yaml"
    path.write_text(extra + "agents:\n  - name: A\n    health: {url: 'http://127.0.0.1:9/health'}\n")
    return parse_config(path.read_text(), path)


def test_the_token_hint_makes_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    from webhook_receiver.auth import TokenError, load_token

    cfg = receiver_config(tmp_path, "secrets/token")
    (tmp_path / "secrets").mkdir()
    with pytest.raises(TokenError) as info:
        load_token(cfg, {})
    text = str(info.value)
    hint = text.split("`")[1]
    assert hint == f"(umask 077; openssl rand -hex 32 > {tmp_path / 'secrets' / 'token'})"
    assert "or remove receiver.token_file from the config and set GOVHEAL_WEBHOOK_TOKEN" in text
    subprocess.run(["sh", "-c", hint], check=True)  # the hint as an operator pastes it
    assert oct(mode(tmp_path / "secrets" / "token")) == "0o600"
    assert len(load_token(cfg, {})) == 64


def test_a_token_file_others_can_read_is_warned_about_and_the_file_wins_over_the_environment(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from webhook_receiver.auth import load_token

    cfg = receiver_config(tmp_path, "token")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    os.chmod(token, 0o644)
    with caplog.at_level(logging.WARNING):
        assert load_token(cfg, {"GOVHEAL_WEBHOOK_TOKEN": "EnvT0ken"}) == "s3cret"
    text = caplog.text
    assert f"receiver.token_file {token} can be read by other users (mode 0644); run: chmod 600 {token}" in text
    assert "GOVHEAL_WEBHOOK_TOKEN is set but not used: receiver.token_file takes precedence" in text
    assert "s3cret" not in text and "EnvT0ken" not in text
    caplog.clear()
    os.chmod(token, 0o600)
    with caplog.at_level(logging.WARNING):
        assert load_token(cfg, {}) == "s3cret"
    assert caplog.text == ""
