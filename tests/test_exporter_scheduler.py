"""The probe schedule: its own interval per agent, one probe per agent at a time, failures in a row."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from exporter.scheduler import HealthState, ProbeScheduler, record
from exporter.snapshot import ProbeResult
from govheal.config import HealthCheck

OK = ProbeResult(0.001, None, 200)
TIMEOUT = ProbeResult(0.2, "timeout")


def test_failures_in_a_row_count_up_and_a_pass_resets_them():
    s = HealthState()
    for n in (1, 2, 3):
        s = record(s, TIMEOUT, 100.0 + n)
        assert s.consecutive_failures == n and s.last is TIMEOUT and s.probed_at == 100.0 + n
    s = record(s, ProbeResult(0.01, "bad_status", 503), 110.0)
    assert s.consecutive_failures == 4  # every failure reason counts
    s = record(s, OK, 111.0)
    assert s.consecutive_failures == 0 and s.probes == 5


def check(url: str = "http://127.0.0.1:1/h") -> HealthCheck:
    return HealthCheck(url=url, timeout=0.2)


class Recorder:
    """A fake probe: records start and end times per URL; ``hold`` seconds per probe for hung URLs."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.spans: dict[str, list[tuple[float, float]]] = {}

    def __call__(self, c: HealthCheck) -> ProbeResult:
        t0 = time.monotonic()
        if "hung" in c.url:
            time.sleep(self.hold)
        with self.lock:
            self.spans.setdefault(c.url, []).append((t0, time.monotonic()))
        return TIMEOUT if "hung" in c.url else OK


def run_for(scheduler: ProbeScheduler, seconds: float) -> None:
    scheduler.start()
    try:
        time.sleep(seconds)
    finally:
        scheduler.close()


def test_each_agent_is_probed_on_its_own_interval():
    rec = Recorder()
    s = ProbeScheduler({"fast": (check("http://x/fast"), 0.05), "slow": (check("http://x/slow"), 0.25)},
                       workers=4, probe_fn=rec)
    run_for(s, 1.0)
    fast, slow = len(rec.spans["http://x/fast"]), len(rec.spans["http://x/slow"])
    assert 12 <= fast <= 21, fast  # ~20 in 1 s; a loaded machine may lose a few
    assert 3 <= slow <= 5, slow
    starts = [a for a, _ in rec.spans["http://x/fast"]]
    # never faster than asked: the schedule counts from dispatch, and a pool thread that starts one probe
    # late on a loaded machine (seen: 10 ms) makes the next gap that much shorter; twice as fast is a bug
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.03


def test_a_hung_agent_is_probed_back_to_back_never_twice_at_once():
    rec = Recorder(hold=0.15)
    s = ProbeScheduler({"hung": (check("http://x/hung"), 0.05)}, workers=4, probe_fn=rec)
    run_for(s, 1.0)
    spans = rec.spans["http://x/hung"]
    assert 5 <= len(spans) <= 7, len(spans)  # 1 s / 0.15 s: one after the other, not 20 piled up
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.001  # no overlap
        assert start - end < 0.05  # and no idle gap: the next starts as soon as one ends
    assert s.states()["hung"].consecutive_failures == len(spans)


def test_a_probe_function_that_raises_is_an_error_result_and_the_schedule_goes_on():
    calls = []

    def boom(c: HealthCheck) -> ProbeResult:
        calls.append(1)
        raise RuntimeError("bug")

    s = ProbeScheduler({"x": (check(), 0.05)}, workers=1, probe_fn=boom)
    run_for(s, 0.3)
    state = s.states()["x"]
    assert state.last.reason == "error" and state.consecutive_failures == len(calls) >= 3
    assert s.errors == len(calls)


def test_run_once_probes_everyone_and_waits_for_the_results():
    s = ProbeScheduler({f"a{i}": (check(f"http://x/{i}"), 10.0) for i in range(5)}, workers=2, probe_fn=Recorder())
    try:
        assert all(st.last is None for st in s.states().values())
        s.run_once(timeout=2)
        assert all(st.last is OK and st.probed_at for st in s.states().values())
    finally:
        s.close()


@pytest.mark.parametrize("n", [0, 1, 7])
def test_starts_are_spread_over_the_first_interval(n: int):
    rec = Recorder()
    s = ProbeScheduler({f"a{i}": (check(f"http://x/{i}"), 0.4) for i in range(n)}, workers=8, probe_fn=rec)
    run_for(s, 0.3)
    firsts = sorted(spans[0][0] for spans in rec.spans.values())
    assert len(firsts) <= n
    if n == 7:
        assert 4 <= len(firsts) <= 6  # agents 0..5 are due within 0.3 s of a 0.4 s interval, agent 6 is not
