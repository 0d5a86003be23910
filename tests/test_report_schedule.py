"""Slots, lateness, catch-up and windows: pure, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from govheal.config import ReportsSpec
from govheal.errors import UsageError
from govheal.report import schedule

UTC_SPEC = ReportsSpec(timezone="UTC")
BKK = ReportsSpec(timezone="Asia/Bangkok")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_slot_ids_and_file_names_keep_the_seeds_prefix_and_add_the_slot() -> None:
    s = schedule.latest_due(at("2026-12-01T09:00:04"), UTC_SPEC)
    assert (s.id, s.stem, s.time) == ("2026-12-01_09", "CLS_DAILY_2026-12-01_09", "09:00")
    assert schedule.label_of("21:30") == "2130"


@pytest.mark.parametrize(("now", "due"), [
    ("2026-12-01T08:59:59", "2026-11-30_21"),
    ("2026-12-01T09:00:00", "2026-12-01_09"),
    ("2026-12-01T20:59:59", "2026-12-01_09"),
    ("2026-12-01T23:00:00", "2026-12-01_21"),
])
def test_the_latest_due_slot(now, due) -> None:
    assert schedule.latest_due(at(now), UTC_SPEC).id == due


def test_slots_are_local_times_of_their_zone() -> None:
    # 09:00 in Bangkok (UTC+7) is 02:00 UTC
    s = schedule.latest_due(at("2026-12-01T02:00:30"), BKK)
    assert s.id == "2026-12-01_09" and s.scheduled_at == at("2026-12-01T02:00:00")


def test_an_on_time_run_is_not_a_catch_up_and_covers_the_window_up_to_now() -> None:
    now = at("2026-12-01T09:00:04")
    p = schedule.plan_due(now, UTC_SPEC, set(), at("2026-11-30T21:00:00"))
    assert p and not p.catch_up and p.lateness == 4 and p.missed == ()
    assert (p.window_start, p.window_end) == (at("2026-11-30T21:00:00"), now)


def test_a_missed_0900_runs_once_at_the_next_start_as_a_catch_up_covering_the_missed_time() -> None:
    now = at("2026-12-01T11:30:00")  # the Mac slept through 09:00
    p = schedule.plan_due(now, UTC_SPEC, {"2026-11-30_21"}, at("2026-11-30T21:00:00"))
    assert p and p.slot.id == "2026-12-01_09" and p.catch_up and p.lateness == 2.5 * 3600
    assert p.window_start == at("2026-11-30T21:00:00"), "back to the previous report: no gap"
    assert schedule.plan_due(now, UTC_SPEC, {"2026-11-30_21", "2026-12-01_09"}, at("2026-12-01T09:00:00")) is None


def test_slots_nobody_ran_are_listed_as_missed_and_the_window_reaches_back_over_them() -> None:
    now = at("2026-12-02T10:00:00")  # off from before 2026-12-01 09:00 until now
    p = schedule.plan_due(now, UTC_SPEC, {"2026-11-30_21"}, at("2026-11-30T21:00:00"))
    assert p and p.slot.id == "2026-12-02_09"
    assert [m.id for m in p.missed] == ["2026-12-01_09", "2026-12-01_21"]
    assert p.window_start == at("2026-11-30T21:00:00")


def test_a_catch_up_after_a_long_absence_covers_at_most_a_week() -> None:
    now = at("2026-12-31T10:00:00")
    p = schedule.plan_due(now, UTC_SPEC, set(), at("2026-12-01T09:00:00"))
    assert p and now - p.window_start == schedule.MAX_WINDOW
    assert len(p.missed) == 59 and p.missed[0].id == "2026-12-01_21"
    p = schedule.plan_due(now, UTC_SPEC, set(), at("2026-10-01T09:00:00"))
    assert p and len(p.missed) == schedule.MAX_MISSED, "a bounded list, the newest ones"


def test_a_fresh_state_runs_the_latest_slot_and_lists_nothing_missed() -> None:
    p = schedule.plan_due(at("2026-12-01T10:00:00"), UTC_SPEC, set(), None)
    assert p and p.slot.id == "2026-12-01_09" and p.missed == () and p.catch_up


def test_an_operator_run_covers_the_last_window_up_to_now() -> None:
    now = at("2026-12-01T15:00:00")
    s = schedule.parse_slot("2026-12-01", "09", now, UTC_SPEC)
    p = schedule.plan_manual(s, now, 600)
    assert p.manual and not p.catch_up and (p.window_start, p.window_end) == (now - 600, now)
    assert schedule.parse_slot("2026-12-01", "09:00", now, UTC_SPEC).id == "2026-12-01_09"
    assert schedule.parse_slot("2026-12-01", None, now, UTC_SPEC).id == "2026-12-01_09"
    assert schedule.parse_slot(None, "09", now, UTC_SPEC).id == "2026-12-01_09"


@pytest.mark.parametrize(("date", "slot", "message"), [
    ("2026-13-01", "09", "not a calendar date"),
    ("1.12.2026", "09", "write YYYY-MM-DD"),
    ("2026-12-01", "10", r"not a configured slot \(reports.slots: 09, 21\)"),
    ("2026-12-01", "21", "is in the future"),
    ("2026-12-02", None, "no slot of that day is due yet"),
])
def test_bad_dates_and_slots_are_usage_errors_that_say_how(date, slot, message) -> None:
    with pytest.raises(UsageError, match=message):
        schedule.parse_slot(date, slot, at("2026-12-01T15:00:00"), UTC_SPEC)
