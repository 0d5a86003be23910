"""Policy and engine behaviour with a fake clock and fake strategies: no processes, no sleeping."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal.config import PolicySpec
from govheal.seams import parse_config
from govheal.testing.remediator.world import FakeClock, World
from govheal.testing.support import wait_until
from remediator import policy as pol
from remediator.api import Request, UnknownAgent
from remediator.audit import read_events
from remediator.engine import Remediator
from remediator.store import Store, Switches

POLICY = """remediation:
  verify_successes: 2
  verify_interval: 100ms
  backoff_initial: 1s
  backoff_max: 8s
  budget: 3
  budget_window: 10m
  cooldown: 5m
  healthy_reset: 10m
"""


def config_text(agents: dict[str, str]) -> str:
    lines = ["node: n1", "state_dir: state", "telemetry_log: telemetry/autoheal.log", POLICY, "agents:"]
    for name, extra in agents.items():
        lines += [f"  - name: {name}", f"    process: {{pidfile: run/{name}.pid}}", "    start_grace: 1s",
                  "    restart: {strategy: command, argv: [/bin/true]}"]
        lines += ["    " + x for x in extra.splitlines() if x]
    return "\n".join(lines) + "\n"


def make(tmp_path: Path, world: World, clock: FakeClock | None = None, agents: dict[str, str] | None = None,
         fail: str | None = None, registry: CollectorRegistry | None = None, trials: bool = False) -> Remediator:
    path = tmp_path / "govheal.yaml"
    path.write_text(config_text(agents or {"A": ""}))
    cfg = parse_config(path.read_text(), path)
    strategy = world.strategy(fail)
    kwargs = {"clock": clock, "sleep": clock.sleep} if clock else {}
    if clock:
        world.clock = clock
    return Remediator(cfg, look=world.look, registry=registry, trials=trials,
                      strategies=dict.fromkeys(("launchd", "systemd", "command", "signal"), strategy), **kwargs)


# -- the pure policy ---------------------------------------------------------------------------------

def test_backoff_doubles_from_the_initial_delay_up_to_the_max() -> None:
    p = PolicySpec(backoff_initial=1, backoff_max=8, backoff_multiplier=2)
    assert [pol.backoff(p, n) for n in range(7)] == [0, 1, 2, 4, 8, 8, 8]


def test_budget_spent_opens_then_half_open_after_cooldown_then_closed_after_healthy_reset() -> None:
    p = PolicySpec(budget=2, budget_window=100, cooldown=50, healthy_reset=30, backoff_initial=1)
    s = pol.CircuitState()
    for t in (0.0, 10.0):
        assert pol.decide(p, s, t).allow
        s = pol.on_attempt(s, t)
    d = pol.decide(p, s, 20.0)
    assert (d.allow, d.opened, d.circuit) == (False, True, "open")
    s = pol.opened(s, 20.0)
    assert pol.refresh(p, s, 69.0).state == "open"
    s = pol.refresh(p, s, 70.0)
    assert s.state == "half_open" and pol.decide(p, s, 70.0).allow
    s = pol.on_attempt(s, 70.0)
    s = pol.on_result(p, s, 71.0, healed=True)
    assert pol.refresh(p, s, 100.0).state == "half_open"
    s = pol.refresh(p, s, 101.0)
    assert (s.state, s.streak, s.attempts) == ("closed", 0, ())


def test_a_failed_half_open_trial_reopens_the_circuit() -> None:
    p = PolicySpec(budget=1, cooldown=10)
    s = pol.refresh(p, pol.opened(pol.CircuitState(), 0.0), 10.0)
    s = pol.on_attempt(s, 10.0)
    s = pol.on_result(p, s, 11.0, healed=False)
    assert (s.state, s.opened_at) == ("open", 11.0)


def test_attempts_leave_the_budget_window() -> None:
    p = PolicySpec(budget=2, budget_window=60, backoff_initial=1)
    s = pol.on_attempt(pol.on_attempt(pol.CircuitState(), 0.0), 1.0)
    assert not pol.decide(p, s, 30.0).allow
    assert pol.decide(p, pol.refresh(p, s, 61.5), 61.5).allow


# -- a circuit that opens on crash loops, not on a busy day (issue 12.3) -----------------------------

DEFAULTS = PolicySpec()  # the shipped policy: budget 3 per 10m, min_uptime 60s, cooldown 5m


def crash_and_heal(p: PolicySpec, s: pol.CircuitState, crash_at: float, heal_after: float = 1.5
                   ) -> tuple[pol.CircuitState, pol.Decision]:
    """One crash at ``crash_at`` (a new incident), then the restart the policy allows, which heals."""
    s = pol.on_incident(p, s, crash_at)
    d = pol.decide(p, s, crash_at)
    if not d.allow:
        return s, d
    start = crash_at + d.wait
    s = pol.on_attempt(pol.refresh(p, s, start), start)
    return pol.on_result(p, pol.refresh(p, s, start + heal_after), start + heal_after, healed=True), d


def test_four_independent_crashes_in_ten_minutes_are_all_healed_at_once() -> None:
    s = pol.CircuitState()
    for crash in (0.0, 150.0, 300.0, 450.0):
        s, d = crash_and_heal(DEFAULTS, s, crash)
        assert d.allow and d.wait == 0, (crash, d)
        assert s.state == "closed"


def test_a_crash_every_90s_for_15_minutes_is_always_healed_without_backoff() -> None:
    s = pol.CircuitState()
    for i in range(11):  # 0 … 900 s
        s, d = crash_and_heal(DEFAULTS, s, 90.0 * i)
        assert d.allow and d.wait == 0 and s.state == "closed", (i, d)


def test_restarts_whose_agent_dies_within_min_uptime_still_open_the_circuit_after_exactly_the_budget() -> None:
    s, allowed = pol.CircuitState(), 0
    t = 0.0
    while True:
        s, d = crash_and_heal(DEFAULTS, s, t)
        if not d.allow:
            break
        allowed += 1
        t += d.wait + 1.5 + 20  # healed, then dead again 20 s later (< min_uptime 60 s)
    assert allowed == DEFAULTS.budget and d.opened


def test_failed_restarts_count_against_the_budget_even_after_a_healthy_spell() -> None:
    p = PolicySpec(budget=2, backoff_initial=1)
    s = pol.on_result(p, pol.on_attempt(pol.on_incident(p, pol.CircuitState(), 0.0), 0.0), 1.0, healed=False)
    s = pol.on_healthy(s, 5.0)  # it came back by itself (launchd), and stayed up long
    s, d = crash_and_heal(p, s, 500.0)
    assert d.allow and len(s.attempts) == 2, "the failed one still counts; the heal is on probation"
    s = pol.on_incident(p, s, 510.0)  # …and the heal did not hold for min_uptime
    assert not pol.decide(p, s, 510.0).allow


def test_after_the_cooldown_a_trial_that_holds_for_min_uptime_closes_the_circuit() -> None:
    p = DEFAULTS
    s = pol.opened(pol.CircuitState(attempts=(0.0, 2.0, 5.0), streak=3, last_attempt_at=6.0), 6.0)
    s = pol.refresh(p, s, 6.0 + p.cooldown)
    assert s.state == "half_open" and pol.decide(p, s, 6.0 + p.cooldown).allow
    t = 6.0 + p.cooldown
    s = pol.on_result(p, pol.on_attempt(s, t), t + 1, healed=True)
    assert pol.refresh(p, s, t + 1 + p.min_uptime - 0.1).state == "half_open"
    s = pol.refresh(p, s, t + 1 + p.min_uptime)
    assert (s.state, s.streak, s.attempts) == ("closed", 0, ()), "a trial that held closes the circuit"
    _, d = crash_and_heal(p, s, t + 200)
    assert d.allow and d.wait == 0, "the next independent crash is healed at once"


# -- the engine with a fake world ------------------------------------------------------------------

def test_always_failing_restarts_back_off_and_open_the_circuit_after_exactly_the_budget(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock)
    result = rem.submit(Request("A", "restart", "inc-1"))
    assert result.outcome == "circuit_open" and result.circuit == "open"
    assert len(world.restarts) == 3 and result.attempts == 3
    backoffs = [e["reason"] for e in read_events(rem.audit.path) if e["outcome"] == "backoff"]
    assert [b.split()[1] for b in backoffs] == ["1.00s", "2.00s"]
    assert "CRIT" in result.reason
    again = rem.submit(Request("A", "restart", "inc-2"))
    assert again.outcome == "circuit_open" and len(world.restarts) == 3


def test_half_open_trial_heals_and_a_healthy_period_closes_and_resets_backoff(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock)
    assert rem.submit(Request("A", "restart", "i1")).outcome == "circuit_open"
    clock.t += 300
    assert rem.circuit_state("A") == "half_open"
    world.heals = lambda n: True
    trial = rem.submit(Request("A", "restart", "i2"))
    assert (trial.outcome, trial.circuit, len(world.restarts)) == ("healed", "half_open", 4)
    rem.resolve("A", "i2")
    clock.t += 600
    assert rem.circuit_state("A") == "closed"
    world.healthy["A"] = False
    clock.sleeps.clear()
    assert rem.submit(Request("A", "restart", "i3")).outcome == "healed"
    assert not [s for s in clock.sleeps if s >= 1], "backoff was reset by the healthy period"


def test_a_new_incident_after_a_half_open_trial_reopens_without_restarting(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock)
    rem.submit(Request("A", "restart", "i1"))
    clock.t += 300
    world.heals = lambda n: True
    rem.submit(Request("A", "restart", "i2"))
    world.healthy["A"] = False
    r = rem.submit(Request("A", "restart", "i3"))
    assert (r.outcome, r.circuit, len(world.restarts)) == ("circuit_open", "open", 4)


def test_same_incident_twice_is_a_duplicate(tmp_path: Path) -> None:
    world = World(healthy={"A": False})
    rem = make(tmp_path, world, FakeClock())
    assert rem.submit(Request("A", "restart", "x")).outcome == "healed"
    world.healthy["A"] = False
    dup = rem.submit(Request("A", "restart", "x"))
    assert dup.outcome == "duplicate" and "healed" in dup.reason and len(world.restarts) == 1


def test_healthy_agent_is_already_recovered_and_not_restarted(tmp_path: Path) -> None:
    world = World(healthy={"A": True})
    rem = make(tmp_path, world, FakeClock())
    assert rem.submit(Request("A", "restart", "x")).outcome == "already_recovered"
    assert world.restarts == []


@pytest.mark.parametrize("same_incident", [True, False])
def test_two_threads_make_one_restart(tmp_path: Path, same_incident: bool) -> None:
    world = World(healthy={"A": False}, restart_seconds=0.3)
    rem = make(tmp_path, world)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        rem.submit(Request("A", "restart", "same" if same_incident else f"inc-{i}")))) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(world.restarts) == 1
    expected = {"healed", "duplicate"} if same_incident else {"healed", "already_recovered"}
    assert {r.outcome for r in results} == expected


def test_an_agent_waits_for_its_dependency_to_be_restarted_first(tmp_path: Path) -> None:
    world = World(healthy={"App": False, "Db": False}, restart_seconds=0.2)
    rem = make(tmp_path, world, agents={"Db": "", "App": "depends_on: [Db]"})
    results = {}
    app = threading.Thread(target=lambda: results.setdefault("App", rem.submit(Request("App", "restart", "a"))))
    app.start()
    time.sleep(0.3)  # App is waiting for Db; its restart must not have happened
    assert world.restarts == []
    results["Db"] = rem.submit(Request("Db", "restart", "d"))
    app.join(10)
    assert [n for n, _ in world.restarts] == ["Db", "App"]
    assert results["App"].outcome == results["Db"].outcome == "healed"
    waits = [e for e in read_events(rem.audit.path) if e["outcome"] == "waiting"]
    assert waits and "dependency Db is down" in waits[0]["reason"]


def test_a_dependency_whose_fallback_serves_is_not_waited_for(tmp_path: Path) -> None:
    world = World(healthy={"App": False, "Db": False})
    rem = make(tmp_path, world, agents={"Db": "", "App": "depends_on: [Db]"})
    rem.store.serving.activate("Db", "DbStandby", incident="i", reason="circuit open")
    t0 = time.monotonic()
    assert rem.submit(Request("App", "restart", "a")).outcome == "healed"
    assert time.monotonic() - t0 < 1.0 and [n for n, _ in world.restarts] == ["App"]
    assert not [e for e in read_events(rem.audit.path) if e["outcome"] == "waiting"]


def test_paused_agent_is_skipped_with_owner_and_reason(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False})
    reg = CollectorRegistry()
    rem = make(tmp_path, world, clock, registry=reg)
    rem.store.set_switches("A", Switches(paused=True, owner="ana", reason="migrating", expires_at=clock.t + 60))
    r = rem.submit(Request("A", "restart", "x"))
    assert r.outcome == "skipped" and "paused by ana" in r.reason and "migrating" in r.reason
    assert world.restarts == []
    skips = {"agent": "A", "node": "n1", "reason": "paused"}
    assert reg.get_sample_value("govheal_remediation_skips_total", skips) == 1
    clock.t += 61  # the switch expired
    assert rem.submit(Request("A", "restart", "y")).outcome == "healed"


def test_disabled_agent_is_skipped_for_restart_and_failover_until_enabled(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False})
    reg = CollectorRegistry()
    rem = make(tmp_path, world, clock, registry=reg, agents={"A": "fallback: {agent: B}", "B": ""})
    rem.store.set_switches("A", Switches(disabled=True, owner="ops", reason="decommissioning"))
    for action in ("restart", "failover"):
        r = rem.submit(Request("A", action, f"d-{action}"))
        assert r.outcome == "skipped" and r.reason == "A is disabled by ops: decommissioning", r.reason
    assert world.restarts == [] and world.starts == []
    skips = {"agent": "A", "node": "n1", "reason": "disabled"}
    assert reg.get_sample_value("govheal_remediation_skips_total", skips) == 2
    assert "would skip: A is disabled by ops" in rem.plan(Request("A", "restart", "d-plan"))
    rem.store.set_switches("A", Switches())
    assert rem.submit(Request("A", "restart", "d-after")).outcome == "healed"


def test_unknown_agent_is_rejected_with_the_known_names(tmp_path: Path) -> None:
    rem = make(tmp_path, World(), agents={"A": "", "B": ""})
    with pytest.raises(UnknownAgent, match=r"unknown agent 'Z'; known agents: A, B"):
        rem.submit(Request("Z", "restart", "x"))


def test_circuit_open_runs_the_fallback_agent(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False, "Backup": False}, heals=lambda n: n != "A")
    rem = make(tmp_path, world, clock, agents={"A": "fallback: {agent: Backup}", "Backup": ""})
    r = rem.submit(Request("A", "restart", "x"))
    assert (r.outcome, r.circuit) == ("failover_started", "open")
    assert world.starts == ["Backup"] and "started fallback agent Backup" in r.reason


def test_strategy_error_is_a_failed_attempt_with_its_reason(tmp_path: Path) -> None:
    world = World(healthy={"A": False})
    rem = make(tmp_path, world, FakeClock(), fail="launchctl kickstart exited 5: boom")
    r = rem.submit(Request("A", "restart", "x"))
    failed = [e for e in read_events(rem.audit.path) if e["outcome"] == "failed"]
    assert r.outcome == "circuit_open" and len(failed) == 3 and "exited 5: boom" in failed[0]["reason"]


def test_the_effective_budget_of_each_agent_is_exported_for_the_flapping_rule(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    make(tmp_path, World(), FakeClock(), registry=reg, agents={"A": "", "B": "remediation: {budget: 5}"})
    budgets = {a: reg.get_sample_value("govheal_remediation_budget", {"agent": a, "node": "n1"}) for a in "AB"}
    assert budgets == {"A": 3, "B": 5}


def test_metrics_exist_at_zero_and_count_outcomes(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    world = World(healthy={"A": False})
    rem = make(tmp_path, world, FakeClock(), registry=reg)
    labels = {"agent": "A", "node": "n1", "action": "restart", "outcome": "healed"}
    assert reg.get_sample_value("govheal_remediations_total", labels) == 0
    assert reg.get_sample_value("govheal_circuit_state", {"agent": "A", "node": "n1", "state": "closed"}) == 1
    assert reg.get_sample_value("govheal_circuit_state", {"agent": "A", "node": "n1", "state": "open"}) == 0
    assert reg.get_sample_value("govheal_remediation_in_progress", {"agent": "A", "node": "n1"}) == 0
    rem.submit(Request("A", "restart", "x"))
    assert reg.get_sample_value("govheal_remediations_total", labels) == 1
    assert reg.get_sample_value("govheal_remediation_duration_seconds_count",
                                {"agent": "A", "node": "n1", "action": "restart"}) == 1


def test_listeners_see_progress_then_outcome_and_the_audit_has_one_line_each(tmp_path: Path) -> None:
    world = World(healthy={"A": False})
    rem = make(tmp_path, world, FakeClock())
    seen = []
    rem.subscribe(lambda ev: seen.append(ev.outcome))
    rem.subscribe(lambda ev: 1 / 0)  # a broken listener does not stop the remediation
    assert rem.submit(Request("A", "restart", "x", reason="AgentDown firing")).outcome == "healed"
    assert seen == ["restarting", "healed"]
    events = [e for e in read_events(rem.audit.path) if e["outcome"] != "listener_error"]
    assert [e["outcome"] for e in events] == seen
    assert set(events[0]) >= {"time", "agent", "node", "incident", "action", "outcome", "duration_seconds",
                              "old_pid", "new_pid", "reason"}
    assert "AgentDown firing" in events[0]["reason"]


def test_state_survives_a_new_remediator_on_the_same_store(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    make(tmp_path, world, clock).submit(Request("A", "restart", "i1"))
    again = make(tmp_path, world, clock)
    assert again.circuit_state("A") == "open"
    assert again.submit(Request("A", "restart", "i1")).outcome == "duplicate"
    assert len(Store(again.store.path).attempts("A", "i1")) == 3


def test_the_failover_command_runs_once_when_the_circuit_opens_not_on_every_later_request(tmp_path: Path) -> None:
    marker = tmp_path / "failover-ran"
    argv = f'[{sys.executable!r}, -c, "import sys; open(sys.argv[1], \'a\').write(\'x\')", {str(marker)!r}]'
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock, agents={"A": f"fallback: {{argv: {argv}, note: backup node}}"})
    r = rem.submit(Request("A", "restart", "i1"))
    assert (r.outcome, marker.read_text()) == ("failover_started", "x")
    assert "backup node" in r.reason and r.reason.startswith("CRIT")
    later = rem.submit(Request("A", "restart", "i2"))
    assert later.outcome == "circuit_open" and not later.reason.startswith("CRIT")
    assert marker.read_text() == "x"


def test_a_failing_failover_command_is_failover_failed_with_its_exit_code(tmp_path: Path) -> None:
    argv = f'[{sys.executable!r}, -c, "raise SystemExit(3)"]'
    world = World(healthy={"A": False})
    rem = make(tmp_path, world, FakeClock(), agents={"A": f"fallback: {{argv: {argv}}}"})
    r = rem.submit(Request("A", "failover", "f1"))
    assert r.outcome == "failover_failed" and "exited 3" in r.reason and world.restarts == []


def test_failover_without_a_fallback_is_skipped_with_the_fix(tmp_path: Path) -> None:
    r = make(tmp_path, World(healthy={"A": False}), FakeClock()).submit(Request("A", "failover", "f1"))
    assert r.outcome == "skipped" and "add fallback:" in r.reason


def test_an_unexpected_error_is_audited_and_the_incident_can_be_resumed(tmp_path: Path) -> None:
    world = World(healthy={"A": False})
    rem = make(tmp_path, world, FakeClock())
    boom = {"on": True}

    def look(config, agent):
        if boom["on"]:
            raise OSError("disk on fire")
        return world.look(config, agent)

    rem.look = look
    with pytest.raises(OSError):
        rem.submit(Request("A", "restart", "x"))
    assert read_events(rem.audit.path)[-1]["outcome"] == "error"
    boom["on"] = False
    assert rem.submit(Request("A", "restart", "x")).outcome == "healed"


def test_the_exposition_passes_promtool_check_metrics(tmp_path: Path) -> None:
    import subprocess

    from prometheus_client import generate_latest

    from tests.conftest import require_binary

    reg = CollectorRegistry()
    make(tmp_path, World(), FakeClock(), registry=reg)
    text = generate_latest(reg)
    assert text.count(b"\ngovheal_circuit_state{") == 3
    out = subprocess.run([require_binary("promtool"), "check", "metrics"], input=text, capture_output=True,
                         timeout=30, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_circuit_open_alerts_failover_request_does_not_repeat_the_engines_failover(tmp_path: Path) -> None:
    marker = tmp_path / "failover-ran"
    argv = f'[{sys.executable!r}, -c, "import sys; open(sys.argv[1], \'a\').write(\'x\')", {str(marker)!r}]'
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock, agents={"A": f"fallback: {{argv: {argv}}}"})
    assert rem.submit(Request("A", "restart", "i1", source="alertmanager")).outcome == "failover_started"
    alert = rem.submit(Request("A", "failover", "circuit-open-1", source="alertmanager"))
    assert alert.outcome == "duplicate" and "already started" in alert.reason and marker.read_text() == "x"
    operator = rem.submit(Request("A", "failover", "by-hand", source="cli"))
    assert operator.outcome == "failover_started" and marker.read_text() == "xx"


def _series(reg: CollectorRegistry, name: str) -> set[tuple]:
    return {tuple(sorted(s.labels.items())) for m in reg.collect() for s in m.samples if s.name == name}


def test_every_value_the_engine_emits_is_a_series_that_exists_at_zero_from_start_up(tmp_path: Path) -> None:
    """Drive the engine through every outcome and skip reason; no emission may create a new series."""
    from remediator.api import Outcome, SkipReason, Step
    from remediator.strategies import Refused

    reg = CollectorRegistry()
    clock, world = FakeClock(), World(healthy={"A": False, "B": False, "C": True})
    rem = make(tmp_path, world, clock, registry=reg, agents={
        "A": "fallback: {argv: [/bin/false]}", "B": "fallback: {agent: C}", "C": "", "D": "", "E": ""})
    before = {n: _series(reg, n) for n in ("govheal_remediations_total", "govheal_remediation_skips_total")}
    for name in before["govheal_remediations_total"]:
        assert reg.get_sample_value("govheal_remediations_total", dict(name)) == 0
    emitted: list[str] = []
    rem.subscribe(lambda ev: emitted.append(ev.outcome))
    results = []

    def go(agent: str, action: str, incident: str, **kw) -> None:
        results.append(rem.submit(Request(agent, action, incident, **kw)))

    go("C", "restart", "c1")  # already_recovered
    go("A", "restart", "a1")  # healed
    go("A", "restart", "a1")  # duplicate
    world.heals = lambda n: False
    world.healthy["A"] = False
    go("A", "restart", "a2")  # 3 failed attempts: circuit opens, the failover command fails
    go("A", "restart", "a3")  # circuit_open (a skip)
    world.healthy["A"] = True
    go("A", "failover", "a4", source="alertmanager")  # healthy: nothing to fail over from
    go("B", "failover", "b0", source="alertmanager")  # its circuit is closed
    world.healthy["B"] = False
    go("B", "restart", "b1")  # opens, fails over to C
    go("D", "failover", "d1")  # no fallback configured
    rem.store.set_switches("D", Switches(paused=True))
    go("D", "restart", "d2")
    rem.store.set_switches("D", Switches(disabled=True))
    go("D", "restart", "d3")
    rem.store.acquire_lease("E", "someone-else", clock.t, 10_000)
    rem._lease_ttl = lambda agent: 0.05  # do not wait out a real lease
    go("E", "restart", "e1")  # busy
    rem.store.release_lease("E", "someone-else")
    refusing = world.strategy()
    refusing.restart = lambda *a: (_ for _ in ()).throw(Refused("refused to signal pid 1"))
    rem.strategies = {**rem.strategies, "command": refusing}
    world.healthy["E"] = False
    go("E", "restart", "e2")  # failed, refused
    cfg = rem.config
    bare = cfg.agents[-1].model_copy(update={"restart": None})
    rem.config = cfg.model_copy(update={"agents": [*cfg.agents[:-1], bare]})
    go("E", "restart", "e3")  # no restart configured
    rem.config = cfg

    after = {n: _series(reg, n) for n in before}
    assert after == before, "an emitted value created a series that was not there at start-up"
    assert {r.outcome for r in results} == set(Outcome), "the scenarios cover every outcome"
    skips = {tuple(sorted(s.labels.items())) for m in reg.collect() for s in m.samples
             if s.name == "govheal_remediation_skips_total" and s.value > 0}
    assert {dict(k)["reason"] for k in skips} == set(SkipReason), "the scenarios cover every skip reason"
    assert set(emitted) <= set(Outcome) | set(Step)


# -- the audit log: one line per event, each with its own data (issue 13.15) ------------------------

def test_one_opening_of_the_circuit_is_one_circuit_open_line(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock)
    assert rem.submit(Request("A", "restart", "i1")).outcome == "circuit_open"
    lines = [e["outcome"] for e in read_events(rem.audit.path)]
    assert lines.count("circuit_open") == 1, lines
    assert lines == ["restarting", "failed", "backoff", "restarting", "failed", "backoff", "restarting", "failed",
                     "circuit_open"]


def test_a_failover_is_one_line_per_step(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False, "Backup": False}, heals=lambda n: n != "A")
    rem = make(tmp_path, world, clock, agents={"A": "fallback: {agent: Backup}", "Backup": ""})
    assert rem.submit(Request("A", "restart", "x")).outcome == "failover_started"
    lines = [e["outcome"] for e in read_events(rem.audit.path)]
    assert lines[-3:] == ["circuit_open", "failover_running", "failover_started"], lines
    assert lines.count("failover_started") == 1 and lines.count("circuit_open") == 1
    assert rem.submit(Request("A", "failover", "by-hand")).outcome == "failover_started"
    lines = [e["outcome"] for e in read_events(rem.audit.path) if e["incident"] == "by-hand"]
    assert lines == ["failover_running", "failover_started"]


def test_each_restarting_line_carries_the_diagnostics_of_its_own_attempt(tmp_path: Path) -> None:
    """The first attempt stops a real process (its diagnostics are recorded); at the second the process is
    gone, so its line has none (it carried the first attempt's)."""
    import subprocess

    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
        rem = make(tmp_path, world, clock)
        (tmp_path / "run").mkdir()
        pidfile = tmp_path / "run" / "A.pid"
        pidfile.write_text(f"{victim.pid}\n")
        strategy = rem.strategies["command"]
        restart = strategy.restart

        def stop_then_fail(config, agent, pid):
            pidfile.unlink(missing_ok=True)  # the process is gone after the first attempt
            return restart(config, agent, pid)

        strategy.restart = stop_then_fail
        r = rem.submit(Request("A", "restart", "i1"))
        restarting = [e for e in read_events(rem.audit.path) if e["outcome"] == "restarting"]
        assert restarting[0]["old_pid"] == victim.pid and restarting[0]["diagnostics"]["rss_bytes"] > 0
        assert [e["old_pid"] for e in restarting[1:]] == [None, None]
        assert [e["diagnostics"] for e in restarting[1:]] == [{}, {}], "a later attempt repeated old diagnostics"
        assert r.diagnostics == restarting[0]["diagnostics"], "the result keeps what the agent looked like first"
    finally:
        victim.kill()
        victim.wait()


# -- a failover requested by an alert (issue 13.3) -------------------------------------------------

def test_failover_alerts_against_a_healthy_agent_with_a_closed_circuit_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "failover-ran"
    argv = f'[{sys.executable!r}, -c, "import sys; open(sys.argv[1], \'a\').write(\'x\')", {str(marker)!r}]'
    reg = CollectorRegistry()
    clock, world = FakeClock(), World(healthy={"A": True})
    rem = make(tmp_path, world, clock, registry=reg, agents={"A": f"fallback: {{argv: {argv}}}"})
    for i in range(3):  # three alerts with new fingerprints
        r = rem.submit(Request("A", "failover", f"fp{i}:2026-01-01T00:00:00Z", source="alertmanager"))
        assert (r.outcome, r.circuit) == ("skipped", "closed") and "is healthy" in r.reason, r.reason
    assert not marker.exists(), "the fallback ran against a healthy agent"
    world.healthy["A"] = False  # unhealthy, but the circuit is closed: restarts are still the answer
    r = rem.submit(Request("A", "failover", "fp9:x", source="alertmanager"))
    assert r.outcome == "skipped" and "circuit is closed" in r.reason and not marker.exists()
    skips = {k: reg.get_sample_value("govheal_remediation_skips_total", {"agent": "A", "node": "n1", "reason": k})
             for k in ("healthy", "circuit_not_open")}
    assert skips == {"healthy": 3, "circuit_not_open": 1}
    plan = rem.plan(Request("A", "failover", "p", source="alertmanager"))
    assert "would skip:" in plan and "circuit is closed" in plan, plan


def test_a_failover_alert_runs_once_per_opening_and_only_while_the_agent_is_down(tmp_path: Path) -> None:
    marker = tmp_path / "failover-ran"
    argv = f'[{sys.executable!r}, -c, "import sys; open(sys.argv[1], \'a\').write(\'x\')", {str(marker)!r}]'
    clock, world = FakeClock(), World(healthy={"A": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock, agents={"A": f"fallback: {{argv: {argv}, note: backup}}"})
    rem.store.save_circuit("A", pol.opened(pol.CircuitState(), clock.t))  # opened elsewhere, no failover yet
    first = rem.submit(Request("A", "failover", "open-1", source="alertmanager"))
    assert first.outcome == "failover_started" and marker.read_text() == "x"
    again = [rem.submit(Request("A", "failover", f"open-{i}", source="alertmanager")).outcome for i in (2, 3)]
    assert again == ["duplicate", "duplicate"] and marker.read_text() == "x"
    world.healthy["A"] = True  # it came back while open: nothing to fail over from
    assert rem.submit(Request("A", "failover", "open-4", source="alertmanager")).outcome == "skipped"
    assert rem.submit(Request("A", "failover", "by-hand", source="cli")).outcome == "failover_started"
    assert marker.read_text() == "xx", "an operator's explicit request always runs"


# -- the same through the engine: alerts, heals, resolves, and the half-open trial without an operator -

def test_a_busy_day_through_the_engine_heals_every_crash_and_never_opens_the_circuit(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": True})
    rem = make(tmp_path, world, clock)
    for i in range(4):  # four independent crashes, 150 s apart: all within one budget window
        world.healthy["A"] = False
        r = rem.submit(Request("A", "restart", f"crash-{i}", source="alertmanager"))
        assert (r.outcome, r.circuit) == ("healed", "closed"), (i, r.reason)
        rem.resolve("A", f"crash-{i}")
        clock.t += 150
    assert len(world.restarts) == 4 and not [s for s in clock.sleeps if s >= 1], "no backoff between them"


def test_a_crash_loop_through_the_engine_opens_after_exactly_the_budget_then_the_trial_heals_it(
        tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": True})
    rem = make(tmp_path, world, clock)
    outcomes = []
    for i in range(5):  # each restart heals, and the agent dies again 10 s later
        world.healthy["A"] = False
        outcomes.append(rem.submit(Request("A", "restart", f"loop-{i}", source="alertmanager")).outcome)
        clock.t += 10
    assert outcomes == ["healed", "healed", "healed", "circuit_open", "circuit_open"]
    assert len(world.restarts) == 3
    assert rem.run_due_trials() == [], "nothing before the cooldown"
    clock.t += 300
    assert rem.circuit_state("A") == "half_open"
    trial, = rem.run_due_trials()  # what the receiver's trial thread does: no operator, no new alert
    assert (trial.outcome, trial.incident, len(world.restarts)) == ("healed", "loop-4", 4)
    assert rem.run_due_trials() == [], "one trial per half-open period"
    clock.t += 60  # the trial held for min_uptime: closed, and the next crash is healed at once
    assert rem.circuit_state("A") == "closed"
    world.healthy["A"] = False
    assert rem.submit(Request("A", "restart", "later")).outcome == "healed"


def test_no_trial_restart_for_an_agent_that_came_back_by_itself_or_is_paused(tmp_path: Path) -> None:
    clock, world = FakeClock(), World(healthy={"A": False, "B": False, "C": False}, heals=lambda n: False)
    rem = make(tmp_path, world, clock, agents={"A": "", "B": "", "C": ""})
    for name in ("A", "B", "C"):
        assert rem.submit(Request(name, "restart", f"{name}-1")).outcome == "circuit_open"
    clock.t += 300
    world.healthy["A"] = True  # launchd brought it back, and its alert resolved
    rem.resolve("A", "A-1")
    rem.store.set_switches("B", Switches(paused=True, owner="ana"))
    world.healthy["C"] = True  # back, but its alert has not resolved yet: the trial only looks
    trial, = rem.run_due_trials()
    assert (trial.agent, trial.outcome) == ("C", "already_recovered")
    assert rem.run_due_trials() == [] and len(world.restarts) == 9


def test_the_trial_thread_heals_an_open_circuit_after_the_cooldown_in_real_time(tmp_path: Path) -> None:
    world = World(healthy={"A": False}, heals=lambda n: False)
    path = tmp_path / "govheal.yaml"
    path.write_text(config_text({"A": "remediation: {cooldown: 300ms, backoff_initial: 10ms}"}))
    cfg = parse_config(path.read_text(), path)
    import remediator.engine as engine

    rem = Remediator(cfg, look=world.look, strategies={"command": world.strategy()}, trials=True)
    try:
        engine_poll, engine.TRIAL_POLL = engine.TRIAL_POLL, 0.05
        assert rem.submit(Request("A", "restart", "i1")).outcome == "circuit_open"
        world.heals = lambda n: True
        wait_until(lambda: world.healthy["A"], 10, what="the half-open trial")
        assert len(world.restarts) == 4
    finally:
        engine.TRIAL_POLL = engine_poll
        rem.close()
