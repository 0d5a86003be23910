"""The report's time accounting of a step series (one sample per rule evaluation), against the truth of a
simulated fleet: exact to the window at both edges, whatever the evaluations' phase, so availability and
downtime are each within one step of what happened (tests/test_report_live.py checks it on a real
Prometheus). The inputs are what Prometheus answers: the samples in the closed range [end - window, end]
and the newest sample at or before start + step and at or before end."""

from __future__ import annotations

import math

import pytest

from govheal.report.fetch import _rng, step_seconds

STEP = 1.0
START = 1_000.37


def simulate(phase: float, length: float, down: tuple[float, float], lag: float, stop: tuple[float, float] = (0, 0),
             step: float = STEP) -> tuple[tuple[float, float], float]:
    """Evaluations at phase + k*step, each recording what the scrape ``lag`` before it saw: 0 while the agent
    was down (``down``, seconds after START), none while Prometheus was stopped (``stop``)."""
    end = START + length
    grid = [phase + k * step for k in range(math.floor(START - 10), math.ceil(end) + 1)]
    samples = [(t, 0.0 if down[0] <= t - lag - START < down[1] else 1.0) for t in grid
               if not stop[0] <= t - START < stop[1]]
    inside = [(t, v) for t, v in samples if START <= t <= end]

    def newest(at: float) -> tuple[float, float] | None:
        return max((s for s in samples if s[0] <= at), default=None)

    return step_seconds(len(inside), sum(v for _, v in inside), step, START, end, newest(START + step),
                        newest(end)), end


PHASES = [i / 10 for i in range(10)]
LENGTHS = [12.5, 13.64, 14.05, 17.33]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("phase", PHASES)
def test_a_fully_seen_window_is_seen_exactly_and_its_downtime_is_within_one_step(phase, length) -> None:
    down = (3.0, length - 2.5)  # killed 3 s in, healthy again 2.5 s before the end (the live test's shape)
    for lag in (0.0, 0.3, 0.9):
        (seen, healthy), _ = simulate(phase, length, down, lag)
        truth = down[1] - down[0]
        assert seen == pytest.approx(length), (phase, length, lag)
        assert abs((seen - healthy) - truth) < STEP, (phase, length, lag, seen - healthy, truth)
        assert abs(healthy - (length - truth)) < STEP, (phase, length, lag, healthy, length - truth)


@pytest.mark.parametrize("phase", PHASES)
def test_time_prometheus_did_not_evaluate_is_unseen_and_never_healthy(phase) -> None:
    length = 20.0
    for stop in ((5.0, 11.0), (14.0, 21.0)):  # stopped in the middle; stopped until after the end
        (seen, healthy), _ = simulate(phase, length, (0, 0), 0.3, stop=stop)
        gap = min(stop[1], length) - stop[0]
        assert abs(seen - (length - gap)) < STEP, (phase, stop, seen)
        assert healthy == pytest.approx(seen)  # healthy all the time it was seen: never more


def test_a_window_with_no_sample_is_not_seen_at_all() -> None:
    assert step_seconds(0, 0, STEP, START, START + 10, None, None) == (0.0, 0.0)


def test_the_range_selector_is_the_window_to_the_millisecond() -> None:
    assert _rng(13.6404) == "13640ms" and _rng(12 * 3600) == "43200000ms" and _rng(0.0001) == "1ms"
