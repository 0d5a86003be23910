"""The receiver's background part of governance: the silence retry loop, the mute feed and the notice filter.

- Every ``admin.sync_interval`` :meth:`Governance.sync` runs: pending silences land when Alertmanager is
  back, ended windows are dropped, recurring windows are topped up, expired switches are removed.
- **Mute feed.** Alertmanager hides a silenced alert from every receiver, the govheal webhook included, so
  a muted agent's AgentDown would never reach the remediator. Mute means "remediation goes on", so while
  a mute is in effect the loop asks Alertmanager (every ``MUTE_POLL`` s) for the alerts our mute silences
  hold and feeds them to the inbox exactly as the webhook would (same fingerprint and startsAt, so a later
  webhook delivery of the same alert is a duplicate); when one disappears, its resolve is fed too.
- **Notice filter.** The bridge gets no notice about a muted agent (mute or maintenance in effect):
  "nobody is told" holds even while Alertmanager is unreachable and the silence is still pending.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from govheal.governance.service import Governance
from govheal.state import log_failure

log = logging.getLogger("govheal.receiver.governance")
MUTE_POLL = 1.0  # seconds between Alertmanager polls while a mute is in effect
ZERO_TIME = "0001-01-01T00:00:00Z"


def go_time(t: datetime) -> str:
    """A time as Alertmanager's webhook writes it (Go RFC3339Nano, UTC): trailing zeros of the fraction dropped."""
    text = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


class GovernedBridge:
    """The bridge as the dispatcher sees it: notices about muted agents are dropped (and logged)."""

    def __init__(self, bridge: Any, governance: Governance) -> None:
        self._bridge = bridge
        self._gov = governance
        self.suppressed = 0

    def notify(self, notice: Any, *, dedupe_id: str | None = None) -> object:
        agent = getattr(notice, "agent", None)
        if agent:
            eff = self._gov.effective(agent)
            if eff.muted:
                self.suppressed += 1
                log.info("governance: notice %r about %s not sent: %s", getattr(notice, "key", ""), agent,
                         eff.why(("mute", "maintenance")))
                return None
        if dedupe_id is None:
            return self._bridge.notify(notice)
        return self._bridge.notify(notice, dedupe_id=dedupe_id)

    def __getattr__(self, name: str) -> Any:  # start, stop, send_direct, ... go to the real bridge
        return getattr(self._bridge, name)


class GovernanceLoop:
    """One daemon thread: the sync every ``interval`` and the mute feed every ``MUTE_POLL`` while needed."""

    def __init__(self, governance: Governance, *, interval: float, feed: Callable[[list[dict[str, Any]]], None],
                 poll: float = MUTE_POLL) -> None:
        self.gov = governance
        self.interval = interval
        self.feed = feed
        self.poll = poll
        self._tracked: dict[str, dict[str, Any]] = {}  # fingerprint → the firing alert we fed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_sync_error = ""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="governance-sync", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        next_sync = 0.0
        elapsed = 0.0
        while not self._stop.is_set():
            if elapsed >= next_sync:
                self.sync_once()
                next_sync = elapsed + self.interval
            try:
                self.mute_once()
            except Exception as exc:
                log_failure(log, "governance: mute feed round failed", exc)
            self._stop.wait(self.poll)
            elapsed += self.poll

    def sync_once(self) -> None:
        try:
            report = self.gov.sync()
        except Exception as exc:  # a bug (or a full state disk, logged once) must not stop the loop
            log_failure(log, "governance: silence sync failed", exc)
            return
        error = "; ".join(report.errors)[:300]
        if error and error != self.last_sync_error:
            log.warning("governance: %d silence(s) pending: %s", report.pending, error)
        elif not error and self.last_sync_error:
            log.info("governance: Alertmanager reachable again; pending silences written")
        self.last_sync_error = error

    def mute_once(self) -> int:
        """Feed the alerts our mute silences hold (firing) and those that went away (resolved); how many fed."""
        am = self.gov.am
        ids = {r.silence_id for r in self.gov.silences() if r.kind == "mute" and r.silence_id}
        if am is None or (not ids and not self._tracked):
            return 0
        alerts = None
        for member in am.members:
            try:
                alerts = member.alerts()
                break
            except Exception as exc:  # unreachable: try the next member, else next round
                log.debug("governance: mute feed cannot list alerts on %s: %s", member.url, exc)
        if alerts is None:
            return 0
        present = {a.fingerprint for a in alerts}
        out: list[dict[str, Any]] = []
        for a in alerts:
            if ids & set(a.silenced_by):
                if a.fingerprint not in self._tracked:
                    body = {"status": "firing", "labels": dict(a.labels), "annotations": dict(a.annotations),
                            "startsAt": go_time(a.starts_at), "endsAt": ZERO_TIME,
                            "generatorURL": getattr(a, "generator_url", ""), "fingerprint": a.fingerprint}
                    self._tracked[a.fingerprint] = body
                    out.append(body)
            else:
                self._tracked.pop(a.fingerprint, None)  # not silenced by us any more: the webhook has it
        for fp in [fp for fp in self._tracked if fp not in present]:
            body = self._tracked.pop(fp)
            out.append({**body, "status": "resolved", "endsAt": go_time(datetime.now(UTC))})
        if out:
            self.feed(out)
        return len(out)
