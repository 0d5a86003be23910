"""The switches against real agents, the real remediator and a real Alertmanager 0.25:
a paused agent is not restarted after a crash (and people are told); a muted agent is restarted and
nobody is told (its alert is silenced in Alertmanager, and the mute feed still brings it to the
remediator); maintenance does both: no restart and no message."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from govheal.client import Alertmanagers, PostableAlert, new_session
from govheal.seams import parse_config
from govheal.supervise import Supervisor
from govheal.testing.support import demo_config_text, demo_fleet, is_running, wait_until
from remediator.engine import Remediator
from tests.test_governance_am import AM
from tests.test_receiver_support import TOKEN, FakeBridge, alert, body
from webhook_receiver.app import create_app
from webhook_receiver.governance.auth import Tokens

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def am(tmp_path_factory):
    sup = Supervisor(out=lambda line: None)
    one = AM(tmp_path_factory.mktemp("am-live"), "am")
    sup.start(one.child)
    yield one
    sup.stop_all()


@pytest.fixture
def stack(tmp_path, am):
    with demo_fleet(tmp_path, ["A", "B"]) as agents:
        path = tmp_path / "govheal.yaml"
        path.write_text(demo_config_text(agents, extra="admin: {sync_interval: 1s}"))
        config = parse_config(path.read_text(), source=path)
        bridge = FakeBridge()
        registry = CollectorRegistry()
        rem = Remediator(config, registry=registry)
        app = create_app(config, remediator=rem, bridge=bridge, token=TOKEN, registry=registry, start=True,
                         governance={"tokens": Tokens("admin-token-0123456789abcdef", None),
                                     "alertmanagers": Alertmanagers.from_urls([am.url], new_session(), timeout=2)})
        svc = app.extensions["govheal"]
        try:
            yield {a.name: a for a in agents}, app, svc, bridge
        finally:
            svc.stop()


def crash(agent) -> int:
    pid = agent.pid
    agent.signal(signal.SIGKILL)
    wait_until(lambda: not is_running(pid), 5, what=f"{agent.name} gone")
    return pid


def fire_in_alertmanager(am: AM, agent: str) -> None:
    """As Prometheus would: the alert posted to Alertmanager (which silences it for a muted agent)."""
    now = datetime.now(UTC)
    am.api.post_alerts([PostableAlert(labels={"alertname": "AgentDown", "agent": agent, "node": "test-node",
                                              "severity": "critical", "remediation": "restart"},
                                      annotations={"summary": f"Agent {agent} is down"}, startsAt=now,
                                      endsAt=now + timedelta(minutes=5))])


def webhook(app, agent: str, fp: str) -> None:
    resp = app.test_client().post("/alertmanager", data=body(alert(agent, fp=fp, node="test-node")),
                                  headers={"Authorization": f"Bearer {TOKEN}"}, content_type="application/json")
    assert resp.status_code == 200


def test_paused_agent_is_not_restarted_after_a_crash_and_people_are_told(stack):
    agents, app, svc, bridge = stack
    gov = app.extensions["govheal.governance"].governance
    gov.set("A", "pause", owner="alice", reason="deploying by hand", via="api", duration=600)
    pid = crash(agents["A"])
    webhook(app, "A", "aaaaaaaaaaaaaaaa")  # pause: the alert still fires and arrives
    assert svc.dispatcher.wait_idle(15)
    assert agents["A"].pid == pid and not is_running(pid), "a paused agent is not restarted"
    [notice, *updates] = [n for n in bridge.notices if n.agent == "A"]
    assert notice.status == "firing", "pause: people are still told"
    assert any("paused by alice" in (u.action or "") for u in updates)


def test_muted_agent_is_restarted_and_nobody_is_told(stack, am):
    agents, app, svc, bridge = stack
    gov = app.extensions["govheal.governance"].governance
    change = gov.set("B", "mute", owner="alice", reason="noisy", via="api", duration=600)
    assert change.audit.silence_ids, "the mute is a real silence"
    old = crash(agents["B"])
    fire_in_alertmanager(am, "B")  # as Prometheus would; Alertmanager silences it (no webhook)
    wait_until(lambda: agents["B"].pid not in (None, old) and is_running(agents["B"].pid), 30,
               what="B restarted through the mute feed")
    assert svc.dispatcher.wait_idle(15)
    assert [n for n in bridge.notices if n.agent == "B"] == [], "nobody is told about a muted agent"
    got = am.silence(change.audit.silence_ids[0])
    assert got.state == "active"
    gov.enable("B", owner="alice", reason="done", via="api")


def test_maintenance_means_no_restart_and_no_message(stack, am):
    agents, app, svc, bridge = stack
    gov = app.extensions["govheal.governance"].governance
    gov.set("A", "maintenance", owner="bob", reason="disk swap", via="api", duration=600)
    pid = crash(agents["A"])
    fire_in_alertmanager(am, "A")  # silenced: the feed does not bring maintenance alerts
    webhook(app, "A", "bbbbbbbbbbbbbbbb")  # and one that got through anyway (e.g. before the silence landed)
    assert svc.dispatcher.wait_idle(15)
    assert svc.governance.loop.mute_once() == 0
    assert agents["A"].pid == pid and not is_running(pid), "no restart in maintenance"
    assert [n for n in bridge.notices if n.agent == "A"] == [], "no message in maintenance"
