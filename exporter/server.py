"""The exporter's HTTP server: ``/metrics`` from a dedicated registry, ``/healthz`` for liveness."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from exporter.collector import SnapshotCollector
from exporter.snapshot import Snapshot

StartResponse = Callable[..., Any]


def make_registry(source: Callable[[], Snapshot]) -> CollectorRegistry:
    """A fresh registry holding only the fleet collector (no global registry, no process metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    SnapshotCollector(source, registry=registry)
    return registry


def make_app(registry: CollectorRegistry) -> Callable[[dict, StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [b'<html><body><h1>govheal exporter</h1><a href="/metrics">/metrics</a></body></html>\n']
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found; try /metrics or /healthz\n"]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(app: Callable[[dict, StartResponse], Iterable[bytes]], host: str, port: int) -> WSGIServer:
    """Bind now (port 0 picks a free one; read ``server.server_port``); call ``serve_forever()`` to run."""
    return make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)


def serve_in_thread(server: WSGIServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="govheal-exporter-http", daemon=True)
    thread.start()
    return thread
