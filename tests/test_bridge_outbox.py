"""The outbox worker driven step by step with a hand-set clock and a scripted notifier: no threads, no sleeping."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal.config import ChannelSpec
from govheal.state import State
from webhook_receiver.bridge.metrics import BridgeMetrics
from webhook_receiver.bridge.model import Notice
from webhook_receiver.bridge.notifiers.base import (
    CHANNEL,
    EDIT_UNSUPPORTED,
    RATE_LIMITED,
    TRANSIENT,
    MessageRef,
    Notifier,
    NotifyError,
)
from webhook_receiver.bridge.outbox import EDIT_PAUSE, KEEP_DONE, OUTBOX, ChannelWorker, Outbox
from webhook_receiver.bridge.secrets import ChannelSecrets


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Scripted(Notifier):
    """Answers from a script: a NotifyError to raise, or None for success."""

    type = "scripted"
    default_pacing = ()

    def __init__(self) -> None:
        super().__init__(ChannelSpec(type="discord"), ChannelSecrets(webhook_url="https://x/api/webhooks/1/t"), None)
        self.script: list[NotifyError | None] = []
        self.sent: list[tuple[str, list[str]]] = []
        self.next_id = 0

    def pack(self, notices: list[Notice]) -> int:
        return min(len(notices), 3)

    def render(self, notices: list[Notice]) -> list[str]:
        return [f"{n.key}:{n.status}" for n in notices]

    def _answer(self, verb: str, rendered: list[str], ref: MessageRef | None) -> MessageRef:
        error = self.script.pop(0) if self.script else None
        if error:
            raise error
        self.sent.append((verb, rendered))
        if ref:
            return ref
        self.next_id += 1
        return MessageRef(str(self.next_id))

    def send(self, rendered: list[str]) -> MessageRef:
        return self._answer("send", rendered, None)

    def edit(self, ref: MessageRef, rendered: list[str]) -> MessageRef:
        return self._answer("edit", rendered, ref)


def n(i: int, status: str = "firing") -> Notice:
    return Notice(key=f"k{i}", severity="critical", status=status, title=f"t{i}", summary="s")


@pytest.fixture
def rig(tmp_path: Path):
    clock = Clock()
    outbox = Outbox(State.open(tmp_path).connection(OUTBOX))
    registry = CollectorRegistry()
    metrics = BridgeMetrics(registry, ["main", "other"], lambda: outbox.stats(clock()))
    notifier = Scripted()
    worker = ChannelWorker("main", notifier, outbox, metrics, clock, lambda ch: ["other"], probe_interval=60)
    return clock, outbox, notifier, worker, registry


def drain(worker: ChannelWorker, clock: Clock, steps: int = 20) -> None:
    for _ in range(steps):
        worker.step()
        clock.now += 0.05  # past the burst linger


def test_transient_failure_backs_off_then_delivers(rig) -> None:
    clock, outbox, notifier, worker, registry = rig
    outbox.enqueue(["main"], n(1), clock())
    notifier.script = [NotifyError("boom", kind=TRANSIENT)]
    clock.now += 1
    worker.step()
    assert notifier.sent == []
    due = outbox.next_due("main")
    assert 0.8 <= due - clock.now <= 1.2  # first backoff: 1 s ± 20 %
    assert worker.step() > 0 and notifier.sent == []  # not before its time
    clock.now = due
    worker.step()
    assert notifier.sent == [("send", ["k1:firing"])]
    assert registry.get_sample_value("govheal_notifications_total", {"channel": "main", "outcome": "retried"}) == 1


def test_a_rate_limit_waits_retry_after_without_counting_an_attempt(rig) -> None:
    clock, outbox, notifier, worker, _ = rig
    outbox.enqueue(["main"], n(1), clock())
    clock.now += 1
    notifier.script = [NotifyError("slow down", kind=RATE_LIMITED, retry_after=7.5)]
    worker.step()
    assert outbox.next_due("main") == pytest.approx(clock.now + 7.5)
    assert outbox.due("main", clock.now + 8)[0].attempts == 0


def test_a_permanent_channel_error_degrades_falls_back_and_probes_later(rig) -> None:
    clock, outbox, notifier, worker, registry = rig
    for i in range(2):
        outbox.enqueue(["main"], n(i), clock())
    clock.now += 1
    notifier.script = [NotifyError("401", permanent=True, kind=CHANNEL)]
    worker.step()
    assert worker.degraded and outbox.stats(clock()).get("main") is None
    assert outbox.stats(clock())["other"][0] == 2  # both copied to the other channel
    assert registry.get_sample_value("govheal_channel_degraded", {"channel": "main"}) == 1
    outbox.enqueue(["main"], n(5), clock())
    assert worker.step() > 0 and notifier.sent == []  # degraded: wait for the probe
    clock.now += 61
    drain(worker, clock, 3)
    assert notifier.sent == [("send", ["k5:firing"])] and not worker.degraded
    assert registry.get_sample_value("govheal_channel_degraded", {"channel": "main"}) == 0


def test_an_acknowledged_message_is_never_sent_again_after_a_restart(rig, tmp_path: Path) -> None:
    clock, outbox, _, worker, _ = rig
    for i in range(5):
        outbox.enqueue(["main"], n(i), clock())
    clock.now += 1
    worker.step()  # one message of 3 acknowledged, then the process "dies"
    fresh = Outbox(State.open(tmp_path).connection(OUTBOX))
    left = fresh.queued("main")
    assert [it.key for it in left] == ["k3", "k4"]


def test_updates_edit_the_incident_message_and_old_rows_are_pruned(rig) -> None:
    clock, outbox, notifier, worker, _ = rig
    outbox.enqueue(["main"], n(1), clock())
    clock.now += 1
    drain(worker, clock, 2)
    outbox.enqueue(["main"], n(1, "recovered"), clock())
    clock.now += 1
    drain(worker, clock, 2)
    assert notifier.sent == [("send", ["k1:firing"]), ("edit", ["k1:recovered"])]
    outbox.prune(clock.now + KEEP_DONE)
    assert outbox.message_of("main", "k1") is None
    outbox.enqueue(["main"], n(1, "firing"), clock())
    clock.now += 1
    drain(worker, clock, 2)
    assert notifier.sent[-1] == ("send", ["k1:firing"])  # a forgotten incident starts a new message


def test_a_delivery_without_a_message_id_is_done_and_the_next_update_is_a_new_message(rig) -> None:
    clock, outbox, notifier, worker, _ = rig
    real_send = notifier.send
    notifier.send = lambda rendered: (notifier.sent.append(("send", rendered)), MessageRef(""))[1]
    outbox.enqueue(["main"], n(1), clock())
    clock.now += 1
    drain(worker, clock, 2)
    assert outbox.stats(clock()).get("main") is None and outbox.message_of("main", "k1") is None
    notifier.send = real_send
    outbox.enqueue(["main"], n(1, "recovered"), clock())
    clock.now += 1
    drain(worker, clock, 2)
    assert [verb for verb, _ in notifier.sent] == ["send", "send"]


def test_enqueue_with_a_seen_dedupe_id_queues_nothing(rig) -> None:
    clock, outbox, _, worker, _ = rig
    assert outbox.enqueue(["main", "other"], n(1), clock(), dedupe_id="alert:k1:firing") is not None
    assert outbox.enqueue(["main", "other"], n(1), clock(), dedupe_id="alert:k1:firing") is None
    assert outbox.enqueue(["main"], n(1, "resolved"), clock(), dedupe_id="alert:k1:resolved") is not None
    assert {ch: depth for ch, (depth, _) in outbox.stats(clock()).items()} == {"main": 2, "other": 1}
    drain(worker, clock)  # still refused after delivery (the id outlives the queued row) …
    assert outbox.enqueue(["main"], n(1), clock(), dedupe_id="alert:k1:firing") is None
    clock.now += KEEP_DONE + 1  # … until it is pruned with the delivered rows
    outbox.prune(clock() - KEEP_DONE)
    assert outbox.enqueue(["main"], n(1), clock(), dedupe_id="alert:k1:firing") is not None


def test_a_refused_edit_is_sent_as_a_new_message_and_never_degrades_the_channel(rig) -> None:
    clock, outbox, notifier, worker, registry = rig
    outbox.enqueue(["main"], n(1), clock())
    clock.now += 1
    drain(worker, clock, 3)
    outbox.enqueue(["main"], n(1, "resolved"), clock())
    outbox.enqueue(["main"], n(2), clock())
    clock.now += 1
    notifier.script = [NotifyError("401 on the edit", permanent=True, kind=CHANNEL)]
    drain(worker, clock, 5)
    assert not worker.degraded and outbox.stats(clock()).get("main") is None
    assert notifier.sent[-1] == ("send", ["k1:resolved", "k2:firing"])
    assert registry.get_sample_value("govheal_notifications_total",
                                     {"channel": "main", "outcome": "dropped_permanent"}) == 0


def test_an_endpoint_that_cannot_edit_gets_new_messages_without_asking_again(rig) -> None:
    clock, outbox, notifier, worker, _ = rig
    outbox.enqueue(["main"], n(1), clock())
    clock.now += 1
    drain(worker, clock, 3)
    outbox.enqueue(["main"], n(1, "restarting"), clock())
    clock.now += 1
    notifier.script = [NotifyError("405", kind=EDIT_UNSUPPORTED)]
    drain(worker, clock, 5)
    outbox.enqueue(["main"], n(1, "recovered"), clock())
    clock.now += 1
    drain(worker, clock, 5)
    assert [verb for verb, _ in notifier.sent] == ["send", "send", "send"]  # no second refused edit
    clock.now += EDIT_PAUSE
    outbox.enqueue(["main"], n(1, "resolved"), clock())
    drain(worker, clock, 5)
    assert notifier.sent[-1][0] == "edit"  # after the pause it tries editing again


def test_a_delivery_the_full_disk_would_not_let_us_record_is_not_sent_again(rig) -> None:
    """make chaos: with the state disk full every round re-sent the same message (22 copies of one incident)."""
    import sqlite3

    clock, outbox, notifier, worker, _ = rig
    outbox.enqueue(["main"], n(1), clock())
    clock.now += 1
    real_ack, refusals = outbox.ack, []

    def full(*args, **kw):
        if len(refusals) < 5:
            refusals.append(1)
            raise sqlite3.OperationalError("database or disk is full")
        return real_ack(*args, **kw)

    outbox.ack = full  # type: ignore[method-assign]
    for _ in range(8):
        with contextlib.suppress(sqlite3.OperationalError):
            worker.step()
        clock.now += 1
    assert notifier.sent == [("send", ["k1:firing"])], "sent once, recorded when the disk took it"
    assert len(refusals) == 5 and outbox.queued("main") == []
