"""Config validation: one bad fixture per rule, each with its exact message (file:line: field: message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from govheal.cli import main
from govheal.config import ConfigError
from govheal.resources import example_config
from govheal.seams import load_config, parse_config

FIXTURES = Path(__file__).parent / "fixtures" / "config"

EXPECTED = {
    "admin-timezone": "2: admin.timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as Asia/Bangkok, Europe/Berlin or UTC",
    "admin-unknown-key": "2: admin.token_fille: unknown key 'token_fille'; did you mean 'token_file'?",
    "alertmanager-bad-url": "2: alertmanager.urls[1]: 'ftp://127.0.0.1:9094' is not an http(s) URL with a host; write e.g. http://127.0.0.1:8001/health",
    "alertmanager-duplicate": "2: alertmanager.urls: 'http://127.0.0.1:9093/' is listed twice; list each Alertmanager once",
    "alertmanager-not-a-list": "1: alertmanager.urls: must be a list (got 'http://127.0.0.1:9093'); write e.g. [a, b]",
    "alertmanager-unknown-key": "1: alertmanager.url: unknown key 'url'; did you mean 'urls'?",
    "prometheus-url": "1: prometheus.url: '127.0.0.1:9090' is not an http(s) URL with a host; write e.g. http://127.0.0.1:8001/health",
    "agent-name": "2: agents[0].name: 'GG; rm -rf /' is not a valid name; use letters, digits, '_', '.', '-' (starting with a letter or digit, at most 63)",
    "bad-url": "3: agents[0].health.url: '127.0.0.1:1/health' is not an http(s) URL with a host; write e.g. http://127.0.0.1:8001/health",
    "body-regex": "3: agents[0].health.body_match: body_match regex '[ok' does not compile: unterminated character set at position 0; fix the regular expression",
    "channel-unknown-agent": "3: notifications.channels.ops.agents[1]: unknown agent 'Marry'; known agents: GG",
    "channel-type": "3: notifications.channels.ops.type: unknown value 'slack'; use one of: 'discord', 'telegram'",
    "consecutive-failures": "2: exporter.consecutive_failures: must be greater than or equal to 1 (got 0)",
    "cmdline-regex": "3: agents[0].process.cmdline: cmdline regex 'python (gg' does not compile: missing ), unterminated subpattern at position 7; fix the regular expression",
    "command-shell-string": "4: agents[0].restart.argv: must be a list of arguments, not a shell string (got 'gg --serve'); write e.g. [gg, --serve]",
    "depends-on-cycle": "4: agents[0].depends_on: depends_on cycle: GG → Paula → Mary → GG; break one of the links",
    "depends-on-self": "4: agents[0].depends_on[0]: an agent cannot depend on itself; remove it",
    "depends-on-unknown": "6: agents[1].depends_on[0]: unknown agent 'GGG'; did you mean 'GG'?",
    "duplicate-agent": "4: agents[1].name: duplicate agent name 'GG' (also agents[0]); names must be unique",
    "duplicate-key": "4: duplicate key 'name' (first at line 2); keep one of them",
    "duration": "4: agents[0].start_grace: '10 seconds' is not a duration; write e.g. 500ms, 5s, 2m, 1h30m or a number of seconds",
    "empty-agents": "1: agents: the fleet is empty; add at least one agent under agents:",
    "fallback-empty": "4: agents[0].fallback: give fallback.agent or fallback.argv",
    "fallback-unknown": "4: agents[0].fallback.agent: unknown agent 'GG-backup'; known agents: GG",
    "launchd-no-label": "2: agents[0]: restart.strategy launchd needs restart.label or process.launchd",
    "listen": "1: listen.exporter: 'localhost' is not HOST:PORT; write e.g. 127.0.0.1:9826",
    "missing-agents": "1: agents: required key is missing; add it",
    "missing-name": "2: agents[0].name: required key is missing; add it",
    "missing-strategy": "4: agents[0].restart: missing 'strategy'; use one of: launchd, systemd, command, signal",
    "no-process-no-health": "2: agents[0]: give process (a local agent) or health (a remote endpoint), or both",
    "not-a-mapping": "1: the file must be a YAML mapping with an 'agents' list",
    "port-range": "3: agents[0].process.port: must be less than or equal to 65535 (got 70000)",
    "probe-interval": "3: agents[0].health.interval: must be greater than or equal to 0.05 (got '10ms')",
    "process-two-matchers": "3: agents[0].process: give exactly one of pidfile, cmdline, launchd, systemd, port (got pidfile, port)",
    "remote-needs-command": "2: agents[0]: restart.strategy signal needs a local process; add process or use a command",
    "signal-unknown": "4: agents[0].restart.signal: unknown signal 'RELOAD'; use a name such as HUP, USR1, TERM",
    "systemd-no-unit": "2: agents[0]: restart.strategy systemd needs restart.unit or process.systemd",
    "unknown-agent-key": "3: agents[0].helth: unknown key 'helth'; did you mean 'health'?",
    "unknown-nested-key": "3: agents[0].health.timout: unknown key 'timout'; did you mean 'timeout'?",
    "unknown-strategy": "4: agents[0].restart.strategy: unknown restart strategy 'supervisord'; use one of: launchd, systemd, command, signal",
    "unknown-top-key": "1: nodes: unknown key 'nodes'; did you mean 'node'?",
    "wrong-type": "3: agents[0].critical: Input should be a valid boolean, unable to interpret input (got 'sometimes'); use true or false",
    "yaml-syntax": "4: not valid YAML: expected ',' or '}', but got '<stream end>'",
}


def test_every_fixture_has_an_expected_message_and_vice_versa():
    files = {p.stem.removeprefix("invalid-") for p in FIXTURES.glob("invalid-*.yaml")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_config_is_reported_with_file_line_field_and_fix(name):
    path = FIXTURES / f"invalid-{name}.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(p) for p in info.value.problems] == [f"{path.resolve()}:{EXPECTED[name]}"]


@pytest.mark.parametrize("name", ["unknown-agent-key", "depends-on-cycle", "yaml-syntax"])
def test_check_exits_2_and_prints_no_traceback(name, capsys):
    assert main(["check", "--config", str(FIXTURES / f"invalid-{name}.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert EXPECTED[name].split(": ", 1)[1] in err


def test_every_problem_is_reported_at_once():
    text = """
agents:
  - name: GG
    helth: {url: "http://127.0.0.1:1/health"}
    process: {pidfile: gg.pid}
  - name: GG
    health: {url: "ftp://x", timeout: 5x}
    depends_on: [Nobody]
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    fields = [p.field for p in info.value.problems]
    assert fields == ["agents[0].helth", "agents[1].name", "agents[1].health.url", "agents[1].health.timeout",
                      "agents[1].depends_on[0]"]


def test_missing_file_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found; pass --config FILE or set GOVHEAL_CONFIG"):
        load_config(tmp_path / "nope.yaml")


def test_bundled_demo_fleet_is_valid_and_has_the_six_agents():
    cfg = load_config(example_config())
    assert [a.name for a in cfg.agents] == ["GG", "GC", "Mary", "Paula", "CLS", "Hybrid"]
    assert all(a.role for a in cfg.agents)
    assert cfg.state_path == example_config().resolve().parent / ".govheal" / "state"


def test_defaults_relative_paths_durations_and_policy_overrides(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("""
agents:
  - name: A
    process: {pidfile: run/a.pid}
    start_grace: 1m30s
    remediation: {budget: 5, backoff_initial: 250ms, min_uptime: 2m}
  - name: Mirror
    health: {url: "https://127.0.0.1:8443/health"}
""")
    cfg = load_config(path)
    a, mirror = cfg.agents
    assert a.start_grace == 90.0 and mirror.remote and not a.remote
    assert cfg.path(a.process.pidfile) == tmp_path / "run" / "a.pid"
    assert cfg.policy_for(a).budget == 5 and cfg.policy_for(mirror).budget == 3
    assert (cfg.policy_for(a).backoff_initial, cfg.policy_for(a).min_uptime) == (0.25, 120.0)  # seconds, not text
    assert cfg.policy_for(mirror).min_uptime == 60.0
    assert cfg.listen.exporter.startswith("127.0.0.1:")
    assert cfg.node_of(a) == cfg.node


def test_check_prints_a_summary_of_the_fleet(capsys):
    assert main(["check", "--config", str(example_config())]) == 0
    out = capsys.readouterr().out
    assert "OK, 6 agents" in out
    for name in ("GG", "GC", "Mary", "Paula", "CLS", "Hybrid"):
        assert f"\n{name} " in out


def test_endpoint_keys_default_to_empty_and_take_urls(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("""
prometheus: {url: "http://127.0.0.1:9090/prom"}
alertmanager: {urls: ["http://127.0.0.1:9093", "http://127.0.0.1:9094"]}
agents:
  - name: A
    health: {url: "http://127.0.0.1:1/health"}
""")
    cfg = load_config(path)
    assert cfg.prometheus.url == "http://127.0.0.1:9090/prom"
    assert cfg.alertmanager.urls == ["http://127.0.0.1:9093", "http://127.0.0.1:9094"]
    bare = parse_config("agents: [{name: A, health: {url: 'http://127.0.0.1:1/health'}}]")
    assert bare.prometheus.url is None and bare.alertmanager.urls == []


def test_detection_thresholds_default_globally_and_override_per_agent():
    cfg = parse_config(
        "exporter: {probe_interval: 100ms, consecutive_failures: 4}\n"
        "agents:\n"
        "  - {name: a, health: {url: 'http://127.0.0.1:1/h', timeout: 200ms}}\n"
        "  - {name: b, health: {url: 'http://127.0.0.1:1/h', timeout: 1s, interval: 2s, consecutive_failures: 2}}\n"
        "  - {name: c, process: {pidfile: c.pid}}\n")
    a, b, c = (cfg.detection_for(x) for x in cfg.agents)
    assert (a.interval, a.timeout, a.consecutive_failures) == (0.1, 0.2, 4)
    assert a.tolerated_stall == pytest.approx(0.8)  # back-to-back probes of 200 ms each: 4 of them
    assert (b.interval, b.consecutive_failures) == (2.0, 2)
    assert b.tolerated_stall == pytest.approx(3.0) and b.worst_detection == pytest.approx(5.0)  # interval-bound
    assert c is None
    defaults = parse_config("agents:\n  - {name: d, health: {url: 'http://127.0.0.1:1/h'}}\n")
    d = defaults.detection_for(defaults.agents[0])
    assert (d.interval, d.timeout, d.consecutive_failures) == (0.25, 1.0, 3) and d.tolerated_stall == 3.0
