"""alertmanager/alertmanager.yml: valid for 0.25, routes every severity x remediation as documented,
and a real Alertmanager delivers and inhibits as the config says."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from govheal import chain, resources
from govheal.client import Alertmanager, PostableAlert, new_session
from govheal.supervise import Child, Supervisor
from govheal.testing.support import free_port, wait_until
from govheal.testing.webhook_sink import WebhookSink
from tests.conftest import require_binary

AM_FILE = resources.alertmanager_file()


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=30)


def test_shipped_config_passes_amtool_check_config():
    result = amtool("check-config", str(AM_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_config_passes_amtool_check_config(tmp_path):
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(chain.render_alertmanager("http://127.0.0.1:12345", tmp_path / "token"))
    result = amtool("check-config", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load(rendered.read_text())
    urls = {h["url"] for r in data["receivers"] for h in r["webhook_configs"]}
    assert urls == {"http://127.0.0.1:12345/alertmanager", "http://127.0.0.1:12345/watchdog"}
    files = {h["http_config"]["authorization"]["credentials_file"] for r in data["receivers"]
             for h in r["webhook_configs"]}
    assert files == {str(tmp_path / "token")}


def test_receiver_names_are_plain():
    """Alertmanager regex-escapes receiver names in payloads; keep them to [A-Za-z0-9_-]."""
    names = [r["name"] for r in yaml.safe_load(AM_FILE.read_text())["receivers"]]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names)


EXPECTED = {  # (severity, remediation) → receiver
    **{(s, r): "govheal-remediate" for s in ("info", "warning", "critical") for r in ("restart", "failover")},
    ("critical", "none"): "govheal-critical",
    ("warning", "none"): "govheal-warning",
    ("info", "none"): "govheal-info",
}


@pytest.mark.parametrize(("severity", "remediation"), sorted(EXPECTED))
def test_routes_by_severity_and_remediation(severity, remediation):
    receiver = EXPECTED[(severity, remediation)]
    result = amtool("config", "routes", "test", f"--config.file={AM_FILE}", f"--verify.receivers={receiver}",
                    "alertname=Something", "agent=A", "node=n1", f"severity={severity}",
                    f"remediation={remediation}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_watchdog_has_its_own_route():
    result = amtool("config", "routes", "test", f"--config.file={AM_FILE}", "--verify.receivers=govheal-watchdog",
                    "alertname=Watchdog", "severity=info", "remediation=none")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("labels", [["severity=info", "remediation=none"],
                                    ["severity=critical", "remediation=restart", "agent=GG"]])
def test_the_canary_has_its_own_route_whatever_else_it_carries(labels):
    result = amtool("config", "routes", "test", f"--config.file={AM_FILE}", "--verify.receivers=govheal-canary",
                    "alertname=GovhealCanary", "govheal_canary=true", "canary_id=x", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_route_test_fails_for_a_wrong_receiver():
    """The route checks above can fail."""
    result = amtool("config", "routes", "test", f"--config.file={AM_FILE}", "--verify.receivers=govheal-info",
                    "alertname=AgentDown", "severity=critical", "remediation=restart")
    assert result.returncode != 0


def test_remediation_route_is_tuned_for_healing():
    routes = {r["receiver"]: r for r in yaml.safe_load(AM_FILE.read_text())["route"]["routes"]}
    fast = routes["govheal-remediate"]
    assert fast["group_wait"] == "0s" and fast["group_interval"] == "50ms"
    assert yaml.safe_load(AM_FILE.read_text())["route"]["group_by"] == ["alertname", "agent", "node"]


# --- a real Alertmanager -------------------------------------------------------------------------


def _alert(name: str, agent: str, severity: str, remediation: str, **extra: str) -> PostableAlert:
    now = datetime.now(UTC)
    return PostableAlert(labels={"alertname": name, "agent": agent, "node": "n1", "severity": severity,
                                 "remediation": remediation, **extra},
                         annotations={"summary": f"{name} {agent}"}, starts_at=now, ends_at=now + timedelta(minutes=5))


@pytest.mark.live
def test_real_alertmanager_delivers_with_bearer_and_inhibits_as_configured(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    with WebhookSink() as sink:
        cfg = tmp_path / "am.yml"
        cfg.write_text(chain.render_alertmanager(sink.url, token))
        listen = f"127.0.0.1:{free_port()}"
        am = Alertmanager(f"http://{listen}", new_session())
        sup = Supervisor(out=lambda line: None)
        try:
            sup.start(Child("alertmanager", chain.alertmanager_argv(
                require_binary("prometheus-alertmanager", "alertmanager"), cfg, tmp_path / "data", listen),
                tmp_path / "am.log", ready=am.ready))

            def post(*alerts: PostableAlert) -> None:
                am.post_alerts(alerts)

            post(_alert("AgentDown", "A", "critical", "restart"))
            got = sink.wait_for(lambda d: bool(d.alerts("AgentDown")), timeout=20)
            assert got.path == "/alertmanager"
            assert got.headers["Authorization"] == "Bearer s3cret-token"
            assert got.body["receiver"] == "govheal-remediate"
            # AgentDown does not inhibit AgentUnhealthy (the rule already needs the process up): a muted resolve
            # would leave the notification log saying "firing" and the agent's next hang unsent (make chaos).
            post(_alert("AgentDown", "A", "critical", "restart"), _alert("AgentUnhealthy", "A", "warning", "restart"))
            sink.wait_for(lambda d: any(a["labels"]["agent"] == "A" for a in d.alerts("AgentUnhealthy")), timeout=20)
            states = {a.labels["agent"]: a.inhibited_by for a in am.alerts(['alertname="AgentUnhealthy"'])}
            assert not states["A"]

            # A node-wide outage (its exporter is down) silences that node's agent alerts, not others';
            # an open circuit silences flapping of the same agent.
            post(_alert("ExporterDown", "", "critical", "none", node="n2"),
                 _alert("AgentCircuitOpen", "C", "critical", "failover"))
            sink.wait_for(lambda d: bool(d.alerts("ExporterDown")), timeout=20)
            sink.wait_for(lambda d: bool(d.alerts("AgentCircuitOpen")), timeout=20)
            post(_alert("AgentDown", "X", "critical", "restart", node="n2"),
                 _alert("AgentDown", "Y", "critical", "restart", node="n3"),
                 _alert("AgentFlapping", "C", "warning", "none"), _alert("AgentFlapping", "D", "warning", "none"))

            def inhibited_by_key() -> dict[tuple[str, str], bool]:
                return {(a.labels["alertname"], a.labels.get("agent", "")): bool(a.inhibited_by)
                        for a in am.alerts() if a.state != "unprocessed"}

            want = {("AgentDown", "X"): True, ("AgentDown", "Y"): False,
                    ("AgentFlapping", "C"): True, ("AgentFlapping", "D"): False}
            wait_until(lambda: all(inhibited_by_key().get(k) == v for k, v in want.items()), timeout=30,
                       what=f"inhibitions {want}")
        finally:
            sup.stop_all()
