"""Alertmanager watch with a fake clock and a scripted probe: page once per outage, INFO when it answers."""

from __future__ import annotations

from pathlib import Path

from govheal.state import State
from tests.test_receiver_support import receiver_config
from webhook_receiver.inbox import Inbox
from webhook_receiver.upstream import AlertmanagerWatch, Probe, poll_interval, probe_timeout


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, tmp: Path) -> None:
        self.clock = Clock()
        self.ok: bool | None = True
        self.sent: list = []
        self.ids: list = []
        self.fail = False
        self.config = receiver_config(tmp, receiver=", alertmanager_unreachable_after: 60s")
        self.inbox = Inbox(State.open(self.config.state_path))

    def send(self, notice, *, dedupe_id=None) -> None:
        if self.fail:
            raise RuntimeError("outbox down")
        self.sent.append(notice)
        self.ids.append(dedupe_id)

    def watch(self) -> AlertmanagerWatch:
        return AlertmanagerWatch(self.config, self.inbox, self.send,
                                 lambda: Probe(self.ok, "http://127.0.0.1:9093"), clock=self.clock)


def test_it_pages_once_when_alertmanager_stops_answering_and_says_info_when_it_answers(tmp_path: Path) -> None:
    w = World(tmp_path)
    watch = w.watch()
    assert not watch.check()  # answers
    w.ok = False
    w.clock.now += 59.9
    assert not watch.check() and w.sent == []
    w.clock.now += 0.1
    assert watch.check()
    [crit] = w.sent
    assert (crit.severity, crit.status, crit.title) == ("critical", "firing", "Alertmanager unreachable from n1")
    assert "http://127.0.0.1:9093" in crit.summary and "1m" in crit.summary
    for _ in range(5):
        w.clock.now += 30
        assert not watch.check()
    assert len(w.sent) == 1  # once per outage
    w.ok = True
    assert watch.check()
    info = w.sent[-1]
    assert (info.severity, info.status, info.key) == ("info", "resolved", crit.key)
    assert "again" in info.title
    w.ok = False
    w.clock.now += 60
    assert watch.check() and len(w.sent) == 3 and w.sent[-1].key != crit.key  # a new outage


def test_no_alertmanager_known_is_no_verdict_and_never_pages(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.ok = None
    watch = w.watch()
    w.clock.now += 3600
    assert not watch.check() and w.sent == [] and watch.reachable is None


def test_after_a_start_it_waits_one_full_bound_and_a_restart_mid_outage_does_not_page_twice(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.ok = False
    watch = w.watch()
    w.clock.now += 59
    assert not watch.check()
    w.clock.now += 1
    assert watch.check() and len(w.sent) == 1
    again = w.watch()  # the receiver restarts during the outage (same state)
    w.clock.now += 600
    assert not again.check() and len(w.sent) == 1
    w.ok = True
    assert again.check() and w.sent[-1].severity == "info"


def test_a_failed_page_is_tried_again_on_the_next_check(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.ok, w.fail = False, True
    watch = w.watch()
    w.clock.now += 61
    assert not watch.check()
    w.fail = False
    assert watch.check() and len(w.sent) == 1


def test_it_polls_often_enough_to_page_within_the_bound_with_a_probe_timeout_shorter_than_a_poll() -> None:
    for bound in (1.0, 2.0, 60.0, 600.0):
        assert poll_interval(bound) <= bound / 5 or poll_interval(bound) == 5.0
        assert probe_timeout(bound) <= max(0.2, poll_interval(bound))
    assert poll_interval(60) == 5.0
