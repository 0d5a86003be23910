"""HTTP health probes: one cheap ``http.client`` request with a hard deadline, run on a persistent pool.

A probe never takes longer than its timeout by more than a socket operation's slack: the remaining
time is re-applied to the socket before each step. :class:`Prober` runs one probe per agent
concurrently; a probe still running against a hung agent is waited on again by the next scrape
instead of starting a second one, so a hung agent costs at most one worker thread (docs/exporter.md).
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

from exporter.snapshot import ProbeResult
from govheal.config import HealthCheck

MAX_BODY = 64 * 1024  # bytes of the body read for body_match; health answers are small
USER_AGENT = "govheal-exporter"


class _Deadline(Exception):
    pass


def probe(check: HealthCheck, clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    """GET ``check.url``; classify the outcome as one of snapshot.PROBE_REASONS (None = healthy)."""
    start = clock()
    deadline = start + check.timeout
    status: int | None = None
    parts = urlsplit(check.url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def remaining() -> float:
        left = deadline - clock()
        if left <= 0:
            raise _Deadline
        return left

    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=remaining(),
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=remaining())
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(remaining())
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        conn.sock.settimeout(remaining())
        resp = conn.getresponse()
        status = resp.status
        body = b""
        if check.body_match is not None:
            body = resp.read(MAX_BODY)
        reason = None
        if status != check.expect_status:
            reason = "bad_status"
        elif check.body_match is not None and not re.search(check.body_match, body.decode("utf-8", "replace")):
            reason = "body_mismatch"
        return ProbeResult(clock() - start, reason, status)
    except (_Deadline, TimeoutError):
        return ProbeResult(min(clock() - start, check.timeout), "timeout", status)
    except ConnectionRefusedError:
        return ProbeResult(clock() - start, "refused", None)
    except (OSError, http.client.HTTPException, ValueError):
        return ProbeResult(clock() - start, "error", status)
    finally:
        conn.close()


class ProbeBatch:
    """The probes of one scrape; :meth:`wait` collects them by one shared deadline."""

    def __init__(self, checks: dict[str, HealthCheck], futures: dict[str, tuple[Future[ProbeResult], float]],
                 start: float, clock: Callable[[], float]) -> None:
        self.checks, self.futures, self.start, self._clock = checks, futures, start, clock

    def wait(self, budget: float) -> dict[str, ProbeResult]:
        """Results within max(timeout) + ``budget`` of the start; later ones count as ``timeout``.

        A probe still running at the deadline is left to finish; the next scrape waits on it again
        instead of starting a second probe against the same hung agent.
        """
        if not self.checks:
            return {}
        deadline = self.start + max(c.timeout for c in self.checks.values()) + budget
        results: dict[str, ProbeResult] = {}
        for name, (future, started) in self.futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - self._clock()))
            except FutureTimeout:
                waited = self._clock() - started
                results[name] = ProbeResult(min(waited, self.checks[name].timeout), "timeout")
            except Exception:  # a bug in a probe must not fail the scrape
                results[name] = ProbeResult(self._clock() - started, "error")
        return results


ProbeFn = Callable[[HealthCheck], ProbeResult]


class Prober:
    """A persistent pool; at most one probe in flight per agent, results collected by a deadline."""

    def __init__(self, workers: int, probe_fn: ProbeFn = probe, clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="govheal-probe")
        self._probe = probe_fn
        self._clock = clock
        self._inflight: dict[str, tuple[Future[ProbeResult], float]] = {}
        self._lock = threading.Lock()

    def submit(self, checks: Mapping[str, HealthCheck]) -> ProbeBatch:
        """Start a probe for every agent that has none in flight; reuse the one still running."""
        start = self._clock()
        futures: dict[str, tuple[Future[ProbeResult], float]] = {}
        with self._lock:
            for name, check in checks.items():
                running = self._inflight.get(name)
                if running is None or running[0].done():
                    running = (self._pool.submit(self._probe, check), start)
                    self._inflight[name] = running
                futures[name] = running
            for name in set(self._inflight) - set(checks):
                del self._inflight[name]
        return ProbeBatch(dict(checks), futures, start, self._clock)

    def run(self, checks: Mapping[str, HealthCheck], budget: float) -> dict[str, ProbeResult]:
        return self.submit(checks).wait(budget)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
