"""A restart never signals a process that is not the agent (issue 13.2): a stale pidfile naming an unrelated
program, pid 1, another user's process, a process started after the pidfile was written. Real processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from govheal.seams import parse_config
from govheal.testing.remediator.reaper import kill_started_under
from govheal.testing.support import free_port, wait_until
from remediator.api import Request
from remediator.audit import read_events
from remediator.engine import Remediator
from remediator.verify import running

# An unrelated program that leads its own process group and has a child in it (a shell and its job).
UNRELATED = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; "
             "time.sleep(120)']); print(c.pid, flush=True); time.sleep(120)")


@pytest.fixture(autouse=True)
def _nothing_outlives_the_test(tmp_path: Path):
    yield
    kill_started_under(tmp_path)


@contextlib.contextmanager
def unrelated_group(tmp_path: Path, **popen):
    """A process group leader (with one child) that is not the agent: what a reused pid may name."""
    leader = subprocess.Popen([sys.executable, "-c", UNRELATED, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True, cwd=tmp_path, **popen)
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    try:
        yield leader, child
    finally:
        for pid in (child, leader.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        leader.wait(10)


def agent_config(tmp_path: Path, extra: str = "") -> Path:
    """A command agent found by its pidfile, with a health check nothing answers (so it reads as unhealthy)."""
    argv = [sys.executable, "-m", "govheal", "demo-agent", "--name", "A", "--port", str(free_port()),
            "--pidfile", str(tmp_path / "run" / "A.pid")]
    path = tmp_path / "govheal.yaml"
    path.write_text(
        "state_dir: state\ntelemetry_log: telemetry/autoheal.log\n"
        "remediation: {budget: 3, backoff_initial: 10ms, backoff_max: 20ms}\n"
        "agents:\n  - name: A\n    process: {pidfile: run/A.pid}\n"
        f"    health: {{url: 'http://127.0.0.1:{free_port()}/health', timeout: 200ms}}\n"
        f"    start_grace: 2s\n    restart: {{strategy: command, argv: {json.dumps(argv)}, stop_timeout: 300ms"
        f"{extra}}}\n")
    (tmp_path / "run").mkdir(exist_ok=True)
    return path


@pytest.mark.live
def test_a_pidfile_naming_an_unrelated_process_group_is_refused_and_nothing_is_killed(tmp_path: Path) -> None:
    cfg_path = agent_config(tmp_path)
    with unrelated_group(tmp_path) as (leader, child):
        (tmp_path / "run" / "A.pid").write_text(f"{leader.pid}\n")  # the agent wrote another process's pid
        rem = Remediator(parse_config(cfg_path.read_text(), cfg_path))
        try:
            r = rem.submit(Request("A", "restart", "i1", reason="AgentUnhealthy firing"))
        finally:
            rem.close()
        time.sleep(0.3)  # a TERM sent to the group would have landed by now
        assert running(leader.pid) and running(child), "an unrelated process group was signalled"
        assert r.outcome == "failed" and "refused to signal pid" in r.reason and "not the program" in r.reason
        assert r.attempts == 1, "a refusal is not retried: the next try would be refused the same way"
        events = read_events(rem.audit.path)
        refused = [e for e in events if e["outcome"] == "refused"]
        assert len(refused) == 1 and refused[0]["old_pid"] == leader.pid
        assert "restart.expect_cmdline" in refused[0]["reason"]
        assert [e["outcome"] for e in events] == ["restarting", "refused", "failed"]


@pytest.mark.live
def test_pid_1_and_govheal_itself_are_never_signalled(tmp_path: Path) -> None:
    from remediator import identity
    from remediator.strategies import Refused

    cfg_path = agent_config(tmp_path)
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    for pid, why in ((1, "that is init"), (os.getpid(), "that is govheal itself")):
        with pytest.raises(Refused, match=why):
            identity.check(cfg, cfg.agent("A"), pid, allow_other_users=True)


@pytest.mark.live
def test_another_users_process_is_refused_unless_the_config_allows_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator import identity
    from remediator.strategies import Refused

    cmd = [shutil.which("sleep") or "/bin/sleep", "120"]  # runnable by any user
    cfg_path = tmp_path / "govheal.yaml"
    cfg_path.write_text("agents:\n  - name: A\n    process: {pidfile: run/A.pid}\n"
                        f"    restart: {{strategy: command, argv: {json.dumps(cmd)}}}\n")
    (tmp_path / "run").mkdir()
    popen = {}
    if os.getuid() == 0:  # a real process of another user
        popen = {"user": "nobody", "group": "nogroup" if _group_exists("nogroup") else "nobody"}
    proc = subprocess.Popen(cmd, start_new_session=True, cwd="/tmp", **popen)
    try:
        (tmp_path / "run" / "A.pid").write_text(f"{proc.pid}\n")
        if os.getuid() != 0:  # not root: the process is ours, so govheal plays another user instead
            monkeypatch.setattr(identity.os, "getuid", lambda: os.geteuid() + 1)
        cfg = parse_config(cfg_path.read_text(), cfg_path)
        with pytest.raises(Refused, match=r"it belongs to .*govheal runs as .*set restart\.allow_other_users: true"):
            identity.check(cfg, cfg.agent("A"), proc.pid, argv=cmd)
        assert identity.check(cfg, cfg.agent("A"), proc.pid, argv=cmd, allow_other_users=True) is not None
        allowed = parse_config(cfg_path.read_text().replace("]}\n", "], allow_other_users: true}\n"), cfg_path)
        assert allowed.agent("A").restart.allow_other_users is True
    finally:
        proc.kill()
        proc.wait(10)


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


@pytest.mark.live
def test_a_process_started_after_the_pidfile_was_written_is_a_reused_pid(tmp_path: Path) -> None:
    from remediator import identity
    from remediator.strategies import Refused

    cfg_path = agent_config(tmp_path)
    cfg = parse_config(cfg_path.read_text(), cfg_path)
    argv = cfg.agent("A").restart.argv
    pidfile = tmp_path / "run" / "A.pid"
    proc = subprocess.Popen([*argv[:4], "--help"], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        pidfile.write_text(f"{proc.pid}\n")
        old = time.time() - 60
        os.utime(pidfile, (old, old))  # the agent wrote it a minute ago; this process is seconds old
        with pytest.raises(Refused, match=r"started \d+s after .*A\.pid was written, so the pidfile is stale"):
            identity.check(cfg, cfg.agent("A"), proc.pid, argv=argv)
        os.utime(pidfile, None)
        assert identity.check(cfg, cfg.agent("A"), proc.pid, argv=argv) is not None
    finally:
        proc.kill()
        proc.wait(10)


def test_the_program_of_the_restart_argv_is_what_identifies_the_agent() -> None:
    from remediator.identity import argv_matches

    gg = ["govheal", "demo-agent", "--name", "GG", "--port", "19201"]
    assert argv_matches(gg, ["/venv/bin/python", "/venv/bin/govheal", "demo-agent", "--name", "GG", "--port", "1"])
    assert argv_matches(gg, ["/usr/bin/python3", "-m", "govheal", "demo-agent", "--name", "GG"])
    assert not argv_matches(gg, ["/usr/bin/python3", "-m", "govheal", "receiver", "--config", "x"])
    assert not argv_matches(gg, ["sleep", "60"])
    assert argv_matches(["./gg", "--serve"], ["/usr/bin/python3", "./gg", "--serve"])  # a #! script
    assert not argv_matches(["gg"], [])


@pytest.mark.live
def test_the_signal_strategy_refuses_a_stale_pid_too(tmp_path: Path) -> None:
    cfg_path = agent_config(tmp_path)
    cfg_path.write_text(cfg_path.read_text().split("    restart:")[0] + "    restart: {strategy: signal}\n")
    with unrelated_group(tmp_path) as (leader, _child):
        (tmp_path / "run" / "A.pid").write_text(f"{leader.pid}\n")
        old = time.time() - 60
        os.utime(tmp_path / "run" / "A.pid", (old, old))
        rem = Remediator(parse_config(cfg_path.read_text(), cfg_path))
        try:
            r = rem.submit(Request("A", "restart", "i1"))
        finally:
            rem.close()
        wait_until(lambda: psutil.Process(leader.pid).status() != psutil.STATUS_ZOMBIE, 1, what="leader alive")
        assert running(leader.pid) and r.outcome == "failed" and "pidfile is stale" in r.reason
