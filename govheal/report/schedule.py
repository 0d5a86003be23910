"""Which slot a run produces, how late it is, and which window it covers. Pure: the clock is an argument.

Slots are local times of day (``reports.slots``, default 09:00 and 21:00, in ``reports.timezone`` or the
machine's zone). A run without ``--date``/``--slot`` produces the latest slot that is due, if nobody has
produced it yet: on time, or as a **catch-up** when it runs more than ``catch_up_after`` late (the Mac
slept or was off). Older slots nobody ran are marked missed and superseded: the catch-up's window reaches
back to cover them, so no time falls between two reports. A run with ``--date``/``--slot`` is an
operator's: it covers the last ``window`` up to now.

File names keep the seed's ``CLS_DAILY_<date>`` prefix and add the slot: ``CLS_DAILY_2026-12-01_09.log``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from govheal.config import ReportsSpec
from govheal.errors import UsageError

PREFIX = "CLS_DAILY_"
MAX_MISSED = 62  # a month of two slots a day is the most we list as missed
MAX_WINDOW = 7 * 86400.0  # a catch-up after a long absence covers at most a week (query cost, retention)


@dataclass(frozen=True)
class Slot:
    day: date
    label: str  # "09", or "0930" for a slot not on the hour
    time: str  # "09:00"
    scheduled_at: float  # epoch seconds

    @property
    def id(self) -> str:
        return f"{self.day.isoformat()}_{self.label}"

    @property
    def stem(self) -> str:
        return f"{PREFIX}{self.id}"


@dataclass(frozen=True)
class Plan:
    slot: Slot
    window_start: float
    window_end: float
    lateness: float
    catch_up: bool
    manual: bool
    missed: tuple[Slot, ...] = ()


def zone(spec: ReportsSpec) -> tzinfo | None:
    """The slots' zone; None = this machine's local time (DST-aware through the C library)."""
    return ZoneInfo(spec.timezone) if spec.timezone else None


def zone_name(spec: ReportsSpec) -> str:
    """The IANA name, or ``local <abbreviation>`` (rendered in this machine's zone, DST included)."""
    if spec.timezone:
        return spec.timezone
    return f"local {datetime.now().astimezone().tzname() or ''}".strip()


def label_of(hhmm: str) -> str:
    hh, mm = hhmm.split(":")
    return hh if mm == "00" else hh + mm


def _at(day: date, hhmm: str, tz: tzinfo | None) -> float:
    hh, mm = (int(x) for x in hhmm.split(":"))
    naive = datetime(day.year, day.month, day.day, hh, mm)
    return (naive.replace(tzinfo=tz) if tz else naive.astimezone()).timestamp()


def _day_of(ts: float, tz: tzinfo | None) -> date:
    return (datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts)).date()


def slots_of(day: date, spec: ReportsSpec) -> list[Slot]:
    tz = zone(spec)
    return [Slot(day, label_of(t), t, _at(day, t, tz)) for t in spec.slots]


def latest_due(now: float, spec: ReportsSpec) -> Slot:
    """The latest slot scheduled at or before ``now``."""
    day = _day_of(now, zone(spec))
    for d in (day, day - timedelta(days=1), day - timedelta(days=2)):
        due = [s for s in slots_of(d, spec) if s.scheduled_at <= now]
        if due:
            return due[-1]
    raise AssertionError("a slot exists every day")  # pragma: no cover


def slots_between(after: float, before: float, spec: ReportsSpec) -> list[Slot]:
    """Slots scheduled strictly after ``after`` and strictly before ``before`` (oldest first, bounded)."""
    tz = zone(spec)
    day, last = _day_of(max(after, before - 40 * 86400), tz), _day_of(before, tz)
    out: list[Slot] = []
    while day <= last:
        out += [s for s in slots_of(day, spec) if after < s.scheduled_at < before]
        day += timedelta(days=1)
    return out[-MAX_MISSED:]


def parse_slot(day_text: str | None, slot_text: str | None, now: float, spec: ReportsSpec) -> Slot:
    """An explicit ``--date``/``--slot`` (either may be left out: today / the latest slot due that day)."""
    tz = zone(spec)
    if day_text is None:
        day = _day_of(now, tz)
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", day_text):
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise UsageError(f"--date {day_text}: not a calendar date; write YYYY-MM-DD") from None
    else:
        raise UsageError(f"--date {day_text!r}: write YYYY-MM-DD, e.g. 2026-12-01")
    slots = slots_of(day, spec)
    if slot_text is None:
        due = [s for s in slots if s.scheduled_at <= now]
        if not due:
            raise UsageError(f"--date {day.isoformat()}: no slot of that day is due yet (slots "
                             f"{', '.join(spec.slots)}); pick an earlier date or give --slot")
        return due[-1]
    wanted = slot_text.replace(":", "")
    for s in slots:
        if wanted in (s.label, s.time.replace(":", "")):
            break
    else:
        known = ", ".join(label_of(t) for t in spec.slots)
        raise UsageError(f"--slot {slot_text}: not a configured slot (reports.slots: {known})")
    if s.scheduled_at > now:
        raise UsageError(f"slot {s.id} is in the future ({s.time}); a report covers time that has passed")
    return s


def plan_manual(slot: Slot, now: float, window: float) -> Plan:
    return Plan(slot=slot, window_start=now - window, window_end=now, lateness=max(0.0, now - slot.scheduled_at),
                catch_up=False, manual=True)


def plan_due(now: float, spec: ReportsSpec, produced: set[str], last_recorded: float | None,
             window: float | None = None) -> Plan | None:
    """The scheduled run at ``now``: None when the latest due slot has a record already.

    ``produced`` holds the slot ids in the store (any state); ``last_recorded`` is the scheduled time of the
    newest recorded slot (None on a fresh state): slots between it and the due one were missed.
    """
    slot = latest_due(now, spec)
    if slot.id in produced:
        return None
    missed = tuple(s for s in slots_between(last_recorded, slot.scheduled_at, spec) if s.id not in produced) \
        if last_recorded is not None else ()
    lateness = now - slot.scheduled_at
    length = window if window is not None else spec.window
    first = missed[0] if missed else slot
    start = max(min(now - length, first.scheduled_at - length), now - max(length, MAX_WINDOW))
    return Plan(slot=slot, window_start=start, window_end=now, lateness=lateness,
                catch_up=lateness > spec.catch_up_after, manual=False, missed=missed)
