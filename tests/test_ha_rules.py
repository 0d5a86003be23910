"""The HA rules (webhook_receiver/ha.py) on a real SQLite file, no processes: one incident per episode
across Prometheus replicas, and which node announces what. The live proof is tests/test_ha.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from govheal.config import Config
from govheal.seams import parse_config
from govheal.state import State
from webhook_receiver.dispatch import subject
from webhook_receiver.ha import HA, Announcer, Decision, Episodes, receiver_down_alerts
from webhook_receiver.inbox import Inbox, NewAlert
from webhook_receiver.models import Alert
from webhook_receiver.routing import route

FP = "0f0c5c23f0baf7cb"


def config(tmp: Path, node: str = "node-b", peers: str = "[node-a]", skew: str = "2s") -> Config:
    text = f"""
node: {node}
state_dir: state
receiver: {{peers: {peers}, replica_skew: {skew}, takeover_grace: 10s}}
agents:
  - name: B1
    health: {{url: "http://127.0.0.1:9/health"}}
  - name: A1
    node: node-a
    health: {{url: "http://127.0.0.1:9/health"}}
"""
    path = tmp / f"{node}.yaml"
    path.write_text(text)
    return parse_config(text, source=path)


def alert(starts: str, *, status: str = "firing", fp: str = FP, ends: str = "0001-01-01T00:00:00Z",
          **labels: str) -> Alert:
    lab = {"alertname": "AgentDown", "agent": "B1", "node": "node-b", "remediation": "restart", **labels}
    return Alert.model_validate({"status": status, "labels": lab, "startsAt": starts, "endsAt": ends,
                                 "fingerprint": fp})


class Node:
    """One receiver's state: its inbox, episodes and announcer on one file."""

    opened: list[State] = []  # closed after each test (their connections and checkpoint threads)

    def __init__(self, tmp: Path, cfg: Config, skew: float = 2.0) -> None:
        self.cfg = cfg
        self.state = State.open(tmp / cfg.node)
        Node.opened.append(self.state)
        self.inbox = Inbox(self.state)
        self.episodes = Episodes(self.state.connection(HA), skew)
        self.announcer = Announcer(cfg, self.state.connection(HA), episodes=self.episodes)

    def receive(self, *alerts: Alert):
        """What the webhook does: map to the episode, route, record; the new entries (None: duplicate)."""
        mapped = self.episodes.canonical(alerts)
        return self.inbox.accept([NewAlert(a, route(self.cfg, a)) for a in mapped], 0.0)

    def decide(self, entry) -> Decision:
        s = subject(entry)
        self.announcer.observe(s)
        return self.announcer.decide(s)

    def told(self, entry) -> None:
        self.inbox.mark_notified(entry.id)

    def finish(self, entry, result: str, at: float) -> None:
        self.inbox.finish(entry.id, result, at)


@pytest.fixture(autouse=True)
def _close_states():
    yield
    while Node.opened:
        Node.opened.pop().close()


@pytest.fixture
def b(tmp_path):
    return Node(tmp_path, config(tmp_path))


# -- one incident per episode ------------------------------------------------------------------------

def test_the_other_replicas_start_is_the_same_incident(b):
    first, = b.receive(alert("2026-12-01T10:00:00.481Z"))
    again, = b.receive(alert("2026-12-01T10:00:01.481Z"))  # replica 2 evaluated one interval later
    assert first is not None and again is None, "the same (fingerprint, status, startsAt) after mapping"
    resolved, = b.receive(alert("2026-12-01T10:00:01.481Z", status="resolved", ends="2026-12-01T10:00:03Z"))
    assert resolved is not None and resolved.incident == first.incident


def test_without_a_skew_every_start_is_its_own_incident(tmp_path):
    node = Node(tmp_path, config(tmp_path, skew="0s"), skew=0.0)
    one, = node.receive(alert("2026-12-01T10:00:00.481Z"))
    two, = node.receive(alert("2026-12-01T10:00:01.481Z"))
    assert one.incident != two.incident


def test_a_start_after_the_episode_resolved_is_a_new_incident(b):
    first, = b.receive(alert("2026-12-01T10:00:00Z"))
    b.receive(alert("2026-12-01T10:00:00Z", status="resolved", ends="2026-12-01T10:00:01Z"))
    second, = b.receive(alert("2026-12-01T10:00:01.5Z"))  # a second crash within the skew
    assert second is not None and second.incident != first.incident
    assert b.decide(second) is Decision.IF_ACTED, "it may be the other replica's late view: told if it acts"


def test_a_start_after_the_agent_healed_is_a_new_incident_told_only_if_it_acts(b):
    first, = b.receive(alert("2026-12-01T10:00:00Z"))
    healed_at = datetime(2026, 12, 1, 10, 0, 0, 800000, tzinfo=UTC).timestamp()
    b.finish(first, "healed", healed_at)
    echo, = b.receive(alert("2026-12-01T10:00:01Z"))
    assert echo is not None and echo.incident != first.incident
    assert b.decide(echo) is Decision.IF_ACTED
    # its resolve is nobody's news: its firing was never told
    b.finish(echo, "already_recovered", healed_at + 1)
    gone, = b.receive(alert("2026-12-01T10:00:01Z", status="resolved", ends="2026-12-01T10:00:02Z"))
    assert b.decide(gone) is Decision.NO


def test_a_resolve_we_never_saw_firing_joins_the_nearest_episode(b):
    first, = b.receive(alert("2026-12-01T10:00:00Z"))
    b.finish(first, "healed", datetime(2026, 12, 1, 10, 0, 0, 500000, tzinfo=UTC).timestamp())
    r1, = b.receive(alert("2026-12-01T10:00:00Z", status="resolved", ends="2026-12-01T10:00:01Z"))
    late, = b.receive(alert("2026-12-01T10:00:01Z", status="resolved", ends="2026-12-01T10:00:02Z"))
    assert r1 is not None and late is None, "the other replica's resolve of the same episode: a duplicate"


def test_the_mapping_is_durable(tmp_path):
    cfg = config(tmp_path)
    node = Node(tmp_path, cfg)
    node.receive(alert("2026-12-01T10:00:00Z"))
    again = Node(tmp_path, cfg)  # a restarted receiver
    assert again.episodes.canonical([alert("2026-12-01T10:00:01Z")])[0].startsAt == "2026-12-01T10:00:00Z"


# -- who announces ------------------------------------------------------------------------------------

def receiver_down(node: str, starts: str, status: str = "firing", ends: str = "0001-01-01T00:00:00Z") -> Alert:
    return alert(starts, status=status, ends=ends, fp=f"rd-{node}", alertname="ReceiverDown", node=node,
                 remediation="none", agent="")


def test_alone_every_alert_is_told_and_a_resolve_follows_its_firing(tmp_path):
    node = Node(tmp_path, config(tmp_path, peers="[]"))
    e, = node.receive(alert("2026-12-01T10:00:00Z", node="elsewhere"))
    assert node.decide(e) is Decision.NOW, "one node: it tells everything, as before"
    lone, = node.receive(alert("2026-12-01T09:00:00Z", fp="other", status="resolved", ends="2026-12-01T09:01:00Z"))
    assert node.decide(lone) is Decision.NOW, "a resolve of something we never saw firing is the only trace"


def test_each_node_tells_only_its_own_alerts_while_its_peers_are_up(b):
    own, = b.receive(alert("2026-12-01T10:00:00Z"))
    peer, = b.receive(alert("2026-12-01T10:00:00Z", fp="a1", agent="X", node="node-a"))
    assert b.decide(own) is Decision.NOW
    assert b.decide(peer) is Decision.NO
    mine_elsewhere, = b.receive(alert("2026-12-01T10:00:00Z", fp="a1m", agent="A1", node="node-a"))
    assert b.decide(mine_elsewhere) is Decision.NO, "A1 runs on node-a: node-a tells (node-b only watches it)"


def test_the_deputy_tells_a_down_peers_alerts_and_catches_up_on_those_already_in(b):
    early, = b.receive(alert("2026-12-01T10:00:02Z", fp="a-early", agent="X", node="node-a"))
    old, = b.receive(alert("2026-12-01T09:00:00Z", fp="a-old", agent="Y", node="node-a"))
    assert b.decide(early) is Decision.NO  # node-a looked up
    down, = b.receive(receiver_down("node-a", "2026-12-01T10:00:05Z"))
    assert b.decide(down) is Decision.NOW, "the deputy tells the peer's ReceiverDown"
    b.told(down)
    assert b.announcer.catch_up("node-a") == [early.id], "started within takeover_grace of it; the old one is node-a's"
    later, = b.receive(alert("2026-12-01T10:00:30Z", fp="a-later", agent="Z", node="node-a"))
    assert b.decide(later) is Decision.NOW
    assert b.announcer.deputised(subject(later))
    b.told(later)
    back, = b.receive(receiver_down("node-a", "2026-12-01T10:00:05Z", status="resolved", ends="2026-12-01T10:01:00Z"))
    assert b.decide(back) is Decision.NOW  # the deputy told the firing, so it tells the resolve
    after, = b.receive(alert("2026-12-01T10:02:00Z", fp="a-after", agent="Z", node="node-a"))
    assert b.decide(after) is Decision.NO, "node-a is back: its own again"
    done, = b.receive(alert("2026-12-01T10:00:30Z", fp="a-later", agent="Z", node="node-a", status="resolved",
                            ends="2026-12-01T10:03:00Z"))
    assert b.decide(done) is Decision.NOW, "the deputy follows what it told to the end"
    assert old.id not in b.announcer.catch_up("node-a")


def test_a_node_back_from_being_down_leaves_to_its_deputy_what_started_meanwhile(tmp_path):
    a = Node(tmp_path, config(tmp_path, node="node-a", peers="[node-b]"))
    a.announcer.sync([("node-a", "2026-12-01T10:00:05Z")])  # what Alertmanager held when it came back
    during, = a.receive(alert("2026-12-01T10:00:30Z", fp="a1", agent="A1", node="node-a"))
    before, = a.receive(alert("2026-12-01T09:59:00Z", fp="a2", agent="A1", node="node-a"))
    assert a.decide(during) is Decision.NO and a.decide(before) is Decision.NOW
    own_down, = a.receive(receiver_down("node-a", "2026-12-01T10:00:05Z"))
    assert a.decide(own_down) is Decision.NO, "its own ReceiverDown is the deputy's to tell"
    a.announcer.sync([])  # gone from Alertmanager: the episode ended
    assert not a.announcer.down_now("node-a")


def test_alerts_of_no_node_are_told_by_the_first_node_up(tmp_path):
    a = Node(tmp_path, config(tmp_path, node="node-a", peers="[node-b]"))
    b = Node(tmp_path, config(tmp_path, node="node-b", peers="[node-a]"))
    for node, want in ((a, Decision.NOW), (b, Decision.NO)):
        e, = node.receive(alert("2026-12-01T10:00:00Z", fp="g", agent="", node="", remediation="none"))
        assert node.decide(e) is want
    b.receive(receiver_down("node-a", "2026-12-01T10:00:05Z"))
    e, = b.receive(alert("2026-12-01T10:01:00Z", fp="g2", agent="", node="", remediation="none"))
    b.announcer.observe(subject(b.inbox.pending()[-2]))  # the ReceiverDown row
    assert b.decide(e) is Decision.NOW, "node-a's receiver is down: node-b leads"


def test_receiver_down_alerts_from_the_client():
    from govheal.client import Alert as AmAlert

    got = AmAlert.model_validate({"labels": {"alertname": "ReceiverDown", "node": "node-a"}, "startsAt":
                                  datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC), "endsAt": datetime.now(UTC),
                                  "fingerprint": "x", "state": "active"})
    other = got.model_copy(update={"labels": {"alertname": "AgentDown", "node": "node-a"}})
    assert receiver_down_alerts([got, other]) == [("node-a", "2026-12-01T10:00:05Z")]
