"""Two nodes on one host, two clustered Alertmanagers, a Prometheus HA pair (docs/ha.md), all real.

node-a runs A1, A2, A3 (A3 restarts into a crash loop; its fallback is the remote endpoint A3-mirror,
served by node-b's B3), node-b runs B1, B2, B3. Both receivers get every alert from both Alertmanagers
(each through a FlakyProxy, so a test can make one node's webhook fail), both Prometheus replicas scrape
both nodes. The fake Discord and Telegram are the people: every message either node sends lands there.

The short form of the HA proof: each scenario is compressed to seconds (a webhook failing for ~5 s, not a
minute); `make chaos` (bench/chaos.py) runs the long form.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from govheal.client import Matcher, SilenceSpec
from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from govheal.testing.support import wait_until
from govheal.testing.topology import Topology

pytestmark = pytest.mark.live

TIMEOUT = 40  # generous: 2 shared cores; bench/chaos.py measures latency, this checks what happens

FALLBACK = """fallback: {agent: A3-mirror, note: "the mirror on node-b"}
remediation: {budget: 2, backoff_initial: 0.1s, backoff_max: 0.2s}"""
MIRROR = """  - name: A3-mirror
    role: mirror
    node: node-b
    health: {{url: "{B3.health_url}", timeout: 500ms}}
"""


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    base = tmp_path_factory.mktemp("ha")
    with FakeDiscord(limit=50) as discord, FakeTelegram(per_chat=(30, 1.0)) as telegram:
        env = {"GOVHEAL_DISCORD_WEBHOOK_URL": discord.url, "GOVHEAL_TELEGRAM_BOT_TOKEN": telegram.token,
               "GOVHEAL_TELEGRAM_CHAT_ID": "424242", "GOVHEAL_TELEGRAM_API_URL": telegram.api_url}
        topo = Topology(base, {"node-a": ["A1", "A2", "A3"], "node-b": ["B1", "B2", "B3"]}, proxies=True,
                        channels=env, channel_config="discord: {type: discord}\ntelegram: {type: telegram}",
                        agent_extra={"A3": FALLBACK}, extra_agents={"node-a": MIRROR},
                        restart_argv={"A3": [sys.executable, "-c", "raise SystemExit(3)"]})
        with topo:
            yield SimpleNamespace(topo=topo, discord=discord, telegram=telegram, a=topo.nodes["node-a"],
                                  b=topo.nodes["node-b"])


# -- what people saw, what govheal did ----------------------------------------------------------------

def new_messages(ha, since: int, title: str) -> list[dict]:
    """Discord messages created (not edits) since ``since`` with an embed for ``title`` ("AgentDown: A1 on")."""
    return [r for r in ha.discord.received[since:] if r["method"] == "POST"
            and any(title in e.get("title", "") for e in r["body"].get("embeds", []))]


def telegram_messages(ha, since: int, title: str) -> list[dict]:
    return [r for r in ha.telegram.received[since:] if r["method"] == "sendmessage" and title in r["text"]]


def events(node, agent: str, outcome: str, since: float) -> list[dict]:
    return [e for e in node.audit() if e["agent"] == agent and e["outcome"] == outcome and e["time"] >= since]


def marks(ha) -> tuple[int, int, float]:
    return len(ha.discord.received), len(ha.telegram.received), time.time()


def settle(ha, seconds: float = 2.0) -> None:
    """Give late duplicates (the other Alertmanager, a retry) time to arrive before counting."""
    time.sleep(seconds)


def assert_once(ha, d0: int, t0: int, title: str) -> None:
    assert len(new_messages(ha, d0, title)) == 1, [r["body"] for r in new_messages(ha, d0, title)]
    assert len(telegram_messages(ha, t0, title)) == 1, [r["text"] for r in telegram_messages(ha, t0, title)]


def crash_and_heal(ha, node, agent: str, since: float) -> None:
    node.agents[agent].fault("crash", code=1)
    wait_until(lambda: events(node, agent, "healed", since), TIMEOUT, what=f"{agent} healed on {node.name}")


# -- the scenarios -----------------------------------------------------------------------------------

def test_a_crash_is_remediated_once_and_announced_once_by_its_own_node(ha):
    d0, t0, since = marks(ha)
    crash_and_heal(ha, ha.a, "A1", since)
    wait_until(lambda: any("RESOLVED" in e["title"] for r in ha.discord.received[d0:]
                           for e in r["body"].get("embeds", []) if "A1" in e["title"]), TIMEOUT, what="A1 resolved")
    settle(ha)
    assert len(events(ha.a, "A1", "restarting", since)) == 1
    assert ha.b.audit() == [] or not events(ha.b, "A1", "restarting", since), "node-b never acts on node-a's agents"
    assert_once(ha, d0, t0, "AgentDown: A1 on node-a")
    # node-b got it too (both receivers get every alert) and only recorded it
    rows = _inbox(ha.b, "A1")
    assert rows and {r["outcome"] for r in rows} == {"ignored_other_node"} and not any(r["notified"] for r in rows)
    # the Prometheus pair: one fingerprint (replica dropped), no replica label reaches the receiver
    mine = [r for r in _inbox(ha.a, "A1") if r["alertname"] == "AgentDown"]
    assert len({r["fingerprint"] for r in mine}) == 1 and all("replica" not in r["alert_json"] for r in mine)


def test_a_webhook_that_fails_then_recovers_causes_no_second_restart(ha):
    """Both Alertmanagers keep delivering while node-a's webhook answers 503 after the receiver took the alert
    (Alertmanager notes a notification only after a 2xx): every delivery reaches the receiver, one restart."""
    d0, t0, since = marks(ha)
    proxies = [ha.topo.proxy[(i, "node-a")] for i in range(2)]
    before = [sum(n for (path, outcome), n in p.counts.items() if path == "/alertmanager") for p in proxies]
    for p in proxies:
        p.set("lose", 503)
    try:
        crash_and_heal(ha, ha.a, "A2", since)
        wait_until(lambda: all(sum(n for (path, o), n in p.counts.items() if path == "/alertmanager"
                                   and o.startswith("lost")) >= 2 for p in proxies), TIMEOUT,
                   what="both Alertmanagers retrying the failing webhook")
    finally:
        for p in proxies:
            p.set("pass")
    settle(ha, 4.0)
    delivered = [sum(n for (path, _), n in p.counts.items() if path == "/alertmanager") - b
                 for p, b in zip(proxies, before, strict=True)]
    assert all(n >= 2 for n in delivered), f"each Alertmanager delivered (and retried): {delivered}"
    assert len(events(ha.a, "A2", "restarting", since)) == 1, "one restart although every retry reached node-a"
    assert_once(ha, d0, t0, "AgentDown: A2 on node-a")


def test_one_alertmanager_stopped_loses_nothing(ha):
    d0, t0, since = marks(ha)
    ha.topo.stop_child("alertmanager-1")
    try:
        crash_and_heal(ha, ha.b, "B1", since)
        settle(ha)
        assert len(events(ha.b, "B1", "restarting", since)) == 1
        assert_once(ha, d0, t0, "AgentDown: B1 on node-b")
    finally:
        ha.topo.start_child("alertmanager-1")


def test_one_prometheus_stopped_loses_nothing(ha):
    d0, t0, since = marks(ha)
    ha.topo.stop_child("prometheus-1")
    try:
        crash_and_heal(ha, ha.b, "B2", since)
        settle(ha)
        assert len(events(ha.b, "B2", "restarting", since)) == 1
        assert_once(ha, d0, t0, "AgentDown: B2 on node-b")
    finally:
        ha.topo.start_child("prometheus-1")


def test_a_switch_set_on_one_node_holds_on_the_other(ha):
    """Maintenance on node-b's B1, set from node-a (the way the governance service does it: a silence with
    the agent's exact matchers, written once to the cluster). The silence is the shared state: neither
    Alertmanager sends B1's alert to either receiver, so node-b neither restarts nor announces it; when it
    is lifted, node-b does both."""
    ams = ha.topo.alertmanager_clients()
    now = datetime.now(UTC)
    spec = SilenceSpec(matchers=(Matcher.equal("agent", "B1"), Matcher.equal("node", "node-b")), startsAt=now,
                       endsAt=now + timedelta(hours=1), createdBy="governance on node-a",
                       comment="maintenance of B1 (set on node-a's page)")
    silence = ams.create_silence(spec, verify=10)  # active on every member: gossip carried it
    d0, t0, since = marks(ha)
    b1 = ha.b.agents["B1"]
    try:
        b1.fault("crash", code=1)
        wait_until(lambda: all(a.silenced_by == (silence,) for m in ams.members
                               for a in m.alerts(['alertname="AgentDown"', 'agent="B1"'])) and
                   all(m.alerts(['alertname="AgentDown"', 'agent="B1"']) for m in ams.members), TIMEOUT,
                   what="B1's AgentDown silenced on both Alertmanagers")
        settle(ha, 3.0)
        assert new_messages(ha, d0, "AgentDown: B1") == [] and not events(ha.b, "B1", "restarting", since)
    finally:
        ams.expire_silence(silence, verify=10)
    wait_until(lambda: events(ha.b, "B1", "healed", since), TIMEOUT, what="B1 healed once the switch is off")
    settle(ha)
    assert len(events(ha.b, "B1", "restarting", since)) == 1
    assert_once(ha, d0, t0, "AgentDown: B1 on node-b")


def test_a_crash_loop_fails_over_to_the_other_node_and_failing_back_is_an_operator_action(ha):
    d0, _, since = marks(ha)
    a3 = ha.a.agents["A3"]
    a3.signal(9)
    wait_until(lambda: events(ha.a, "A3", "failover_started", since), TIMEOUT, what="A3 failed over")
    prom = ha.topo.prometheus_client()
    wait_until(lambda: [s.value for s in prom.query('govheal_agent_serving{agent="A3"}')] == [1.0], TIMEOUT,
               what="govheal_agent_serving{agent=A3,fallback=A3-mirror} == 1")
    assert prom.query('govheal_agent_serving{agent="A3"}')[0].labels["fallback"] == "A3-mirror"
    settle(ha)
    assert len(events(ha.a, "A3", "failover_started", since)) == 1, "one failover per opening"
    assert len(new_messages(ha, d0, "AgentCircuitOpen: A3 on node-a")) == 1, "one CRIT for the opening"
    # the operator repaired A3 and fails back
    a3.start()
    done = subprocess.run([sys.executable, "-m", "govheal", "restart", "A3", "--failback", "--reason",
                           "primary repaired", "--owner", "ops", "--config", str(ha.a.config)],
                          capture_output=True, text=True, timeout=60, cwd=ha.a.dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed back" in done.stdout
    line = events(ha.a, "A3", "failed_back", since)
    assert len(line) == 1 and line[0]["action"] == "failback" and "ops: primary repaired" in line[0]["reason"]
    wait_until(lambda: [s.value for s in prom.query('govheal_agent_serving{agent="A3"}')] == [0.0], TIMEOUT,
               what="govheal_agent_serving back to 0")


def test_a_nodes_receiver_down_its_crit_reaches_people_through_the_other_node(ha):
    d0, t0, since = marks(ha)
    ha.topo.stop_child("receiver-node-a")
    restarted = False
    try:
        wait_until(lambda: new_messages(ha, d0, "ReceiverDown: node-a") or
                   new_messages(ha, d0, "ReceiverDown on node-a"), TIMEOUT,
                   what="node-b announcing node-a's ReceiverDown")
        ha.a.agents["A1"].fault("crash", code=1)
        wait_until(lambda: new_messages(ha, d0, "AgentDown: A1 on node-a"), TIMEOUT,
                   what="node-a's CRIT announced by node-b")
        msg = new_messages(ha, d0, "AgentDown: A1 on node-a")[0]
        said = str(msg["body"])
        assert "node-b" in said and "receiver is down" in said, said
        assert not events(ha.a, "A1", "restarting", since), "nobody acts while node-a's receiver is down"
        ha.topo.start_child("receiver-node-a")
        restarted = True
        wait_until(lambda: events(ha.a, "A1", "healed", since), TIMEOUT, what="node-a heals A1 once it is back")
        wait_until(lambda: any("RESOLVED" in e["title"] for r in ha.discord.received[d0:]
                               for e in r["body"].get("embeds", []) if "AgentDown: A1" in e["title"]), TIMEOUT,
                   what="node-b closing the message it sent")
        settle(ha)
        assert len(events(ha.a, "A1", "restarting", since)) == 1
        assert_once(ha, d0, t0, "AgentDown: A1 on node-a")  # node-a stayed quiet about what node-b announced
    finally:
        if not restarted:
            ha.topo.start_child("receiver-node-a")


def _inbox(node, agent: str) -> list[dict]:
    import sqlite3

    conn = sqlite3.connect(node.state / "govheal.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM inbox_alerts WHERE agent = ? ORDER BY id", (agent,))]
    finally:
        conn.close()
