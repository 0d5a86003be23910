"""govheal/supervise.py: a component that is alive but stops answering its health check is killed and
restarted (issue 13 point 14, the `govheal up` half): unit tests with a fake clock, and a real SIGSTOPped
Alertmanager under a real Supervisor."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import psutil
import pytest

from govheal import chain
from govheal.client import new_session
from govheal.supervise import Child, Supervisor
from govheal.testing.support import is_running, wait_until
from govheal.testing.webhook_sink import WebhookSink
from tests.conftest import require_binary

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_three_failed_checks_in_a_row_kill_and_restart_the_child(tmp_path):
    clock, out = Clock(), []
    answering = [True]
    sup = Supervisor(out=out.append, clock=clock, health_interval=1.0, unhealthy_after=3)
    child = Child("svc", SLEEPER, tmp_path / "svc.log", ready=lambda: True, health=lambda: answering[0])
    try:
        sup.start(child)
        first = child.pid
        for _ in range(3):  # answering: nothing happens
            clock.t += 1
            sup.check()
        assert child.pid == first and child.failed_checks == 0
        answering[0] = False
        for expected in (1, 2):
            clock.t += 1
            sup.check()
            assert child.failed_checks == expected and child.alive(), "two misses are not a hang yet"
        clock.t += 1
        sup.check()
        assert not is_running(first), "the third miss in a row kills it"
        # it had answered for 6 s: a hang, not a crash loop, so no backoff
        assert "svc            not answering its health check (3 in a row); killed it, restarting now" in out[-2]
        assert child.pid != first and child.alive() and out[-1].startswith("  svc            restarted")
        second = child.pid
        for _ in range(3):  # the new one never answers: dying young, it gets the backoff (0 s, then 2, 4 … s)
            clock.t += 1
            sup.check()
        clock.t += 30  # its start grace (ready_timeout) is over
        for _ in range(3):
            clock.t += 1
            sup.check()
        assert not is_running(second) and "restarting in 2s" in out[-1], out[-1]
    finally:
        sup.stop_all()


def test_a_miss_between_answers_is_forgiven_and_checks_wait_for_their_interval(tmp_path):
    clock = Clock()
    calls, answers = [], iter([False, True, False, False, True])
    sup = Supervisor(out=lambda line: None, clock=clock, health_interval=1.0, unhealthy_after=3)

    def health() -> bool:
        calls.append(clock.t)
        return next(answers)
    child = Child("svc", SLEEPER, tmp_path / "svc.log", ready=lambda: True, health=health)
    try:
        sup.start(child)
        first = child.pid
        for _ in range(10):
            clock.t += 0.5
            sup.check()
        assert calls == [1.0, 2.0, 3.0, 4.0, 5.0], "one check per health_interval"
        assert child.pid == first
    finally:
        sup.stop_all()


def test_a_restarted_child_gets_its_ready_timeout_before_misses_count(tmp_path):
    clock = Clock()
    answering = [False]
    sup = Supervisor(out=lambda line: None, clock=clock, health_interval=1.0, unhealthy_after=3)
    child = Child("svc", SLEEPER, tmp_path / "svc.log", ready=lambda: True, health=lambda: answering[0],
                  ready_timeout=20)
    try:
        sup.start(child)
        child.answered = False  # as after a restart: not answered yet
        first = child.pid
        for _ in range(10):  # 10 s of misses while still inside its 20 s to start: not a hang
            clock.t += 1
            sup.check()
        assert child.pid == first and child.failed_checks == 0
        answering[0] = True
        clock.t += 1
        sup.check()
        assert child.answered
    finally:
        sup.stop_all()


def test_a_child_frozen_while_starting_is_not_given_its_ready_timeout(tmp_path):
    """make chaos: an Alertmanager SIGSTOPped right after its restart waited out all 30 s of its start."""
    clock = Clock()
    sup = Supervisor(out=lambda line: None, clock=clock, health_interval=1.0, unhealthy_after=3)
    child = Child("svc", SLEEPER, tmp_path / "svc.log", ready=lambda: True, health=lambda: False,
                  ready_timeout=30)
    try:
        sup.start(child)
        child.answered = False  # as after a restart: not answered yet
        first = child.pid
        os.kill(first, signal.SIGSTOP)
        wait_until(lambda: not _running_state(first), 5, what="the child stopped")
        for _ in range(3):
            clock.t += 1
            sup.check()
        assert not is_running(first), "three misses of a stopped child kill it, start grace or not"
    finally:
        sup.stop_all()


def _running_state(pid: int) -> bool:
    return psutil.Process(pid).status() != psutil.STATUS_STOPPED


def test_unsupervised_children_are_never_health_killed(tmp_path):
    clock = Clock()
    sup = Supervisor(out=lambda line: None, clock=clock, health_interval=1.0, unhealthy_after=1)
    child = Child("agent A", SLEEPER, tmp_path / "a.log", ready=lambda: True, health=lambda: False, supervised=False)
    try:
        sup.start(child)
        for _ in range(5):
            clock.t += 1
            sup.check()
        assert child.alive(), "an agent is the remediator's to heal"
    finally:
        sup.stop_all()


@pytest.mark.live
def test_a_sigstopped_alertmanager_is_noticed_and_restarted_within_10s(tmp_path):
    session = new_session()
    out: list[str] = []
    sup = Supervisor(out=out.append)
    with WebhookSink() as sink:
        am_file = tmp_path / "alertmanager.yml"
        am_file.write_text(chain.render_alertmanager(sink.url, tmp_path / "token"))
        (member,) = chain.plan_alertmanagers(tmp_path)
        (child,) = chain.alertmanager_children(require_binary("prometheus-alertmanager", "alertmanager"), am_file,
                                               [member], session)
        loop = threading.Thread(target=sup.run_until_stopped, daemon=True)
        try:
            sup.start(child)
            frozen = child.pid
            loop.start()
            t0 = time.monotonic()
            os.kill(frozen, signal.SIGSTOP)
            wait_until(lambda: child.pid != frozen and child.ready(), timeout=10,
                       what="a new Alertmanager answering")
            took = time.monotonic() - t0
            assert not is_running(frozen)
            assert any("alertmanager   not answering its health check (3 in a row)" in line for line in out), out
            print(f"SIGSTOP -> restarted and ready in {took:.1f}s")
        finally:
            sup.stop_event.set()
            loop.join(timeout=10)
            sup.stop_all()
            session.close()
