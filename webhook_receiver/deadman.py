"""Dead-man's switch: Alertmanager's always-firing Watchdog must keep arriving at ``POST /watchdog``.

If none arrives for ``receiver.deadman_timeout`` the receiver pages CRIT "alert pipeline silent"
straight to the channels (``Bridge.send_direct``), once per silence episode, and INFO when heartbeats
return. State lives in the inbox so a restart neither forgets an episode nor pages twice; after a start
the receiver waits one full timeout before calling the pipeline silent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from govheal.config import Config
from govheal.state import log_failure
from webhook_receiver.bridge import wording
from webhook_receiver.bridge.model import Notice
from webhook_receiver.inbox import Inbox
from webhook_receiver.metrics import ReceiverMetrics

log = logging.getLogger("govheal.receiver.deadman")


class Send(Protocol):
    def __call__(self, notice: Notice, *, dedupe_id: str | None = None) -> object: ...


class Deadman:
    def __init__(self, config: Config, inbox: Inbox, send: Send, *,
                 clock: Callable[[], float] = time.time, metrics: ReceiverMetrics | None = None) -> None:
        self.node = config.node
        self.timeout = config.receiver.deadman_timeout
        self.inbox = inbox
        self.send = send
        self.clock = clock
        self.metrics = metrics
        self.started = clock()
        self.last_seen, self.silent_since = inbox.watchdog()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publish()

    def _publish(self) -> None:
        if self.metrics:
            self.metrics.watchdog_last_seen.set(self.last_seen or 0)
            self.metrics.pipeline_silent.set(1 if self.silent_since is not None else 0)

    def _key(self, since: float) -> str:
        return f"deadman:{self.node}:{int(since)}"

    def beat(self) -> None:
        """A Watchdog arrived: record it; if we had paged, say the pipeline is back."""
        now = self.clock()
        with self._lock:
            was_silent = self.silent_since
            self.last_seen, self.silent_since = now, None
            try:
                self.inbox.set_watchdog(now, None)
            except Exception as exc:  # a full state disk: the heartbeat still counts; only a restart forgets it
                log_failure(log, "deadman: could not record the heartbeat", exc)
            self._publish()
        if was_silent is not None:
            self._send(f"deadman:{self.node}:back:{was_silent!r}",
                       wording.pipeline_back(self._key(was_silent), self.node, now - was_silent, now))

    def check(self) -> bool:
        """Page if the heartbeat is overdue and this episode has not been paged; True when it paged."""
        now = self.clock()
        with self._lock:
            reference = max(self.last_seen or 0.0, self.started)
            if self.silent_since is not None or now - reference < self.timeout:
                return False
            notice = wording.pipeline_silent(self._key(now), self.node, now - reference, self.timeout, now)
            # The episode is named by the last heartbeat before it, so a kill between this hand-over and
            # the state write below cannot page the same silence twice (the bridge dedupes on the id).
            episode = f"deadman:{self.node}:silent-after:{self.last_seen!r}"
            if not self._send(episode, notice):
                return False  # try again on the next check
            self.silent_since = now
            self.inbox.set_watchdog(self.last_seen, now)
            self._publish()
        return True

    def _send(self, dedupe_id: str, notice: Notice) -> bool:
        try:
            self.send(notice, dedupe_id=dedupe_id)
        except Exception as exc:
            log_failure(log, "deadman: could not hand the notice to the bridge", exc)
            return False
        log.warning("deadman: %s (%s)", notice.title, notice.severity)
        return True

    def start(self, interval: float | None = None) -> None:
        every = interval if interval is not None else max(0.05, min(5.0, self.timeout / 10))

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.check()
                except Exception as exc:
                    log_failure(log, "deadman: check failed", exc)

        self._thread = threading.Thread(target=loop, name="deadman", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()
