"""Dead-man's switch with a fake clock: page once per silence episode, INFO when heartbeats return."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal.state import State
from tests.test_receiver_support import receiver_config
from webhook_receiver.deadman import Deadman
from webhook_receiver.inbox import Inbox
from webhook_receiver.metrics import ReceiverMetrics


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp: Path, clock: Clock, sent: list, fail: bool = False,
         ids: list | None = None) -> tuple[Deadman, CollectorRegistry]:
    ids = ids if ids is not None else []
    config = receiver_config(tmp)  # deadman_timeout: 60s
    registry = CollectorRegistry()

    def send(notice, *, dedupe_id: str | None = None) -> None:
        if fail:
            raise RuntimeError("outbox down")
        sent.append(notice)
        ids.append(dedupe_id)

    inbox = Inbox(State.open(config.state_path))
    return Deadman(config, inbox, send, clock=clock, metrics=ReceiverMetrics(registry)), registry


def test_it_pages_once_when_the_watchdog_stops_and_says_info_when_it_returns(tmp_path: Path) -> None:
    clock, sent = Clock(), []
    dm, registry = make(tmp_path, clock, sent)
    dm.beat()
    clock.now += 59.9
    assert not dm.check() and sent == []
    clock.now += 0.1
    assert dm.check()
    [crit] = sent
    assert (crit.severity, crit.status) == ("critical", "firing")
    assert "silent" in crit.title and "n1" in crit.title and "1m" in crit.summary
    assert registry.get_sample_value("govheal_alert_pipeline_silent") == 1
    for _ in range(5):
        clock.now += 120
        assert not dm.check()
    assert len(sent) == 1  # once per episode
    dm.beat()
    info = sent[-1]
    assert (info.severity, info.status, info.key) == ("info", "resolved", crit.key)
    assert registry.get_sample_value("govheal_watchdog_last_seen_timestamp_seconds") == clock.now
    assert registry.get_sample_value("govheal_alert_pipeline_silent") == 0
    clock.now += 61
    assert dm.check() and len(sent) == 3  # a new episode pages again
    assert sent[-1].key != crit.key


def test_no_heartbeat_ever_pages_one_timeout_after_start(tmp_path: Path) -> None:
    clock, sent = Clock(), []
    dm, _ = make(tmp_path, clock, sent)
    clock.now += 59
    assert not dm.check()
    clock.now += 1
    assert dm.check() and len(sent) == 1


def test_a_restart_during_an_episode_does_not_page_twice(tmp_path: Path) -> None:
    clock, sent = Clock(), []
    dm, _ = make(tmp_path, clock, sent)
    clock.now += 61
    assert dm.check()
    again, _ = make(tmp_path, clock, sent)  # the receiver restarts, same state
    clock.now += 600
    assert not again.check() and len(sent) == 1
    again.beat()
    assert sent[-1].severity == "info"


def test_a_failed_page_is_tried_again_on_the_next_check(tmp_path: Path) -> None:
    clock, sent = Clock(), []
    dm, _ = make(tmp_path, clock, sent, fail=True)
    clock.now += 61
    assert not dm.check()
    dm.send = lambda notice, dedupe_id=None: sent.append(notice)
    assert dm.check() and len(sent) == 1


def test_a_kill_between_the_page_and_the_state_write_does_not_page_that_episode_twice(tmp_path: Path) -> None:
    """The page is handed to the bridge, then the process dies before the inbox records the episode."""
    clock, sent, ids = Clock(), [], []
    dm, _ = make(tmp_path, clock, sent, ids=ids)
    dm.beat()
    heartbeat = clock.now

    def killed(*a, **k):
        raise SystemExit("SIGKILL")

    dm.inbox.set_watchdog = killed  # type: ignore[method-assign]
    clock.now += 61
    with pytest.raises(SystemExit):
        dm.check()
    again, _ = make(tmp_path, clock, sent, ids=ids)  # restarted: the episode was never recorded
    clock.now += 61
    assert again.check()
    assert len(sent) == 2 and ids[0] == ids[1] == f"deadman:n1:silent-after:{heartbeat!r}", ids
    again.beat()
    clock.now += 61  # a new silence is a new episode: a new id
    assert again.check() and ids[-1] != ids[0]
