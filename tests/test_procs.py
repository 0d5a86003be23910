"""Process facts and environments shared by every component."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

from govheal.procs import child_env, env_without_secrets, pid_running, read_pidfile
from govheal.testing.support import wait_until

SECRETS = {"GOVHEAL_WEBHOOK_TOKEN": "t0ken", "GOVHEAL_TELEGRAM_BOT_TOKEN": "123:abc",
           "GOVHEAL_DISCORD_WEBHOOK_URL": "https://discord.example/api/webhooks/1/x",
           "GOVHEAL_TELEGRAM_CHAT_ID": "-100", "MY_API_KEY": "k", "DB_PASSWORD": "p"}


def test_secrets_are_kept_from_children_except_the_receiver(monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LANG", "C.UTF-8")
    plain = child_env({"EXTRA": "1"})
    assert not set(SECRETS) & set(plain)
    assert plain["EXTRA"] == "1" and plain["LANG"] == "C.UTF-8"
    assert plain["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    receiver = child_env(secrets=True)
    assert set(SECRETS) <= set(receiver)
    assert not set(SECRETS) & set(env_without_secrets({**SECRETS, "HOME": "/root"}))


def test_a_zombie_is_not_running_and_a_bad_pidfile_is_none(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # not reaped until wait(): the exited child is a zombie, which psutil still finds
        wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, what="zombie")
        assert not pid_running(child.pid)
    finally:
        child.wait()
    assert pid_running(os.getpid())
    assert not pid_running(None) and not pid_running(0)
    (tmp_path / "p").write_text("not a pid\n")
    assert read_pidfile(tmp_path / "p") is None and read_pidfile(tmp_path / "missing") is None
    (tmp_path / "p").write_text(f"{os.getpid()}\n")
    assert read_pidfile(tmp_path / "p") == os.getpid()
