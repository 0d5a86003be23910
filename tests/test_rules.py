"""The Prometheus rules are code: checked, unit-tested with promtool, and held to the label contract."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_binary

REPO = Path(__file__).resolve().parent.parent
PROM = REPO / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
RUNBOOKS = REPO / "docs" / "runbooks.md"

REQUIRED_ALERTS = {
    "AgentDown", "AgentUnhealthy", "AgentFlapping", "AgentCircuitOpen", "AgentRemediationFailed",
    "ExporterDown", "ReceiverDown", "AlertBridgeDegraded", "Watchdog", "DailyReportMissing",
    "HealSuccessRateLow",
}


def rules() -> list[dict]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += group["rules"]
    return out


ALERTS = [r for r in rules() if "alert" in r]
RECORDS = [r for r in rules() if "record" in r]


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_rule_files_pass_promtool_check_rules():
    result = promtool("check", "rules", "--lint-fatal", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", ["prometheus.yml", "prometheus.fleet.yml"])
def test_shipped_profiles_pass_promtool_check_config(profile):
    result = promtool("check", "config", str(PROM / profile))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file):
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("old", "new", "alert"), [
    (">= on (agent, node) govheal_agent_health_consecutive_failures_threshold",
     "> on (agent, node) govheal_agent_health_consecutive_failures_threshold", "AgentUnhealthy"),
    (">= on (agent, node) govheal_agent_health_consecutive_failures_threshold",
     ">= on (agent, node) govheal_agent_health_consecutive_failures_threshold - 1", "AgentUnhealthy"),
    ("        for: 0s\n", "        for: 200ms\n", "AgentDown"),
], ids=["threshold-one-late", "threshold-one-early", "agentdown-for"])
def test_promtool_unit_tests_catch_a_moved_boundary(tmp_path, old, new, alert):
    """The boundary tests can fail: AgentUnhealthy one probe late or early, AgentDown held 200 ms."""
    shutil.copytree(PROM, tmp_path / "prometheus")
    agents = tmp_path / "prometheus" / "rules" / "agents.yml"
    text = agents.read_text()
    assert old in text
    agents.write_text(text.replace(old, new, 1))
    result = promtool("test", "rules", str(tmp_path / "prometheus" / "tests" / "fast_test.yml"))
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


def test_every_required_alert_exists_and_is_unit_tested():
    names = {r["alert"] for r in ALERTS}
    assert names >= REQUIRED_ALERTS, f"missing: {REQUIRED_ALERTS - names}"
    tested = set()
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            tested |= {case["alertname"] for case in test.get("alert_rule_test", [])}
    assert names <= tested, f"alerts without a promtool test: {names - tested}"


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_carries_the_label_and_annotation_contract(rule):
    assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"]), "CamelCase alert names"
    labels, ann = rule["labels"], rule["annotations"]
    assert labels["severity"] in ("info", "warning", "critical")
    assert labels["remediation"] in ("restart", "failover", "none")
    assert ann["summary"]
    assert "{{" in ann["description"] or rule["alert"] == "Watchdog", "description must be templated"
    anchor = rule["alert"].lower()
    assert ann["runbook_url"] == f"docs/runbooks.md#{anchor}"
    headings = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
                for h in re.findall(r"^#+ (.+)$", RUNBOOKS.read_text(), flags=re.M)}
    assert anchor in headings, f"docs/runbooks.md has no heading for {rule['alert']}"


@pytest.mark.parametrize("rule", RECORDS, ids=lambda r: r["record"])
def test_recording_rules_are_named_level_metric_operations(rule):
    level, metric, ops = rule["record"].split(":")
    assert level in ("agent", "node", "channel")
    assert metric.startswith("govheal_") and not metric.endswith("_total")
    assert ops


def test_govheal_check_runs_promtool_and_amtool_on_the_shipped_files():
    from govheal.chain import check_shipped

    results = check_shipped()
    assert [r.what.split()[0] for r in results] == ["promtool", "promtool", "promtool", "amtool"]
    assert all(r.ok for r in results), [(r.what, r.output) for r in results if not r.ok]


def test_govheal_check_skips_a_missing_tool_instead_of_failing(monkeypatch):
    from govheal import chain, tools

    monkeypatch.setattr(tools, "find", lambda tool: None)
    results = chain.check_shipped()
    assert results and all(r.ok is None and "not installed" in r.output for r in results)
