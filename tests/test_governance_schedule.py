"""Recurring windows and switch expiry: pure functions, an injected 'now', no sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from govheal.governance import schedule
from govheal.governance.recurrence import RecurrenceError, parse


def ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


@dataclass
class Sw:
    start: float
    expiry: float | None = None
    recurrence: str | None = None


# 2026-11-29 is a Sunday.
SUNDAY = "2026-11-29"


def test_weekday_form_lists_each_sunday_window():
    rec = parse("Sundays 02:00 for 1h")
    wins = rec.windows(ts("2026-11-25 00:00"), ts("2026-12-14 00:00"))
    assert [(utc(a), utc(b)) for a, b in wins] == [
        ("2026-11-29 02:00", "2026-11-29 03:00"), ("2026-12-06 02:00", "2026-12-06 03:00"),
        ("2026-12-13 02:00", "2026-12-13 03:00")]
    assert rec.text == "Sun 02:00 for 1h UTC"
    assert parse(rec.text) == rec  # the normalised text parses back to the same schedule


@pytest.mark.parametrize(("spec", "text"), [
    ("Mon-Fri 22:30 for 30m Europe/Berlin", "Mon-Fri 22:30 for 30m Europe/Berlin"),
    ("daily at 03:00 for 15m", "daily 03:00 for 15m UTC"),
    ("weekends 01:00 for 2h", "Sat,Sun 01:00 for 2h UTC"),
    ("Sat, Sun 00:00 for 1d", "Sat,Sun 00:00 for 24h UTC"),
    ("Fri-Mon 23:00 for 1h", "Mon,Fri,Sat,Sun 23:00 for 1h UTC"),
    ("Tuesdays and Thursdays 12:00 for 1h", "Tue,Thu 12:00 for 1h UTC"),
    ("cron 0 2 * * 0 for 1h", "cron 0 2 * * 0 for 1h UTC"),
    ("*/15 9-17 * * mon-fri for 5m America/New_York", "cron */15 9-17 * * mon-fri for 5m America/New_York"),
])
def test_forms_normalise(spec, text):
    assert parse(spec).text == text


def test_cron_and_weekday_forms_agree():
    a, b = parse("Sundays 02:00 for 1h"), parse("cron 0 2 * * 7 for 1h")
    span = (ts("2026-11-01 00:00"), ts("2027-01-01 00:00"))
    assert a.windows(*span) == b.windows(*span)
    assert len(a.windows(*span)) == 9


def test_cron_day_of_month_or_day_of_week_like_vixie_cron():
    rec = parse("cron 0 4 1 * sun for 1h")  # the 1st of the month OR any Sunday
    starts = [utc(t) for t in rec.starts(ts("2026-11-28 00:00"), ts("2026-12-08 00:00"))]
    assert starts == ["2026-11-29 04:00", "2026-12-01 04:00", "2026-12-06 04:00"]


def test_time_zone_is_wall_clock_across_daylight_saving():
    rec = parse("Sundays 02:30 for 1h Europe/Berlin")
    # 2026-03-29: Berlin jumps 02:00 → 03:00; 02:30 does not exist and happens at 03:30 CEST (01:30 UTC)
    spring = rec.starts(ts("2026-03-28 00:00"), ts("2026-03-30 00:00"))
    assert [utc(t) for t in spring] == ["2026-03-29 01:30"]
    # the week before (CET) and after (CEST): same wall clock, different UTC
    assert [utc(t) for t in rec.starts(ts("2026-03-21 00:00"), ts("2026-03-23 00:00"))] == ["2026-03-22 01:30"]
    assert [utc(t) for t in rec.starts(ts("2026-04-04 00:00"), ts("2026-04-06 00:00"))] == ["2026-04-05 00:30"]
    # 2026-10-25: 02:30 happens twice in Berlin; the window starts once, the first time (CEST)
    autumn = rec.starts(ts("2026-10-24 00:00"), ts("2026-10-26 00:00"))
    assert [utc(t) for t in autumn] == ["2026-10-25 00:30"]


@pytest.mark.parametrize(("spec", "message"), [
    ("Sundays 02:00", "has no duration ('for 1h')"),
    ("Sundays 02:00 for soon", "'soon' is not a duration"),
    ("Sundays 02:00 for 30s", "a window lasts from 1m to 7d"),
    ("Sundays 25:00 for 1h", "'25:00' is not a time of day HH:MM"),
    ("Funday 02:00 for 1h", "'funday' is not a day"),
    ("Sundays 02:00 for 1h Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("cron 0 2 * * for 1h", "cron needs five fields"),
    ("cron 61 2 * * * for 1h", "cron minute '61' is not a number from 0 to 59"),
    ("cron 0 2 * * 0/0 for 1h", "step '0' must be a positive number"),
    ("cron 0 9-2 * * * for 1h", "range '9-2' runs backwards"),
    ("", "empty recurrence"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(RecurrenceError) as err:
        parse(spec)
    assert message in str(err.value)


def test_default_time_zone_applies_when_none_given():
    assert parse("daily 09:00 for 1h", default_tz="Asia/Tokyo").tz == "Asia/Tokyo"


# -- switches ---------------------------------------------------------------------------------------


def test_one_off_switch_is_in_effect_from_start_to_expiry():
    sw = Sw(start=1000.0, expiry=2000.0)
    assert not schedule.in_effect(sw, 999.0)
    assert schedule.in_effect(sw, 1000.0)
    assert schedule.in_effect(sw, 1999.9)
    assert not schedule.in_effect(sw, 2000.0)  # expiry is exclusive
    assert schedule.expired(sw, 2000.0)
    assert schedule.windows(sw, 1500.0) == [(1000.0, 2000.0)]
    assert schedule.windows(sw, 2000.0) == []
    assert schedule.next_change(sw, 1500.0) == 2000.0


def test_recurring_switch_applies_only_inside_its_windows_and_before_expiry():
    start = ts(f"{SUNDAY} 00:00")
    sw = Sw(start=start, expiry=ts("2026-12-10 00:00"), recurrence="Sun 02:00 for 1h UTC")
    assert not schedule.in_effect(sw, ts(f"{SUNDAY} 01:59"))
    assert schedule.current_window(sw, ts(f"{SUNDAY} 02:30")) == (ts(f"{SUNDAY} 02:00"), ts(f"{SUNDAY} 03:00"))
    assert not schedule.in_effect(sw, ts(f"{SUNDAY} 03:00"))
    assert schedule.next_change(sw, ts(f"{SUNDAY} 03:00")) == ts("2026-12-06 02:00")
    # a silence per window, for the windows that begin within the horizon; none after expiry
    wins = schedule.windows(sw, ts(f"{SUNDAY} 01:00"), horizon=30 * 86400)
    assert [(utc(a), utc(b)) for a, b in wins] == [
        ("2026-11-29 02:00", "2026-11-29 03:00"), ("2026-12-06 02:00", "2026-12-06 03:00")]
    assert len(schedule.windows(sw, ts(f"{SUNDAY} 01:00"), horizon=86400)) == 1
    assert not schedule.in_effect(sw, ts("2026-12-13 02:30"))  # expired by then


def test_recurring_window_is_clipped_to_the_switch():
    sw = Sw(start=ts(f"{SUNDAY} 02:20"), expiry=ts(f"{SUNDAY} 02:40"), recurrence="Sun 02:00 for 1h UTC")
    assert schedule.windows(sw, ts(f"{SUNDAY} 02:25")) == [(ts(f"{SUNDAY} 02:20"), ts(f"{SUNDAY} 02:40"))]


def test_recurring_switch_without_expiry_never_expires():
    sw = Sw(start=0.0, recurrence="daily 00:00 for 1h UTC")
    far = ts("2030-01-01 00:30")
    assert schedule.in_effect(sw, far)
    assert not schedule.expired(sw, far)
    assert not schedule.expires_within(sw, far, 86400)


def test_one_off_switch_without_expiry_gets_no_silence_window():
    assert schedule.windows(Sw(start=0.0), 10.0) == []


def test_expiring_within_24h():
    sw = Sw(start=0.0, expiry=100_000.0)
    assert schedule.expires_within(sw, 100_000.0 - 86400, 86400)
    assert not schedule.expires_within(sw, 100_000.0 - 86401, 86400)
