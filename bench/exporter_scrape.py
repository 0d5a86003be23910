"""Exporter scrape cost: govheal exporter vs process-exporter + blackbox_exporter on the same fleet.

The fleet: one host process forks one child per agent; each child is a single-threaded loopback HTTP
server answering ``/health`` with 200, has its own PID, pidfile and ``comm`` name (so process-exporter
can give it its own group), and can be hung alone with SIGSTOP. Children share the parent's pages
copy-on-write, so 200 agents cost little memory.

Per fleet size (6, 50, 200) and state (all healthy, 20 % hung): wall time p50/p99 of sequential
``/metrics`` scrapes and the exporter's CPU per scrape (psutil cpu_times before/after); for the peers,
one process-exporter scrape plus one blackbox ``/probe`` per endpoint, all in parallel as Prometheus
would send them, measured the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

PROBE_TIMEOUT = 0.5
HUNG_SHARE = 0.2
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n"
            b"Connection: close\r\n\r\n" + b'{"status": "ok"}')


# --- the fleet host (runs as `python -m bench.exporter_scrape --fleet DIR N`) --------------------

def _agent(index: int, run_dir: Path) -> None:
    name = f"ghb-{index:04d}"
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: the comm process-exporter sees
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    (run_dir / f"{name}.port").write_text(str(s.getsockname()[1]))
    (run_dir / f"{name}.pid").write_text(str(os.getpid()))
    while True:
        conn, _ = s.accept()
        try:
            conn.settimeout(2)
            conn.recv(4096)
            conn.sendall(RESPONSE)
        except OSError:
            pass
        finally:
            conn.close()


def _host(run_dir: Path, count: int) -> None:
    for i in range(count):
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                _agent(i, run_dir)
            finally:
                os._exit(0)
    signal.signal(signal.SIGTERM, lambda *a: os.killpg(0, signal.SIGKILL))
    while True:
        signal.pause()


@dataclass
class Fleet:
    names: list[str]
    pids: dict[str, int]
    ports: dict[str, int]
    run_dir: Path
    host: subprocess.Popen


@contextlib.contextmanager
def fleet(tmp: Path, count: int) -> Iterator[Fleet]:
    run_dir = tmp / "run"
    run_dir.mkdir()
    host = subprocess.Popen([sys.executable, "-m", "bench.exporter_scrape", "--fleet", str(run_dir), str(count)],
                            start_new_session=True, cwd=Path(__file__).resolve().parent.parent)
    names = [f"ghb-{i:04d}" for i in range(count)]
    try:
        deadline = time.monotonic() + 60
        while not all((run_dir / f"{n}.pid").exists() for n in names):
            if time.monotonic() > deadline or host.poll() is not None:
                raise RuntimeError("the bench fleet did not start")
            time.sleep(0.05)
        time.sleep(0.1)
        pids = {n: int((run_dir / f"{n}.pid").read_text()) for n in names}
        ports = {n: int((run_dir / f"{n}.port").read_text()) for n in names}
        yield Fleet(names, pids, ports, run_dir, host)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.pid, signal.SIGCONT)
            os.killpg(host.pid, signal.SIGKILL)
        host.wait()


# --- the exporters ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            get(port, path)
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path}")


def get(port: int, path: str, timeout: float = 30) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status}")
        return body
    finally:
        conn.close()


def start(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def govheal_config(f: Fleet, workers: int) -> str:
    lines = ["node: bench", f"exporter: {{probe_workers: {workers}}}", "agents:"]
    for n in f.names:
        url = f"http://127.0.0.1:{f.ports[n]}/health"
        lines += [f"  - name: {n}", f"    process: {{pidfile: {json.dumps(str(f.run_dir / (n + '.pid')))}}}",
                  f'    health: {{url: "{url}", timeout: {int(PROBE_TIMEOUT * 1000)}ms}}']
    return "\n".join(lines) + "\n"


def process_exporter_config(f: Fleet) -> str:
    lines = ["process_names:"]
    for n in f.names:
        lines += ['  - name: "{{.Comm}}"', "    comm:", f"    - {n}"]
    return "\n".join(lines) + "\n"


BLACKBOX_CONFIG = f"""modules:
  http_2xx:
    prober: http
    timeout: {int(PROBE_TIMEOUT * 1000)}ms
    http:
      preferred_ip_protocol: ip4
"""


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


@dataclass
class Result:
    walls: list[float]
    cpu_per_scrape: float
    size: int

    def row(self, agents: int, hung: int, tool: str) -> str:
        walls = sorted(self.walls)
        p50 = statistics.median(walls)
        p99 = walls[min(len(walls) - 1, round(0.99 * (len(walls) - 1)))]
        return (f"| {agents} | {hung} | {tool} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | "
                f"{self.cpu_per_scrape * 1000:.1f} | {self.size / 1024:.0f} |")


def measure(round_fn: Callable[[], int], pids: list[int], rounds: int, warmup: int = 2) -> Result:
    for _ in range(warmup):
        round_fn()
    before = sum(cpu(p) for p in pids)
    walls, size = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        size = round_fn()
        walls.append(time.perf_counter() - t0)
    return Result(walls, (sum(cpu(p) for p in pids) - before) / rounds, size)


def run_size(count: int, rounds: int, tmp: Path) -> list[str]:
    rows = []
    with fleet(tmp, count) as f:
        gh_port, pe_port, bb_port = free_port(), free_port(), free_port()
        (tmp / "govheal.yaml").write_text(govheal_config(f, workers=max(32, count // 2)))
        (tmp / "pe.yml").write_text(process_exporter_config(f))
        (tmp / "bb.yml").write_text(BLACKBOX_CONFIG)
        procs = [
            start([sys.executable, "-m", "govheal", "exporter", "--config", str(tmp / "govheal.yaml"),
                   "--listen", f"127.0.0.1:{gh_port}"], tmp / "govheal.log"),
            start([shutil.which("prometheus-process-exporter") or "prometheus-process-exporter",
                   "-config.path", str(tmp / "pe.yml"), "-web.listen-address", f"127.0.0.1:{pe_port}"],
                  tmp / "pe.log"),
            start([shutil.which("prometheus-blackbox-exporter") or "prometheus-blackbox-exporter",
                   f"--config.file={tmp / 'bb.yml'}", f"--web.listen-address=127.0.0.1:{bb_port}"], tmp / "bb.log"),
        ]
        pool = ThreadPoolExecutor(max_workers=count)
        try:
            for port, path in ((gh_port, "/metrics"), (pe_port, "/metrics"), (bb_port, "/metrics")):
                wait_http(port, path)
            targets = [f"/probe?module=http_2xx&target=http://127.0.0.1:{f.ports[n]}/health" for n in f.names]

            def blackbox_round() -> int:
                return sum(len(b) for b in pool.map(lambda t: get(bb_port, t), targets))

            hung = [n for i, n in enumerate(f.names) if i % round(1 / HUNG_SHARE) == 0]
            for state in ("healthy", "hung"):
                n_hung = 0
                if state == "hung":
                    n_hung = len(hung)
                    for n in hung:
                        os.kill(f.pids[n], signal.SIGSTOP)
                r = rounds if state == "healthy" else max(3, rounds // 3)
                ours = measure(lambda: len(get(gh_port, "/metrics")), [procs[0].pid], r)
                pe = measure(lambda: len(get(pe_port, "/metrics")), [procs[1].pid], r)
                bb = measure(blackbox_round, [procs[2].pid], r)
                both = Result([a + b for a, b in zip(pe.walls, bb.walls, strict=True)],
                              pe.cpu_per_scrape + bb.cpu_per_scrape, pe.size + bb.size)
                rows += [ours.row(count, n_hung, "govheal exporter"),
                         pe.row(count, n_hung, "process-exporter"),
                         bb.row(count, n_hung, "blackbox (1 probe/endpoint, parallel)"),
                         both.row(count, n_hung, "process-exporter + blackbox"),
                         f"| {count} | {n_hung} | **CPU ratio govheal / (both)** | | | "
                         f"**{ours.cpu_per_scrape / both.cpu_per_scrape:.2f}x** | |"]
                if state == "hung":
                    for n in hung:
                        os.kill(f.pids[n], signal.SIGCONT)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return rows


def run(quick: bool) -> str:
    sizes = (6, 50) if quick else (6, 50, 200)
    rounds = 5 if quick else 30
    rows = ["| agents | hung | tool | wall p50 ms | wall p99 ms | CPU ms / scrape | exposition KB |",
            "|---|---|---|---|---|---|---|"]
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="govheal-bench-") as tmp:
            rows += run_size(count, rounds, Path(tmp))
    note = (f"\nprobe timeout {PROBE_TIMEOUT * 1000:.0f} ms everywhere; {rounds} scrapes per healthy cell, "
            f"{max(3, rounds // 3)} per hung cell (p99 of so few samples is close to the max); hung agents are "
            "SIGSTOPped fleet children; CPU = user+system of the exporter process.")
    return "\n".join(rows) + "\n" + note


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fleet", nargs=2, metavar=("DIR", "N"), help="internal: run the fleet host")
    args = p.parse_args()
    if args.fleet:
        _host(Path(args.fleet[0]), int(args.fleet[1]))
        return 0
    print(run(quick=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
