"""Each matcher on its own, and the process reader's edge cases (zombie, vanished, AccessDenied).

launchd and systemd run through fake programs on PATH: govheal/testing/launchctl replays real
`launchctl print` output (there is no launchd on Linux), govheal/testing/exporter/systemctl prints what
`systemctl show --property=MainPID --value` prints.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from exporter.process import ProcessTable
from govheal import matchers, testing
from govheal.config import ConfigError
from govheal.matchers import (
    MATCHERS,
    CmdlineSpec,
    LaunchdSpec,
    Match,
    PidfileSpec,
    PortSpec,
    ScanContext,
    SystemdSpec,
    parse_launchctl_print,
)
from govheal.seams import config_model, parse_config

FAKES = testing.FAKES


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with the fake launchctl and systemctl; their state lives in the returned directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "launchctl").symlink_to(FAKES / "launchctl")
    (bin_dir / "systemctl").symlink_to(FAKES / "exporter" / "systemctl")
    state = tmp_path / "services"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GOVHEAL_FAKE_SERVICES", str(state))
    return state


def ctx(tmp_path: Path | None = None) -> ScanContext:
    base = tmp_path or Path("/")
    return ScanContext(resolve=lambda p: base / p)


def test_the_process_keys_of_the_config_are_the_matchers_and_their_own_options():
    process = config_model().model_fields["agents"].annotation.__args__[0].model_fields["process"].annotation
    model = next(a for a in process.__args__ if a is not type(None))
    assert tuple(model.matchers) == tuple(MATCHERS)
    assert set(model.model_fields) == {k for m in MATCHERS.values() for k in m.spec.model_fields}
    for name, m in MATCHERS.items():
        assert name in m.spec.model_fields, f"matcher {name}: its model's key must be named {name}"


def test_an_option_of_another_matcher_is_an_error_naming_its_owner():
    with pytest.raises(ConfigError, match=r"agents\[0\]\.process: user_unit is an option of process\.systemd, "
                                          r"not of process\.pidfile; remove it"):
        parse_config("agents:\n  - name: a\n    process: {pidfile: a.pid, user_unit: true}\n")


# --- pidfile -------------------------------------------------------------------------------------

def test_pidfile_gives_the_pid_it_holds(tmp_path: Path):
    (tmp_path / "a.pid").write_text(f"{os.getpid()}\n")
    assert MATCHERS["pidfile"](PidfileSpec(pidfile="a.pid"), ctx(tmp_path)) == Match(os.getpid())


def test_a_missing_pidfile_means_not_running_without_an_error(tmp_path: Path):
    assert MATCHERS["pidfile"](PidfileSpec(pidfile="gone.pid"), ctx(tmp_path)) == Match(None)


def test_a_pidfile_without_a_pid_is_a_lookup_error_naming_the_file(tmp_path: Path):
    (tmp_path / "bad.pid").write_text("hello\n")
    m = MATCHERS["pidfile"](PidfileSpec(pidfile="bad.pid"), ctx(tmp_path))
    assert m.pid is None and m.error == "lookup_failed" and "bad.pid" in m.detail


# --- cmdline -------------------------------------------------------------------------------------

@pytest.mark.live
def test_cmdline_finds_a_process_by_regex_and_never_the_exporter_itself(tmp_path: Path):
    marker = f"govheal-cmdline-marker-{os.getpid()}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        c = ScanContext(own_pid=os.getpid())
        assert MATCHERS["cmdline"](CmdlineSpec(cmdline=f"sleep.*{marker}$"), c) == Match(child.pid)
        assert MATCHERS["cmdline"](CmdlineSpec(cmdline="no-such-process-anywhere-[0-9]{40}"), c) == Match(None)
        me = " ".join(psutil.Process().cmdline())
        assert MATCHERS["cmdline"](CmdlineSpec(cmdline=f"^{__import__('re').escape(me)}$"), c).pid != os.getpid()
    finally:
        child.kill()
        child.wait()


def test_all_cmdline_matchers_share_one_process_table_scan(monkeypatch: pytest.MonkeyPatch):
    calls = []
    real = psutil.process_iter

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(matchers.psutil, "process_iter", counting)
    c = ScanContext()
    for i in range(50):
        MATCHERS["cmdline"](CmdlineSpec(cmdline=f"agent-{i}"), c)
    assert len(calls) == 1


# --- launchd (fake launchctl) --------------------------------------------------------------------

@pytest.mark.live
def test_launchd_reads_the_pid_from_launchctl_print(services: Path):
    (services / "com.example.worker").write_text("4242\n")
    m = MATCHERS["launchd"](LaunchdSpec(launchd="com.example.worker"), ScanContext(uid=501))
    assert m == Match(4242)
    assert "launchctl print gui/501/com.example.worker" in (services / "calls.log").read_text()


@pytest.mark.live
def test_launchd_loaded_but_not_running_has_no_pid(services: Path):
    (services / "com.example.worker").write_text("stopped\n")
    assert MATCHERS["launchd"](LaunchdSpec(launchd="com.example.worker"), ScanContext()) == Match(None)


@pytest.mark.live
def test_launchd_label_not_loaded_is_not_running_not_an_error(services: Path):
    assert MATCHERS["launchd"](LaunchdSpec(launchd="com.example.absent"), ScanContext()) == Match(None)


@pytest.mark.live
def test_launchd_domain_is_configurable(services: Path):
    (services / "com.example.daemon").write_text("77\n")
    spec = LaunchdSpec(launchd="com.example.daemon", launchd_domain="system")
    assert MATCHERS["launchd"](spec, ScanContext()) == Match(77)
    assert "launchctl print system/com.example.daemon" in (services / "calls.log").read_text()


@pytest.mark.live
def test_a_wedged_launchctl_times_out_as_a_lookup_error(services: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOVHEAL_FAKE_SLEEP", "5")
    monkeypatch.setattr(matchers, "COMMAND_TIMEOUT", 0.3)
    t0 = time.monotonic()
    m = MATCHERS["launchd"](LaunchdSpec(launchd="com.example.worker"), ScanContext())
    assert time.monotonic() - t0 < 3
    assert m.pid is None and m.error == "lookup_failed"


def test_launchctl_print_parser_ignores_nested_pid_like_lines():
    text = "gui/501/x = {\n\tendpoints = {\n\t\tpid = 1\n\t}\n\tpid = 99\n}\n"
    assert parse_launchctl_print(text) == 99
    assert parse_launchctl_print("gui/501/x = {\n\tstate = not running\n}\n") is None


# --- systemd (fake systemctl) --------------------------------------------------------------------

@pytest.mark.live
def test_systemd_reads_main_pid(services: Path):
    (services / "worker.service").write_text("3131\n")
    assert MATCHERS["systemd"](SystemdSpec(systemd="worker.service"), ScanContext()) == Match(3131)


@pytest.mark.live
def test_systemd_main_pid_zero_is_not_running(services: Path):
    assert MATCHERS["systemd"](SystemdSpec(systemd="stopped.service"), ScanContext()) == Match(None)


@pytest.mark.live
def test_systemd_user_units_pass_user(services: Path):
    MATCHERS["systemd"](SystemdSpec(systemd="w.service", user_unit=True), ScanContext())
    call = (services / "calls.log").read_text().split()
    assert call[:5] == ["systemctl", "show", "--property=MainPID", "--value", "--user"] and call[-1] == "w.service"


@pytest.mark.live
def test_systemctl_failure_is_a_lookup_error(services: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOVHEAL_FAKE_SYSTEMCTL_FAIL", "1")
    m = MATCHERS["systemd"](SystemdSpec(systemd="worker.service"), ScanContext())
    assert m.pid is None and m.error == "lookup_failed"


def test_missing_launchctl_binary_is_a_lookup_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    m = MATCHERS["launchd"](LaunchdSpec(launchd="com.example.worker"), ScanContext())
    assert m.error == "lookup_failed"


# --- port ----------------------------------------------------------------------------------------

def test_port_finds_the_listening_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert MATCHERS["port"](PortSpec(port=port), ScanContext()) == Match(os.getpid())
    assert MATCHERS["port"](PortSpec(port=port), ScanContext()) == Match(None)


def test_port_table_denied_is_data(monkeypatch: pytest.MonkeyPatch):
    def denied(kind: str = "tcp"):
        raise psutil.AccessDenied()

    monkeypatch.setattr(matchers.psutil, "net_connections", denied)
    m = MATCHERS["port"](PortSpec(port=1234), ScanContext())
    assert m.pid is None and m.error == "access_denied"


# --- the process reader --------------------------------------------------------------------------

@pytest.mark.live
def test_a_zombie_is_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        from govheal.testing.support import wait_until
        wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10, what="zombie")
        reading, error = ProcessTable().read(child.pid)
        assert not reading.running and error is None
    finally:
        child.wait()


def test_a_live_process_has_start_time_cpu_and_memory():
    reading, error = ProcessTable().read(os.getpid())
    assert reading.running and error is None
    assert reading.start_time == pytest.approx(psutil.Process().create_time())
    assert reading.cpu_seconds and reading.cpu_seconds > 0 and reading.rss_bytes and reading.rss_bytes > 0


@pytest.mark.live
def test_a_stale_pid_is_not_running_and_not_an_error():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    reading, error = ProcessTable().read(child.pid)
    assert not reading.running and error is None


def test_process_objects_are_reused_between_scrapes_and_replaced_on_pid_reuse(monkeypatch: pytest.MonkeyPatch):
    table = ProcessTable()
    table.read(os.getpid())
    first = table._procs[os.getpid()]
    table.end_scrape()
    table.read(os.getpid())
    assert table._procs[os.getpid()] is first
    monkeypatch.setattr(first, "is_running", lambda: False)  # as if the PID now belonged to another process
    table.read(os.getpid())
    assert table._procs[os.getpid()] is not first


def test_access_denied_on_resources_keeps_up_and_counts_the_error(monkeypatch: pytest.MonkeyPatch):
    from psutil._common import memoize_when_activated  # psutil's oneshot() expects its memoized methods

    @memoize_when_activated
    def denied(self):
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "cpu_times", denied)
    reading, error = ProcessTable().read(os.getpid())
    assert reading.running and reading.start_time and reading.cpu_seconds is None
    assert error == "access_denied"


def test_a_process_that_vanishes_mid_read_is_down_and_counted(monkeypatch: pytest.MonkeyPatch):
    def gone(self):
        raise psutil.NoSuchProcess(self.pid)

    monkeypatch.setattr(psutil.Process, "status", gone)
    reading, error = ProcessTable().read(os.getpid())
    assert not reading.running and error == "vanished"
