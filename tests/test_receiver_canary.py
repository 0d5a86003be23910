"""The canary at the receiver: recognised by its label, recorded, told as a TEST, never remediated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from govheal.store import connect, db_path
from tests.test_receiver import Rig
from tests.test_receiver_support import alert, body
from webhook_receiver import canary


def canary_alert(cid: str = "c1", target: str = "0", status: str = "firing", **extra: str) -> dict:
    a = alert(None, status=status, fp=f"{cid}{target}".ljust(16, "0")[:16], remediation="none",
              alertname="GovhealCanary", govheal_canary="true", canary_id=cid, canary_target=target, node="n1",
              **extra)
    a["labels"]["severity"] = "info"
    return a


@pytest.fixture
def rig(tmp_path: Path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_a_canary_is_recorded_and_told_as_a_test_once_and_never_reaches_the_remediator(rig: Rig) -> None:
    resp = rig.post(body(canary_alert("c1", "0"), canary_alert("c1", "1")))
    assert resp.status_code == 200
    assert [a["outcome"] for a in resp.get_json()["alerts"]] == ["canary", "canary"]
    rig.idle()
    assert rig.remediator.submitted == [] and rig.remediator.resolved == []
    assert rig.bridge.notices == [], "no incident message"
    [test_message] = rig.bridge.direct  # one TEST message per canary id, however many Alertmanagers
    assert test_message.title.startswith("TEST") and test_message.severity == "info"
    assert "Not an incident" in test_message.summary
    assert rig.metric("govheal_webhook_alerts_total", outcome="canary") == 2
    t = canary.trace(connect(db_path(rig.config.state_path)), "c1")
    assert set(t.arrivals) == {("0", "firing"), ("1", "firing")}
    assert t.handed_at is not None and t.sink is None


def test_a_canary_that_asks_for_a_restart_of_a_real_agent_is_still_not_remediated(rig: Rig) -> None:
    """Label values are data: the canary label wins over agent= and remediation=restart."""
    a = canary_alert("c2")
    a["labels"].update(agent="GG", remediation="restart", severity="critical")
    assert rig.post(body(a)).get_json()["alerts"][0]["outcome"] == "canary"
    rig.idle()
    assert rig.remediator.submitted == []


def test_the_resolved_canary_is_recorded_without_a_second_message(rig: Rig) -> None:
    rig.post(body(canary_alert("c3")))
    rig.post(body(canary_alert("c3", status="resolved")))
    rig.idle()
    assert len(rig.bridge.direct) == 1
    t = canary.trace(connect(db_path(rig.config.state_path)), "c3")
    assert set(t.arrivals) == {("0", "firing"), ("0", "resolved")}


def test_without_a_channel_the_canary_ends_in_the_local_sink(rig: Rig) -> None:
    rig.svc.dispatcher.canary.send = lambda notice, dedupe_id=None: False  # nothing queued: no channel
    rig.post(body(canary_alert("c4")))
    rig.idle()
    t = canary.trace(connect(db_path(rig.config.state_path)), "c4")
    assert t.sink and t.sink_at
    [line] = Path(t.sink).read_text().splitlines()
    assert json.loads(line)["title"].startswith("TEST")


def test_trace_of_a_state_without_canary_tables_is_empty(tmp_path: Path) -> None:
    assert canary.trace(connect(tmp_path / "x.sqlite3"), "nope") == canary.Trace()
