"""Recurring switch windows: parse a spec once, then list its occurrences in a time range. Pure: no clock.

Two forms, both with an optional IANA time zone at the end (default: the caller's ``default_tz``):

* weekday form: ``Sundays 02:00 for 1h``, ``Mon-Fri 22:30 for 30m Europe/Berlin``, ``daily 03:00 for
  15m``, ``weekdays 01:00 for 2h``, ``Sat,Sun 00:00 for 1d UTC``;
* cron form: ``cron 0 2 * * 0 for 1h`` (or the five fields without ``cron``): minute hour
  day-of-month month day-of-week, with ``*``, ``a-b``, ``*/n``, ``a-b/n``, lists and names; as in
  Vixie cron a restricted day-of-month and day-of-week match either one.

Times are wall-clock times in the zone. A start that falls into a daylight-saving gap (02:30 on the
night clocks jump from 02:00 to 03:00) happens at the same offset after it (03:30); a start in the hour
that repeats when clocks go back happens once, the first time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from govheal.types import format_duration, parse_duration

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = Python weekday()
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_GROUPS = {"daily": range(7), "day": range(7), "everyday": range(7), "weekdays": range(5),
              "weekends": (5, 6), "weekend": (5, 6)}
MAX_DURATION = 7 * 86400.0  # a window longer than a week overlaps the next one; use a plain switch
EXAMPLES = "e.g. 'Sundays 02:00 for 1h', 'Mon-Fri 22:00 for 30m Europe/Berlin' or 'cron 0 2 * * 0 for 1h'"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class RecurrenceError(ValueError):
    """The spec cannot be parsed; the message says which part and shows a valid example."""


@dataclass(frozen=True)
class Recurrence:
    """A compiled spec: which local minutes start a window, how long it lasts, in which zone."""

    text: str  # normalised spec, e.g. "Sun 02:00 for 1h UTC"; parse(text) gives this object back
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # day of month 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # Python weekday(): Monday 0 … Sunday 6
    days_restricted: bool  # cron: day-of-month field was not '*'
    weekdays_restricted: bool
    duration: float  # seconds
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def _day_matches(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom, dow = d.day in self.days, d.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def starts(self, start: float, end: float) -> list[float]:
        """Window start times (epoch seconds) s with start <= s < end, in order."""
        zone = self.zone
        out: list[float] = []
        day = datetime.fromtimestamp(start, zone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        last = datetime.fromtimestamp(end, zone).replace(tzinfo=None)
        while day <= last:
            if self._day_matches(day):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        local = day.replace(hour=h, minute=m).replace(tzinfo=zone, fold=0)
                        t = local.timestamp()
                        if start <= t < end and (not out or t > out[-1]):
                            out.append(t)
            day += timedelta(days=1)
        return out

    def windows(self, start: float, end: float) -> list[tuple[float, float]]:
        """Every window (begin, finish) that overlaps [start, end), in order; overlapping ones merged."""
        merged: list[tuple[float, float]] = []
        for s in self.starts(start - self.duration, end):
            f = s + self.duration
            if f <= start:
                continue
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], f))
            else:
                merged.append((s, f))
        return merged

    def active_at(self, t: float) -> tuple[float, float] | None:
        """The window holding ``t``, if any."""
        found = self.windows(t, t + 1e-6)
        return found[0] if found else None

    def next_start(self, t: float, within: float = 400 * 86400.0) -> float | None:
        starts = self.starts(t, t + within)
        return starts[0] if starts else None


# ---------------------------------------------------------------------------------------------
# Parsing


def parse(spec: str, default_tz: str = "UTC") -> Recurrence:
    """``spec`` → :class:`Recurrence`; :class:`RecurrenceError` naming what is wrong otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise RecurrenceError(f"empty recurrence; write {EXAMPLES}")
    words = spec.strip().split()
    lowered = [w.lower() for w in words]
    if "for" not in lowered:
        raise RecurrenceError(f"recurrence {spec!r} has no duration ('for 1h'); write {EXAMPLES}")
    at = len(lowered) - 1 - lowered[::-1].index("for")
    head, tail = words[:at], words[at + 1:]
    if not tail:
        raise RecurrenceError(f"recurrence {spec!r}: 'for' needs a duration such as 30m or 2h")
    try:
        duration = parse_duration(tail[0])
    except ValueError:
        raise RecurrenceError(f"recurrence {spec!r}: {tail[0]!r} is not a duration; write e.g. 30m, 2h, 1h30m") \
            from None
    if not 60 <= duration <= MAX_DURATION:
        raise RecurrenceError(f"recurrence {spec!r}: a window lasts from 1m to 7d (got {tail[0]})")
    if len(tail) > 2:
        raise RecurrenceError(f"recurrence {spec!r}: unexpected {' '.join(tail[2:])!r} after the time zone")
    tz = tail[1] if len(tail) == 2 else default_tz
    _check_zone(tz, spec)
    if head and head[0].lower() == "cron":
        head = head[1:]
        if len(head) != 5:
            raise RecurrenceError(f"recurrence {spec!r}: cron needs five fields (minute hour day-of-month month "
                                  f"day-of-week), got {len(head)}")
    if len(head) == 5:
        return _cron(head, duration, tz, spec)
    return _weekly(head, duration, tz, spec)


def _check_zone(tz: str, spec: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"recurrence {spec!r}: unknown time zone {tz!r}; use an IANA name such as UTC, "
                              "Europe/Berlin or America/New_York") from None


def _weekly(head: list[str], duration: float, tz: str, spec: str) -> Recurrence:
    words = [w.lower() for w in head if w.lower() not in ("at", "every", "on")]
    if len(words) < 2:
        raise RecurrenceError(f"recurrence {spec!r}: give the days and a time, {EXAMPLES}")
    match = _TIME.match(words[-1])
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise RecurrenceError(f"recurrence {spec!r}: {head[-1]!r} is not a time of day HH:MM (00:00-23:59)")
    hour, minute = int(match.group(1)), int(match.group(2))
    days: set[int] = set()
    for token in re.split(r",|\band\b", " ".join(words[:-1])):
        token = token.strip()
        if not token:
            continue
        days |= _day_token(token, spec)
    if not days:
        raise RecurrenceError(f"recurrence {spec!r}: no days given; {EXAMPLES}")
    text = f"{_days_text(days)} {hour:02d}:{minute:02d} for {format_duration(duration)} {tz}"
    return Recurrence(text=text, minutes=frozenset({minute}), hours=frozenset({hour}),
                      days=frozenset(range(1, 32)), months=frozenset(range(1, 13)), weekdays=frozenset(days),
                      days_restricted=False, weekdays_restricted=True, duration=duration, tz=tz)


def _day(name: str, spec: str) -> int:
    key = name.strip().lower().rstrip("s")[:3] if len(name.strip()) > 2 else name.strip().lower()
    if key in DAY_NAMES:
        return DAY_NAMES.index(key)
    raise RecurrenceError(f"recurrence {spec!r}: {name!r} is not a day; use Mon … Sun (Monday, Mondays), "
                          "daily, weekdays or weekends")


def _day_token(token: str, spec: str) -> set[int]:
    token = token.replace(" ", "")
    if token in DAY_GROUPS:
        return set(DAY_GROUPS[token])
    if "-" in token:
        a, _, b = token.partition("-")
        first, last = _day(a, spec), _day(b, spec)
        return {(first + i) % 7 for i in range((last - first) % 7 + 1)}
    return {_day(token, spec)}


def _days_text(days: set[int]) -> str:
    if days == set(range(7)):
        return "daily"
    if days == set(range(5)):
        return "Mon-Fri"
    return ",".join(DAY_NAMES[d].capitalize() for d in sorted(days))


def _cron(fields: list[str], duration: float, tz: str, spec: str) -> Recurrence:
    minute = _field(fields[0], 0, 59, (), "minute", spec)
    hour = _field(fields[1], 0, 23, (), "hour", spec)
    dom = _field(fields[2], 1, 31, (), "day-of-month", spec)
    month = _field(fields[3], 1, 12, MONTH_NAMES, "month", spec, name_base=1)
    cron_dow = _field(fields[4], 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"), "day-of-week", spec)
    weekdays = {(d - 1) % 7 for d in cron_dow}  # cron: 0 and 7 are Sunday; Python: Monday is 0
    text = f"cron {' '.join(fields)} for {format_duration(duration)} {tz}"
    return Recurrence(text=text, minutes=frozenset(minute), hours=frozenset(hour), days=frozenset(dom),
                      months=frozenset(month), weekdays=frozenset(weekdays),
                      days_restricted=not fields[2].startswith("*"), weekdays_restricted=not fields[4].startswith("*"),
                      duration=duration, tz=tz)


def _field(text: str, low: int, high: int, names: tuple[str, ...], what: str, spec: str,
           name_base: int = 0) -> set[int]:
    def value(v: str) -> int:
        v = v.lower()
        if v[:3] in names and not v.isdigit():
            return names.index(v[:3]) + name_base
        if not v.isdigit() or not low <= int(v) <= high:
            raise RecurrenceError(f"recurrence {spec!r}: cron {what} {v!r} is not a number from {low} to {high}"
                                  + (f" or a name ({', '.join(names)})" if names else ""))
        return int(v)

    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise RecurrenceError(f"recurrence {spec!r}: cron {what} step {step_text!r} must be a positive number")
            step = int(step_text)
        if rng == "*":
            first, last = low, high
        elif "-" in rng:
            a, _, b = rng.partition("-")
            first, last = value(a), value(b)
            if first > last:
                raise RecurrenceError(f"recurrence {spec!r}: cron {what} range {rng!r} runs backwards")
        else:
            first = value(rng)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    return out


def utc_text(t: float) -> str:
    """An epoch time as RFC 3339 UTC with seconds (what Alertmanager and the API show)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
