"""/ops/governance and /api/agents through Flask's test client: auth, CSRF, owner from the login, the page's
content, Prometheus down, and the notice filter (a muted agent's notices are not sent)."""

from __future__ import annotations

import re
import stat
import time

import pytest
from prometheus_client import CollectorRegistry

from govheal.client import Prometheus, new_session
from remediator.store import Store
from tests.test_receiver_support import TOKEN, FakeBridge, FakeRemediator, alert, body, receiver_config
from webhook_receiver.app import create_app
from webhook_receiver.governance.auth import Tokens

ADMIN = "admin-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
BEARER_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
BEARER_READ = {"Authorization": f"Bearer {READ}"}


def make_app(tmp_path, prometheus=None, bridge=None):
    config = receiver_config(tmp_path, extra="admin: {page_url: 'http://127.0.0.1:9827/ops/governance'}")
    fake = FakeRemediator(["GG", "Mary"])
    fake.store = Store(tmp_path / "state" / "govheal.sqlite3")
    app = create_app(config, remediator=fake, bridge=bridge or FakeBridge(), token=TOKEN, registry=CollectorRegistry(),
                     start=False, governance={"tokens": Tokens(ADMIN, READ), "prometheus": prometheus})
    app.config["TESTING"] = True
    return app


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["govheal"].remediator.store.close()


def gov(app):
    return app.extensions["govheal.governance"].governance


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, name="alice", token=ADMIN):
    page = client.get("/ops/governance/login").get_data(as_text=True)
    return client.post("/ops/governance/login", data={"name": name, "token": token, "csrf": csrf(page)})


# -- API --------------------------------------------------------------------------------------------


def test_api_without_or_with_a_wrong_token_is_401_json(app):
    c = app.test_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {TOKEN}"}):
        for method, path in (("GET", "/api/agents"), ("GET", "/api/agents/GG"), ("POST", "/api/agents/GG/switch")):
            resp = c.open(path, method=method, headers=headers, json={"kind": "pause", "owner": "x", "reason": "y",
                                                                      "for": "1h"})
            assert resp.status_code == 401, (method, path, headers)
            assert resp.is_json and "error" in resp.get_json()
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert gov(app).switches() == []  # the webhook token is not an admin token either


def test_read_token_reads_and_cannot_change(app):
    c = app.test_client()
    data = c.get("/api/agents", headers=BEARER_READ).get_json()
    assert [a["name"] for a in data["agents"]] == ["GG", "Mary", "Remote"]
    assert [x["name"] for x in data["criteria"]] == ["heal success", "governance UI", "alert delivery",
                                                      "no unplanned downtime > 2 min", "daily report verified"]
    resp = c.post("/api/agents/GG/switch", headers=BEARER_READ, json={"kind": "pause", "owner": "eve",
                                                                       "reason": "x", "for": "1h"})
    assert resp.status_code == 403 and "admin token" in resp.get_json()["error"]
    assert gov(app).switches() == []


def test_admin_token_sets_and_enables_a_switch(app):
    c = app.test_client()
    resp = c.post("/api/agents/GG/switch", headers=BEARER_ADMIN,
                  json={"kind": "pause", "for": "2h", "owner": "alice", "reason": "deploying"})
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["op"] == "pause" and out["switches"][0]["owner"] == "alice"
    assert out["audit"]["via"] == "api" and out["audit"]["actor"] == "alice"
    agent = c.get("/api/agents/GG", headers=BEARER_ADMIN).get_json()
    assert agent["paused"] and not agent["muted"] and agent["switches"][0]["in_effect"]
    assert agent["history"][0]["outcome"] == "pause"
    resp = c.post("/api/agents/GG/switch", headers=BEARER_ADMIN, json={"kind": "enable", "owner": "alice",
                                                                        "reason": "done"})
    assert resp.status_code == 200 and resp.get_json()["switches"] == []
    assert not c.get("/api/agents/GG", headers=BEARER_ADMIN).get_json()["paused"]


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"kind": "nap", "for": "1h", "owner": "a", "reason": "r"}, 400, "unknown switch 'nap'"),
    ({"kind": "pause", "for": "1h", "owner": "a"}, 400, "reason: Field required"),
    ({"kind": "pause", "for": "1h", "owner": "a", "reason": "r", "until": "2030-01-01T00:00Z"}, 400, "not both"),
    ({"kind": "pause", "owner": "a", "reason": "r"}, 400, "a switch needs an end"),
    ({"kind": "pause", "for": "soon", "owner": "a", "reason": "r"}, 400, "'soon' is not a duration"),
    ({"kind": "mute", "every": "Fundays 02:00 for 1h", "owner": "a", "reason": "r"}, 400, "'fundays' is not a day"),
    ({"kind": "pause", "until": "tomorrow", "owner": "a", "reason": "r"}, 400, "is not a time"),
    ({"kind": "pause", "for": "1h", "owner": "a", "reason": "r", "extra": 1}, 400, "extra: Extra inputs"),
    ({"kind": "pause", "for": "1h", "owner": "a;rm", "reason": "r"}, 400, "owner:"),
])
def test_api_rejects_bad_requests_with_a_message(app, body, status, says):
    resp = app.test_client().post("/api/agents/GG/switch", headers=BEARER_ADMIN, json=body)
    assert resp.status_code == status and says in resp.get_json()["error"], resp.get_json()


def test_unknown_agent_is_404(app):
    c = app.test_client()
    assert c.get("/api/agents/Nobody", headers=BEARER_READ).status_code == 404
    resp = c.post("/api/agents/Nobody/switch", headers=BEARER_ADMIN,
                  json={"kind": "pause", "for": "1h", "owner": "a", "reason": "r"})
    assert resp.status_code == 404 and "known agents: GG, Mary, Remote" in resp.get_json()["error"]


# -- the page ---------------------------------------------------------------------------------------


def test_page_needs_a_login_and_the_cookie_is_httponly_lax(app):
    c = app.test_client()
    resp = c.get("/ops/governance")
    assert resp.status_code == 302 and "/ops/governance/login" in resp.headers["Location"]
    assert login(c, token="wrong-token-xxxxxxxx").status_code == 401
    resp = login(c)
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and cookie.startswith("govheal_session=")
    html = c.get("/ops/governance").get_data(as_text=True)
    assert 'id="agent-GG"' in html and "alice (admin)" in html
    for criterion in ("heal success", "governance UI", "alert delivery", "no unplanned downtime", "daily report"):
        assert criterion in html


def test_form_without_csrf_token_is_refused_and_changes_nothing(app):
    c = app.test_client()
    login(c)
    resp = c.post("/ops/governance/agents/GG/switch", data={"kind": "pause", "for": "1h", "reason": "x"})
    assert resp.status_code == 403 and "CSRF" in resp.get_data(as_text=True)
    resp = c.post("/ops/governance/agents/GG/switch", data={"kind": "pause", "for": "1h", "reason": "x",
                                                             "csrf": "forged"})
    assert resp.status_code == 403
    assert gov(app).switches() == []


def test_owner_is_the_logged_in_name_not_a_form_field(app):
    c = app.test_client()
    login(c, name="alice")
    token = csrf(c.get("/ops/governance").get_data(as_text=True))
    resp = c.post("/ops/governance/agents/Mary/switch",
                  data={"kind": "mute", "for": "30m", "reason": "noisy", "owner": "mallory", "csrf": token})
    assert resp.status_code == 303
    [sw] = gov(app).switches("Mary")
    assert sw.owner == "alice" and sw.kind == "mute"
    html = c.get("/ops/governance").get_data(as_text=True)
    assert "Mary: mute by alice" in html
    assert "mute (now) by alice" in html and "silence mute pending" in html  # no Alertmanager configured here
    assert gov(app).history("Mary")[0]["via"] == "page"


def test_read_login_sees_the_page_but_cannot_change(app):
    c = app.test_client()
    login(c, name="viewer", token=READ)
    html = c.get("/ops/governance").get_data(as_text=True)
    assert "read only" in html and 'value="pause"' not in html
    resp = c.post("/ops/governance/agents/GG/switch", data={"kind": "pause", "for": "1h", "reason": "x",
                                                             "csrf": csrf(html)})
    assert resp.status_code == 303 and gov(app).switches() == []
    assert "needs the admin token" in c.get("/ops/governance").get_data(as_text=True)


def test_session_key_is_a_private_file_in_the_state_dir(app, tmp_path):
    key = tmp_path / "state" / "admin_session.key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert app.secret_key == key.read_bytes().strip()


def test_prometheus_down_page_still_renders_from_local_state(tmp_path):
    from govheal.testing.support import free_port

    prom = Prometheus(f"http://127.0.0.1:{free_port()}", new_session(), timeout=0.5)
    app = make_app(tmp_path, prometheus=prom)
    try:
        parts = app.extensions["govheal"].governance
        parts.cache.refresh()
        c = app.test_client()
        login(c)
        t0 = time.perf_counter()
        html = c.get("/ops/governance").get_data(as_text=True)
        assert time.perf_counter() - t0 < 1.0  # no query per view: the cache answered
        assert 'id="prometheus-missing"' in html and "Prometheus unreachable since" in html
        assert 'id="agent-GG"' in html and "no history from Prometheus" in html
        data = c.get("/api/agents").get_json()
        assert data["prometheus"]["ok"] is False and data["agents"][0]["health"] == "unknown"
    finally:
        app.extensions["govheal"].remediator.store.close()


def test_muted_agent_is_remediated_and_nobody_is_told(tmp_path):
    bridge = FakeBridge()
    app = make_app(tmp_path, bridge=bridge)
    svc = app.extensions["govheal"]
    try:
        gov(app).set("GG", "mute", owner="alice", reason="noisy", via="api", duration=3600)
        c = app.test_client()
        resp = c.post("/alertmanager", data=body(alert("GG"), alert("Mary", fp="1111111111111111")),
                      headers={"Authorization": f"Bearer {TOKEN}"}, content_type="application/json")
        assert resp.status_code == 200
        for entry in svc.inbox.pending():
            svc.dispatcher.process(entry)
        assert sorted(r.agent for r in svc.remediator.submitted) == ["GG", "Mary"]  # both remediated
        told = {n.agent for n in bridge.notices}
        assert told == {"Mary"}, "nobody is told about the muted agent GG"
    finally:
        svc.remediator.store.close()
