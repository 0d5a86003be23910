"""govheal/client.py against real servers: Prometheus 2.42 and a two-member Alertmanager 0.25 gossip cluster on
loopback, started the one way govheal starts them (govheal/chain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from govheal import chain
from govheal.client import (
    Alertmanager,
    Alertmanagers,
    Matcher,
    NotFound,
    PostableAlert,
    Prometheus,
    Refused,
    SilenceSpec,
    new_session,
)
from govheal.net import free_port
from govheal.supervise import Supervisor
from govheal.testing.support import wait_until
from govheal.testing.webhook_sink import WebhookSink
from tests.conftest import require_binary

pytestmark = pytest.mark.live
GOSSIP = 10  # seconds a write may take to reach the other member (FAST_GOSSIP: ~50 ms; shared cores)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client-live")
    session = new_session()
    sup = Supervisor(out=lambda line: None)
    with WebhookSink() as sink:
        try:
            am_file = tmp / "alertmanager.yml"
            am_file.write_text(chain.render_alertmanager(sink.url, tmp / "token"))
            members = chain.plan_alertmanagers(tmp, 2)
            for child in chain.alertmanager_children(require_binary("prometheus-alertmanager", "alertmanager"),
                                                     am_file, members, session, chain.FAST_GOSSIP):
                sup.start(child)
            endpoints = chain.Endpoints(exporter=f"127.0.0.1:{free_port()}", prometheus=f"127.0.0.1:{free_port()}",
                                        alertmanagers=tuple(m.listen for m in members))
            prom_file = tmp / "prometheus.yml"
            prom_file.write_text(chain.render_prometheus(endpoints, "live-node"))
            sup.start(chain.prometheus_child(require_binary("prometheus"), prom_file, tmp, endpoints.prometheus,
                                             session, expect_alertmanagers=2))
            ams = Alertmanagers.from_urls([m.url for m in members], session)
            yield SimpleNamespace(prom=Prometheus(f"http://{endpoints.prometheus}", session), ams=ams,
                                  one=ams.members[0], other=ams.members[1])
        finally:
            sup.stop_all()
            session.close()


def silence(agent: str, minutes: int = 30) -> SilenceSpec:
    now = datetime.now(UTC)
    return SilenceSpec(matchers=(Matcher.equal("agent", agent),), starts_at=now,
                       ends_at=now + timedelta(minutes=minutes), created_by="test", comment=f"maintenance of {agent}")


def test_instant_and_range_queries_are_typed(stack):
    (sample,) = stack.prom.query("vector(42)")
    assert sample.value == 42.0 and sample.labels == {}
    wait_until(lambda: stack.prom.query("up"), 20, what="a first scrape")
    (series, *_) = stack.prom.query_range("vector(1)", sample.time - 4, sample.time, 1)
    assert len(series.points) == 5 and all(v == 1.0 for _, v in series.points)
    with pytest.raises(Refused, match=r"GET /api/v1/query: refused with HTTP 400: .*parse error.*; fix the PromQL"):
        stack.prom.query("rate((up")


def test_prometheus_sends_to_every_alertmanager_of_the_cluster(stack):
    assert sorted(stack.prom.active_alertmanagers()) == sorted(f"{m.url}/api/v2/alerts" for m in stack.ams.members)
    # the always-firing Watchdog reaches both: Prometheus posts every alert to each member
    stack.ams.verify(lambda m: any(a.labels["alertname"] == "Watchdog" for a in m.alerts()), within=30,
                     what="the Watchdog alert")


def test_a_silence_written_once_is_seen_on_both_members(stack):
    assert stack.one.status().peers and len(stack.one.status().peers) == 2
    sid = stack.ams.create_silence(silence("gossip-A"), verify=GOSSIP)
    assert stack.other.silence(sid).state == "active"


def test_silence_round_trip_create_update_with_new_matchers_expire(stack):
    ams = stack.ams
    first = ams.create_silence(silence("A"), verify=GOSSIP)
    # new matchers: Alertmanager expires the old silence and gives a new id; the client returns the one that holds
    second = ams.update_silence(first, silence("B"), verify=GOSSIP)
    assert second != first
    assert stack.one.silence(first).state == "expired"
    held = stack.other.silence(second)
    assert held.state == "active" and held.matchers == (Matcher.equal("agent", "B"),)
    ams.expire_silence(second, verify=GOSSIP)
    assert stack.other.silence(second).state == "expired"
    ams.expire_silence(second)  # expiring again is harmless
    with pytest.raises(NotFound, match="the silence id is unknown to this Alertmanager"):
        stack.one.expire_silence("00000000-0000-0000-0000-000000000000")


def test_alerts_are_not_gossiped_so_the_cluster_posts_them_to_every_member(stack):
    only_one = PostableAlert(labels={"alertname": "PostedToOne", "agent": "X"})
    stack.one.post_alerts([only_one])
    # a silence written after it gossips within the deadline; the alert still never reaches the other member
    stack.ams.create_silence(silence("after-PostedToOne"), verify=GOSSIP)
    assert [a.labels["alertname"] for a in stack.one.alerts(['alertname="PostedToOne"'])] == ["PostedToOne"]
    assert stack.other.alerts(['alertname="PostedToOne"']) == []

    assert stack.ams.post_alerts([PostableAlert(labels={"alertname": "PostedToAll", "agent": "Y"})]) == []
    stack.ams.verify(lambda m: bool(m.alerts(['alertname="PostedToAll"'])), within=GOSSIP, what="PostedToAll")


def test_a_silence_mutes_the_alert_it_matches(stack):
    stack.ams.post_alerts([PostableAlert(labels={"alertname": "Muted", "agent": "M"})])
    sid = stack.ams.create_silence(silence("M"), verify=GOSSIP)

    def muted(member: Alertmanager) -> bool:
        return [a.silenced_by for a in member.alerts(['alertname="Muted"'])] == [(sid,)]
    stack.ams.verify(muted, within=GOSSIP, what="the alert silenced")
