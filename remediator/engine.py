"""The Remediator: policy + strategies + verification + store + audit + metrics, one action per agent."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from govheal.config import Config
from remediator.api import Event, Request, Result

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from remediator.audit import AuditLog
    from remediator.store import Store
    from remediator.strategies import Strategy


class Remediator:
    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        registry: CollectorRegistry | None = None,
        audit: AuditLog | None = None,
        strategies: Mapping[str, Strategy] | None = None,
    ) -> None:
        raise NotImplementedError("remediator engine: in progress")

    def submit(self, req: Request, *, dry_run: bool = False) -> Result:
        """Blocking; one action per agent at a time (across threads and processes)."""
        raise NotImplementedError

    def resolve(self, agent: str, incident: str) -> None:
        """The alert resolved: close the incident."""
        raise NotImplementedError

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """``listener`` is called for every Event (progress "restarting", then the outcome)."""
        raise NotImplementedError

    def plan(self, req: Request) -> str:
        """What submit would do (for --dry-run)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
