"""`govheal up` (what `make run` calls): starts the whole chain, prints its URLs, stops everything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from govheal import endpoints, grafana, tools
from govheal.client import Alertmanager, Prometheus, new_session
from govheal.seams import parse_config
from govheal.stack import PortTaken, Up, ensure_token
from govheal.testing.support import DemoAgent, demo_config_text, free_port, http_get, is_running, wait_until
from tests.test_dashboards_grafana import FAKE_GRAFANA, make_binary, make_home

REPO = Path(__file__).resolve().parent.parent


def _config(tmp: Path, names: list[str], exporter_port: int | None = None) -> tuple[Path, list[DemoAgent]]:
    agents = [DemoAgent(n, free_port(), tmp / "run" / f"{n}.pid", tmp / "logs" / f"{n}.log") for n in names]
    listen = f"listen: {{exporter: '127.0.0.1:{exporter_port or free_port()}', receiver: '127.0.0.1:{free_port()}'}}"
    path = tmp / "govheal.yaml"
    path.write_text(demo_config_text(agents, node="up-node", extra=listen))
    return path, agents


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.live
def test_up_starts_every_component_heals_a_crash_and_sigterm_leaves_nothing_running(tmp_path):
    """With a Grafana on PATH (a stand-in: Grafana is not installable here) it is started too, provisioned."""
    cfg, agents = _config(tmp_path, ["A", "B"])
    home = make_home(tmp_path / "grafana-home")
    make_binary(tmp_path / "bin" / "grafana", FAKE_GRAFANA.format(python=sys.executable))
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", grafana.HOMEPATH_ENV: str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "govheal", "up", "--config", str(cfg)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("govheal up: ready:"):
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    children: list[psutil.Process] = []
    try:
        assert ready.wait(90), "".join(lines)
        urls = dict(re.findall(r"(\w+)=(\S+)", next(line for line in lines if line.startswith("govheal up: ready:"))))
        assert set(urls) >= {"prometheus", "alertmanager", "exporter", "grafana"}
        assert urls["grafana"].split("?")[0].endswith("/d/govheal-governance"), urls["grafana"]
        assert http_get(urls["grafana"].split("/d/")[0] + "/api/health")[0] == 200
        session = new_session()
        assert Prometheus(urls["prometheus"], session).ready() and Alertmanager(urls["alertmanager"], session).ready()
        # what it started is recorded, and the next command with the same config finds it without flags
        config = parse_config(cfg.read_text(), source=cfg)
        found = endpoints.resolve(config)
        assert (found.prometheus, found.alertmanagers) == (urls["prometheus"], (urls["alertmanager"],))
        check = subprocess.run([sys.executable, "-m", "govheal", "check", "--config", str(cfg)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
        shown = f"prometheus    {urls['prometheus']}  ready  (recorded by govheal up pid {proc.pid} in"
        assert shown in check.stdout, check.stdout
        assert f"alertmanager  {urls['alertmanager']}  ready" in check.stdout, check.stdout
        status, body = http_get(urls["exporter"])
        assert status == 200 and 'govheal_agent_up{agent="A",node="up-node"} 1.0' in body
        if "receiver" in urls:
            status, body = http_get(urls["receiver"])
            assert status == 200 and "govheal_webhook_requests_total" in body
        for a in agents:
            assert http_get(a.health_url)[0] == 200
        text = "".join(lines)
        for name in ("agent A", "agent B", "exporter", "alertmanager", "prometheus", "grafana"):
            assert re.search(rf"^  {name}\s+ready", text, flags=re.M), text
        if "receiver" in urls:
            # The whole chain heals: crash A → AgentDown → Alertmanager → receiver → remediator restart.
            old_pid = agents[0].pid
            agents[0].fault("crash", code=1)
            wait_until(lambda: agents[0].pid not in (None, old_pid) and http_get(agents[0].health_url)[0] == 200,
                       timeout=60, what="A restarted by govheal under `govheal up`")
        token = tmp_path / "up" / "secrets" / "webhook_token"
        assert token.exists() and (token.stat().st_mode & 0o777) == 0o600
        if "receiver" in urls:
            # the demo's governance page is usable at once: an admin token made for it, named in the output
            admin = tmp_path / "up" / "secrets" / "admin_token"
            assert admin.exists() and (admin.stat().st_mode & 0o777) == 0o600
            assert re.search(r"^  governance\s+http://\S+/ops/governance   \(log in with the token in \S*admin_token\)",
                             "".join(lines), flags=re.M), "".join(lines)
            api = urls["receiver"].removesuffix("/metrics") + "/api/agents"
            assert session.get(api, timeout=5).status_code == 401
            answer = session.get(api, headers={"Authorization": f"Bearer {admin.read_text().strip()}"}, timeout=5)
            assert answer.status_code == 200 and {a["name"] for a in answer.json()["agents"]} == {"A", "B"}
        children = _descendants(proc.pid)
        assert len(children) >= 6
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(lines)
    assert "govheal up: stopped" in "".join(lines)
    assert not endpoints.record_path(config).exists(), "the record of a stopped stack is removed"
    left = [c for c in children if is_running(c.pid)]
    assert left == [], f"left running: {[(c.pid, c.name()) for c in left]}"
    assert all(not is_running(a.pid or 0) for a in agents)


def test_without_grafana_up_says_in_one_line_how_to_get_it_and_goes_on(tmp_path, monkeypatch):
    cfg, _ = _config(tmp_path, ["A"])
    up = Up(parse_config(cfg.read_text(), source=cfg))
    out: list[str] = []
    up.say = out.append
    monkeypatch.setattr(grafana, "find", lambda: None)
    assert up._start_grafana("http://127.0.0.1:1", "http://127.0.0.1:2", None) is None
    assert out == [grafana.missing_hint()] and up.supervisor.children == []


def test_up_uses_a_free_port_when_the_exporters_is_taken_and_says_so(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg, _ = _config(tmp_path, ["A"], exporter_port=port)
        config = parse_config(cfg.read_text(), source=cfg)
        out: list[str] = []
        up = Up(config)
        up.say = out.append
        chosen = up.listen_for("exporter", config.listen.exporter)
        assert chosen != f"127.0.0.1:{port}"
        assert f"127.0.0.1:{port} is taken by another program" in out[0]


def test_up_refuses_when_an_agents_port_is_held_by_another_program(tmp_path):
    cfg, agents = _config(tmp_path, ["A"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", agents[0].port))
        holder.listen()
        up = Up(parse_config(cfg.read_text(), source=cfg))
        with pytest.raises(PortTaken, match=rf"port {agents[0].port} of agent A .*change the agent's port in"):
            up.agent_plan()


def test_a_missing_binary_is_refused_with_this_os_install_command(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name, **kw: None)
    with pytest.raises(tools.MissingBinary, match=r"prometheus-alertmanager or alertmanager.*apt-get install "
                                                  r"prometheus prometheus-alertmanager"):
        tools.require("alertmanager", system="Linux")
    with pytest.raises(tools.MissingBinary, match="brew install prometheus alertmanager"):
        tools.require("prometheus", system="Darwin")


def test_up_cli_refuses_without_prometheus_on_path_before_starting_anything(tmp_path):
    cfg, _ = _config(tmp_path, ["A"])
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    result = subprocess.run([sys.executable, "-m", "govheal", "up", "--config", str(cfg)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "prometheus not found on PATH" in result.stderr and "install it with" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "up").exists()


def test_token_file_is_created_private_and_kept(tmp_path):
    token = ensure_token(tmp_path / "secrets" / "token")
    first = token.read_text()
    assert (token.stat().st_mode & 0o777) == 0o600 and len(first.strip()) >= 32
    assert ensure_token(token).read_text() == first


def test_second_up_on_the_same_run_dir_is_refused(tmp_path):
    cfg, _ = _config(tmp_path, ["A"])
    config = parse_config(cfg.read_text(), source=cfg)
    first, second = Up(config), Up(config)
    first.run_dir.mkdir(parents=True)
    lock = first._lock()
    try:
        with pytest.raises(Exception, match="another `govheal up`"):
            second._lock()
    finally:
        lock.close()


def test_supervisor_restarts_a_dead_component_with_backoff_and_reports_it(tmp_path):
    from govheal.supervise import Child, Supervisor

    now = [0.0]
    out: list[str] = []
    sup = Supervisor(out=out.append, clock=lambda: now[0])
    child = Child("flaky", [sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(3)"],
                  tmp_path / "flaky.log", ready=lambda: True)
    try:
        sup.start(child)
        first = child.pid
        child.proc.wait(timeout=10)
        sup.check()
        assert "flaky          exited with code 3; restarting in 1s" in out[-1]
        sup.check()
        assert child.pid == first  # backoff not over yet
        now[0] += 1.5
        sup.check()
        assert child.pid != first and out[-1].startswith("  flaky          restarted")
    finally:
        sup.stop_all()
    assert not is_running(child.pid)


def test_a_port_with_only_time_wait_connections_is_free(tmp_path):
    """`make run` right after Ctrl-C: the probes' closed connections sit in TIME_WAIT on the agents' ports."""
    from govheal.net import port_is_free

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        conn.close()  # the server closes first, as an HTTP/1.0 server does: TIME_WAIT on the server's port
        client.close()
    with socket.socket() as plain, pytest.raises(OSError):  # the situation: a plain bind is refused
        plain.bind(("127.0.0.1", port))
    assert port_is_free("127.0.0.1", port)


def test_up_refused_before_starting_anything_says_only_why(tmp_path):
    """No "stopping ... stopped" before the error when nothing was started (it read as a crash)."""
    cfg, agents = _config(tmp_path, ["A"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", agents[0].port))
        holder.listen()
        out: list[str] = []
        up = Up(parse_config(cfg.read_text(), source=cfg))
        up.say = out.append
        up.prepare = lambda: ("prometheus", "alertmanager")
        with pytest.raises(PortTaken):
            up.run()
    assert not [line for line in out if "stop" in line], out


def test_ctrl_c_while_starting_starts_nothing_more_and_announces_no_ready(tmp_path):
    """Ctrl-C during start-up (Prometheus takes seconds): no more components, no 'ready:' line or hints."""
    cfg, _ = _config(tmp_path, ["A", "B"])
    out: list[str] = []
    up = Up(parse_config(cfg.read_text(), source=cfg))
    up.say = out.append
    up.prepare = lambda: ("prometheus", "alertmanager")
    started: list[str] = []

    def start(child) -> None:  # a fake start: Ctrl-C arrives while Alertmanager is starting
        started.append(child.name)
        if child.name == "alertmanager":
            up.stop_event.set()

    up.supervisor.start = start
    assert up.run() == 0
    assert started[-1] == "alertmanager" and "prometheus" not in started
    assert not [line for line in out if "ready" in line or "try:" in line], out
    assert out[-1] == "govheal up: stopped"
