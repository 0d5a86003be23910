"""A loopback HTTP proxy in front of a receiver that can make its webhook fail on demand (tests, chaos).

Modes: ``pass`` forwards and relays the answer; ``fail`` answers ``status`` without forwarding (the receiver
is unreachable for Alertmanager); ``lose`` forwards, then answers ``status`` instead of the receiver's 200
(the receiver acted, but Alertmanager thinks it failed and retries: the at-least-once case the receiver's
idempotency has to absorb). Counts every request by (path, outcome).
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("pass", "fail", "lose")


class FlakyProxy:
    def __init__(self, target: str, name: str = "") -> None:
        self.target = target.rstrip("/")
        self.name = name
        self.mode = "pass"
        self.status = 503
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = proxy.forward(self.path, raw, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, status: int = 503) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: use one of {', '.join(MODES)}")
        with self.lock:
            self.mode, self.status = mode, status

    def forward(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self.lock:
            mode, fail_status = self.mode, self.status
        if mode == "fail":
            self._count(path, "failed")
            return fail_status, b'{"error": "injected failure (not forwarded)"}'
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "user-agent")}
        req = urllib.request.Request(self.target + path, data=raw or None, headers=keep,  # noqa: S310 - loopback
                                     method="POST" if raw else "GET")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except OSError:
            self._count(path, "unreachable")
            return 502, b'{"error": "receiver unreachable"}'
        if mode == "lose":
            self._count(path, f"lost_{status}")
            return fail_status, b'{"error": "injected failure (forwarded, answer lost)"}'
        self._count(path, str(status))
        return status, body

    def _count(self, path: str, outcome: str) -> None:
        with self.lock:
            self.counts[(path, outcome)] += 1

    def start(self) -> FlakyProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
