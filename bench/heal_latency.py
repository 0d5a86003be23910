"""Heal latency side by side: fault → a new PID answers /health, for govheal, supervisord and Monit.

One agent program for all three (``python -m govheal.demo_agent``: a small HTTP agent with /health,
the same cold start whoever starts it), the same five faults, injected at random phases:

- ``crash``: the agent exits 1 (``POST /fault/crash?delay=0``);
- ``sigkill``: SIGKILL;
- ``sigstop``: SIGSTOP (hung: alive, answers nothing);
- ``hang``: alive and running, but every request waits forever (``POST /fault/hang``);
- ``unhealthy``: /health answers 503.

Tools, each with its own config and state in a temporary directory, loopback only:

- **govheal**: its full real chain, ``govheal up`` (exporter, Prometheus 2.42, Alertmanager 0.25,
  receiver + remediator, command strategy) with the shipped single-host profile and the shipped demo
  fleet's detection settings (examples/govheal.yaml). Policy: ``healthy_reset: 2s`` so each injected
  fault starts a fresh restart streak (the benchmark injects one every few seconds per agent; with the
  shipped 10 minutes the backoff and the budget would act on the benchmark's own faults).
- **supervisord** (Debian's ``supervisor``, defaults; unix socket in the temp dir).
- **Monit** (Debian's ``monit``, ``set daemon 1``, HTTP check of /health with its smallest timeout,
  1 s; no httpd): restarts on a failed check or a missing process. One Monit per agent (see
  :class:`Monit`), so that one agent's fault never delays another's check.

Six agents per tool run their faults concurrently, each agent one fault at a time, staggered: after an
agent is healthy again it settles for ``SETTLE`` seconds plus a random phase before the next fault. A
fault not healed within ``WATCH`` seconds is a failure (the benchmark then recovers the agent itself).
Restarts per fault = agent starts (one line each in the agent's own log) between the fault and the
next one. The cost of govheal's stack (exporter, Prometheus, Alertmanager, receiver CPU seconds per
second, TSDB samples per day) is measured on the 6 idle agents before the faults, for both profiles.

Writes the table to stdout and everything (every sample) as JSON to ``$GOVHEAL_BENCH_JSON`` (default
``.bench/heal_latency.json``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from govheal import resources
from govheal.client import Prometheus, new_session
from govheal.seams import load_config

REPO = Path(__file__).resolve().parent.parent
FAULTS = ("crash", "sigkill", "sigstop", "hang", "unhealthy")
FAULT_NAMES = {"crash": "crash (exit 1)", "sigkill": "SIGKILL", "sigstop": "hang (SIGSTOP)",
               "hang": "alive, not answering", "unhealthy": "health answers 503"}
AGENTS = 6
SETTLE = 2.5  # seconds healthy before the next fault (> monit's 2 s start timeout, > govheal's verify)
PHASE = 1.0  # + uniform [0, PHASE): the fault's phase against scrape, evaluation, probe and monit cycles
WATCH = 8.0  # a fault not healed by then is a failure
POLL = 0.01  # the watcher's period: the pidfile until a new PID shows, then /health
COST_WINDOW = 15.0  # seconds of idle fleet for the CPU and sample-rate figures
START_LINE = re.compile(r"^demo agent \S+ pid (\d+) on ", re.M)


# --------------------------------------------------------------------------------------------------
# The agent and its faults


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Agent:
    name: str
    port: int
    pidfile: Path
    log: Path

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "govheal.demo_agent", "--name", self.name, "--port", str(self.port),
                "--pidfile", str(self.pidfile)]

    def health(self, timeout: float = 0.25) -> tuple[int, int | None] | None:
        """(status, pid from the body) or None when nothing answered in time."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            body = resp.read()
            try:
                pid = json.loads(body).get("pid")
            except ValueError:
                pid = None
            return resp.status, pid
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def post(self, path: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn.request("POST", path)
            conn.getresponse().read()
        conn.close()

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def starts(self) -> int:
        try:
            return len(START_LINE.findall(self.log.read_text(errors="replace")))
        except OSError:
            return 0


def inject(fault: str, agent: Agent, pid: int) -> None:
    if fault == "crash":
        agent.post("/fault/crash?code=1&delay=0")
    elif fault == "sigkill":
        os.kill(pid, signal.SIGKILL)
    elif fault == "sigstop":
        os.kill(pid, signal.SIGSTOP)
    elif fault == "hang":
        agent.post("/fault/hang")
    elif fault == "unhealthy":
        agent.post("/fault/unhealthy")


def recover(fault: str, agent: Agent, pid: int) -> None:
    """After a failure: put the agent back the way the tool could not (or left it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
    agent.post("/fault/recover")


def cold_start(tmp: Path, n: int) -> list[float]:
    """The agent program alone: spawn → first 200 (what every tool pays on every restart)."""
    out = []
    for i in range(n):
        a = Agent(f"cold{i}", free_port(), tmp / f"cold{i}.pid", tmp / f"cold{i}.log")
        t0 = time.monotonic()
        proc = subprocess.Popen(a.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        OWN_CHILDREN.add(proc.pid)
        try:
            while a.health(timeout=0.5) is None:
                time.sleep(0.002)
            out.append(time.monotonic() - t0)
        finally:
            proc.kill()
            proc.wait()
    return out


# --------------------------------------------------------------------------------------------------
# Episodes


@dataclass
class Sample:
    tool: str
    agent: str
    fault: str
    latency: float | None  # None: not healed within WATCH
    restarts: int
    injected_at: float  # Unix time


def episode(tool: str, agent: Agent, fault: str, rng: random.Random) -> Sample:
    """Wait until healthy + settled, inject at a random phase, time until a new PID answers 200."""
    deadline = time.monotonic() + 60
    while (h := agent.health()) is None or h[0] != 200:
        if time.monotonic() > deadline:
            return Sample(tool, agent.name, fault, None, 0, time.time())
        time.sleep(0.05)
    time.sleep(SETTLE + rng.uniform(0, PHASE))
    h = agent.health()
    if h is None or h[0] != 200 or h[1] is None:
        return Sample(tool, agent.name, fault, None, 0, time.time())
    old = h[1]
    starts = agent.starts()
    at = time.time()
    t0 = time.monotonic()
    inject(fault, agent, old)
    latency = None
    while time.monotonic() - t0 < WATCH:
        # cheap until a new process exists (its pidfile names it): polling /health itself every 10 ms
        # on six agents was ~600 requests/s of load on the two cores the tools need to heal
        if agent.pid() not in (None, old):
            h = agent.health()
            if h is not None and h[0] == 200 and h[1] not in (None, old):
                latency = time.monotonic() - t0
                break
        time.sleep(POLL)
    if latency is None:
        recover(fault, agent, old)
    time.sleep(SETTLE)  # a late second restart would show in the start count
    return Sample(tool, agent.name, fault, latency, agent.starts() - starts, at)


def plan(n: int, agents: list[Agent], rng: random.Random) -> dict[str, list[str]]:
    """n of each fault, shuffled and dealt round-robin to the agents."""
    faults = [f for f in FAULTS for _ in range(n)]
    rng.shuffle(faults)
    out: dict[str, list[str]] = {a.name: [] for a in agents}
    for i, f in enumerate(faults):
        out[agents[i % len(agents)].name].append(f)
    return out


def drive(tool: str, agents: list[Agent], n: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    work = plan(n, agents, rng)
    samples: list[Sample] = []
    lock = threading.Lock()

    def run(a: Agent, faults: list[str], r: random.Random) -> None:
        time.sleep(r.uniform(0, SETTLE))  # stagger the agents
        for f in faults:
            s = episode(tool, a, f, r)
            with lock:
                samples.append(s)

    threads = [threading.Thread(target=run, args=(a, work[a.name], random.Random(seed * 100 + i)), daemon=True)
               for i, a in enumerate(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


# --------------------------------------------------------------------------------------------------
# The tools


def make_agents(tmp: Path, prefix: str) -> list[Agent]:
    return [Agent(f"{prefix}{i}", free_port(), tmp / "run" / f"{prefix}{i}.pid", tmp / "logs" / f"{prefix}{i}.log")
            for i in range(AGENTS)]


def wait_all_healthy(agents: list[Agent], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for a in agents:
        while (h := a.health()) is None or h[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent {a.name} did not become healthy; see {a.log}")
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_agents(agents: list[Agent]) -> None:
    """Leave nothing behind (a tool that was stopped mid-restart may have left one running)."""
    for a in agents:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, TypeError):
                cmd = proc.info["cmdline"] or []
                if "govheal.demo_agent" in cmd and str(a.pidfile) in cmd:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()


class Govheal:
    name = "govheal"

    def __init__(self, tmp: Path, profile: str = "single-host") -> None:
        self.tmp, self.profile = tmp, profile
        self.agents = make_agents(tmp, "G" if profile == "single-host" else "F")
        self.proc: subprocess.Popen | None = None
        self.urls: dict[str, str] = {}

    def config_text(self) -> str:
        shipped = load_config(resources.example_config())
        e, h = shipped.exporter, shipped.agents[0].health
        assert h is not None
        lines = [
            "node: bench-node", "state_dir: state", "telemetry_log: telemetry/autoheal.log",
            f"listen: {{exporter: '127.0.0.1:{free_port()}', receiver: '127.0.0.1:{free_port()}'}}",
            f"exporter: {{process_interval: {e.process_interval}, probe_interval: {e.probe_interval}, "
            f"consecutive_failures: {e.consecutive_failures}}}",
            "remediation: {healthy_reset: 2s}",
            "agents:"]
        for a in self.agents:
            lines += [f"  - name: {a.name}", f"    process: {{pidfile: {json.dumps(str(a.pidfile))}}}",
                      f"    health: {{url: 'http://127.0.0.1:{a.port}/health', timeout: {h.timeout}}}",
                      "    start_grace: 5s",
                      f"    restart: {{strategy: command, argv: {json.dumps(a.argv())}, log_file: "
                      f"{json.dumps(str(a.log))}}}"]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        cfg = self.tmp / "govheal.yaml"
        cfg.write_text(self.config_text())
        self.log = self.tmp / "up.out"
        out = open(self.log, "w")  # noqa: SIM115 - the child's stdout for its lifetime
        self.proc = subprocess.Popen([sys.executable, "-m", "govheal", "up", "--config", str(cfg),
                                      "--profile", self.profile], stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.tmp, start_new_session=True)
        OWN_CHILDREN.add(self.proc.pid)
        out.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m = re.search(r"^govheal up: ready: (.*)$", self.log.read_text(), re.M)
            if m:
                self.urls = dict(re.findall(r"(\w+)=(\S+)", m.group(1)))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"govheal up did not get ready: {self.log.read_text()[-2000:]}")
        if not self.urls:
            raise RuntimeError(f"govheal up exited: {self.log.read_text()[-2000:]}")
        wait_all_healthy(self.agents)

    def components(self) -> dict[str, psutil.Process]:
        out: dict[str, psutil.Process] = {}
        assert self.proc is not None
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = child.cmdline()
                base = os.path.basename(cmd[0]) if cmd else ""
                if base == "prometheus":
                    out["prometheus"] = child
                elif base in ("prometheus-alertmanager", "alertmanager"):
                    out["alertmanager"] = child
                elif "govheal" in cmd and "exporter" in cmd:
                    out["exporter"] = child
                elif "govheal" in cmd and "receiver" in cmd:
                    out["receiver"] = child
        return out

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=30)
        kill_agents(self.agents)


class Supervisord:
    name = "supervisord"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.agents = make_agents(tmp, "S")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("supervisord")
        if binary is None:
            raise RuntimeError("supervisord not installed: make bench installs it (apt-get install supervisor)")
        conf = [
            "[unix_http_server]", f"file={self.tmp / 'supervisor.sock'}", "chmod=0700",
            "[supervisord]", f"logfile={self.tmp / 'supervisord.log'}", f"pidfile={self.tmp / 'supervisord.pid'}",
            f"childlogdir={self.tmp}", "nodaemon=true", "loglevel=info",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]", f"serverurl=unix://{self.tmp / 'supervisor.sock'}",
        ]
        for a in self.agents:
            a.log.parent.mkdir(parents=True, exist_ok=True)
            conf += [f"[program:{a.name}]", f"command={' '.join(a.argv())}", "autorestart=true",
                     f"stdout_logfile={a.log}", "redirect_stderr=true", "stopsignal=TERM"]
        path = self.tmp / "supervisord.conf"
        path.write_text("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([binary, "-c", str(path)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.tmp, start_new_session=True)
        OWN_CHILDREN.add(self.proc.pid)
        wait_all_healthy(self.agents)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        kill_agents(self.agents)


class Monit:
    """One Monit per agent: Monit checks its services one after another in one cycle, and a hung
    agent's 1 s check (or a restart, which waits for the pidfile) holds up every other service's check
    in that cycle. One instance per agent measures Monit at its best, as measured.md did."""

    name = "monit"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.agents = make_agents(tmp, "M")
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        binary = shutil.which("monit")
        if binary is None:
            raise RuntimeError("monit not installed: make bench installs it (apt-get install monit)")
        for a in self.agents:
            t = self.tmp / a.name
            t.mkdir(parents=True, exist_ok=True)
            a.log.parent.mkdir(parents=True, exist_ok=True)
            # monit waits for a start program to return: start the agent in the background (it writes the pidfile)
            start = f"/bin/sh -c '{' '.join(a.argv())} >> {a.log} 2>&1 &'"
            # the same stop as govheal's command strategy: TERM, and CONT so that a stopped process acts on it
            stop = f"/bin/sh -c 'p=$(cat {a.pidfile}); kill -TERM $p; kill -CONT $p'"
            conf = [
                "set daemon 1", f"set logfile {t / 'monit.log'}", f"set idfile {t / 'monit.id'}",
                f"set statefile {t / 'monit.state'}", f"set pidfile {t / 'monit.pid'}",
                # no `set httpd`: monit's HTTP interface stays off
                f"check process {a.name} with pidfile {a.pidfile}",
                f'  start program = "{start}" with timeout 2 seconds',
                f'  stop program = "{stop}" with timeout 5 seconds',
                f'  if failed host 127.0.0.1 port {a.port} protocol http request "/health" '
                "with timeout 1 seconds then restart",
            ]
            path = t / "monitrc"
            path.write_text("\n".join(conf) + "\n")
            path.chmod(0o600)  # monit refuses a control file others can read
            proc = subprocess.Popen([binary, "-I", "-c", str(path)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, cwd=t, start_new_session=True)
            OWN_CHILDREN.add(proc.pid)
            self.procs.append(proc)
        wait_all_healthy(self.agents)

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        kill_agents(self.agents)


class Reaper:
    """Make this process the child subreaper and reap orphans at once (Linux).

    Monit's start program puts the agent in the background, so the agent is an orphan; PID 1 on these
    machines reaps orphans 1.4-1.9 s late (measured.md) and Monit would see a crashed agent as a zombie
    until then. Popen children of this process are left to their own ``wait()``.
    """

    def __init__(self, own: Callable[[], set[int]]) -> None:
        self.own = own
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Reaper:
        if sys.platform.startswith("linux"):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(36, 1, 0, 0, 0) == 0:  # PR_SET_CHILD_SUBREAPER
                self.thread = threading.Thread(target=self._loop, daemon=True)
                self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(0.005):
            while True:
                try:
                    info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    break
                if info is None or info.si_pid in self.own():
                    break
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info.si_pid, 0)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=2)


OWN_CHILDREN: set[int] = set()  # Popen children of the benchmark: the reaper leaves them alone


# --------------------------------------------------------------------------------------------------
# Cost of govheal's stack


def tsdb_samples(prometheus_url: str) -> float:
    """Samples appended to the head block so far, from Prometheus's own /metrics (its scrape endpoint, not
    its API: Prometheus does not scrape itself here, so the counter is not queryable)."""
    conn = http.client.HTTPConnection(prometheus_url.removeprefix("http://"), timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("prometheus_tsdb_head_samples_appended_total"))


def prom_query(prometheus_url: str, expr: str) -> list[tuple[dict, float]]:
    return [(dict(x.labels), x.value) for x in Prometheus(prometheus_url, new_session()).query(expr)]


def cost(g: Govheal, seconds: float) -> dict[str, float]:
    """CPU seconds per second of each stack component and of the agents, and TSDB samples per day."""
    procs = g.components()
    agents = []
    for a in g.agents:
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            agents.append(psutil.Process(int(a.pidfile.read_text())))

    def cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    before = {k: cpu(p) for k, p in procs.items()}
    agents_before = sum(cpu(p) for p in agents)
    samples_before = tsdb_samples(g.urls["prometheus"])
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    out = {f"{k}_cpu_per_s": (cpu(p) - before[k]) / elapsed for k, p in procs.items()}
    out["agents_cpu_per_s"] = (sum(cpu(p) for p in agents) - agents_before) / elapsed
    out["tsdb_samples_per_day"] = (tsdb_samples(g.urls["prometheus"]) - samples_before) / elapsed * 86400
    out["window_s"] = elapsed
    w = max(2, int(elapsed) - 1)
    for labels, value in prom_query(g.urls["prometheus"],
                                    f"sum by (job) (sum_over_time(scrape_samples_scraped[{w}s])) / {w}"):
        out[f"samples_per_day_job_{labels.get('job', '?')}"] = value * 86400
    return out


# --------------------------------------------------------------------------------------------------
# Statistics and the table


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[rank]


@dataclass
class Cell:
    n: int
    healed: int
    failures: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    restarts: list[int] = field(default_factory=list)

    @property
    def restarts_text(self) -> str:
        counts = {r: self.restarts.count(r) for r in sorted(set(self.restarts))}
        return ", ".join(f"{k}x{v}" for k, v in counts.items())


def cell(samples: list[Sample]) -> Cell:
    lat = [s.latency for s in samples if s.latency is not None]
    stats = [percentile(lat, q) for q in (0.5, 0.9, 0.99)] + [max(lat)] if lat else [None] * 4
    return Cell(len(samples), len(lat), len(samples) - len(lat), *stats,
                restarts=[s.restarts for s in samples if s.latency is not None])


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def table(cells: dict[str, dict[str, Cell]], tools: list[str]) -> str:
    rows = ["| fault | tool | n | healed | failures | p50 s | p90 s | p99 s | max s | restarts per healed fault |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for f in FAULTS:
        for t in tools:
            c = cells[t][f]
            rows.append(f"| {FAULT_NAMES[f]} | {t} | {c.n} | {c.healed} | {c.failures} | {fmt(c.p50)} | "
                        f"{fmt(c.p90)} | {fmt(c.p99)} | {fmt(c.max)} | {c.restarts_text or '-'} |")
    rows += ["", "| fault | govheal ÷ supervisord (p50) | govheal ÷ monit (p50) | govheal ÷ monit (p99) |",
             "|---|---|---|---|"]
    for f in FAULTS:
        g = cells["govheal"][f]

        def ratio(peer: str, attr: str, g: Cell = g, f: str = f) -> str:
            p = cells.get(peer, {}).get(f)
            a, b = getattr(g, attr), getattr(p, attr) if p else None
            return "-" if a is None or b is None else f"{a / b:.2f}x"

        rows.append(f"| {FAULT_NAMES[f]} | {ratio('supervisord', 'p50')} | {ratio('monit', 'p50')} | "
                    f"{ratio('monit', 'p99')} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------


def run(quick: bool) -> str:
    n = 4 if quick else 20
    started = time.time()
    report: dict = {"n_per_fault": n, "agents_per_tool": AGENTS, "settle_s": SETTLE, "phase_s": PHASE,
                    "watch_s": WATCH, "started": started, "load": {}, "samples": [], "cost": {}}
    lines: list[str] = []
    with Reaper(lambda: OWN_CHILDREN), tempfile.TemporaryDirectory(prefix="govheal-heal-") as tmpdir:
        tmp = Path(tmpdir)
        cold = cold_start(tmp, 5 if quick else 10)
        report["cold_start_s"] = cold
        tools: list[tuple[str, Callable[[Path], object]]] = [
            ("govheal", lambda d: Govheal(d)), ("supervisord", Supervisord), ("monit", Monit)]
        for seed, (name, make) in enumerate(tools, start=1):
            d = tmp / name
            d.mkdir()
            tool = make(d)
            report["load"][name] = {"before": os.getloadavg()}
            try:
                tool.start()  # type: ignore[attr-defined]
                if name == "govheal":
                    report["cost"]["single-host"] = cost(tool, COST_WINDOW)  # type: ignore[arg-type]
                report["samples"] += [asdict(s) for s in drive(name, tool.agents, n, seed)]  # type: ignore[attr-defined]
            finally:
                tool.stop()  # type: ignore[attr-defined]
            report["load"][name]["after"] = os.getloadavg()
        d = tmp / "fleet"
        d.mkdir()
        fleet = Govheal(d, profile="fleet")
        try:
            fleet.start()
            report["cost"]["fleet"] = cost(fleet, COST_WINDOW)
        finally:
            fleet.stop()
    report["finished"] = time.time()
    names = [t for t, _ in tools]
    samples = [Sample(**s) for s in report["samples"]]
    cells = {t: {f: cell([s for s in samples if s.tool == t and s.fault == f]) for f in FAULTS} for t in names}
    report["cells"] = {t: {f: asdict(c) for f, c in fs.items()} for t, fs in cells.items()}
    out = Path(os.environ.get("GOVHEAL_BENCH_JSON", REPO / ".bench" / "heal_latency.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))

    lines.append(table(cells, names))
    lines.append("")
    lines.append(f"agent cold start (python -m govheal.demo_agent, spawn → first 200): p50 "
                 f"{percentile(cold, 0.5) * 1000:.0f} ms, max {max(cold) * 1000:.0f} ms (n={len(cold)})")
    lines.append("")
    lines.append("| govheal stack, 6 idle agents | exporter CPU/s | Prometheus CPU/s | Alertmanager CPU/s | "
                 "receiver CPU/s | agents CPU/s (all 6) | TSDB samples/day |")
    lines.append("|---|---|---|---|---|---|---|")
    for prof, c in report["cost"].items():
        ms = {k: f"{c.get(f'{k}_cpu_per_s', 0) * 1000:.1f} ms"
              for k in ("exporter", "prometheus", "alertmanager", "receiver", "agents")}
        lines.append(f"| {prof} profile | {ms['exporter']} | {ms['prometheus']} | {ms['alertmanager']} | "
                     f"{ms['receiver']} | {ms['agents']} | {c['tsdb_samples_per_day'] / 1e6:.1f} M |")
    for prof, c in report["cost"].items():
        jobs = ", ".join(f"{k.removeprefix('samples_per_day_job_')} {v / 1e6:.1f} M" for k, v in sorted(c.items())
                         if k.startswith("samples_per_day_job_"))
        lines.append(f"TSDB samples/day by scrape job, {prof}: {jobs}")
    loads = ", ".join(f"{t} {v['before'][0]:.1f}→{v['after'][0]:.1f}" for t, v in report["load"].items())
    lines.append("")
    lines.append(f"load average (1 min) before→after each tool: {loads}; run took "
                 f"{(report['finished'] - started) / 60:.1f} min; JSON: {out}")
    return "\n".join(lines)
