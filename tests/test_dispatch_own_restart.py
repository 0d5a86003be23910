"""An alert caused by govheal's own restart is not a second fault (found by make chaos): a hung agent's
AgentUnhealthy restart stops the old process, so AgentDown fires for the moment until the new one is up;
it is remediated like any alert (the agent is healthy again: already_recovered) and told only if acting on
it does something."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediator.api import Event, Request, Result
from tests.test_receiver_support import TOKEN, FakeBridge, alert, body, receiver_config
from webhook_receiver.app import create_app


class Remediator:
    """Emits what the engine emits (restarting, then the request's result line) with real times; each request
    ends with the next of ``outcomes`` (a restart, taking ``restart_seconds``, unless already_recovered)."""

    def __init__(self, *outcomes: str, restart_seconds: float = 0.3) -> None:
        self.listeners: list[Callable[[Event], None]] = []
        self.restart_seconds = restart_seconds
        self.outcomes = list(outcomes)
        self.submitted: list[Request] = []

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self.listeners.append(listener)

    def _emit(self, req: Request, outcome: str) -> None:
        for listener in self.listeners:
            listener(Event(time=time.time(), agent=req.agent, node="n1", incident=req.incident, action=req.action,
                           outcome=outcome, duration_seconds=0.0, old_pid=1, new_pid=2, reason=""))

    def submit(self, req: Request, *, dry_run: bool = False) -> Result:
        self.submitted.append(req)
        outcome = self.outcomes.pop(0) if self.outcomes else "already_recovered"
        if outcome != "already_recovered":
            self._emit(req, "restarting")
            time.sleep(self.restart_seconds)
        self._emit(req, outcome)
        return Result(agent=req.agent, node="n1", incident=req.incident, action=req.action, outcome=outcome,
                      attempts=1, duration_seconds=0.3, old_pid=1, new_pid=2, reason="", circuit="closed")

    def resolve(self, agent: str, incident: str) -> None:
        pass


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def rig(tmp_path: Path, request):
    rem, bridge = Remediator(*request.param), FakeBridge()
    app = create_app(receiver_config(tmp_path), remediator=rem, bridge=bridge, token=TOKEN)
    client = app.test_client()

    def post(*alerts: dict) -> None:
        resp = client.post("/alertmanager", data=body(*alerts), content_type="application/json",
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200

    svc = app.extensions["govheal"]
    yield rem, bridge, post, svc
    svc.stop(2)


@pytest.mark.parametrize("rig", [("healed", "already_recovered")], indirect=True)
def test_agent_down_during_our_own_restart_is_remediated_but_not_told(rig) -> None:
    rem, bridge, post, svc = rig
    started = time.time()
    post(alert("GG", alertname="AgentUnhealthy", fp="aaaaaaaaaaaaaaa1", starts=rfc3339(started)))
    time.sleep(0.1)  # the restart is under way: the old process is gone
    down = rfc3339(time.time())
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaaa2", starts=down))
    assert svc.dispatcher.wait_idle(10)
    assert len(rem.submitted) == 2 and rem.submitted[1].incident.startswith("aaaaaaaaaaaaaaa2")
    assert {n.key.split(":")[0] for n in bridge.notices} == {"aaaaaaaaaaaaaaa1"}, "one fault, one message"
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaaa2", starts=down, status="resolved"))
    assert svc.dispatcher.wait_idle(10)
    assert {n.key.split(":")[0] for n in bridge.notices} == {"aaaaaaaaaaaaaaa1"}, "nor its resolve"


@pytest.mark.parametrize("rig", [("healed", "healed")], indirect=True)
def test_a_crash_after_the_restart_is_a_new_fault_and_told(rig) -> None:
    _, bridge, post, svc = rig
    post(alert("GG", alertname="AgentUnhealthy", fp="bbbbbbbbbbbbbbb1", starts=rfc3339(time.time())))
    assert svc.dispatcher.wait_idle(10)
    later = time.time() + 2.5  # beyond the grace after the restart ended
    post(alert("GG", alertname="AgentDown", fp="bbbbbbbbbbbbbbb2", starts=rfc3339(later)))
    assert svc.dispatcher.wait_idle(10)
    assert {n.key.split(":")[0] for n in bridge.notices} == {"bbbbbbbbbbbbbbb1", "bbbbbbbbbbbbbbb2"}


@pytest.mark.parametrize("rig", [("failed", "healed")], indirect=True)
def test_an_alert_during_our_restart_that_needs_acting_on_is_told(rig) -> None:
    """The AgentDown of a restart that did not take: acting on it restarts again, so people hear of it."""
    _, bridge, post, svc = rig
    post(alert("GG", alertname="AgentUnhealthy", fp="ccccccccccccccc1", starts=rfc3339(time.time())))
    time.sleep(0.1)
    post(alert("GG", alertname="AgentDown", fp="ccccccccccccccc2", starts=rfc3339(time.time())))
    assert svc.dispatcher.wait_idle(10)
    keys = [n.key.split(":")[0] for n in bridge.notices]
    assert "ccccccccccccccc2" in keys and keys.index("ccccccccccccccc2") > keys.index("ccccccccccccccc1")


# -- a heal that did not hold before Prometheus saw it ------------------------------------------------------

@pytest.mark.parametrize("rig", [("healed", "healed")], indirect=True)
def test_a_healed_agent_whose_alert_does_not_resolve_is_looked_at_until_it_does(rig) -> None:
    """The agent died again within a scrape of its heal (or the resolve was lost): the alert stays firing with
    the same start and Alertmanager sends nothing new. The receiver asks the remediator to look again every
    recheck_after until the resolve arrives; the look that restarts is told as a new message."""
    rem, bridge, post, svc = rig
    svc.dispatcher.recheck_after = 0.2
    starts = rfc3339(time.time())
    post(alert("GG", alertname="AgentDown", fp="ddddddddddddddd1", starts=starts))
    deadline = time.monotonic() + 10
    while len(rem.submitted) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.incident.rsplit("#", 1)[-1] for r in rem.submitted][1:4] == ["recheck-1", "recheck-2", "recheck-3"]
    post(alert("GG", alertname="AgentDown", fp="ddddddddddddddd1", starts=starts, status="resolved"))
    time.sleep(0.6)
    assert svc.dispatcher.wait_idle(5)
    looked = len(rem.submitted)
    time.sleep(0.6)
    assert len(rem.submitted) == looked, "resolved: no more looks"
    keys = {n.key for n in bridge.notices}
    assert f"ddddddddddddddd1:{starts}#recheck-1" in keys, "the restart again is a message of its own"
    assert not any(k.endswith(("recheck-2", "recheck-3")) for k in keys), "a look that found it healthy says nothing"


@pytest.mark.parametrize("rig", [("healed", "healed")], indirect=True)
def test_a_resolved_alert_is_not_looked_at_again(rig) -> None:
    rem, _, post, svc = rig
    svc.dispatcher.recheck_after = 0.3
    starts = rfc3339(time.time())
    post(alert("GG", alertname="AgentDown", fp="eeeeeeeeeeeeeee1", starts=starts))
    assert svc.dispatcher.wait_idle(5)
    post(alert("GG", alertname="AgentDown", fp="eeeeeeeeeeeeeee1", starts=starts, status="resolved"))
    time.sleep(0.8)
    assert svc.dispatcher.wait_idle(5)
    assert len(rem.submitted) == 1


@pytest.mark.parametrize("rig", [("failed", "duplicate")], indirect=True)
def test_the_circuit_opening_is_told_although_it_starts_as_our_restart_ends(rig) -> None:
    """AgentCircuitOpen (remediation=failover) fires as the restarts give up: it is the CRIT, never muted."""
    _, bridge, post, svc = rig
    post(alert("GG", alertname="AgentDown", fp="fffffffffffffff1", starts=rfc3339(time.time())))
    assert svc.dispatcher.wait_idle(10)
    post(alert("GG", alertname="AgentCircuitOpen", fp="fffffffffffffff2", remediation="failover",
               starts=rfc3339(time.time())))
    assert svc.dispatcher.wait_idle(10)
    assert "fffffffffffffff2" in {n.key.split(":")[0] for n in bridge.notices}


def test_a_restarted_receiver_looks_again_at_what_it_healed_before(tmp_path: Path) -> None:
    """The looks live in memory: a receiver restarted (SIGKILLed under make chaos) schedules them again from
    the inbox, for incidents it healed whose resolve never came."""
    cfg = receiver_config(tmp_path)
    rem = Remediator("healed")
    app = create_app(cfg, remediator=rem, bridge=FakeBridge(), token=TOKEN)
    app.extensions["govheal"].dispatcher.recheck_after = 60  # the first receiver dies before its look
    app.test_client().post("/alertmanager", data=body(alert("GG", fp="aaaaaaaaaaaaaa77", starts=rfc3339(time.time()))),
                           content_type="application/json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert app.extensions["govheal"].dispatcher.wait_idle(10)
    app.extensions["govheal"].stop(2)
    again = Remediator()
    from webhook_receiver.dispatch import Dispatcher

    Dispatcher.recheck_after, saved = 0.2, Dispatcher.recheck_after
    try:
        app2 = create_app(cfg, remediator=again, bridge=FakeBridge(), token=TOKEN)
        deadline = time.monotonic() + 5
        while not again.submitted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.incident.rsplit("#", 1)[-1] for r in again.submitted][:1] == ["recheck-1"]
        app2.extensions["govheal"].stop(2)
    finally:
        Dispatcher.recheck_after = saved


# -- Alertmanager repeats an alert whose incident has ended ---------------------------------------------------

@pytest.mark.parametrize("rig", [("failover_started", "healed")], indirect=True)
def test_a_repeat_of_an_ended_incident_still_firing_is_looked_at_at_once(rig) -> None:
    """make chaos: a crash loop failed over, a failback from the CLI healed the agent, it was SIGKILLed 2.5 s
    later while Prometheus restarted: no scrape saw it up, Alertmanager merged the new outage into the alert
    it held (same start), and its one-minute repeats were dropped as duplicates: down 2.5 minutes."""
    rem, bridge, post, svc = rig
    svc.dispatcher.recheck_after = 0.1
    starts = rfc3339(time.time())
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaab1", starts=starts))
    assert svc.dispatcher.wait_idle(10)
    assert len(rem.submitted) == 1  # failed over: no rechecks of its own
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaab1", starts=starts))  # Alertmanager's repeat
    assert svc.dispatcher.wait_idle(10)
    assert len(rem.submitted) == 2 and "#repeat-" in rem.submitted[1].incident
    assert "repeated" in rem.submitted[1].reason
    assert any("#repeat-" in n.key for n in bridge.notices), "it acted: people hear the agent was down again"
    # it healed: looked at again until the resolve, under ids of its own chain
    deadline = time.monotonic() + 5
    while len(rem.submitted) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rem.submitted[2].incident == rem.submitted[1].incident + "-1"


@pytest.mark.parametrize("rig", [("healed",)], indirect=True)
def test_repeats_while_a_recheck_is_scheduled_or_after_the_resolve_add_no_look(rig) -> None:
    rem, _, post, svc = rig
    svc.dispatcher.recheck_after = 0.5
    starts = rfc3339(time.time())
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaab2", starts=starts))
    assert svc.dispatcher.wait_idle(10)
    for _ in range(3):  # both Alertmanagers of a pair, and a repeat: the recheck already scheduled covers them
        post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaab2", starts=starts))
    assert svc.dispatcher.wait_idle(10)
    assert len(rem.submitted) == 1
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaab2", starts=starts, status="resolved"))
    time.sleep(0.8)
    post(alert("GG", alertname="AgentDown", fp="aaaaaaaaaaaaaab2", starts=starts))  # a late copy of the firing
    assert svc.dispatcher.wait_idle(10)
    assert not any("#repeat-" in r.incident for r in rem.submitted), [r.incident for r in rem.submitted]
    assert len(rem.submitted) <= 2  # the heal and, if it ran before the resolve, the scheduled recheck
