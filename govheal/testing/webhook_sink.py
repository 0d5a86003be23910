"""A tiny recording webhook server standing in for the govheal receiver in chain tests and benchmarks.

Records every POST (path, headers, parsed JSON body, arrival time) and answers 200. Runs in a thread
on a free loopback port: ``with WebhookSink() as sink: ... sink.wait_for(pred)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received: float  # time.monotonic() at arrival
    wall: float      # time.time() at arrival

    def alerts(self, alertname: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.body.get("alerts", [])
                if (alertname is None or a["labels"].get("alertname") == alertname)
                and (status is None or a["status"] == status)]


class WebhookSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.deliveries: list[Delivery] = []
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                now, wall = time.monotonic(), time.time()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsed": raw.decode(errors="replace")}
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with sink._cond:
                    sink.deliveries.append(Delivery(self.path, dict(self.headers), body, now, wall))
                    sink._cond.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate: Callable[[Delivery], bool], timeout: float = 30.0,
                 since: int = 0) -> Delivery:
        """The first delivery (index >= ``since``) matching ``predicate``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for d in self.deliveries[since:]:
                    if predicate(d):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(d.path, [(a["labels"].get("alertname"), a["labels"].get("agent"), a["status"])
                                      for a in d.body.get("alerts", [])]) for d in self.deliveries]
                    raise AssertionError(f"no matching webhook within {timeout}s; got {seen}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.deliveries)
