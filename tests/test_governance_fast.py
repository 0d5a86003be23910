"""The governance page's and API's fast path (docs/benchmarks.md): gzip only when asked, a change shows on
the very next view although finished pages are reused, the session still checked on every view while its
cookie is re-signed at most once a minute, and waitress's queue warning rate-limited."""

from __future__ import annotations

import gzip
import logging
import re
import time

import pytest

from tests.test_governance_web import BEARER_ADMIN, BEARER_READ, gov, login, make_app
from webhook_receiver.governance import auth, views
from webhook_receiver.server import QueueDepthFilter

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["govheal"].remediator.store.close()


def logged_in(app):
    c = app.test_client()
    assert login(c).status_code == 302
    return c


def test_page_is_gzipped_only_when_the_client_asks(app):
    c = logged_in(app)
    plain = c.get("/ops/governance")
    zipped = c.get("/ops/governance", headers=GZIP)
    refused = c.get("/ops/governance", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert plain.status_code == zipped.status_code == refused.status_code == 200
    assert "Content-Encoding" not in plain.headers and "Content-Encoding" not in refused.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    for resp in (plain, zipped, refused):
        assert "Accept-Encoding" in resp.headers["Vary"]
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 3
    assert gzip.decompress(zipped.data) == plain.data == refused.data
    assert b"govheal governance" in plain.data and b'name="csrf"' in plain.data


def test_api_is_gzipped_only_when_the_client_asks(app):
    c = app.test_client()
    plain = c.get("/api/agents", headers=BEARER_READ)
    zipped = c.get("/api/agents", headers={**BEARER_READ, **GZIP})
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in plain.headers["Vary"] and "Accept-Encoding" in zipped.headers["Vary"]
    assert plain.is_json and gzip.decompress(zipped.data) == plain.data
    assert c.get("/api/agents", headers={"Authorization": "Bearer wrong", **GZIP}).status_code == 401


def paused_badge(resp) -> bool:
    return '<span class="badge paused"' in gzip.decompress(resp.data).decode()


def test_a_change_shows_on_the_very_next_view_of_a_reused_page(app, monkeypatch):
    monkeypatch.setattr(views, "CACHE_SECONDS", 3600.0)  # no view expires during the test: only the change counts
    c = logged_in(app)
    before = c.get("/ops/governance", headers=GZIP)
    assert c.get("/ops/governance", headers=GZIP).data == before.data  # reused: same 1 s view, same login
    assert not paused_badge(before)
    # the API (another client of this process) pauses GG: this login's very next view shows it
    resp = app.test_client().post("/api/agents/GG/switch", headers=BEARER_ADMIN,
                                  json={"kind": "pause", "owner": "bob", "reason": "deploying now", "for": "1h"})
    assert resp.status_code == 200
    after = c.get("/ops/governance", headers=GZIP)
    assert paused_badge(after) and "pause (now) by bob" in gzip.decompress(after.data).decode()
    assert "pause (now) by bob" in c.get("/ops/governance").get_data(as_text=True)  # the identity body too
    api = app.test_client().get("/api/agents", headers={**BEARER_READ, **GZIP})
    assert '"deploying now"' in gzip.decompress(api.data).decode()
    # an enable made through the service (as the CLI does) shows at once as well
    gov(app).enable("GG", owner="carol", reason="done", via="cli")
    assert not paused_badge(c.get("/ops/governance", headers=GZIP))
    assert '"deploying now"' not in app.test_client().get("/api/agents", headers=BEARER_READ).get_data(as_text=True)


def test_each_login_gets_its_own_page_and_csrf_token(app):
    alice, bob = logged_in(app), app.test_client()
    assert login(bob, name="bob").status_code == 302
    a = alice.get("/ops/governance").get_data(as_text=True)
    b = bob.get("/ops/governance").get_data(as_text=True)
    assert "alice (admin)" in a and "bob (admin)" in b and "bob (admin)" not in a
    token_a = set(re.findall(r'name="csrf" value="([^"]+)"', a))
    token_b = set(re.findall(r'name="csrf" value="([^"]+)"', b))
    assert len(token_a) == len(token_b) == 1 and token_a != token_b


def test_session_is_checked_on_every_view_and_re_signed_at_most_once_a_minute(app, monkeypatch):
    c = logged_in(app)
    first = c.get("/ops/governance")
    assert first.status_code == 200 and "Set-Cookie" not in first.headers  # just logged in: no re-sign
    # a forged or tampered cookie is refused on the next view (the signature is verified every time)
    cookie = c.get_cookie("govheal_session")
    forged = app.test_client()
    forged.set_cookie("govheal_session", cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB"))
    assert forged.get("/ops/governance").status_code == 302
    assert forged.get("/api/agents").status_code == 401
    # a minute later the cookie (and its expiry) is sent again, once
    now = auth.time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + auth.SESSION_REFRESH + 1)
    later = c.get("/ops/governance")
    assert later.status_code == 200 and "govheal_session=" in later.headers["Set-Cookie"]
    assert "Set-Cookie" not in c.get("/ops/governance").headers


def test_queue_warning_is_rate_limited_and_counts_what_it_left_out():
    t = [100.0]
    f = QueueDepthFilter(clock=lambda: t[0], interval=60)

    def rec() -> logging.LogRecord:
        return logging.LogRecord("waitress.queue", logging.WARNING, __file__, 1, "Task queue depth is %d", (3,), None)

    assert f.filter(rec())
    assert [f.filter(rec()) for _ in range(5)] == [False] * 5
    t[0] += 61
    r = rec()
    assert f.filter(r) and "5 such warning(s) left out" in r.getMessage() and "depth is 3" in r.getMessage()
    assert not f.filter(rec())


def test_a_cookie_verified_once_is_reused_for_a_second_and_its_expiry_still_holds(app, monkeypatch):
    c = logged_in(app)
    assert c.get("/ops/governance").status_code == 200
    verified = app.session_interface._verified
    assert verified  # the good cookie, remembered
    calls = []
    real = auth.SecureCookieSessionInterface.open_session
    monkeypatch.setattr(auth.SecureCookieSessionInterface, "open_session",
                        lambda self, a, r: calls.append(1) or real(self, a, r))
    assert c.get("/ops/governance").status_code == 200 and calls == [], "within the second: not verified again"
    # past the session's lifetime (and the second): verified again, and refused
    wall, mono = time.time(), time.monotonic()
    monkeypatch.setattr(time, "time", lambda: wall + app.permanent_session_lifetime.total_seconds() + 5)
    monkeypatch.setattr(auth.time, "monotonic", lambda: mono + auth.VERIFIED_FOR + 1)
    assert c.get("/ops/governance").status_code == 302 and calls == [1]
