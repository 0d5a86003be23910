"""(b) Webhook accept throughput and latency against the real waitress-served ``govheal receiver``;
(a, end to end) accepted → delivered latency through the same process to the fake Discord/Telegram.

The receiver runs as its own process with the real remediator and bridge (no channels configured, so
nothing is delivered: this measures accepting). A load generator in a separate process keeps N HTTP/1.1
keep-alive connections busy (closed loop), each POST carrying one new alert (a new inbox row: the worst
case) or a re-delivered one (duplicate path). Bounded by request count and wall time.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

TOKEN = "bench-token-not-a-secret"  # noqa: S105 - a throwaway token for a loopback benchmark
CONFIG = """node: bench
state_dir: state
receiver: {{workers: 4, threads: {threads}, deadman_timeout: 1h}}
agents:
  - name: GG
    health: {{url: "http://127.0.0.1:9/health"}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _payload(fp: str) -> bytes:
    alert = {"status": "firing", "labels": {"alertname": "AgentDown", "agent": "GG", "severity": "critical",
                                            "remediation": "none", "instance": "127.0.0.1:9826"},
             "annotations": {"summary": "Agent GG is down", "description": "agent_up has been 0 for 30s",
                             "runbook_url": "https://runbooks.example.invalid/AgentDown"},
             "startsAt": "2026-11-29T15:39:23.117Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
             "fingerprint": fp}
    return json.dumps({"receiver": "govheal", "status": "firing", "alerts": [alert], "groupLabels": {},
                       "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
                       "version": "4", "groupKey": f"{{}}:{{agent=\"GG\",fp=\"{fp}\"}}",
                       "truncatedAlerts": 0}).encode()


# ---------------------------------------------------------------------------------------------
# The load generator (runs in its own process: `python -m bench.receiver load ...`)


def load(port: int, conns: int, count: int, seconds: float, mode: str, seed: str, rate: float = 0.0) -> dict:
    """Closed loop (``rate`` 0) or open loop at ``rate`` req/s, latency counted from the scheduled send time
    so a slow answer cannot hide the requests it delayed (no coordinated omission)."""
    per = count // conns
    lat: list[list[float]] = [[] for _ in range(conns)]
    errors = [0] * conns
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def worker(w: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(per):
            if time.monotonic() > deadline:
                break
            fp = f"{seed}{w:04x}{i:08x}" if mode == "unique" else f"{seed}dup{w:04x}"
            data = _payload(fp)
            t0 = time.perf_counter()
            if rate:
                t0 = start + (i * conns + w) / rate
                time.sleep(max(0.0, t0 - time.perf_counter()))
            try:
                c.request("POST", "/alertmanager", body=data, headers=headers)
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

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    start = time.perf_counter() + 0.05
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    all_lat = sorted(x for xs in lat for x in xs)
    return {"n": len(all_lat), "wall": wall, "errors": sum(errors), "lat": all_lat}


def _pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


# ---------------------------------------------------------------------------------------------


def _start_receiver(tmp: Path, threads: int, extra: str = "",
                    env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    cfg = tmp / "govheal.yaml"
    cfg.write_text(CONFIG.format(threads=threads) + extra)
    return launch_receiver(cfg, {"GOVHEAL_WEBHOOK_TOKEN": TOKEN, **(env_extra or {})})


def launch_receiver(cfg: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """A real `govheal receiver` for ``cfg`` on a free loopback port, once /readyz answers."""
    tmp = cfg.parent
    port = _free_port()
    env = {**os.environ, **env_extra}
    log = open(tmp / "receiver.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "govheal", "receiver", "--config", str(cfg), "--listen",
                             f"127.0.0.1:{port}", "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT,
                            env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"receiver did not become ready; see {tmp / 'receiver.log'}")


def _run_load(port: int, conns: int, count: int, seconds: float, mode: str, seed: str, rate: float = 0) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.receiver", "load", str(port), str(conns), str(count),
                          str(seconds), mode, seed, str(rate)], capture_output=True, text=True, timeout=seconds + 60,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout)


CHANNELS = """notifications:
  channels:
    discord: {type: discord}
    telegram: {type: telegram}
"""


def end_to_end(samples: int, spacing: float = 1.25) -> str:
    """(a) through the whole receiver: one alert every ``spacing`` s (below every channel limit) posted to the
    real process; latency = the 2xx arrived (accepted) → the fake channel received the message."""
    from govheal.testing.fake_discord import FakeDiscord
    from govheal.testing.fake_telegram import FakeTelegram

    with FakeDiscord() as d, FakeTelegram() as t, tempfile.TemporaryDirectory(prefix="govheal-bench-e2e-") as tmp:
        env = {"GOVHEAL_DISCORD_WEBHOOK_URL": d.url, "GOVHEAL_TELEGRAM_BOT_TOKEN": t.token,
               "GOVHEAL_TELEGRAM_CHAT_ID": "424242", "GOVHEAL_TELEGRAM_API_URL": t.api_url}
        proc, port = _start_receiver(Path(tmp), threads=8, extra=CHANNELS, env_extra=env)
        accepted: dict[str, float] = {}
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            for i in range(samples):
                name = f"E2E{i:04d}"
                data = _payload(f"e2e{i:013x}").replace(b'"AgentDown"', f'"{name}"'.encode())
                c.request("POST", "/alertmanager", body=data, headers=headers)
                resp = c.getresponse()
                resp.read()
                if resp.status == 200:
                    accepted[name] = time.monotonic()
                time.sleep(spacing)
            c.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (len(d.received) < len(accepted) or len(t.received) < len(accepted)):
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(15)
        rows = []
        for channel, arrivals in (("discord", [(r["t"], json.dumps(r["body"])) for r in d.received]),
                                  ("telegram", [(r["t"], r["text"]) for r in t.received])):
            lat = sorted(1000 * (ts - accepted[n]) for ts, text in arrivals for n in accepted if n in text)
            rows.append(f"| {channel} | {len(lat)} of {len(accepted)} | {_pct(lat, 50):.1f} | {_pct(lat, 99):.1f} | "
                        f"{lat[-1] if lat else float('nan'):.1f} |")
    return "\n".join([f"(a) end to end: accepted (2xx) → the fake channel received it; {samples} alerts, one every "
                      f"{spacing} s", "", "| channel | delivered | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|",
                      *rows])


def run(quick: bool) -> str:
    return throughput(quick) + "\n\n" + end_to_end(10 if quick else 60)


def throughput(quick: bool) -> str:
    count = 600 if quick else 4000
    seconds = 20.0 if quick else 60.0
    scenarios = [("open loop at 300 req/s, new alert each", "unique", 8, 300.0),
                 ("open loop at 600 req/s, new alert each", "unique", 8, 600.0),
                 ("closed loop, new alert each", "unique", 4, 0.0),
                 ("closed loop, new alert each", "unique", 8, 0.0),
                 ("closed loop, new alert each", "unique", 16, 0.0),
                 ("closed loop, re-delivered (duplicate)", "dup", 8, 0.0)]
    rows = ["| scenario | connections | requests | errors | req/s | p50 ms | p99 ms | max ms | target |",
            "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="govheal-bench-receiver-") as d:
        proc, port = _start_receiver(Path(d), threads=8)
        try:
            _run_load(port, 4, 200, 10, "unique", "w")  # warm-up (imports, SQLite pages, JIT-free but cached)
            for i, (name, mode, conns, rate) in enumerate(scenarios):
                n = min(count, int(rate * seconds / 2)) if rate else count
                r = _run_load(port, conns, n, seconds, mode, f"s{i}", rate)
                lat = r["lat"]
                rps = r["n"] / r["wall"]
                p99 = _pct(lat, 99) * 1000
                ok = "met" if rps >= 300 and p99 <= 50 else "missed"
                rows.append(f"| {name} | {conns} | {r['n']} | {r['errors']} | {rps:.0f} | {_pct(lat, 50) * 1000:.1f}"
                            f" | {p99:.1f} | {lat[-1] * 1000:.1f} | ≥300 req/s, p99 ≤50 ms: {ok} |")
        finally:
            proc.terminate()
            proc.wait(15)
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        port, conns, count, seconds, mode, seed, rate = sys.argv[2:9]
        result = load(int(port), int(conns), int(count), float(seconds), mode, seed, float(rate))
        print(json.dumps(result))
    else:
        print(run(quick="--quick" in sys.argv))
