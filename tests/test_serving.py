"""Which one serves after a failover (govheal/serving.py), and failing back as an operator action."""

from __future__ import annotations

from pathlib import Path

import pytest

from govheal.seams import parse_config
from govheal.serving import ServingReader, ServingStore, fallback_name
from govheal.store import connect, db_path
from govheal.testing.remediator.world import FakeClock, World
from remediator.api import RemediationError, Request
from remediator.audit import read_events
from remediator.engine import Remediator
from remediator.store import Store
from tests.test_remediator_policy import make


def test_the_record_holds_until_cleared_and_survives_a_reopen(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    store = ServingStore(connect(path), clock=lambda: 100.0)
    first = store.activate("GG", "GG-mini", incident="i1", reason="circuit open")
    again = store.activate("GG", "GG-mini", incident="i2", reason="again", at=200.0)
    assert (first.since, again.since, again.incident) == (100.0, 100.0, "i2"), "serving since the first failover"
    assert ServingReader(path).all()["GG"].fallback == "GG-mini"
    assert store.clear("GG") is not None and store.get("GG") is None and store.clear("GG") is None


def test_the_fallbacks_name_is_its_agent_else_its_command() -> None:
    cfg = parse_config("""
agents:
  - {name: A, health: {url: "http://127.0.0.1:9/"}, fallback: {agent: B}}
  - {name: B, health: {url: "http://127.0.0.1:9/"}}
  - {name: C, health: {url: "http://127.0.0.1:9/"}, fallback: {argv: [/usr/local/bin/activate-mirror, --now]}}
""")
    assert [fallback_name(a) for a in cfg.agents] == ["B", None, "activate-mirror"]


def test_a_failover_marks_the_fallback_serving_and_failback_is_audited(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False, "Backup": True}, heals=lambda n: n != "A")
    rem = make(tmp_path, world, clock, agents={"A": "fallback: {agent: Backup}", "Backup": ""})
    r = rem.submit(Request("A", "restart", "x"))
    assert r.outcome == "failover_started"
    serving = rem.store.serving.get("A")
    assert serving is not None and (serving.fallback, serving.incident) == ("Backup", "x")

    # the agent is still broken: failing back is refused and the fallback keeps serving
    failed = rem.failback("A", "tried too early", owner="ops")
    assert failed.outcome == "failed" and rem.store.serving.get("A") is not None
    assert "Backup keeps serving" in failed.reason

    world.healthy["A"] = True  # repaired by the operator
    back = rem.failback("A", "disk replaced", owner="ops")
    assert back.outcome == "healed" and back.action == "failback"
    assert rem.store.serving.get("A") is None
    assert rem.circuit_state("A") == "closed", "the operator's failback gives a fresh budget"
    lines = [e for e in read_events(rem.audit.path) if e["action"] == "failback"]
    assert [e["outcome"] for e in lines] == ["failback_failed", "failed_back"]
    assert "ops: disk replaced" in lines[-1]["reason"] and "Backup no longer serves" in lines[-1]["reason"]


def test_failback_needs_an_active_failover_and_a_reason(tmp_path: Path) -> None:
    rem = make(tmp_path, World(healthy={"A": True}), FakeClock())
    with pytest.raises(RemediationError, match="serves itself"):
        rem.failback("A", "why not")
    rem.store.serving.activate("A", "B")
    with pytest.raises(RemediationError, match="--reason"):
        rem.failback("A", "  ")


def test_the_remediator_store_and_the_exporter_read_the_same_table(tmp_path: Path) -> None:
    store = Store(db_path(tmp_path))
    try:
        store.serving.activate("A", "B", at=5.0)
    finally:
        store.close()
    assert ServingReader(db_path(tmp_path)).all()["A"].since == 5.0


def test_the_cli_fails_back_with_an_audit_line(tmp_path: Path, capsys) -> None:
    from govheal.cli import main

    cfg = tmp_path / "govheal.yaml"
    cfg.write_text("""node: n1
state_dir: state
telemetry_log: telemetry/autoheal.log
agents:
  - {name: A, health: {url: "http://127.0.0.1:9/"}, fallback: {agent: B}}
  - {name: B, health: {url: "http://127.0.0.1:9/"}}
""")
    assert main(["restart", "A", "--failback", "--config", str(cfg)]) == 2  # no reason
    assert "--reason" in capsys.readouterr().err
    assert main(["restart", "A", "--failback", "--reason", "x", "--config", str(cfg)]) == 1
    assert "serves itself" in capsys.readouterr().err
    rem = Remediator(parse_config(cfg.read_text(), cfg))
    rem.store.serving.activate("A", "B")
    rem.close()
    # A's health URL does not answer and it has no restart: the failback is refused, B keeps serving
    assert main(["restart", "A", "--failback", "--reason", "repaired", "--owner", "me", "--config", str(cfg)]) == 1
    assert "failback failed" in capsys.readouterr().out


def test_the_governance_page_and_api_show_which_one_serves(tmp_path: Path) -> None:
    from tests.test_governance_web import BEARER_READ, login, make_app

    app = make_app(tmp_path)
    store = app.extensions["govheal"].remediator.store
    try:
        store.serving.activate("GG", "GG-mini", incident="i-1", reason="circuit open", at=1_796_000_000.0)
        c = app.test_client()
        rows = {a["name"]: a for a in c.get("/api/agents", headers=BEARER_READ).get_json()["agents"]}
        assert rows["GG"]["serving"] == {"fallback": "GG-mini", "since": "2026-11-30T00:53:20Z", "incident": "i-1"}
        assert rows["Mary"]["serving"] is None
        login(c)
        html = c.get("/ops/governance").get_data(as_text=True)
        assert "GG-mini serves since 2026-11-30T00:53:20Z" in html and "--failback" in html
    finally:
        store.close()


def test_a_request_that_finds_the_agent_healthy_does_not_cancel_a_heals_probation(tmp_path: Path) -> None:
    """make chaos: restarting a hung agent fires AgentDown for a moment, and its request (already_recovered)
    was taken for a new incident: the heal was never forgiven, and the 4th hang in 10 minutes found the circuit
    open and stayed down. A healthy-at-once request is no outage."""
    clock, world = FakeClock(), World(healthy={"A": False})
    rem = make(tmp_path, world, clock)
    for i in range(5):  # five hangs, each healed, each followed at once by its restart's AgentDown echo
        world.healthy["A"] = False
        r = rem.submit(Request("A", "restart", f"hang-{i}"))
        assert r.outcome == "healed", (i, r.outcome, r.reason)
        echo = rem.submit(Request("A", "restart", f"echo-{i}"))
        assert echo.outcome == "already_recovered"
        clock.t += 90  # the heal holds longer than min_uptime (60 s) before the next hang
    assert rem.circuit_state("A") == "closed"


def test_an_attempt_interrupted_mid_restart_that_came_up_is_forgiven_like_any_heal(tmp_path: Path) -> None:
    """make chaos: the receiver SIGKILLed mid-restart left the attempt counted for good (the resumed request
    found the agent up: already_recovered, no probation), and three such kills opened a healthy agent's
    circuit."""
    from remediator import policy as pol

    clock, world = FakeClock(), World(healthy={"A": False})
    rem = make(tmp_path, world, clock)
    policy = rem.config.policy_for(rem.config.agent("A"))
    for i in range(4):
        now = clock()
        rem.store.open_incident("A", f"x{i}", now, None, "AgentDown firing", "alertmanager")
        state = pol.on_attempt(pol.on_incident(policy, rem.store.circuit("A"), now), now)
        rem.store.start_attempt("A", f"x{i}", "restart", now, None, state)  # … and the receiver was killed
        world.healthy["A"] = True  # the start it made came up
        r = rem.submit(Request("A", "restart", f"x{i}"))  # the restarted receiver resumes the incident
        assert r.outcome == "already_recovered", (i, r.reason)
        clock.t += 90  # held longer than min_uptime
        world.healthy["A"] = False
    assert pol.refresh(policy, rem.store.circuit("A"), clock()).attempts == ()
    assert rem.circuit_state("A") == "closed"
