"""Rendering the runtime configs: what runs is what promtool/amtool checked, with this chain's addresses."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from govheal import chain, resources
from govheal.supervise import Child, StartFailed, Supervisor
from tests.conftest import require_binary

ENDPOINTS = chain.Endpoints(exporter="127.0.0.1:1001", alertmanagers=("127.0.0.1:1002", "127.0.0.1:1005"),
                            prometheus="127.0.0.1:1003", receiver="127.0.0.1:1004")


@pytest.mark.parametrize("profile", chain.PROFILES)
def test_rendered_prometheus_config_passes_promtool_and_points_at_this_chain(tmp_path, profile):
    path = tmp_path / "prometheus.yml"
    path.write_text(chain.render_prometheus(ENDPOINTS, "node-x", profile))
    result = subprocess.run([require_binary("promtool"), "check", "config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load(path.read_text())
    jobs = {j["job_name"]: j["static_configs"] for j in data["scrape_configs"]}
    assert jobs["govheal-exporter"] == [{"targets": ["127.0.0.1:1001"], "labels": {"node": "node-x"}}]
    assert jobs["govheal-receiver"] == [{"targets": ["127.0.0.1:1004"], "labels": {"node": "node-x"}}]
    # every Alertmanager of the cluster: Prometheus must send to each (Alertmanager does not gossip alerts)
    assert data["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:1002", "127.0.0.1:1005"]
    assert data["rule_files"] == [str(resources.prometheus_rules_dir() / "*.yml")]
    committed = yaml.safe_load(resources.prometheus_profile(profile).read_text())
    assert data["global"] == committed["global"], "intervals come from the committed profile"


def test_without_a_receiver_its_scrape_job_is_left_out():
    endpoints = chain.Endpoints(exporter="127.0.0.1:1001", alertmanagers=("127.0.0.1:1002",),
                                prometheus="127.0.0.1:1003")
    data = yaml.safe_load(chain.render_prometheus(endpoints, "n"))
    assert [j["job_name"] for j in data["scrape_configs"]] == ["govheal-exporter"]


def test_profiles_differ_only_in_intervals():
    """Single-host: the exporter every 200 ms, the healing rules every 200 ms, the receiver every 1 s;
    fleet: all 5 s. Nothing else differs."""
    single, fleet = (yaml.safe_load(resources.prometheus_profile(p).read_text()) for p in chain.PROFILES)
    assert single["global"]["scrape_interval"] == "1s" and fleet["global"]["scrape_interval"] == "5s"
    assert single["global"]["evaluation_interval"] == "200ms" and fleet["global"]["evaluation_interval"] == "5s"
    exporter = next(j for j in single["scrape_configs"] if j["job_name"] == "govheal-exporter")
    assert (exporter["scrape_interval"], exporter["scrape_timeout"]) == ("200ms", "200ms")

    def without_intervals(data: dict) -> dict:
        jobs = [{k: v for k, v in j.items() if k not in ("scrape_interval", "scrape_timeout")}
                for j in data["scrape_configs"]]
        return {**{k: v for k, v in data.items() if k != "global"}, "scrape_configs": jobs}
    assert without_intervals(single) == without_intervals(fleet)


def test_alertmanager_runs_alone_and_prometheus_gets_explicit_paths(tmp_path):
    am = chain.alertmanager_argv("am", tmp_path / "a.yml", tmp_path / "d", "127.0.0.1:5")
    assert "--cluster.listen-address=" in am and "--web.listen-address=127.0.0.1:5" in am
    assert not [a for a in am if a.startswith("--cluster.peer")]
    prom = chain.prometheus_argv("prom", tmp_path / "p.yml", tmp_path / "d", "127.0.0.1:6")
    assert f"--storage.tsdb.path={tmp_path / 'd'}" in prom and "--web.listen-address=127.0.0.1:6" in prom


def test_a_component_that_dies_while_starting_fails_with_its_log_tail(tmp_path):
    sup = Supervisor(out=lambda line: None)
    child = Child("broken", [sys.executable, "-c", "print('cannot bind: port taken'); raise SystemExit(2)"],
                  tmp_path / "broken.log", ready=lambda: False)
    with pytest.raises(StartFailed, match=r"(?s)broken exited with code 2 while starting.*cannot bind: port taken"):
        sup.start(child)
    sup.stop_all()


def test_committed_files_match_the_demo_fleet_so_they_work_unrendered():
    """prometheus.yml and alertmanager.yml as committed point at examples/govheal.yaml's addresses."""
    from govheal.seams import load_config

    demo = load_config(resources.example_config())
    for path in map(resources.prometheus_profile, chain.PROFILES):
        jobs = {j["job_name"]: j["static_configs"][0] for j in yaml.safe_load(path.read_text())["scrape_configs"]}
        assert jobs["govheal-exporter"] == {"targets": [demo.listen.exporter], "labels": {"node": demo.node}}
        assert jobs["govheal-receiver"] == {"targets": [demo.listen.receiver], "labels": {"node": demo.node}}
    am = yaml.safe_load(resources.alertmanager_file().read_text())
    for receiver in am["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"].startswith(f"http://{demo.listen.receiver}/")
            token = (resources.alertmanager_file().parent / hook["http_config"]["authorization"]["credentials_file"])
            assert token.resolve() == demo.path(demo.receiver.token_file).resolve()


def test_a_cluster_plan_peers_every_member_with_the_others_on_loopback(tmp_path):
    members = chain.plan_alertmanagers(tmp_path, 3)
    assert [m.name for m in members] == ["alertmanager-1", "alertmanager-2", "alertmanager-3"]
    assert len({m.listen for m in members} | {m.cluster for m in members}) == 6, "every port is its own"
    assert len({m.data_dir for m in members}) == 3
    for m in members:
        assert m.listen.startswith("127.0.0.1:") and m.cluster.startswith("127.0.0.1:")
        assert set(m.peers) == {o.cluster for o in members} - {m.cluster}
        argv = chain.alertmanager_argv("am", tmp_path / "a.yml", m.data_dir, m.listen, m.cluster, m.peers)
        assert f"--cluster.listen-address={m.cluster}" in argv
        peers = sorted(a.removeprefix("--cluster.peer=") for a in argv if a.startswith("--cluster.peer="))
        assert peers == sorted(m.peers)
    (alone,) = chain.plan_alertmanagers(tmp_path, 1)
    assert alone.name == "alertmanager" and alone.cluster is None and alone.data_dir == tmp_path / "alertmanager-data"


def test_an_ha_pair_scrapes_every_node_and_drops_its_replica_label_from_alerts(tmp_path):
    nodes = [chain.NodeTargets("node-a", "127.0.0.1:1001", "127.0.0.1:1002"),
             chain.NodeTargets("node-b", "127.0.0.1:2001", None)]
    path = tmp_path / "prometheus-1.yml"
    path.write_text(chain.render_prometheus_nodes(nodes, ["127.0.0.1:9001", "127.0.0.1:9002"], replica="r1"))
    result = subprocess.run([require_binary("promtool"), "check", "config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load(path.read_text())
    assert data["global"]["external_labels"] == {"replica": "r1"}
    assert data["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    jobs = {j["job_name"]: j["static_configs"] for j in data["scrape_configs"]}
    assert jobs["govheal-exporter"] == [{"targets": ["127.0.0.1:1001"], "labels": {"node": "node-a"}},
                                        {"targets": ["127.0.0.1:2001"], "labels": {"node": "node-b"}}]
    assert jobs["govheal-receiver"] == [{"targets": ["127.0.0.1:1002"], "labels": {"node": "node-a"}}]


def test_every_webhook_goes_to_every_nodes_receiver_with_its_own_token(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_text("t\n")
    path = tmp_path / "alertmanager.yml"
    path.write_text(chain.render_alertmanager([("http://127.0.0.1:1002", tmp_path / "a"),
                                               ("http://127.0.0.1:2002", tmp_path / "b")]))
    result = subprocess.run([require_binary("amtool"), "check-config", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    receivers = {r["name"]: r for r in yaml.safe_load(path.read_text())["receivers"]}
    hooks = receivers["govheal-remediate"]["webhook_configs"]
    assert [(h["url"], h["http_config"]["authorization"]["credentials_file"]) for h in hooks] == [
        ("http://127.0.0.1:1002/alertmanager", str(tmp_path / "a")),
        ("http://127.0.0.1:2002/alertmanager", str(tmp_path / "b"))]
    assert [h["url"] for h in receivers["govheal-watchdog"]["webhook_configs"]] == [
        "http://127.0.0.1:1002/watchdog", "http://127.0.0.1:2002/watchdog"]


def test_a_cluster_member_waits_only_briefly_for_its_peers_before_notifying(tmp_path):
    argv = chain.alertmanager_argv("am", tmp_path / "a.yml", tmp_path / "d", "127.0.0.1:5", "127.0.0.1:6",
                                   ("127.0.0.1:7",))
    assert "--cluster.peer=127.0.0.1:7" in argv and "--cluster.peer-timeout=2s" in argv
