"""The receiver's HTTP server: waitress, bounded against slow clients, with the JSON error shape at every size.

waitress buffers each request completely on its event loop before a request thread sees it, so a slow
client never holds a thread; what it holds is a connection slot. Out of the box waitress allows 100 and
closes a connection only after 120 s *without a byte*, so 200 clients sending one byte a second keep every
slot forever and nobody else gets in. Here:

* the slots are many (``receiver.max_connections``, default 1000; ``poll()`` instead of ``select()`` so
  more than 1024 descriptors work, and the process's descriptor limit is raised to match);
* a request must arrive whole (headers and body) within ``receiver.request_timeout`` (default 10 s)
  from its first byte, and a new connection must start one within that time, or it is closed: a slow
  client costs a slot for seconds, not forever. An idle keep-alive connection between requests is left
  to waitress's ``channel_timeout`` (120 s, longer than Go's 90 s idle timeout, so Alertmanager closes
  first and never sends on a connection we are closing);
* one non-loopback address may hold at most ``receiver.max_connections_per_ip`` of them (loopback is
  exempt: Alertmanager on this host must never be refused because of a local misbehaving client, and a
  local attacker could bind any loopback address anyway).

Errors waitress answers itself (a body over the limit, oversized headers, a malformed request) use the
receiver's JSON shape ``{"error": "..."}``, so a client sees one shape at every size. waitress answers them
as soon as it knows (a 413 right after the headers), while the client is still sending the body; closing
then, with that body unread, makes the kernel reset the connection, and a client that reads its answer
only after sending everything (most do) gets "connection reset" instead of the 413. So the connection
closes lingering: after the answer the write side is shut down (the client sees the end of the answer)
and what still arrives is read and discarded, for at most ``LINGER_SECONDS`` and ``LINGER_BYTES``, until
the client closes its side; only then is the socket closed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from govheal.config import Config

log = logging.getLogger("govheal.receiver.server")

CLEANUP_INTERVAL = 1  # seconds between sweeps for slow requests (waitress: 30)
IDLE_TIMEOUT = 120  # an idle keep-alive connection (no request in progress) is closed after this
FD_RESERVE = 64  # descriptors kept for the state file, logs, outgoing HTTP, subprocesses
LINGER_SECONDS = 5.0  # a lingering close discards the rest of a refused request for at most this long
LINGER_BYTES = 64 * 1024 * 1024  # ... and at most this much of it
LINGER_CHUNK = 256 * 1024
QUEUE_LOG_INTERVAL = 60.0  # seconds: waitress's "Task queue depth is N" at most once in this time


class QueueDepthFilter(logging.Filter):
    """waitress warns "Task queue depth is N" for every request that waits for a free thread: thousands of
    lines a minute under load (and their cost on the request path). One per ``QUEUE_LOG_INTERVAL``, saying
    how many were left out, keeps the signal."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, interval: float = QUEUE_LOG_INTERVAL) -> None:
        super().__init__()
        self.clock = clock
        self.interval = interval
        self.next_at = 0.0
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if now < self.next_at:
            self.dropped += 1
            return False
        if self.dropped:
            record.msg = f"{record.getMessage()} ({self.dropped} such warning(s) left out in the last " \
                         f"{self.interval:g} s: requests waited for a free thread; see receiver.threads)"
            record.args = ()
        self.next_at, self.dropped = now + self.interval, 0
        return True


def quiet_queue_log() -> None:
    """Install :class:`QueueDepthFilter` on waitress's queue logger (once)."""
    logger = logging.getLogger("waitress.queue")
    if not any(isinstance(f, QueueDepthFilter) for f in logger.filters):
        logger.addFilter(QueueDepthFilter())


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def too_large_message(limit: int) -> str:
    return f"body larger than receiver.max_body_bytes ({limit} bytes)"


class JsonErrorTask(ErrorTask):
    """waitress's own error answers (413, 431, 400) with the receiver's JSON body instead of plain text."""

    def execute(self) -> None:
        server: Server = self.channel.server
        e = self.request.error
        message = server.error_messages.get(e.code) or f"{e.reason.lower()}: {str(e.body).strip()}"
        body = json.dumps({"error": message}).encode()
        self.status = f"{e.code} {e.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.channel.linger_on_close = True  # the rest of the request may still be on its way
        self.content_length = len(body)
        self.write(body)
        server.on_error(getattr(self.request, "path", "") or "", e.code)


class Channel(HTTPChannel):
    """An HTTPChannel that knows since when its current request (or its first one) has been arriving, and
    closes lingering after an error answer (module docstring)."""

    error_task_class = JsonErrorTask
    linger_on_close = False  # set by an error answer: close lingering
    lingering_until: float | None = None  # monotonic deadline while lingering
    discarded = 0

    def __init__(self, server: Server, sock: Any, addr: Any, adj: Adjustments, map: Any = None) -> None:
        self.receiving_since: float | None = time.monotonic()  # a new connection must start a request soon
        self.peer = str(addr[0]) if isinstance(addr, tuple) and addr else ""
        self.counted = False
        super().__init__(server, sock, addr, adj, map=map)
        server.admitted(self)

    def received(self, data: bytes) -> bool:
        if data and self.request is None and self.receiving_since is None:
            self.receiving_since = time.monotonic()  # the first byte of the next request
        out = super().received(data)
        if self.request is None:  # every request in this chunk is complete
            self.receiving_since = None
        return out

    def readable(self) -> bool:
        return self.lingering_until is not None or super().readable()

    def writable(self) -> bool:
        return self.lingering_until is None and bool(super().writable())

    def handle_read(self) -> None:
        if self.lingering_until is None:
            super().handle_read()
            return
        try:
            data = self.socket.recv(LINGER_CHUNK)
        except OSError:  # reset, gone: nothing more to wait for
            data = b""
        self.discarded += len(data)
        if not data or self.discarded > LINGER_BYTES or time.monotonic() > self.lingering_until:
            self.close_now()

    def handle_close(self) -> None:
        """After an error answer is sent: shut down the write side and linger; otherwise close."""
        if self.linger_on_close and self.lingering_until is None and not self.total_outbufs_len \
                and self.socket is not None:
            self.linger_on_close = False
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:  # the client is gone already
                pass
            else:
                self.lingering_until = time.monotonic() + LINGER_SECONDS
                return
        self.close_now()

    def close_now(self) -> None:
        self.lingering_until = None
        self.linger_on_close = False
        if self.counted:
            self.counted = False
            self.server.released(self)
        super().handle_close()


class Server(TcpWSGIServer):
    channel_class = Channel

    def __init__(self, app: Any, adj: Adjustments, *, request_timeout: float, per_ip: int,
                 error_messages: dict[int, str], on_error: Callable[[str, int], None]) -> None:
        self.request_timeout = request_timeout
        self.per_ip = per_ip
        self.error_messages = error_messages
        self.on_error = on_error
        self.by_peer: Counter[str] = Counter()
        self.slow_closed = 0
        self.refused = 0
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        super().__init__(app, {}, True, None, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])

    def admitted(self, channel: Channel) -> None:
        """Count the peer's connections; close one over its address's share at once (not on loopback)."""
        self.by_peer[channel.peer] += 1
        channel.counted = True
        if self.by_peer[channel.peer] > self.per_ip and not _loopback(channel.peer):
            self.refused += 1
            channel.will_close = True
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log.warning("receiver: %s holds %d connections (limit receiver.max_connections_per_ip %d); "
                            "closing the extra ones (%d so far)", channel.peer, self.by_peer[channel.peer] - 1,
                            self.per_ip, self.refused)

    def released(self, channel: Channel) -> None:
        if self.by_peer.get(channel.peer):
            self.by_peer[channel.peer] -= 1
            if not self.by_peer[channel.peer]:
                del self.by_peer[channel.peer]

    def maintenance(self, now: float) -> None:
        """waitress closes idle connections (``channel_timeout``); we also close requests arriving too slowly."""
        super().maintenance(now)
        mono = time.monotonic()
        cutoff = mono - self.request_timeout
        slow = 0
        for channel in list(self.active_channels.values()):
            until = getattr(channel, "lingering_until", None)
            if until is not None:
                if until < mono:  # the client neither finished nor closed: enough
                    channel.close_now()
                continue
            since = getattr(channel, "receiving_since", None)
            if since is not None and since < cutoff and not channel.requests and not channel.will_close:
                channel.will_close = True
                slow += 1
        if slow:
            self.slow_closed += slow
            log.info("receiver: closed %d connection(s) that sent no complete request within "
                     "receiver.request_timeout (%g s)", slow, self.request_timeout)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's descriptor limit towards ``wanted`` (up to the hard limit); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else wanted


def make_server(app: Any, config: Config, host: str, port: int, *,
                on_error: Callable[[str, int], None] = lambda path, status: None) -> Server:
    """Bind ``host:port`` (port 0 = any free one; ``server.effective_port`` says which) with the receiver's
    limits; ``server.run()`` serves until SIGTERM/SIGINT. Raises OSError when the address cannot be bound."""
    rc = config.receiver
    quiet_queue_log()
    soft = raise_fd_limit(rc.max_connections + FD_RESERVE)
    connections = max(10, min(rc.max_connections, soft - FD_RESERVE))
    if connections < rc.max_connections:
        log.warning("receiver: the descriptor limit (%d) allows %d connections, not receiver.max_connections "
                    "%d; raise it (ulimit -n, LimitNOFILE=, launchd SoftResourceLimits)", soft, connections,
                    rc.max_connections)
    adj = Adjustments(host=host, port=port, threads=rc.threads, ident="govheal", connection_limit=connections,
                      channel_timeout=IDLE_TIMEOUT, cleanup_interval=CLEANUP_INTERVAL, asyncore_use_poll=True,
                      max_request_body_size=rc.max_body_bytes, clear_untrusted_proxy_headers=True)
    messages = {413: too_large_message(rc.max_body_bytes),
                431: "request headers too large; send a smaller request"}
    return Server(app, adj, request_timeout=rc.request_timeout, per_ip=rc.max_connections_per_ip,
                  error_messages=messages, on_error=on_error)
