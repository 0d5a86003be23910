"""govheal/client.py with ``responses``: request shapes, typed results, and errors that name the server,
the request and the fix. The live round trips against real servers are in tests/test_client_live.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from govheal.client import (
    Alertmanager,
    Alertmanagers,
    Matcher,
    NotEverywhere,
    NotFound,
    PostableAlert,
    Prometheus,
    Refused,
    Sample,
    ServerError,
    SilenceSpec,
    Unreachable,
    new_session,
)

PROM = "http://127.0.0.1:9990"
AM = "http://127.0.0.1:9991"
AM2 = "http://127.0.0.1:9992"
NOW = datetime(2026, 11, 29, 15, 40, 8, tzinfo=UTC)


def spec(**kw) -> SilenceSpec:
    base = {"matchers": (Matcher.equal("agent", "GG"),), "starts_at": NOW, "ends_at": NOW + timedelta(hours=1),
            "created_by": "ops", "comment": "maintenance"}
    return SilenceSpec(**{**base, **kw})


@pytest.fixture
def session() -> requests.Session:
    return new_session()


@responses.activate
def test_instant_query_returns_typed_samples_and_sends_the_time(session):
    responses.get(f"{PROM}/api/v1/query", json={"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "govheal_agent_up", "agent": "GG"}, "value": [1700000000.5, "1"]},
        {"metric": {"agent": "GC"}, "value": [1700000000.5, "NaN"]}]}})
    got = Prometheus(PROM, session).query("govheal_agent_up", at=1700000000.5)
    assert got[0] == Sample({"__name__": "govheal_agent_up", "agent": "GG"}, 1700000000.5, 1.0)
    assert got[1].value != got[1].value  # NaN
    sent = responses.calls[0].request
    assert "query=govheal_agent_up" in sent.url and "time=1700000000.500" in sent.url
    assert sent.req_kwargs["timeout"] == 5.0  # every request has a timeout


@responses.activate
def test_a_scalar_is_one_unlabelled_sample(session):
    responses.get(f"{PROM}/api/v1/query", json={"status": "success",
                                                "data": {"resultType": "scalar", "result": [17.0, "3"]}})
    assert Prometheus(PROM, session).query("1+2") == [Sample({}, 17.0, 3.0)]


@responses.activate
def test_range_query_returns_series_of_points(session):
    responses.get(f"{PROM}/api/v1/query_range", json={"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"agent": "GG"}, "values": [[10, "1"], [11, "0"]]}]}})
    (series,) = Prometheus(PROM, session).query_range("govheal_agent_up", 10, 11, 1)
    assert series.labels == {"agent": "GG"} and series.points == ((10.0, 1.0), (11.0, 0.0))
    assert "step=1" in responses.calls[0].request.url


@responses.activate
def test_a_bad_query_names_the_server_the_request_and_the_fix(session):
    responses.get(f"{PROM}/api/v1/query", status=400, json={
        "status": "error", "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:7: parse error: unclosed left parenthesis'})
    with pytest.raises(Refused) as info:
        Prometheus(PROM, session).query("rate((x")
    assert str(info.value) == (
        f"Prometheus {PROM}: GET /api/v1/query: refused with HTTP 400: invalid parameter \"query\": 1:7: parse "
        "error: unclosed left parenthesis; fix the PromQL expression 'rate((x'")


def test_nothing_listening_says_so_and_how_to_fix_it(session):
    from govheal.net import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable) as info:
        Prometheus(url, session, timeout=1).query("up")
    assert str(info.value) == (
        f"Prometheus {url}: GET /api/v1/query: connection refused (nothing listens there); is Prometheus running "
        "there? `govheal up` starts one and records its address for the other commands; or set prometheus.url in "
        "govheal.yaml")


@responses.activate
def test_a_timeout_is_unreachable_and_hints_at_a_stopped_server(session):
    responses.get(f"{AM}/api/v2/silences", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(Unreachable, match=r"^Alertmanager http://127\.0\.0\.1:9991: GET /api/v2/silences: no answer "
                                          r"within 2s; is Alertmanager overloaded or stopped"):
        Alertmanager(AM, session, timeout=2).silences()


@responses.activate
def test_a_server_that_is_not_prometheus_is_named(session):
    responses.get(f"{PROM}/api/v1/query", body="<html>hello</html>")
    with pytest.raises(ServerError, match=r"body that is not JSON; is http://127\.0\.0\.1:9990 really Prometheus\? "
                                          r"Check prometheus\.url"):
        Prometheus(PROM, session).query("up")


@responses.activate
def test_credentials_in_a_url_never_reach_a_message(session):
    url = "http://admin:s3cret@127.0.0.1:9990"
    responses.get(f"{url}/api/v1/query", status=503, body="overloaded")
    with pytest.raises(ServerError) as info:
        Prometheus(url, session).query("up")
    assert "s3cret" not in str(info.value) and "***@127.0.0.1:9990" in str(info.value)
    assert "server error HTTP 503: overloaded; see the Prometheus log" in str(info.value)


@responses.activate
def test_rule_group_intervals_are_read_from_the_rules_api(session):
    responses.get(f"{PROM}/api/v1/rules", json={"status": "success", "data": {"groups": [
        {"name": "govheal-report", "file": "r.yml", "interval": 1, "rules": []},
        {"name": "govheal-recording", "file": "r.yml", "interval": 60, "rules": []}]}})
    assert Prometheus(PROM, session).rule_group_intervals() == {"govheal-report": 1.0, "govheal-recording": 60.0}
    assert responses.calls[0].request.params == {"type": "record"}


@responses.activate
def test_active_alertmanagers_and_health(session):
    responses.get(f"{PROM}/api/v1/alertmanagers", json={"status": "success", "data": {
        "activeAlertmanagers": [{"url": f"{AM}/api/v2/alerts"}], "droppedAlertmanagers": []}})
    responses.get(f"{PROM}/-/ready", status=503)
    responses.get(f"{PROM}/-/healthy", body="Prometheus Server is Healthy.")
    prom = Prometheus(PROM, session)
    assert prom.active_alertmanagers() == [f"{AM}/api/v2/alerts"]
    assert prom.ready() is False and prom.healthy() is True
    assert responses.calls[1].request.req_kwargs["timeout"] == 1.0  # health checks are short


@responses.activate
def test_create_silence_sends_the_v2_body_and_returns_the_id(session):
    responses.post(f"{AM}/api/v2/silences", json={"silenceID": "abc"})
    assert Alertmanager(AM, session).create_silence(spec()) == "abc"
    assert json.loads(responses.calls[0].request.body) == {
        "matchers": [{"name": "agent", "value": "GG", "isRegex": False, "isEqual": True}],
        "startsAt": "2026-11-29T15:40:08.000Z", "endsAt": "2026-11-29T16:40:08.000Z",
        "createdBy": "ops", "comment": "maintenance"}


@responses.activate
def test_update_returns_the_id_that_holds_even_when_alertmanager_replaced_the_silence(session):
    responses.post(f"{AM}/api/v2/silences", json={"silenceID": "new-id"})
    new = Alertmanager(AM, session).update_silence("old-id", spec(matchers=(Matcher.equal("agent", "GC"),)))
    assert new == "new-id"
    assert json.loads(responses.calls[0].request.body)["id"] == "old-id"


@responses.activate
def test_a_refused_silence_says_what_a_silence_needs(session):
    responses.post(f"{AM}/api/v2/silences", status=400,
                   body='"Failed to create silence: end time can\'t be in the past"')
    with pytest.raises(Refused, match=r"POST /api/v2/silences: refused with HTTP 400: Failed to create silence: end "
                                      r"time can't be in the past; fix the silence: at least one matcher"):
        Alertmanager(AM, session).create_silence(spec())


@responses.activate
def test_expiring_an_unknown_silence_is_not_found_on_0_25_and_later(session):
    responses.delete(f"{AM}/api/v2/silence/u1", status=500, body='"silence not found"')  # 0.25
    responses.delete(f"{AM}/api/v2/silence/u2", status=404, body='"silence not found"')  # 0.26+
    am = Alertmanager(AM, session)
    for sid in ("u1", "u2"):
        with pytest.raises(NotFound, match="the silence id is unknown to this Alertmanager"):
            am.expire_silence(sid)


@responses.activate
def test_get_silence_and_list_alerts_are_typed(session):
    responses.get(f"{AM}/api/v2/silence/s1", json={
        "id": "s1", "status": {"state": "active"}, "updatedAt": "2026-11-29T15:40:08.793Z", "comment": "c",
        "createdBy": "me", "endsAt": "2099-01-01T00:00:00.000Z", "startsAt": "2026-11-29T15:40:08.793Z",
        "matchers": [{"isEqual": True, "isRegex": False, "name": "agent", "value": "A"}]})
    responses.get(f"{AM}/api/v2/alerts", json=[{
        "annotations": {}, "endsAt": "2026-12-01T15:13:18.787Z", "fingerprint": "b90ca5e5d6931930",
        "receivers": [{"name": "n"}], "startsAt": "2026-12-01T15:08:18.787Z", "updatedAt": "2026-12-01T15:08:18.787Z",
        "status": {"inhibitedBy": [], "silencedBy": ["s1"], "state": "suppressed"},
        "labels": {"alertname": "T", "agent": "A"}, "newerKey": 1}])
    am = Alertmanager(AM, session)
    s = am.silence("s1")
    assert s.state == "active" and s.matchers == (Matcher.equal("agent", "A"),) and s.created_by == "me"
    (alert,) = am.alerts(['agent="A"'], inhibited=False)
    assert alert.state == "suppressed" and alert.silenced_by == ("s1",) and alert.receivers == ("n",)
    assert "filter=agent%3D%22A%22" in responses.calls[1].request.url
    assert "inhibited=false" in responses.calls[1].request.url


@responses.activate
def test_status_reads_the_cluster(session):
    responses.get(f"{AM}/api/v2/status", json={"cluster": {"status": "ready", "name": "x", "peers": [
        {"address": "127.0.0.1:1", "name": "x"}, {"address": "127.0.0.1:2", "name": "y"}]},
        "versionInfo": {"version": "0.25.0"}, "config": {"original": ""}, "uptime": "2026-01-01T00:00:00Z"})
    st = Alertmanager(AM, session).status()
    assert st.status == "ready" and st.peers == ("127.0.0.1:1", "127.0.0.1:2") and st.version == "0.25.0"


def test_a_silence_needs_aware_times_matchers_and_a_comment():
    with pytest.raises(ValueError, match="timezone"):
        spec(starts_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        spec(matchers=())
    with pytest.raises(ValueError):
        spec(comment="")


# -- several Alertmanagers: write once, verify all -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def cluster(session, *urls: str) -> tuple[Alertmanagers, Clock]:
    clock = Clock()
    return Alertmanagers([Alertmanager(u, session) for u in urls], clock=clock, sleep=clock.sleep), clock


@responses.activate
def test_a_write_goes_to_the_first_member_that_answers_and_is_verified_on_all(session):
    responses.post(f"{AM}/api/v2/silences", body=requests.ConnectionError("Connection refused"))
    responses.post(f"{AM2}/api/v2/silences", json={"silenceID": "s9"})
    body = {"id": "s9", "status": {"state": "active"}, "comment": "c", "createdBy": "me",
            "startsAt": "2026-11-29T15:40:08Z", "endsAt": "2099-01-01T00:00:00Z",
            "matchers": [{"name": "agent", "value": "GG", "isRegex": False}]}
    responses.get(f"{AM}/api/v2/silence/s9", status=404)          # gossip not there yet ...
    responses.get(f"{AM}/api/v2/silence/s9", json=body)           # ... now it is
    responses.get(f"{AM2}/api/v2/silence/s9", json=body)
    ams, _ = cluster(session, AM, AM2)
    assert ams.create_silence(spec(), verify=5) == "s9"
    posts = [c.request.url for c in responses.calls if c.request.method == "POST"]
    assert posts == [f"{AM}/api/v2/silences", f"{AM2}/api/v2/silences"]


@responses.activate
def test_verify_names_the_member_where_the_write_never_showed(session):
    responses.get(f"{AM}/api/v2/silence/s9", status=404)
    ams, clock = cluster(session, AM)
    with pytest.raises(NotEverywhere, match=r"silence s9 expired: not seen within 2s on http://127\.0\.0\.1:9991"):
        ams.verify_silence("s9", "expired", within=2)
    assert clock.t >= 2


@responses.activate
def test_a_refusal_is_not_retried_on_another_member(session):
    responses.post(f"{AM}/api/v2/silences", status=422, json={"code": 602, "message": "comment in body is required"})
    ams, _ = cluster(session, AM, AM2)
    with pytest.raises(Refused, match="comment in body is required"):
        ams.create_silence(spec())
    assert len(responses.calls) == 1


@responses.activate
def test_alerts_go_to_every_member_because_alertmanager_does_not_gossip_them(session):
    responses.post(f"{AM}/api/v2/alerts")
    responses.post(f"{AM2}/api/v2/alerts", status=503)
    ams, _ = cluster(session, AM, AM2)
    failed = ams.post_alerts([PostableAlert(labels={"alertname": "Canary"})])
    assert [e.url for e in failed] == [AM2]
    assert json.loads(responses.calls[0].request.body) == [{"labels": {"alertname": "Canary"}, "annotations": {}}]


@responses.activate
def test_no_member_answering_lists_every_one(session):
    for url in (AM, AM2):
        responses.post(f"{url}/api/v2/silences", body=requests.ConnectionError("Connection refused"))
    ams, _ = cluster(session, AM, AM2)
    with pytest.raises(NotEverywhere, match=r"no Alertmanager of the cluster answered: Alertmanager "
                                            r"http://127\.0\.0\.1:9991: .*; Alertmanager http://127\.0\.0\.1:9992"):
        ams.create_silence(spec())
