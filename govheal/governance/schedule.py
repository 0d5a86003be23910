"""When a switch is in effect, and which silence windows it needs: pure functions of a switch and ``now``.

A switch has a ``start``, an optional ``expiry`` and an optional recurrence. Without a recurrence it
is in effect from start to expiry. With one it is in effect only inside the recurrence's windows, and
only between start and expiry (no expiry: every window from start on). Silences cover exactly the
windows in effect, clipped to start and expiry; for a recurring switch only those that begin within the
horizon exist ahead of time (Alertmanager shows them as pending), later ones are added as time passes.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Protocol

from govheal.governance.recurrence import Recurrence, parse

DEFAULT_HORIZON = 7 * 86400.0  # silences of a recurring window are created this far ahead


class Timed(Protocol):
    start: float
    expiry: float | None
    recurrence: str | None


@lru_cache(maxsize=256)
def compiled(spec: str) -> Recurrence:
    """Stored specs are normalised (they carry their zone), so parsing one again needs no default."""
    return parse(spec)


def expired(sw: Timed, now: float) -> bool:
    """Past its expiry: nothing of it applies any more (a recurring switch without expiry never expires)."""
    return sw.expiry is not None and sw.expiry <= now


def _end(sw: Timed) -> float:
    return math.inf if sw.expiry is None else sw.expiry


def current_window(sw: Timed, now: float) -> tuple[float, float | None] | None:
    """The window holding ``now`` as (begin, end; None = no end), or None when the switch is not in effect."""
    if now < sw.start or expired(sw, now):
        return None
    if not sw.recurrence:
        return (sw.start, sw.expiry)
    window = compiled(sw.recurrence).active_at(now)
    if window is None:
        return None
    return (max(window[0], sw.start), min(window[1], _end(sw)))


def in_effect(sw: Timed, now: float) -> bool:
    return current_window(sw, now) is not None


def windows(sw: Timed, now: float, horizon: float = DEFAULT_HORIZON) -> list[tuple[float, float]]:
    """The windows a silence must exist for, now: the current one and those beginning within ``horizon``.

    A one-off switch has one window (start → expiry) while not expired; it needs an expiry to be
    silenced (Alertmanager silences always end), so one without expiry gets none here.
    """
    if expired(sw, now):
        return []
    if not sw.recurrence:
        return [] if sw.expiry is None else [(sw.start, sw.expiry)]
    rec = compiled(sw.recurrence)
    begin, end = max(sw.start, now), min(_end(sw), now + horizon)
    if begin >= end:
        return []
    out = []
    for s, f in rec.windows(begin, end):
        s, f = max(s, sw.start), min(f, _end(sw))
        if s < f:
            out.append((s, f))
    return out


def next_change(sw: Timed, now: float) -> float | None:
    """When the switch next starts or stops applying (for "until …" on the page and the CLI)."""
    window = current_window(sw, now)
    if window is not None:
        return window[1]
    if expired(sw, now):
        return None
    if now < sw.start and not sw.recurrence:
        return sw.start
    for days in (8, 62, 400):  # most recurrences start again within a week: look that far first (the page
        upcoming = windows(sw, now, horizon=days * 86400.0)  # asks for every recurring switch each rebuild)
        if upcoming:
            return upcoming[0][0]
    return None


def expires_within(sw: Timed, now: float, within: float) -> bool:
    """Ends (its expiry) within ``within`` seconds: the CLI's "expiring within 24 h" list."""
    return sw.expiry is not None and now < sw.expiry <= now + within
