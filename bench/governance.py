"""``/ops/governance`` and ``/api/agents`` latency with 6 and 100 agents, 20 concurrent clients (issue 9).

The real ``govheal receiver`` (waitress, 8 threads) serves a fleet of N remote agents with switches on
every fifth agent (some with recurring windows and pending silences: no Alertmanager is configured, the
worst case for the page's silence column) and a remediation history. A load generator in its own
process keeps 20 HTTP/1.1 keep-alive clients busy (closed loop), the page with a logged-in session
cookie and ``Accept-Encoding: gzip, deflate, br`` (as every browser sends; the page comes gzipped), the
API with the read token, once as curl asks (no Accept-Encoding) and once accepting gzip.
Target: p99 ≤ 25 ms at 100 agents (the user's bound: 250 ms).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.receiver import _pct, launch_receiver

TOKEN = "bench-webhook-token-not-a-secret"  # noqa: S105 - throwaway tokens for a loopback benchmark
ADMIN = "bench-admin-token-not-a-secret"
READ = "bench-read-token-not-a-secret"
CLIENTS = 20
ROLES = ("gateway", "worker", "ops-cycle", "bridge")


def config_text(n: int) -> str:
    lines = ["node: bench", "state_dir: state", "receiver: {workers: 4, threads: 8, deadman_timeout: 1h}",
             "admin: {sync_interval: 60s}", "agents:"]
    for i in range(n):
        lines.append(f'  - {{name: A{i:03d}, role: {ROLES[i % len(ROLES)]}, health: {{url: "http://127.0.0.1:9/h"}}}}')
    return "\n".join(lines) + "\n"


def seed(cfg: Path, n: int) -> None:
    """Switches on every fifth agent and a healed incident on every third, written as the CLI would."""
    from govheal.governance.service import Governance
    from govheal.seams import load_config
    from govheal.store import connect, db_path
    from remediator.store import Store

    config = load_config(cfg)
    gov = Governance(config, connect(db_path(config.state_path)), alertmanager=None, clock=time.time)
    for i in range(0, n, 5):
        kind = ("pause", "mute", "maintenance")[i % 3]
        every = "Sundays 02:00 for 1h UTC" if i % 10 == 0 else None
        gov.set(f"A{i:03d}", kind, owner="bench", reason="benchmark switch", via="cli",
                duration=None if every else 7200, every=every)
    store = Store(db_path(config.state_path))
    now = time.time()
    for i in range(0, n, 3):
        store.open_incident(f"A{i:03d}", f"fp{i}:t", now - 600, 100 + i, "AgentDown firing", "alertmanager")
        store.finish_incident(f"A{i:03d}", f"fp{i}:t", "healed", now - 590)
    store.close()
    gov.conn.close()


def start(tmp: Path, n: int) -> tuple[subprocess.Popen, int]:
    cfg = tmp / "govheal.yaml"
    cfg.write_text(config_text(n))
    seed(cfg, n)
    return launch_receiver(cfg, {"GOVHEAL_WEBHOOK_TOKEN": TOKEN, "GOVHEAL_ADMIN_TOKEN": ADMIN,
                                 "GOVHEAL_READ_TOKEN": READ})


def login(port: int) -> str:
    """A session cookie for the page (the login form, as a browser does it)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/ops/governance/login")
    resp = c.getresponse()
    html = resp.read().decode()
    cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode({"name": "bench", "token": ADMIN, "csrf": csrf, "next": ""})
    c.request("POST", "/ops/governance/login", body=form,
              headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    resp = c.getresponse()
    resp.read()
    c.close()
    if resp.status != 302:
        raise RuntimeError(f"login failed: HTTP {resp.status}")
    return resp.headers["Set-Cookie"].split(";", 1)[0]


BROWSER_ENCODING = "gzip, deflate, br"  # what Chromium and Firefox send


def load(port: int, path: str, header: str, value: str, count: int, seconds: float, encoding: str = "") -> dict:
    """``CLIENTS`` closed-loop keep-alive clients, ``count`` requests each at most, for at most ``seconds``."""
    lat: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    deadline = time.monotonic() + seconds

    def worker(w: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            try:
                c.request("GET", path, headers={header: value, **({"Accept-Encoding": encoding} if encoding else {})})
                resp = c.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            lat[w].append(time.perf_counter() - t0)
            errors[w] += not ok
        c.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"n": sum(map(len, lat)), "wall": wall, "errors": sum(errors), "lat": sorted(x for xs in lat for x in xs)}


def _run_load(port: int, path: str, header: str, value: str, count: int, seconds: float, encoding: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.governance", "load", str(port), path, header, value, str(count),
                          str(seconds), encoding], capture_output=True, text=True, timeout=seconds + 60, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout)


# -- wrk: the load generator when installed (`make bench` installs it) ----------------------------------------
# 20 keep-alive connections from a C event loop on 2 threads. The Python generator above runs 20 threads in one
# interpreter: each request then also waits for that client's GIL (5 ms switch interval), which it counts as
# the server's latency.

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"wrk: cannot read the duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    """wrk --latency's report → requests, errors, req/s and p50/p99/max in seconds."""
    pct = {int(p): _seconds(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M)}
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not (pct and latency and total and rate):
        raise ValueError(f"wrk: unexpected output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"n": int(total.group(1)), "rate": float(rate.group(1)), "errors": errors, "p50": pct[50],
            "p99": pct[99], "max": _seconds(latency.group(3))}


def wrk_load(port: int, path: str, header: str, value: str, seconds: float, encoding: str) -> dict:
    argv = ["wrk", "-t2", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--latency", "-H", f"{header}: {value}"]
    if encoding:
        argv += ["-H", f"Accept-Encoding: {encoding}"]
    done = subprocess.run([*argv, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                          timeout=seconds + 60, check=True)
    return parse_wrk(done.stdout)


def measure(port: int, path: str, header: str, value: str, count: int, seconds: float, encoding: str,
            generator: str) -> dict:
    if generator == "wrk":
        return wrk_load(port, path, header, value, seconds, encoding)
    r = _run_load(port, path, header, value, count, seconds, encoding)
    lat = r["lat"]
    return {"n": r["n"], "rate": r["n"] / r["wall"], "errors": r["errors"], "p50": _pct(lat, 50),
            "p99": _pct(lat, 99), "max": lat[-1]}


def run(quick: bool, generator: str | None = None) -> str:
    count, seconds = (20, 10.0) if quick else (100, 30.0)
    generator = generator or ("wrk" if shutil.which("wrk") else "python")
    if generator == "wrk":
        seconds = 5.0 if quick else 15.0
    rows = [f"load generator: {generator} ({CLIENTS} keep-alive connections"
            + (", 2 threads" if generator == "wrk" else f", closed loop, at most {count} requests each") + ")", "",
            "| agents | endpoint | clients | requests | errors | req/s | p50 ms | p99 ms | max ms | target |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in (6, 100):
        with tempfile.TemporaryDirectory(prefix="govheal-bench-governance-") as d:
            proc, port = start(Path(d), n)
            try:
                cookie = login(port)
                for path, header, value, enc in (("/ops/governance", "Cookie", cookie, BROWSER_ENCODING),
                                                 ("/api/agents", "Authorization", f"Bearer {READ}", ""),
                                                 ("/api/agents", "Authorization", f"Bearer {READ}", "gzip")):
                    measure(port, path, header, value, 5, 2, enc, generator)  # warm-up
                    r = measure(port, path, header, value, count, seconds, enc, generator)
                    p99 = r["p99"] * 1000
                    target = f"p99 ≤ 25 ms: {'met' if p99 <= 25 else 'missed'}" if n == 100 else ""
                    shown = f"`{path}`" + (" gzip" if enc else "")
                    rows.append(f"| {n} | {shown} | {CLIENTS} | {r['n']} | {r['errors']} | {r['rate']:.0f} |"
                                f" {r['p50'] * 1000:.1f} | {p99:.1f} | {r['max'] * 1000:.1f} | {target} |")
            finally:
                proc.terminate()
                proc.wait(15)
    load_avg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return "\n".join([f"load average at the end: {load_avg}", "", *rows])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        port, path, header, value, count, seconds, encoding = sys.argv[2:9]
        print(json.dumps(load(int(port), path, header, value, int(count), float(seconds), encoding)))
    else:
        chosen = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--generator=")), None)
        print(run(quick="--quick" in sys.argv, generator=chosen))
