"""A small real agent for demos and tests: ``/health`` plus fault injection.

Endpoints (loopback only; the fault endpoints are for demos and tests, so they take no auth):

- ``GET /health``: ``200 {"status": "ok", "agent": NAME, "pid": PID}``; ``503 {"status": "unhealthy"}``
  after ``/fault/unhealthy``; delayed after ``/fault/slow``.
- ``POST /fault/crash?code=N[&delay=S]``: answer, then exit with code N (default 1) S seconds later
  (default 0.05; 0: as soon as the answer is sent).
- ``POST /fault/hang[?seconds=S]``: stop answering every request (the process stays alive) for S
  seconds, or until ``/fault/recover``.
- ``POST /fault/slow?seconds=S``: ``/health`` answers after S seconds (until ``/fault/recover``).
- ``POST /fault/unhealthy``: ``/health`` answers 503.
- ``POST /fault/recover``: clear every fault (answered even while hung).

SIGTERM exits cleanly and at once (pidfile removed; requests in flight are dropped) unless
``--ignore-term`` (a test of TERM → KILL). ``python -m govheal.demo_agent`` runs it without the
govheal CLI (about 0.1 s less cold start: no config models imported).
``--fail-if-exists PATH`` makes every start fail while PATH exists (a crash loop for ``make chaos``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HELP = "run a demo agent with /health and fault-injection endpoints (for demos and tests)"


def _port(text: str) -> int:
    """argparse type: a TCP port (0 = any free one), so a typo is a usage error, not an OverflowError."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; give 0-65535 (0 = any free port)")
    return port


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="agent name reported by /health")
    p.add_argument("--port", type=_port, required=True, help="port on --host to listen on")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--pidfile", help="write the PID here; removed on clean exit")
    p.add_argument("--startup-delay", type=float, default=0.0, help="seconds to wait before listening")
    p.add_argument("--crash-after", type=float, default=None, help="exit with --exit-code after this many seconds")
    p.add_argument("--exit-code", type=int, default=1, help="exit code for --crash-after (default 1)")
    p.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (tests the SIGKILL path)")
    p.add_argument("--fail-if-exists", metavar="PATH",
                   help="exit with --exit-code at start while PATH exists (a broken install: every restart fails, "
                        "a crash loop until PATH is removed)")


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.unhealthy = False
        self.slow = 0.0
        self.hang_until = 0.0  # monotonic; inf = until recover
        self.recovered = threading.Event()

    def hung(self) -> bool:
        return time.monotonic() < self.hang_until

    def clear(self) -> None:
        with self.lock:
            self.unhealthy, self.slow, self.hang_until = False, 0.0, 0.0
            self.recovered.set()
            self.recovered = threading.Event()


def make_handler(name: str, faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "govheal-demo-agent"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            if self.path == "/health" and fmt.startswith('"%s" %s') and len(args) > 1 and str(args[1]) == "200":
                return  # a passing probe, several a second: one line each would be the whole log
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {name} {fmt % args}\n")

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _wait_if_hung(self) -> None:
            while faults.hung():
                faults.recovered.wait(timeout=min(1.0, max(0.01, faults.hang_until - time.monotonic())))

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            self._wait_if_hung()
            if url.path == "/health":
                if faults.slow:
                    time.sleep(faults.slow)
                if faults.unhealthy:
                    self._send(503, {"status": "unhealthy", "agent": name, "pid": os.getpid()})
                else:
                    self._send(200, {"status": "ok", "agent": name, "pid": os.getpid()})
                return
            self._send(404, {"error": f"no such path {url.path}"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)

            def number(key: str, default: float) -> float:
                try:
                    return float(query.get(key, [default])[0])
                except ValueError:
                    return default

            if url.path == "/fault/recover":
                faults.clear()
                self._send(200, {"fault": "none"})
                return
            self._wait_if_hung()
            if url.path == "/fault/crash":
                code = int(number("code", 1))
                delay = number("delay", 0.05)
                self._send(200, {"fault": "crash", "code": code})
                self.wfile.flush()
                if delay <= 0:
                    os._exit(code)
                threading.Timer(delay, os._exit, args=(code,)).start()
            # each fault is in effect before it is acknowledged: a request sent after the answer sees it
            elif url.path == "/fault/hang":
                seconds = number("seconds", float("inf"))
                faults.hang_until = time.monotonic() + seconds
                self._send(200, {"fault": "hang", "seconds": seconds})
            elif url.path == "/fault/slow":
                faults.slow = number("seconds", 2.0)
                self._send(200, {"fault": "slow", "seconds": faults.slow})
            elif url.path == "/fault/unhealthy":
                faults.unhealthy = True
                self._send(200, {"fault": "unhealthy"})
            else:
                self._send(404, {"error": f"no such path {url.path}"})

    return Handler


def run(args: argparse.Namespace) -> int:
    if args.fail_if_exists and Path(args.fail_if_exists).exists():
        print(f"demo agent {args.name}: {args.fail_if_exists} exists; exiting {args.exit_code}", file=sys.stderr,
              flush=True)
        return args.exit_code
    if args.startup_delay:
        time.sleep(args.startup_delay)
    pidfile = Path(args.pidfile) if args.pidfile else None
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.name, Faults()))
    server.daemon_threads = True
    if pidfile:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        tmp = pidfile.with_suffix(pidfile.suffix + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(pidfile)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # in the main thread: leaves serve_forever at once (no 0.1 s poll wait)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_term else stop)
    signal.signal(signal.SIGINT, stop)
    if args.crash_after is not None:
        threading.Timer(args.crash_after, os._exit, args=(args.exit_code,)).start()
    print(f"demo agent {args.name} pid {os.getpid()} on http://{args.host}:{server.server_port}/health",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except SystemExit:
        pass
    finally:
        server.server_close()
        if pidfile and pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m govheal.demo_agent", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
