"""Switches against a real Alertmanager 0.25: silences with exact matchers, createdBy and comment; enable
expires them; an edit that makes Alertmanager replace the id is followed; Alertmanager down → pending →
lands; a recurring window gets one silence per occurrence; two clustered Alertmanagers both hold it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govheal import chain
from govheal.client import Alertmanager, Alertmanagers, Matcher, Silence, new_session
from govheal.governance.service import Governance
from govheal.seams import parse_config
from govheal.store import connect
from govheal.supervise import Child, Supervisor
from govheal.testing.support import free_port, wait_until
from tests.conftest import require_binary

pytestmark = pytest.mark.live

CONFIG = """node: n1
state_dir: state
agents:
  - {name: GG, role: gateway, health: {url: "http://127.0.0.1:9/health"}}
  - {name: Mary, role: worker, node: n2, health: {url: "http://127.0.0.1:9/health"}}
"""
AM_CONFIG = "route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n"
PAGE = "http://127.0.0.1:9827/ops/governance"


class AM:
    """One real Alertmanager (chain's argv), read back through govheal/client.py."""

    def __init__(self, tmp: Path, name: str, listen: str | None = None, cluster: str | None = None,
                 peers: tuple[str, ...] = ()) -> None:
        self.listen = listen or f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.listen}"
        self.api = Alertmanager(self.url, new_session(), timeout=2.0)
        cfg = tmp / f"{name}.yml"
        cfg.write_text(AM_CONFIG)
        argv = chain.alertmanager_argv(require_binary("prometheus-alertmanager", "alertmanager"), cfg,
                                       tmp / f"{name}-data", self.listen, cluster, peers, chain.FAST_GOSSIP)
        self.child = Child(name, argv, tmp / f"{name}.log", ready=self.api.ready)

    def silence(self, sid: str) -> Silence:
        return self.api.silence(sid)

    def silences(self) -> list[Silence]:
        return self.api.silences()


@pytest.fixture(scope="module")
def am(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("am")
    sup = Supervisor(out=lambda line: None)
    one = AM(tmp, "am")
    sup.start(one.child)
    yield one
    sup.stop_all()


class Audit:
    def __init__(self) -> None:
        self.lines: list[dict] = []

    def write(self, event) -> None:
        self.lines.append(event.to_dict())


def governance(tmp_path: Path, urls: list[str], clock=time.time, **kw) -> tuple[Governance, Audit]:
    config = parse_config(CONFIG, source=tmp_path / "govheal.yaml")
    audit = Audit()
    ams = Alertmanagers.from_urls(urls, new_session(), timeout=1.0)
    gov = Governance(config, connect(tmp_path / "state.sqlite3"), alertmanager=ams, audit=audit, clock=clock,
                     page_url=PAGE, **kw)
    return gov, audit


def test_mute_is_a_silence_with_exact_matchers_owner_and_comment(tmp_path, am):
    gov, audit = governance(tmp_path, [am.url])
    change = gov.set("GG", "mute", owner="alice", reason="noisy deploy", via="api", duration=3600)
    assert not change.to_dict()["pending"]
    [sid] = change.audit.silence_ids
    got = am.silence(sid)
    assert [m.model_dump(by_alias=True) for m in got.matchers] == [
        {"name": "agent", "value": "GG", "isRegex": False, "isEqual": True},
        {"name": "node", "value": "n1", "isRegex": False, "isEqual": True}]
    assert got.created_by == "alice"
    assert got.comment == f"govheal mute: noisy deploy — {PAGE}#agent-GG"
    assert got.state == "active"
    ends = got.ends_at.timestamp()
    assert abs(ends - (time.time() + 3600)) < 30
    assert gov.switches("GG")[0].silence_ids == (sid,)
    assert audit.lines[-1]["outcome"] == "mute" and audit.lines[-1]["actor"] == "alice"
    assert audit.lines[-1]["silence_ids"] == [sid] and audit.lines[-1]["old"] is None

    # the agent on another node gets that node in its matcher, never a regex or a wider one
    other = gov.set("Mary", "maintenance", owner="bob", reason="disk swap", via="cli", duration=600)
    m = am.silence(other.audit.silence_ids[0]).matchers
    assert {(x.name, x.value, x.is_regex, x.is_equal) for x in m} == {
        ("agent", "Mary", False, True), ("node", "n2", False, True)}

    # enable expires every silence of the agent and clears its switches
    done = gov.enable("GG", owner="alice", reason="deploy finished", via="api")
    assert am.silence(sid).state == "expired"
    assert gov.switches("GG") == [] and not gov.effective("GG").muted
    assert done.audit.silence_ids == [sid] and done.audit.old["mute"]["reason"] == "noisy deploy"
    assert gov.history("GG")[0]["outcome"] == "enable" and gov.history("GG")[1]["outcome"] == "mute"


def test_an_edit_that_alertmanager_answers_with_a_new_id_is_followed(tmp_path, am):
    gov, _ = governance(tmp_path, [am.url])
    first = gov.set("GG", "mute", owner="alice", reason="first reason", via="api", duration=3600)
    [old_id] = first.audit.silence_ids
    time.sleep(1.1)  # a new start second: Alertmanager cannot update an active silence's start in place
    edit = gov.set("GG", "mute", owner="carol", reason="second reason", via="page", duration=7200)
    [new_id] = edit.audit.silence_ids
    assert new_id != old_id, "Alertmanager 0.25 replaces an active silence whose start changed"
    assert am.silence(old_id).state == "expired"
    got = am.silence(new_id)
    assert got.state == "active" and got.created_by == "carol" and "second reason" in got.comment
    assert gov.switches("GG")[0].silence_ids == (new_id,)
    assert edit.audit.outcome == "edit"
    assert edit.audit.old["reason"] == "first reason" and edit.audit.new["reason"] == "second reason"
    assert [s.id for s in am.silences() if s.state == "active"
            and Matcher.equal("agent", "GG") in s.matchers] == [new_id]
    gov.enable("GG", owner="carol", reason="done", via="api")
    assert am.silence(new_id).state == "expired"


def test_alertmanager_down_then_pending_then_lands(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    gov, audit = governance(tmp_path, [f"http://{listen}"])
    change = gov.set("GG", "maintenance", owner="alice", reason="kernel update", via="api", duration=1800)
    assert change.to_dict()["pending"] and change.audit.silence_ids == [] and change.audit.silences_pending == 1
    assert gov.effective("GG").maintenance  # applies locally at once
    [row] = gov.silences("GG")
    assert row.state == "pending" and row.error.startswith("pending: Alertmanager http://127.0.0.1")
    assert gov.sync().pending == 1  # still down: still pending, no exception

    sup = Supervisor(out=lambda line: None)
    late = AM(tmp_path, "late", listen=listen)
    try:
        sup.start(late.child)
        report = gov.sync()
        assert report.pending == 0 and report.written == 1
        [row] = gov.silences("GG")
        got = late.silence(row.silence_id)
        assert got.state == "active" and got.created_by == "alice"
        assert audit.lines[-1]["outcome"] == "silence_landed" and audit.lines[-1]["silence_ids"] == [row.silence_id]
        # enable while Alertmanager is down again: local at once, the expiry lands later
        sup.stop_all()
        gov.enable("GG", owner="alice", reason="done", via="api")
        assert not gov.effective("GG").maintenance
        assert [r.state for r in gov.silences("GG")] == ["expiring"]
        sup.start(late.child)
        gov.sync()
        assert gov.silences("GG") == []
        assert late.silence(row.silence_id).state == "expired"
    finally:
        sup.stop_all()


def test_recurring_window_creates_each_occurrence_ahead_of_time(tmp_path, am):
    gov, _ = governance(tmp_path, [am.url], horizon=3 * 86400)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    spec = f"daily {at:%H:%M} for 30m UTC"
    change = gov.set("GG", "maintenance", owner="ops", reason="nightly backup", via="cli", every=spec)
    ids = change.audit.silence_ids
    assert len(ids) == 3 and len(set(ids)) == 3
    got = sorted((am.silence(i) for i in ids), key=lambda s: s.starts_at)
    for day, s in enumerate(got):
        start = at + timedelta(days=day)
        assert s.starts_at == start
        assert s.ends_at == start + timedelta(minutes=30)
        assert s.state == "pending"  # Alertmanager's word for "starts later"
        assert "every daily" in s.comment and "nightly backup" in s.comment
    assert not gov.effective("GG").maintenance  # not inside a window now
    gov.enable("GG", owner="ops", reason="backup moved", via="cli")
    assert all(am.silence(i).state == "expired" for i in ids)


def test_recurring_window_is_topped_up_as_time_passes(tmp_path, am):
    now = [time.time()]
    gov, _ = governance(tmp_path, [am.url], clock=lambda: now[0], horizon=86400)
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    gov.set("GG", "mute", owner="ops", reason="report job", via="cli", every=f"daily {at:%H:%M} for 10m UTC")
    assert len([r for r in gov.silences("GG") if r.landed]) == 1
    now[0] += 86400  # a day later (for the store; Alertmanager keeps its own clock)
    gov.sync()
    assert len([r for r in gov.silences("GG") if r.landed]) == 1  # yesterday's ended and was forgotten, one more
    assert gov.silences("GG")[0].starts_at > time.time() + 86400 - 60
    gov.enable("GG", owner="ops", reason="done", via="cli")


def test_two_clustered_alertmanagers_both_hold_the_silence(tmp_path):
    c1, c2 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    one = AM(tmp_path, "one", cluster=c1, peers=(c2,))
    two = AM(tmp_path, "two", cluster=c2, peers=(c1,))
    sup = Supervisor(out=lambda line: None)
    try:
        sup.start(one.child)
        sup.start(two.child)
        gov, _ = governance(tmp_path, [one.url, two.url])
        change = gov.set("GG", "mute", owner="alice", reason="both", via="api", duration=600)
        [sid] = change.audit.silence_ids
        wait_until(lambda: gov.sync() and gov.silences("GG")[0].verified == {one.url: True, two.url: True},
                   timeout=20, what="the silence verified on both Alertmanagers")
        assert two.silence(sid).created_by == "alice"  # written once (to the first), gossiped to the second
    finally:
        sup.stop_all()
