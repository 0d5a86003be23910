"""Health probes against small local servers, and the pool's deadline and no-duplicate rules."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from govheal.config import HealthCheck
from govheal.probe import probe
from govheal.testing.support import free_port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """GET /ok → 200 {"status": "ok"}; /sick → 503; /other → 200 {"status": "degraded"}; /close → drop."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/close":
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, body = {"/ok": (200, b'{"status": "ok"}'), "/sick": (503, b'{"status": "unhealthy"}'),
                            "/other": (200, b'{"status": "degraded"}')}.get(self.path, (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def check(url: str, **kw: object) -> HealthCheck:
    return HealthCheck(url=url, **kw)


def test_a_healthy_endpoint_passes(server: str):
    r = probe(check(f"{server}/ok", body_match='"status": *"ok"'))
    assert r.ok and r.status == 200 and 0 < r.duration < 1


def test_an_unexpected_status_is_bad_status(server: str):
    r = probe(check(f"{server}/sick"))
    assert r.reason == "bad_status" and r.status == 503 and r.reachable


def test_a_body_that_does_not_match_is_body_mismatch(server: str):
    assert probe(check(f"{server}/other", body_match='"status": *"ok"')).reason == "body_mismatch"


def test_a_closed_port_is_refused():
    r = probe(check(f"http://127.0.0.1:{free_port()}/health"))
    assert r.reason == "refused" and not r.reachable


def test_a_dropped_connection_is_error(server: str):
    assert probe(check(f"{server}/close")).reason == "error"


def test_a_server_that_never_answers_times_out_on_time():
    with socket.socket() as s:  # the kernel completes the handshake; nobody ever reads or answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        t0 = time.monotonic()
        r = probe(check(f"http://127.0.0.1:{s.getsockname()[1]}/health", timeout=0.3))
        elapsed = time.monotonic() - t0
    assert r.reason == "timeout" and not r.reachable
    assert 0.25 < elapsed < 0.8 and r.duration <= 0.3


def test_a_server_trickling_bytes_cannot_stretch_the_probe_past_its_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 100:
                if stop.wait(0.05):
                    return
                conn.sendall(bytes([byte]))

    threading.Thread(target=trickle, daemon=True).start()
    try:
        t0 = time.monotonic()
        r = probe(check(f"http://127.0.0.1:{listener.getsockname()[1]}/health", timeout=0.3))
        assert r.reason == "timeout" and time.monotonic() - t0 < 0.6
    finally:
        stop.set()
        listener.close()


@pytest.mark.live
def test_https_verifies_the_certificate(tmp_path):
    """A self-signed endpoint is an error, not healthy: TLS verification stays on."""
    import ssl

    # a throw-away self-signed pair made for this test only (openssl req -x509 -subj /CN=127.0.0.1)
    tls = Path(__file__).parent / "fixtures" / "tls"
    cert, key = tls / "selfsigned-test-only.pem", tls / "selfsigned-test-only.key"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        conn, _ = listener.accept()
        with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    try:
        assert probe(check(f"https://127.0.0.1:{listener.getsockname()[1]}/health", timeout=2)).reason == "error"
    finally:
        listener.close()
