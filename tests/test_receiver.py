"""Webhook receiver through the Flask test client, with test doubles of the remediator and the bridge."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal.state import State
from govheal.store import connect, db_path
from govheal.testing.support import wait_until
from tests.test_receiver_support import AUTH, TOKEN, FakeBridge, FakeRemediator, alert, body, payload, receiver_config
from webhook_receiver.app import create_app
from webhook_receiver.auth import TokenError, load_token
from webhook_receiver.bridge import Bridge
from webhook_receiver.bridge.secrets import Secrets
from webhook_receiver.cli import Redact
from webhook_receiver.dispatch import base_notice, dedupe_id
from webhook_receiver.inbox import Inbox
from webhook_receiver.metrics import DispatchStage
from webhook_receiver.models import Alert, PayloadError, incident_id, parse_payload
from webhook_receiver.routing import AlertOutcome, Routing


class Rig:
    def __init__(self, tmp: Path, *, start: bool = True, outcome: str = "healed", gate=None, bridge=None) -> None:
        self.config = receiver_config(tmp)
        self.remediator = FakeRemediator(["GG", "Mary", "Remote"], outcome=outcome, gate=gate)
        self.bridge = bridge or FakeBridge()
        self.registry = CollectorRegistry()
        self.app = create_app(self.config, remediator=self.remediator, bridge=self.bridge, token=TOKEN,
                              registry=self.registry, start=start)
        self.svc = self.app.extensions["govheal"]
        self.client = self.app.test_client()

    def post(self, data: bytes, path: str = "/alertmanager", headers: dict | None = None):
        return self.client.post(path, data=data, headers=AUTH if headers is None else headers,
                                content_type="application/json")

    def idle(self) -> None:
        assert self.svc.dispatcher.wait_idle(10), "dispatch did not finish"

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def close(self) -> None:
        self.svc.stop(2)


@pytest.fixture
def rig(tmp_path: Path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_it_accepts_a_firing_alert_restarts_once_and_updates_one_message(rig: Rig) -> None:
    resp = rig.post(body(alert("GG")))
    assert resp.status_code == 200
    assert resp.json["alerts"] == [{"fingerprint": "0f0c5c23f0baf7cb", "status": "firing", "outcome": "accepted"}]
    rig.idle()
    [req] = rig.remediator.submitted
    assert (req.agent, req.action, req.incident, req.source) == (
        "GG", "restart", "0f0c5c23f0baf7cb:2026-11-29T15:39:23.117Z", "alertmanager")
    statuses = [n.status for n in rig.bridge.notices]
    assert statuses == ["firing", "restarting", "recovered"]
    assert {n.key for n in rig.bridge.notices} == {req.incident}
    last = rig.bridge.notices[-1]
    assert last.action == "restarted in 2.3 s, PID 812 → 905"
    assert (last.severity, last.title, last.runbook_url) == (
        "critical", "AgentDown: GG on n1", "https://runbooks.example.invalid/AgentDown")
    assert rig.metric("govheal_webhook_alerts_total", outcome="accepted") == 1


def test_a_redelivered_group_causes_no_second_action_and_no_second_message(rig: Rig) -> None:
    data = body(alert("GG"), alert("Mary", fp="1111111111111111"))
    assert rig.post(data).status_code == 200
    rig.idle()
    again = rig.post(data)  # Alertmanager retry, or the HA peer sending the same group
    assert again.status_code == 200
    assert [a["outcome"] for a in again.json["alerts"]] == ["duplicate", "duplicate"]
    rig.idle()
    assert sorted(r.agent for r in rig.remediator.submitted) == ["GG", "Mary"]
    assert len(rig.bridge.notices) == 6  # firing, restarting, recovered for 2 agents: nothing more
    assert rig.metric("govheal_webhook_alerts_total", outcome="duplicate") == 2


def test_two_identical_alerts_in_flight_at_once_act_once(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    try:
        data = body(alert("GG"))
        threads = [threading.Thread(target=lambda: r.post(data)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        r.idle()
        assert len(r.remediator.submitted) == 1
    finally:
        r.close()


@pytest.mark.parametrize(("alert_kwargs", "outcome", "notified"), [
    ({"agent": "Remote"}, "ignored_other_node", True),
    ({"agent": "GG", "node": "n2"}, "ignored_other_node", True),
    ({"agent": "Nobody"}, "ignored_unknown_agent", True),
    ({"agent": "GG", "remediation": "none"}, "notify_only", True),
    ({"agent": "GG", "remediation": None}, "notify_only", True),
    ({"agent": None}, "notify_only", True),
    ({"agent": "GG", "remediation": "rm -rf /"}, "ignored_unknown_remediation", True),
])
def test_routing_acts_only_on_this_nodes_agents_with_a_known_remediation(
        rig: Rig, alert_kwargs: dict, outcome: str, notified: bool) -> None:
    kwargs = dict(alert_kwargs)
    resp = rig.post(body(alert(kwargs.pop("agent"), **kwargs)))
    assert resp.status_code == 200
    assert resp.json["alerts"][0]["outcome"] == outcome
    rig.idle()
    assert rig.remediator.submitted == []
    assert len(rig.bridge.notices) == (1 if notified else 0)
    assert rig.metric("govheal_webhook_alerts_total", outcome=outcome) == 1


def test_a_resolved_alert_closes_its_incident_after_the_restart(tmp_path: Path) -> None:
    gate = threading.Event()
    r = Rig(tmp_path, gate=gate)
    try:
        r.post(body(alert("GG")))
        wait_until(lambda: r.remediator.submitted, 5, what="submit")
        r.post(body(alert("GG", status="resolved"), status="resolved"))
        assert r.remediator.resolved == []  # serialised per agent: waits for the restart
        gate.set()
        r.idle()
        incident = "0f0c5c23f0baf7cb:2026-11-29T15:39:23.117Z"
        assert r.remediator.resolved == [("GG", incident)]
        assert r.remediator.calls == ["submit:GG", "resolve:GG"]
        assert r.bridge.notices[-1].status == "resolved"
        assert r.bridge.notices[-1].key == incident
    finally:
        gate.set()
        r.close()


def test_different_agents_are_worked_on_in_parallel(tmp_path: Path) -> None:
    gate = threading.Event()
    r = Rig(tmp_path, gate=gate)
    try:
        r.post(body(alert("GG"), alert("Mary", fp="2222222222222222")))
        wait_until(lambda: len(r.remediator.submitted) == 2, 5, what="both agents submitted while one blocks")
    finally:
        gate.set()
        r.close()


@pytest.mark.parametrize(("outcome", "status", "action"), [
    ("failed", "gave_up", "restart failed after 1 attempt"),
    ("circuit_open", "gave_up", "gave up after 1 attempt — circuit open"),
    ("failover_started", "gave_up", "gave up after 1 attempt — circuit open, failover started"),
    ("already_recovered", "recovered", "no restart needed: healthy again before acting"),
])
def test_the_remediators_verdict_becomes_the_messages_last_state(
        tmp_path: Path, outcome: str, status: str, action: str) -> None:
    r = Rig(tmp_path, outcome=outcome)
    try:
        r.post(body(alert("GG")))
        r.idle()
        assert (r.bridge.notices[-1].status, r.bridge.notices[-1].action) == (status, action)
    finally:
        r.close()


def test_a_duplicate_verdict_from_the_remediator_sends_no_update(tmp_path: Path) -> None:
    r = Rig(tmp_path, outcome="duplicate")
    try:
        r.post(body(alert("GG")))
        r.idle()
        assert [n.status for n in r.bridge.notices] == ["firing", "restarting"]
    finally:
        r.close()


DEEP = b"[" * 30_000 + b"]" * 30_000  # 60 KB: under the test limit


@pytest.mark.parametrize(("data", "status", "field", "words"), [
    (b"this is not json", 400, "body", "not JSON"),
    (b"", 400, "body", "empty body"),
    (b" \n", 400, "body", "empty body"),
    (b"\xff\xfe{}", 400, "body", "UTF-8"),
    (DEEP, 400, "body", "nested too deeply"),
    (json.dumps(payload(alert(note="\ud800"))).encode(), 400, "body", "surrogate"),
    (b"[1, 2]", 422, "body", "JSON object"),
    (json.dumps({**payload(alert()), "version": "3"}).encode(), 422, "version", "version"),
    (json.dumps({**payload(alert()), "version": 4}).encode(), 422, "version", 'must be the string "4"'),
    (json.dumps({k: v for k, v in payload(alert()).items() if k != "alerts"}).encode(), 422, "alerts", "missing"),
    (json.dumps(payload(alert(), status="burning")).encode(), 422, "status", "firing"),
    (json.dumps(payload({**alert(), "labels": {"alertname": "A", "x": 1}})).encode(), 422, "alerts[0].labels.x",
     "string"),
    (json.dumps(payload({**alert(), "labels": "GG"})).encode(), 422, "alerts[0].labels", "dictionary"),
    (json.dumps(payload({**alert(), "startsAt": "yesterday"})).encode(), 422, "alerts[0].startsAt", "RFC 3339"),
    (json.dumps(payload({k: v for k, v in alert().items() if k != "fingerprint"})).encode(), 422,
     "alerts[0].fingerprint", "missing"),
])
def test_bad_input_gets_a_4xx_naming_the_field_and_the_receiver_keeps_serving(
        rig: Rig, data: bytes, status: int, field: str, words: str) -> None:
    assert rig.post(body(alert("GG"))).status_code == 200  # accepted before the bad one
    resp = rig.post(data)
    assert resp.status_code == status
    assert resp.json["field"] == field
    assert words in resp.json["error"]
    assert rig.post(body(alert("Mary", fp="3333333333333333"))).status_code == 200
    rig.idle()
    assert sorted(r.agent for r in rig.remediator.submitted) == ["GG", "Mary"]
    assert rig.metric("govheal_webhook_requests_total", status=str(status)) == 1


def test_100k_nested_arrays_are_a_400_not_a_recursion_error() -> None:
    with pytest.raises(PayloadError) as err:
        parse_payload(b"[" * 100_000 + b"]" * 100_000)
    assert (err.value.status, err.value.field) == (400, "body")
    with pytest.raises(PayloadError) as err:
        parse_payload(b'{"version": "4", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert err.value.status == 400


def test_a_body_over_the_limit_is_413_by_content_length_and_while_reading(rig: Rig) -> None:
    assert rig.post(body(alert("Mary", fp="7777777777777777"))).status_code == 200  # accepted before
    big = body(alert("GG", description="x" * 70_000))
    resp = rig.post(big)
    assert resp.status_code == 413
    assert "max_body_bytes" in resp.json["error"]

    # No Content-Length (chunked upload): the limit is enforced while reading.
    resp = rig.client.post("/alertmanager", input_stream=io.BytesIO(big), content_type="application/json",
                           headers={**AUTH, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 413
    assert rig.metric("govheal_webhook_requests_total", status="413") == 2
    assert rig.post(body(alert("GG", fp="8888888888888888"))).status_code == 200  # still serving
    rig.idle()
    assert sorted(r.agent for r in rig.remediator.submitted) == ["GG", "Mary"]  # nothing of the big one


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "Bearer"}])
def test_a_missing_or_wrong_token_is_401_and_nothing_is_recorded(rig: Rig, headers: dict) -> None:
    assert rig.post(body(alert("Mary", fp="7777777777777777"))).status_code == 200  # accepted before
    rig.idle()
    before = (list(rig.remediator.submitted), list(rig.bridge.notices), rig.svc.inbox.counts())
    for path in ("/alertmanager", "/watchdog"):
        resp = rig.post(body(alert("GG")), path=path, headers=headers)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in resp.json["error"]
        assert TOKEN not in resp.get_data(as_text=True)
    rig.idle()
    assert (rig.remediator.submitted, rig.bridge.notices, rig.svc.inbox.counts()) == before
    assert before[2] == {"done": 1} and rig.svc.deadman.last_seen is None  # the /watchdog beats were refused
    assert rig.post(body(alert("GG", fp="8888888888888888"))).status_code == 200  # still serving


def test_metacharacters_emoji_and_10kb_annotations_are_data_never_commands(rig: Rig) -> None:
    nasty = "GG; rm -rf / $(reboot) `id` <script>alert(1)</script> *bold* _x_ [a](b) 🔥"
    big = "é🔥<b>" * 2500  # > 10 KB
    a = alert(nasty, summary_extra="x")
    a["annotations"] = {"summary": nasty, "description": big}
    a["labels"]["instance"] = "|&;<>()$`\\\"' \t\n*?[#~=%"
    resp = rig.post(json.dumps(payload(a)).encode())
    assert resp.status_code == 200
    assert resp.json["alerts"][0]["outcome"] == "ignored_unknown_agent"
    rig.idle()
    assert rig.remediator.submitted == []
    [notice] = rig.bridge.notices
    assert notice.agent == nasty and notice.summary == nasty and notice.description == big
    assert ("instance", a["labels"]["instance"]) in notice.fields
    # json.dumps escapes the emoji as \ud83d\udd25: a valid surrogate pair is fine
    escaped = json.dumps(payload(alert("GG", fp="6666666666666666", remediation="none", note="🔥 ok")))
    assert rig.post(escaped.encode()).status_code == 200
    ok = alert("GG", fp="5555555555555555")
    ok["annotations"]["description"] = big
    ok["labels"]["note"] = nasty
    assert rig.post(json.dumps(payload(ok)).encode()).status_code == 200
    rig.idle()
    [req] = rig.remediator.submitted
    assert req.agent == "GG" and nasty not in req.reason


def test_alerts_are_persisted_before_the_2xx_and_resumed_after_a_restart(tmp_path: Path) -> None:
    first = Rig(tmp_path, start=False)  # workers never run: the process "dies" after answering
    assert first.post(body(alert("GG"), alert("Mary", fp="4444444444444444"))).status_code == 200
    assert [e.agent for e in first.svc.inbox.pending()] == ["GG", "Mary"]
    second = Rig(tmp_path)  # same state dir
    try:
        second.idle()
        assert sorted(r.agent for r in second.remediator.submitted) == ["GG", "Mary"]
        assert second.svc.inbox.pending() == []
        assert second.post(body(alert("GG"))).json["alerts"][0]["outcome"] == "duplicate"
    finally:
        second.close()


def test_an_unwritable_store_answers_503_so_alertmanager_retries(rig: Rig, monkeypatch) -> None:
    def broken(*a, **k):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(rig.svc.inbox, "accept", broken)
    resp = rig.post(body(alert("GG")))
    assert resp.status_code == 503
    assert "retry" in resp.json["error"]


def test_a_bridge_failure_leaves_the_alert_pending_and_it_is_retried(tmp_path: Path) -> None:
    bridge = FakeBridge(fail=True)
    r = Rig(tmp_path, bridge=bridge)
    r.svc.dispatcher.retry_delay = 0.1
    try:
        assert r.post(body(alert("GG"))).status_code == 200
        wait_until(lambda: r.metric("govheal_dispatch_errors_total", stage="notify"), 5, what="a notify error")
        assert len(r.svc.inbox.pending()) == 1 and r.remediator.submitted == []
        bridge.fail = False
        r.idle()
        assert len(r.remediator.submitted) == 1 and r.svc.inbox.pending() == []
    finally:
        r.close()


def test_metrics_health_and_readiness(rig: Rig) -> None:
    text = rig.client.get("/metrics").get_data(as_text=True)
    for line in ('govheal_webhook_requests_total{status="401"} 0.0',
                 'govheal_webhook_alerts_total{outcome="ignored_other_node"} 0.0',
                 "govheal_dispatch_queue_depth 0.0", "govheal_watchdog_last_seen_timestamp_seconds 0.0"):
        assert line in text
    assert rig.client.get("/healthz").status_code == 200
    ready = rig.client.get("/readyz")
    assert ready.status_code == 200 and all(ready.json["checks"].values())
    rig.svc.dispatcher.stop(1)
    assert rig.client.get("/readyz").status_code == 503
    resp = rig.client.get("/alertmanager", headers=AUTH)
    assert resp.status_code == 405 and "GET" in resp.json["error"]
    assert rig.metric("govheal_webhook_requests_total", status="405") == 1


def test_watchdog_records_the_heartbeat(rig: Rig) -> None:
    resp = rig.post(body(alert(None, remediation=None, alertname="Watchdog")), path="/watchdog")
    assert resp.status_code == 200
    assert rig.metric("govheal_watchdog_last_seen_timestamp_seconds") > 0
    assert rig.post(b"{}", path="/watchdog").status_code == 422


def test_token_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    cfg = receiver_config(tmp_path, extra="")
    assert load_token(cfg, {"GOVHEAL_WEBHOOK_TOKEN": " abc \n"}) == "abc"
    with pytest.raises(TokenError, match="GOVHEAL_WEBHOOK_TOKEN"):
        load_token(cfg, {})
    cfg = receiver_config(tmp_path, receiver=", token_file: secrets/token")
    with pytest.raises(TokenError, match="does not exist"):
        load_token(cfg, {})
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("")
    with pytest.raises(TokenError, match="is empty"):
        load_token(cfg, {})
    (tmp_path / "secrets" / "token").write_text("s3cret\n")
    assert load_token(cfg, {"GOVHEAL_WEBHOOK_TOKEN": "other"}) == "s3cret"


def test_inbox_lives_in_the_shared_state_file(rig: Rig, tmp_path: Path) -> None:
    conn = connect(db_path(rig.config.state_path))
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'inbox_alerts'").fetchone()
    assert isinstance(rig.svc.inbox, Inbox)


CHANNELS = """notifications:
  channels:
    discord: {type: discord}
    telegram: {type: telegram}
"""
CHANNEL_SECRETS = {"GOVHEAL_DISCORD_WEBHOOK_URL": "http://127.0.0.1:9/api/webhooks/1/never-contacted",
                   "GOVHEAL_TELEGRAM_BOT_TOKEN": "123:never-contacted", "GOVHEAL_TELEGRAM_CHAT_ID": "42"}


def test_a_notice_enqueued_just_before_a_crash_is_not_enqueued_again_on_resume(tmp_path: Path) -> None:
    """The bridge's outbox and the inbox commit separately; a kill between them must not queue twice.

    The real Bridge (its workers never started, so nothing is sent) is idempotent on the dispatcher's
    dedupe id; the receiver no longer looks into the bridge's tables.
    """
    config = receiver_config(tmp_path, extra=CHANNELS)
    bridge = Bridge(config, state=State.open(config.state_path), secrets=Secrets.load(config, CHANNEL_SECRETS))
    bridge.start = lambda: None  # type: ignore[method-assign]  # only the outbox matters here
    first = Rig(tmp_path, start=False, bridge=bridge)
    assert first.post(body(alert("GG", remediation="none"))).status_code == 200
    [entry] = first.svc.inbox.pending()
    # The crash came after the bridge's outbox commit and before the inbox was marked notified.
    assert bridge.notify(base_notice(entry), dedupe_id=dedupe_id(entry)) is True
    assert bridge.depth() == {"discord": 1, "telegram": 1}
    second = Rig(tmp_path, bridge=bridge)
    try:
        second.idle()
        assert second.svc.inbox.pending() == []
        assert bridge.depth() == {"discord": 1, "telegram": 1}, "enqueued once per channel, not twice"
    finally:
        second.close()
    receiver_side = Path(__file__).resolve().parent.parent / "webhook_receiver"
    assert not [p.name for p in receiver_side.glob("*.py") if "outbox_" in p.read_text()], \
        "the receiver reads no bridge table: the bridge's own idempotency covers the crash window"


def test_the_dispatcher_gives_the_bridge_a_stable_dedupe_id_per_inbox_row(rig: Rig) -> None:
    assert rig.post(body(alert("GG", remediation="none"), alert("GG", status="resolved", remediation="none")))\
        .status_code == 200
    rig.idle()
    fp, starts = "0f0c5c23f0baf7cb", "2026-11-29T15:39:23.117Z"
    assert sorted(rig.bridge.dedupe_ids) == [f"alert:{fp}:{starts}:firing", f"alert:{fp}:{starts}:resolved"]


def test_log_lines_never_carry_the_token() -> None:
    record = logging.LogRecord("govheal.receiver", logging.INFO, __file__, 1, "header was %s", (f"Bearer {TOKEN}",),
                               None)
    assert Redact([TOKEN]).filter(record)
    assert record.getMessage() == "header was Bearer <redacted>"


@pytest.mark.parametrize(("args", "env", "words"), [
    ([], {}, "no webhook token: set receiver.token_file in the config or GOVHEAL_WEBHOOK_TOKEN"),
    (["--listen", "nowhere"], {"GOVHEAL_WEBHOOK_TOKEN": TOKEN}, "--listen"),
])
def test_the_command_refuses_to_start_with_a_clear_message_and_no_traceback(
        tmp_path: Path, args: list, env: dict, words: str) -> None:
    receiver_config(tmp_path)
    clean = {k: v for k, v in os.environ.items() if k != "GOVHEAL_WEBHOOK_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "govheal", "receiver", "--config", str(tmp_path / "govheal.yaml"),
                          *args], capture_output=True, text=True, timeout=60, env={**clean, **env})
    assert out.returncode == 2
    assert words in out.stderr and "Traceback" not in out.stderr


def test_the_ops_view_lists_what_was_done_with_recent_alerts(rig: Rig) -> None:
    rig.post(body(alert("GG"), alert("Nobody", fp="7777777777777777")))
    rig.idle()
    assert rig.client.get("/ops/recent").status_code == 401
    view = rig.client.get("/ops/recent?limit=10", headers=AUTH).json
    assert view["node"] == "n1" and view["counts"] == {"done": 2}
    assert [(a["agent"], a["outcome"], a["result"]) for a in view["alerts"]] == [
        ("Nobody", "ignored_unknown_agent", "notified"), ("GG", "accepted", "healed")]
    assert rig.client.get("/ops/recent?limit=x", headers=AUTH).status_code == 400


def test_the_alert_stays_the_validated_model_from_the_edge_to_the_inbox_and_back(tmp_path: Path) -> None:
    first = Rig(tmp_path, start=False)
    a = alert("GG", note="é🔥")
    assert first.post(json.dumps(payload(a)).encode()).status_code == 200
    [entry] = Rig(tmp_path, start=False).svc.inbox.pending()  # read back by a fresh process
    assert isinstance(entry.alert, Alert)
    assert entry.alert == parse_payload(json.dumps(payload(a)).encode()).alerts[0]
    assert entry.incident == incident_id(a["fingerprint"], a["startsAt"]) == entry.alert.incident
    assert entry.routing == Routing(AlertOutcome.ACCEPTED, agent="GG", node="n1", action="restart")


def test_one_function_makes_the_incident_id_and_nothing_parses_it_back() -> None:
    sources = {p: p.read_text() for p in (Path(__file__).resolve().parent.parent / "webhook_receiver").rglob("*.py")}
    made = [p.name for p, text in sources.items() if re.search(r"fingerprint\}?:\{", text)]
    parsed = [p.name for p, text in sources.items() if re.search(r"incident\S*\.(r?split|partition)\(", text)]
    assert made == ["models.py"] and parsed == []


def test_every_alert_outcome_and_dispatch_stage_is_a_series_at_zero_from_the_start(rig: Rig) -> None:
    for outcome in AlertOutcome:
        assert rig.metric("govheal_webhook_alerts_total", outcome=outcome) == 0
    for stage in DispatchStage:
        assert rig.metric("govheal_dispatch_errors_total", stage=stage) == 0


def test_every_message_for_a_truncated_group_says_how_many_alerts_were_left_out(rig: Rig) -> None:
    assert rig.post(body(alert("GG"), alert("Nobody", fp="1212121212121212"), truncatedAlerts=40)).status_code == 200
    rig.idle()
    assert [n.status for n in rig.bridge.notices if n.agent == "GG"] == ["firing", "restarting", "recovered"]
    assert {n.left_out for n in rig.bridge.notices} == {40}  # the alert, its updates, the other alert
    assert rig.post(body(alert("GG", status="resolved"), status="resolved")).status_code == 200
    rig.idle()
    assert rig.bridge.notices[-1].left_out == 0  # a later request of the group sent everything


def test_a_label_value_with_cr_lf_reaches_no_message_as_a_line_of_its_own(rig: Rig) -> None:
    from govheal.testing.fake_telegram import parse_html
    from webhook_receiver.bridge import render

    forged = "x\r\n✅ INFO · RESOLVED · AgentDown: GG on n1"
    assert rig.post(body(alert("GG", remediation="none", instance=forged, agent_note=forged))).status_code == 200
    rig.idle()
    [notice] = rig.bridge.notices
    assert ("instance", forged) in notice.fields  # the data is kept as sent; only its rendering is folded
    for text in (parse_html(render.telegram_text([notice]).html),
                 json.dumps(render.discord_payload([notice]), ensure_ascii=False)):
        assert not [line for line in text.splitlines() if line.startswith("✅")], text


def test_an_alert_for_an_agent_no_config_knows_is_told_warned_once_per_agent_and_counted(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="govheal.receiver")
    for i, name in enumerate(["Nobody", "Nobody", "Ghost\nagent"]):
        resp = rig.post(body(alert(name, fp=f"{i:016x}")))
        assert resp.status_code == 200 and resp.json["alerts"][0]["outcome"] == "ignored_unknown_agent"
    rig.idle()
    assert rig.remediator.submitted == [] and len(rig.bridge.notices) == 3  # told, not remediated
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "'Nobody'" in warnings[0] and "GG, Mary, Remote" in warnings[0] and "agents:" in warnings[0]
    assert "'Ghost\\nagent'" in warnings[1]  # the label value escaped, as ever in the log
    assert rig.metric("govheal_webhook_alerts_total", outcome="ignored_unknown_agent") == 3
