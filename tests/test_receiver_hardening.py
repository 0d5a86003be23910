"""Live: a real `govheal receiver` (waitress) under a slow-client attack, and its error shape at every size."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govheal.testing.support import free_port, http_get, wait_until
from tests.test_receiver_support import AUTH, TOKEN, alert, body

pytestmark = pytest.mark.live

LIMIT = 1_048_576  # receiver.max_body_bytes default
CONFIG = """node: n1
state_dir: state
receiver: {deadman_timeout: 1h, request_timeout: 2s}
agents:
  - {name: GG, health: {url: 'http://127.0.0.1:9/health'}}
"""


class LiveReceiver:
    def __init__(self, tmp: Path, config: str = CONFIG) -> None:
        self.tmp = tmp
        (tmp / "govheal.yaml").write_text(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "receiver.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> LiveReceiver:
        env = {**os.environ, "GOVHEAL_WEBHOOK_TOKEN": TOKEN}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "govheal", "receiver", "--config",
                                          str(self.tmp / "govheal.yaml"), "--listen", f"127.0.0.1:{self.port}"],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        wait_until(lambda: http_get(f"{self.url}/readyz", timeout=1)[0] == 200, 30, what="receiver ready")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory) -> Iterator[LiveReceiver]:
    r = LiveReceiver(tmp_path_factory.mktemp("hardening")).start()
    try:
        yield r
    finally:
        r.stop()


def request(port: int, method: str, path: str, data: bytes | None = None, headers: dict | None = None,
            timeout: float = 1.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def timed(fn) -> tuple[float, tuple[int, str]]:
    started = time.monotonic()
    out = fn()
    return time.monotonic() - started, out


class Slowloris:
    """``n`` connections that each send one byte of a request head per second, and never finish it."""

    HEAD = b"POST /alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 4000

    def __init__(self, port: int, n: int = 200) -> None:
        self.port, self.n = port, n
        self.socks: list[socket.socket] = []
        self.stop = threading.Event()
        self.reopened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setblocking(False)
        return s

    def run(self) -> None:
        offset = 0
        while not self.stop.wait(1.0):
            offset += 1
            for i, s in enumerate(self.socks):
                try:
                    s.send(self.HEAD[offset % len(self.HEAD):][:1])
                except OSError:  # closed by the server: an attacker opens a new one at once
                    with contextlib.suppress(OSError):
                        s.close()
                    with contextlib.suppress(OSError):
                        self.socks[i] = self.open()
                        self.reopened += 1

    def __enter__(self) -> Slowloris:
        self.socks = [self.open() for _ in range(self.n)]
        for s in self.socks:
            s.send(self.HEAD[:1])
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()


def test_200_slow_clients_do_not_starve_healthz_or_an_authenticated_webhook(receiver: LiveReceiver) -> None:
    """waitress's defaults (100 slots, closed only after 120 s without a byte) let this take every slot."""
    times: dict[str, list[float]] = {"healthz": [], "webhook": []}
    with Slowloris(receiver.port, 200) as attack:
        deadline = time.monotonic() + 5.0  # beyond request_timeout: the attackers are closed and come back
        i = 0
        while time.monotonic() < deadline:
            took, (status, _) = timed(lambda: request(receiver.port, "GET", "/healthz"))
            assert status == 200
            times["healthz"].append(took)
            i += 1
            data = body(alert(None, remediation=None, fp=f"{i:016x}", alertname="Slowloris"))
            took, (status, text) = timed(lambda data=data: request(
                receiver.port, "POST", "/alertmanager", data, {**AUTH, "Content-Type": "application/json"}))
            assert status == 200, text
            times["webhook"].append(took)
            time.sleep(0.3)
        reopened = attack.reopened
    worst = {k: max(v) for k, v in times.items()}
    print(f"under 200 slow clients: worst healthz {worst['healthz'] * 1000:.0f} ms, webhook "
          f"{worst['webhook'] * 1000:.0f} ms over {len(times['healthz'])} rounds; {reopened} attacker "
          "connections closed by request_timeout and reopened")
    assert worst["healthz"] < 1.0 and worst["webhook"] < 1.0, worst
    assert reopened > 0, "the server closed none of the slow connections (receiver.request_timeout 2s)"


def test_a_connection_that_never_finishes_its_request_is_closed_after_request_timeout(
        receiver: LiveReceiver) -> None:
    s = socket.create_connection(("127.0.0.1", receiver.port), timeout=6)
    try:
        s.send(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        s.settimeout(6)
        try:
            data = s.recv(100)  # the server closes: b"" (or a reset)
        except ConnectionResetError:
            data = b""
        assert data == b""
        closed_after = time.monotonic() - started
        assert 1.5 < closed_after < 4.5, closed_after  # request_timeout 2 s + the 1 s sweep
    finally:
        s.close()


def post_raw(port: int, head: bytes, chunks: list[bytes], pause_after_answer: bool = False) -> tuple[int, dict]:
    """Send a whole request the way most clients do (all of it, then read the answer), strictly: the
    server answering early must neither break the sending nor reset the connection before the answer is
    read (it closes lingering). ``pause_after_answer``: once the answer is here, wait before sending the
    rest, so a server that closes at once has closed by then."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(head)
        for i, chunk in enumerate(chunks):
            s.sendall(chunk)
            if pause_after_answer and i == 0:
                poller = select.poll()  # not select(): the suite's descriptors can be past FD_SETSIZE
                poller.register(s, select.POLLIN)
                poller.poll(5000)  # the early answer has arrived
                time.sleep(0.3)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head_text, _, payload = data.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    assert b"content-type: application/json" in head_text.lower(), head_text
    return status, json.loads(payload)


@pytest.mark.parametrize(("size", "chunked"), [(LIMIT + 1, False), (2 * LIMIT + 65537, False),
                                               (3 * LIMIT, True)])
def test_a_body_over_the_limit_gets_the_same_json_413_at_every_size(receiver: LiveReceiver, size: int,
                                                                     chunked: bool) -> None:
    data = b"x" * size
    auth = f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
    if chunked:
        head = b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + auth + b"\r\n"
        parts = [b"%x\r\n%s\r\n" % (65536, data[i:i + 65536]) for i in range(0, size, 65536)] + [b"0\r\n\r\n"]
    else:
        head = b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % size + auth + b"\r\n"
        parts = [data[i:i + 65536] for i in range(0, size, 65536)]
    status, answer = post_raw(receiver.port, head, parts)
    assert (status, answer) == (413, {"error": f"body larger than receiver.max_body_bytes ({LIMIT} bytes)"})
    assert http_get(f"{receiver.url}/healthz")[0] == 200


def test_a_client_still_sending_its_body_after_the_early_413_reads_the_413_not_a_reset(
        receiver: LiveReceiver) -> None:
    """waitress answers 413 after the headers; the client goes on sending (the body arrives after the
    answer) and only then reads. A plain close with that body unread resets the connection (the client
    gets ECONNRESET/EPIPE); the lingering close drains it, so the client reads the JSON 413 and the end."""
    size = 2 * LIMIT
    head = (b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % size
            + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\r\n".encode())
    parts = [b"x" * 65536 for _ in range(size // 65536)]
    for _ in range(3):
        status, answer = post_raw(receiver.port, head, parts, pause_after_answer=True)
        assert (status, answer) == (413, {"error": f"body larger than receiver.max_body_bytes ({LIMIT} bytes)"})
    assert http_get(f"{receiver.url}/healthz")[0] == 200


class FakeChannel:
    def __init__(self, peer: str) -> None:
        self.peer, self.counted, self.will_close = peer, False, False


def test_one_remote_address_gets_at_most_its_share_of_connections_and_loopback_is_never_refused(
        tmp_path: Path) -> None:
    from tests.test_receiver_support import receiver_config
    from webhook_receiver.server import make_server

    config = receiver_config(tmp_path, receiver=", max_connections_per_ip: 3")
    server = make_server(lambda environ, start: [], config, "127.0.0.1", 0)
    try:
        remote = [FakeChannel("192.0.2.7") for _ in range(5)]
        local = [FakeChannel("127.0.0.1") for _ in range(5)]
        for ch in remote + local:
            server.admitted(ch)
        assert [ch.will_close for ch in remote] == [False, False, False, True, True]
        assert not any(ch.will_close for ch in local)
        for ch in remote[3:]:  # the refused ones are closed at once (handle_close releases them)
            server.released(ch)
        full = FakeChannel("192.0.2.7")
        server.admitted(full)
        assert full.will_close
        server.released(full)
        server.released(remote[0])
        late = FakeChannel("192.0.2.7")
        server.admitted(late)
        assert not late.will_close  # a slot of that address was freed
    finally:
        server.close()


def test_a_second_receiver_on_the_same_state_dir_exits_2_naming_the_first(receiver: LiveReceiver) -> None:
    """Two receivers on one state dir both started, and every alert was acted on and announced twice."""
    port = free_port()
    out = subprocess.run([sys.executable, "-m", "govheal", "receiver", "--config", str(receiver.tmp / "govheal.yaml"),
                          "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GOVHEAL_WEBHOOK_TOKEN": TOKEN}, stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out.stderr
    assert f"pid {receiver.proc.pid}" in out.stderr and f"listening on {receiver.url}" in out.stderr, out.stderr
    assert "state_dir" in out.stderr and "Traceback" not in out.stderr
    assert http_get(f"{receiver.url}/readyz")[0] == 200  # the first one is untouched


def test_the_state_dir_lock_is_exclusive_and_released_with_the_state_object(tmp_path: Path) -> None:
    from govheal.state import State, StateLocked

    first = State.open(tmp_path)
    first.lock("receiver", listen="http://127.0.0.1:1234")
    second = State.open(tmp_path)
    with pytest.raises(StateLocked, match=rf"pid {os.getpid()}, listening on http://127.0.0.1:1234"):
        second.lock("receiver")
    assert StateLocked.exit_code == 2
    first.close()
    second.lock("receiver")  # free again once the holder is gone
    second.close()
