"""The alert bridge: durable, paced, merged delivery of :class:`Notice` to Discord and Telegram."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import requests
from prometheus_client import CollectorRegistry

from govheal.config import Config

from .model import Notice, Severity
from .secrets import Secrets

__all__ = ["Bridge", "Notice", "Secrets", "Severity"]


class Bridge:
    """Owns the outbox and one delivery worker per enabled channel."""

    def __init__(
        self,
        config: Config,
        *,
        conn: sqlite3.Connection,
        registry: CollectorRegistry | None = None,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        secrets: Secrets | None = None,
    ) -> None:
        raise NotImplementedError  # filled in shortly

    def notify(self, notice: Notice) -> None:
        """Durably enqueue for every channel that wants it; never blocks on the network."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        raise NotImplementedError

    def send_direct(self, notice: Notice) -> None:
        """Dead-man's switch path: same outbox, flagged, no dependency on Alertmanager."""
        raise NotImplementedError

    def depth(self) -> dict[str, int]:
        raise NotImplementedError
