"""What ``govheal up`` starts, in which order, on which ports; the supervision lives in govheal/supervise.py."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import psutil

from govheal import chain, endpoints, grafana, tools
from govheal.client import new_session
from govheal.config import Agent, Config
from govheal.errors import GovhealError
from govheal.net import LOOPBACK, free_port, http_ok, port_is_free
from govheal.procs import child_env, pid_running, read_pidfile
from govheal.supervise import Child, Supervisor
from govheal.types import display_url, split_listen
from remediator.strategies.command import Spec as CommandRestart


class PortTaken(GovhealError):
    """A port govheal must use is held by another program."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting: start nothing more, announce nothing."""


def ensure_token(path: Path) -> Path:
    """Create the webhook bearer token (0600) if missing; never print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path


class Up:
    """One ``govheal up`` run: plan ports, render configs, start, supervise, stop."""

    def __init__(self, config: Config, profile: str = "single-host", out: TextIO | None = None,
                 stop_event: threading.Event | None = None) -> None:
        self.config = config
        self.profile = profile
        self.stream = out or sys.stdout
        self.stop_event = stop_event or threading.Event()
        self.run_dir = config.state_path.parent / "up"
        self.supervisor = Supervisor(out=self.say, stop_event=self.stop_event)
        self.session = new_session()  # the one HTTP session for Prometheus/Alertmanager (govheal/client.py)
        self.started_at = time.time()
        self._admin_token: Path | None = None

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    # -- planning -----------------------------------------------------------------------------------

    def listen_for(self, what: str, configured: str) -> str:
        """The configured HOST:PORT if free, else a free port on the same host (printed)."""
        host, port = split_listen(configured)
        if port and port_is_free(host, port):
            return configured
        chosen = f"{host}:{free_port(host)}"
        if port:
            self.say(f"  {what:<14} {configured} is taken by another program; using {chosen}")
        return chosen

    def agent_plan(self) -> tuple[list[Agent], list[str]]:
        """Agents to start and agents already running; PortTaken when an agent's port is held by another."""
        to_start, running, taken = [], [], []
        for agent in self.config.agents:
            if not isinstance(agent.restart, CommandRestart):
                continue
            pidfile = agent.process.pidfile if agent.process else None
            pid = read_pidfile(self.config.path(pidfile)) if pidfile else None
            if pid_running(pid) or (agent.health and http_ok(agent.health.url, timeout=0.5)):
                running.append(f"{agent.name} (pid {pid})" if pid_running(pid) else agent.name)
                continue
            if agent.health:
                url = urlsplit(agent.health.url)
                if url.hostname in ("127.0.0.1", "localhost", "::1") and url.port and \
                        not port_is_free(url.hostname, url.port):
                    taken.append(f"port {url.port} of agent {agent.name} ({display_url(agent.health.url)})")
            to_start.append(agent)
        if taken:
            raise PortTaken("taken by another program: " + "; ".join(taken) +
                            f". Stop that program or change the agent's port in {self.config.source}")
        return to_start, running

    # -- children -----------------------------------------------------------------------------------

    def agent_child(self, agent: Agent) -> Child:
        assert isinstance(agent.restart, CommandRestart)
        spec = agent.restart
        log = self.config.path(spec.log_file) if spec.log_file else self.run_dir / "logs" / f"{agent.name}.log"
        cwd = self.config.path(spec.cwd) if spec.cwd else (self.config.source.parent if self.config.source else None)
        argv = list(spec.argv)
        if argv[0] == "govheal" and shutil.which("govheal", path=child_env()["PATH"]) is None:
            argv = [sys.executable, "-m", "govheal", *argv[1:]]
        pidfile = self.config.path(agent.process.pidfile) if agent.process and agent.process.pidfile else None
        if agent.health:
            url = agent.health.url

            def ready() -> bool:
                return http_ok(url, timeout=0.5)
        else:
            def ready() -> bool:
                return pidfile is None or pid_running(read_pidfile(pidfile))
        return Child(name=f"agent {agent.name}", argv=argv, log=log, ready=ready,
                     url=display_url(agent.health.url) if agent.health else "", cwd=cwd, env=child_env(spec.env),
                     supervised=False, ready_timeout=agent.start_grace + 10, stop_timeout=spec.stop_timeout,
                     extra_stop=self._stop_successor(pidfile))

    def _stop_successor(self, pidfile: Path | None) -> Callable[[], None]:
        """Stop the process behind the pidfile if it started during this run (a remediator restart)."""
        started = self.started_at

        def stop() -> None:
            pid = read_pidfile(pidfile) if pidfile else None
            if not pid_running(pid):
                return
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() < started:
                    return  # was running before `govheal up`: not ours
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except psutil.TimeoutExpired:
                    proc.kill()
        return stop

    def python_child(self, name: str, command: str, listen: str, ready_path: str, url_path: str,
                     env: dict[str, str] | None = None, secrets: bool = False) -> Child:
        argv = [sys.executable, "-m", "govheal", command, "--listen", listen]
        if self.config.source:
            argv[4:4] = ["--config", str(self.config.source)]
        base = f"http://{listen}"
        return Child(name=name, argv=argv, log=self.run_dir / "logs" / f"{command}.log",
                     ready=lambda: http_ok(base + ready_path), health=lambda: http_ok(base + ready_path),
                     url=base + url_path,
                     cwd=self.config.source.parent if self.config.source else None, env=child_env(env, secrets=secrets))

    # -- the run ------------------------------------------------------------------------------------

    def prepare(self) -> tuple[str, str]:
        """Binaries first: refuse before anything starts."""
        return tools.require("prometheus"), tools.require("alertmanager")

    def run(self) -> int:
        prometheus_bin, alertmanager_bin = self.prepare()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = self._lock()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        ok = False
        try:
            self.say(f"govheal up: config {self.config.source}, run dir {self.run_dir}")
            with contextlib.suppress(Interrupted):
                self._start_all(prometheus_bin, alertmanager_bin)
            if not self.stop_event.is_set():
                self.say("govheal up: running; Ctrl-C stops everything")
                self.supervisor.run_until_stopped()
            ok = True
        finally:
            if self.supervisor.children:  # nothing started: the error alone says why
                self.say("govheal up: stopping" if ok else
                         "govheal up: could not start everything (why: below); stopping what it started")
                self.supervisor.stop_all()
                self.say("govheal up: stopped")
            elif ok:
                self.say("govheal up: stopped")
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            endpoints.forget(self.config, os.getpid())
            self.session.close()
            lock.close()
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop_event.set()

    def _lock(self) -> TextIO:
        f = open(self.run_dir / "up.lock", "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            other = f.read().strip() or "?"
            f.close()
            raise GovhealError(f"another `govheal up` (pid {other}) is running with run dir {self.run_dir}; "
                               "stop it first") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        return f

    def _start(self, child: Child) -> None:
        if self.stop_event.is_set():
            raise Interrupted
        self.supervisor.start(child)
        if self.stop_event.is_set():
            raise Interrupted

    def admin_token(self) -> Path | None:
        """The governance page's admin token for a demo run: made (0600) under the run dir when neither
        ``admin.token_file`` nor ``$GOVHEAL_ADMIN_TOKEN`` gives one, so the page is usable at once."""
        if self.config.admin.token_file or os.environ.get("GOVHEAL_ADMIN_TOKEN"):
            return None
        self._admin_token = ensure_token(self.run_dir / "secrets" / "admin_token")
        return self._admin_token

    def _start_grafana(self, prometheus_url: str, alertmanager_url: str, receiver: str | None) -> str | None:
        """Grafana with the govheal boards when one is installed (Homebrew on macOS); else one line on how
        to get it, and the stack goes on without it. Returns the governance board's URL."""
        install = grafana.find()
        if install is None:
            self.say(grafana.missing_hint())
            return None
        plan = grafana.plan(install, self.run_dir, prometheus_url=prometheus_url, alertmanager_url=alertmanager_url,
                            scrape_interval=chain.scrape_interval(self.profile),
                            receiver_url=f"http://{receiver}" if receiver else "",
                            runbook_base_url=self.config.notifications.runbook_base_url or "")
        child = plan.child(child_env(), ready=lambda: http_ok(plan.health_url))
        child.health = child.ready
        self._start(child)
        return plan.board_url()

    def _start_all(self, prometheus_bin: str, alertmanager_bin: str) -> None:
        cfg = self.config
        to_start, running = self.agent_plan()
        for name in running:
            self.say(f"  agent {name}: already running, left alone")
        for agent in to_start:
            self._start(self.agent_child(agent))

        exporter = self.listen_for("exporter", cfg.listen.exporter)
        self._start(self.python_child("exporter", "exporter", exporter, "/healthz", "/metrics"))

        receiver = None
        if receiver_available():
            receiver = self.listen_for("receiver", cfg.listen.receiver)
            env = {}
            if cfg.receiver.token_file:
                token = ensure_token(cfg.path(cfg.receiver.token_file))
            else:
                token = ensure_token(self.run_dir / "secrets" / "webhook_token")
                env["GOVHEAL_WEBHOOK_TOKEN"] = token.read_text().strip()
            admin_token = self.admin_token()
            if admin_token is not None:
                env["GOVHEAL_ADMIN_TOKEN"] = admin_token.read_text().strip()
            self._start(self.python_child("receiver", "receiver", receiver, "/healthz", "/metrics", env=env,
                                          secrets=True))
        else:
            token = ensure_token(self.run_dir / "secrets" / "webhook_token")
            self.say("  receiver       not built yet (webhook_receiver.cli); alerts stay in Alertmanager")

        members = chain.plan_alertmanagers(self.run_dir)
        planned = chain.Endpoints(exporter=exporter, receiver=receiver, alertmanagers=tuple(m.listen for m in members),
                                  prometheus=f"{LOOPBACK}:{free_port()}")
        am_file = self.run_dir / "alertmanager.yml"
        am_file.write_text(chain.render_alertmanager(f"http://{receiver or cfg.listen.receiver}", token))
        prom_file = self.run_dir / "prometheus.yml"
        prom_file.write_text(chain.render_prometheus(planned, cfg.node, self.profile))
        logs = self.run_dir / "logs"

        for child in chain.alertmanager_children(alertmanager_bin, am_file, members, self.session):
            self._start(child)
        prometheus = chain.prometheus_child(prometheus_bin, prom_file, self.run_dir, planned.prometheus, self.session,
                                            expect_alertmanagers=len(members))
        self.say("  prometheus     starting  (ready once it has discovered Alertmanager: a few seconds)")
        self._start(prometheus)

        am_url = members[0].url
        board = self._start_grafana(prometheus.url, am_url, receiver)
        endpoints.record(cfg, endpoints.RecordedStack(
            pid=os.getpid(), prometheus=prometheus.url, alertmanagers=[m.url for m in members],
            exporter=f"http://{exporter}", receiver=f"http://{receiver}" if receiver else None,
            started_at=self.started_at))
        urls = [f"prometheus={prometheus.url}", f"alertmanager={am_url}", f"exporter=http://{exporter}/metrics"]
        if receiver:
            urls.append(f"receiver=http://{receiver}/metrics")
        if board:
            urls.append(f"grafana={board}")
        self.say("govheal up: ready: " + " ".join(urls))
        if receiver:
            how = (f"log in with the token in {shown(self._admin_token)}" if self._admin_token is not None
                   else "log in with your admin token (admin.token_file / GOVHEAL_ADMIN_TOKEN)")
            self.say(f"  governance     http://{receiver}/ops/governance   ({how})")
        demo = next((a for a in to_start if a.health and isinstance(a.restart, CommandRestart)
                     and "demo-agent" in a.restart.argv), None)
        if demo is not None and demo.health is not None:
            base = demo.health.url.rsplit("/", 1)[0]
            self.say(f"  try: curl -X POST {base}/fault/crash   ({demo.name} exits; govheal restarts it "
                     "within seconds)")
            self.say(f"       tail -f {shown(cfg.path(cfg.telemetry_log))}   (what govheal decided and did)")
            self.say(f"       govheal up logs: {shown(logs)}/   alerts: {am_url}/#/alerts")


def shown(path: Path) -> str:
    """A path as the user can paste it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def receiver_available() -> bool:
    try:
        return importlib.util.find_spec("webhook_receiver.cli") is not None
    except ModuleNotFoundError:
        return False
