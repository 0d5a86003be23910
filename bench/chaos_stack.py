"""The stack ``make chaos`` runs against: ``govheal up`` on the demo fleet's shape, for real.

Six demo agents (the demo fleet's names and dependencies) on free loopback ports, each with the remote
endpoint ``Standby`` as its fallback (a seventh demo agent this harness runs: a failover marks it serving),
the fake Discord and Telegram configured as channels (a webhook URL file, a bot token file, ``api_url``:
the real limits apply), and the state dir on a small tmpfs of its own, so the disk can be filled. The run
dir, the logs and the audit log are on the ordinary disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from govheal.procs import child_env
from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from govheal.testing.support import PYTHON, DemoAgent, free_port, http_get

AGENTS = {"GG": [], "GC": [], "Mary": ["GG"], "Paula": ["GG"], "CLS": [], "Hybrid": ["GC"]}
CHAT = "424242"
# chaos puts 50 faults on each agent in 15 minutes: a restart every ~10 s is its normal day. min_uptime 2 s
# forgives a restart whose agent then stayed healthy until the next fault (the lanes wait 3 s after a heal),
# so only crash loops spend the budget of 3 (the shipped 1 min would count every chaos restart).
# the demo fleet's detection (examples/govheal.yaml): a process look and a probe every 100 ms, 3 failed
# probes in a row with a 200 ms timeout
DETECTION = """exporter:
  process_interval: 100ms
  probe_interval: 100ms
  consecutive_failures: 3
"""
PROBE_TIMEOUT = "200ms"
POLICY = """remediation:
  verify_successes: 3
  verify_interval: 200ms
  backoff_initial: 500ms
  backoff_max: 2s
  budget: 3
  budget_window: 10m
  min_uptime: 2s
  cooldown: 10m
  healthy_reset: 10m
"""


@dataclass
class Stack:
    base: Path
    tmpfs_mb: int = 64
    profile: str = "single-host"

    def __post_init__(self) -> None:
        self.state = self.base / "state"
        self.config = self.base / "govheal.yaml"
        self.audit_log = self.base / "telemetry" / "autoheal.log"
        self.up_log = self.base / "up.log"
        self.poison = self.base / "poison"
        self.discord = FakeDiscord()
        self.telegram = FakeTelegram()
        self.agents = {n: DemoAgent(n, free_port(), self.base / "run" / f"{n}.pid", self.base / "logs" / f"{n}.log",
                                    extra=["--fail-if-exists", str(self.poison / n)]) for n in AGENTS}
        self.standby = DemoAgent("Standby", free_port(), self.base / "run" / "Standby.pid",
                                 self.base / "logs" / "Standby.log")
        self.up: subprocess.Popen | None = None
        self.tmpfs = ""  # "tmpfs 64 MiB" when mounted, else why not
        self.receiver_port = free_port()
        self.mono_offset = time.time() - time.monotonic()  # the fakes stamp with monotonic time

    # -- setup --------------------------------------------------------------------------------------
    def mount(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_mb}m,mode=0700", "tmpfs",
                               str(self.state)], capture_output=True, text=True, check=False)
        self.tmpfs = f"tmpfs {self.tmpfs_mb} MiB" if done.returncode == 0 else \
            f"not mounted ({(done.stderr or done.stdout).strip()[:120]}): the disk-full fault is skipped"

    def write_config(self) -> None:
        secrets = self.base / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        for name, value in (("discord_url", self.discord.url), ("telegram_token", self.telegram.token)):
            path = secrets / name
            path.write_text(value + "\n")
            os.chmod(path, 0o600)
        self.poison.mkdir(parents=True, exist_ok=True)
        lines = ["node: chaos-node", f"state_dir: {self.state}", f"telemetry_log: {self.audit_log}",
                 f"listen: {{exporter: 127.0.0.1:{free_port()}, receiver: 127.0.0.1:{self.receiver_port}}}",
                 DETECTION, POLICY,
                 f"receiver: {{token_file: {secrets / 'webhook_token'}}}",
                 "notifications:", "  channels:",
                 f"    discord: {{type: discord, webhook_url_file: {secrets / 'discord_url'}}}",
                 f"    telegram: {{type: telegram, bot_token_file: {secrets / 'telegram_token'}, chat_id: '{CHAT}',"
                 f" api_url: '{self.telegram.api_url}'}}",
                 "agents:"]
        for name, deps in AGENTS.items():
            a = self.agents[name]
            lines += [f"  - name: {name}", "    role: demo", f"    process: {{pidfile: {json.dumps(str(a.pidfile))}}}",
                      f"    health: {{url: {json.dumps(a.health_url)}, timeout: {PROBE_TIMEOUT}}}",
                      "    start_grace: 5s",
                      "    restart:", "      strategy: command", f"      argv: {json.dumps(a.argv())}",
                      f"      log_file: {json.dumps(str(a.log))}", "      stop_timeout: 2s",
                      "    fallback: {agent: Standby, note: the chaos standby}"]
            if deps:
                lines.append(f"    depends_on: {json.dumps(deps)}")
        lines += ["  - name: Standby", "    role: standby", f"    health: {{url: {json.dumps(self.standby.health_url)},"
                  " timeout: 500ms}"]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, out=print) -> Stack:
        self.base.mkdir(parents=True, exist_ok=True)
        self.mount()
        self.discord.start()
        self.telegram.start()
        self.write_config()
        self.standby.start()
        with open(self.up_log, "ab") as log:
            self.up = subprocess.Popen([PYTHON, "-m", "govheal", "up", "--config", str(self.config), "--profile",
                                        self.profile], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.base, env=child_env(), start_new_session=True)
        deadline = time.monotonic() + 180
        while "govheal up: ready" not in self.up_log.read_text(errors="replace"):
            if self.up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"govheal up did not get ready; see {self.up_log}:\n"
                                   + self.up_log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        for a in self.agents.values():
            a.wait_healthy(timeout=30)
        out(f"stack ready: {self.base} (state dir: {self.tmpfs})")
        return self

    # -- the components -------------------------------------------------------------------------------
    def component(self, kind: str) -> psutil.Process | None:
        """The running receiver, exporter, alertmanager or prometheus child of ``govheal up``."""
        if self.up is None:
            return None
        try:
            children = psutil.Process(self.up.pid).children()
        except psutil.Error:
            return None
        for proc in children:
            with contextlib.suppress(psutil.Error):
                argv = proc.cmdline()
                name = Path(argv[0]).name if argv else ""
                if kind in ("receiver", "exporter") and "govheal" in argv and kind in argv:
                    return proc
                if kind == "alertmanager" and "alertmanager" in name:
                    return proc
                if kind == "prometheus" and name == "prometheus":
                    return proc
        return None

    def receiver_ready(self) -> bool:
        try:
            status, _ = http_get(f"http://127.0.0.1:{self.receiver_port}/readyz", timeout=0.4)
        except OSError:  # not listening yet
            return False
        return status == 200

    def signal(self, kind: str, sig: int) -> int | None:
        proc = self.component(kind)
        if proc is None:
            return None
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)
            return proc.pid
        return None

    # -- what happened --------------------------------------------------------------------------------
    def audit(self) -> list[dict]:
        try:
            text = self.audit_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.state / 'govheal.sqlite3'}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def outbox_queued(self) -> int:
        try:
            return int(self.query("SELECT COUNT(*) FROM outbox_items WHERE state = 'queued'")[0][0])
        except sqlite3.Error:
            return -1

    def healthy(self, name: str) -> tuple[bool, int | None]:
        a = self.agents[name]
        try:
            status, _ = http_get(a.health_url, timeout=0.4)
        except OSError:
            status = 0
        return status == 200, a.pid

    # -- teardown -------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.up is not None and self.up.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.up.pid, signal.SIGINT)
            try:
                self.up.wait(timeout=90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.up.pid, signal.SIGKILL)
                self.up.wait(timeout=10)
        for a in [*self.agents.values(), self.standby]:
            pid = a.pid
            with contextlib.suppress(OSError, psutil.Error):
                if pid and str(a.pidfile) in " ".join(psutil.Process(pid).cmdline()):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
            a.stop()
        for fake in (self.discord, self.telegram):
            with contextlib.suppress(Exception):
                fake.stop()
        if self.tmpfs.startswith("tmpfs"):
            subprocess.run(["umount", "-l", str(self.state)], capture_output=True, check=False)


def cpu_seconds(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def python_version() -> str:
    return sys.version.split()[0]
