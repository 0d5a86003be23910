"""govheal agents: set, list (switches, silences, expiring within 24 h), enable; the audit line is the one
the API writes (same service), in the telemetry log and in the store."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from govheal.cli import main
from remediator.audit import AuditLog, read_events
from tests.test_receiver_support import TOKEN, FakeBridge, FakeRemediator, receiver_config
from webhook_receiver.app import create_app
from webhook_receiver.governance.auth import Tokens

ADMIN = "admin-token-0123456789abcdef"


def test_cli_sets_lists_and_enables_and_writes_the_same_audit_line_as_the_api(tmp_path, capsys):
    config = receiver_config(tmp_path)
    cfg = str(config.source)
    assert main(["agents", "pause", "GG", "--for", "2h", "--reason", "deploying", "--owner", "alice",
                 "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "GG: pause by alice" in out and "pause until" in out
    assert main(["agents", "maintenance", "Mary", "--every", "Sundays 02:00 for 1h UTC", "--reason", "backup",
                 "--owner", "bob", "--config", cfg]) == 0
    assert "no Alertmanager known" in capsys.readouterr().out  # maintenance is a silence: pending here
    assert main(["agents", "list", "--config", cfg]) == 0
    listing = capsys.readouterr().out
    assert "GG  ON  pause until" in listing and "Mary  " in listing and "every Sun 02:00 for 1h UTC" in listing
    assert "silence pending (none yet)" in listing
    assert "expiring within 24 h: GG pause at" in listing
    data = json.loads((main(["agents", "list", "GG", "--json", "--config", cfg]), capsys.readouterr().out)[1])
    assert [d["kind"] for d in data] == ["pause"] and data[0]["expiring_24h"]

    # the same change through the API, on the same state
    fake = FakeRemediator(["GG", "Mary"])
    fake.audit = AuditLog(config.path(config.telemetry_log))  # the receiver's remediator writes this log
    app = create_app(config, remediator=fake, bridge=FakeBridge(), token=TOKEN,
                     registry=CollectorRegistry(), start=False, governance={"tokens": Tokens(ADMIN, None)})
    resp = app.test_client().post("/api/agents/Mary/switch", headers={"Authorization": f"Bearer {ADMIN}"},
                                  json={"kind": "pause", "for": "2h", "owner": "alice", "reason": "deploying"})
    assert resp.status_code == 200
    lines = [e for e in read_events(config.path(config.telemetry_log)) if e.get("action") == "governance"]
    cli_line, api_line = lines[0], lines[-1]
    assert set(cli_line) == set(api_line)
    differ = {k for k in cli_line if cli_line[k] != api_line[k]}
    assert differ <= {"time", "agent", "via", "new"}, differ
    assert (cli_line["via"], api_line["via"]) == ("cli", "api")
    assert {k: v for k, v in cli_line["new"].items() if k not in ("start", "expires_at", "id")} == \
        {k: v for k, v in api_line["new"].items() if k not in ("start", "expires_at", "id")}
    gov = app.extensions["govheal.governance"].governance
    assert [h["outcome"] for h in gov.history("GG")] == ["pause"]

    assert main(["agents", "enable", "GG", "--reason", "done", "--owner", "alice", "--config", cfg]) == 0
    assert "GG: enable by alice" in capsys.readouterr().out
    assert gov.switches("GG") == []


def test_cli_usage_errors_name_the_fix(tmp_path, capsys):
    cfg = str(receiver_config(tmp_path).source)
    assert main(["agents", "pause", "GG", "--for", "1h", "--config", cfg]) == 2
    assert "--reason is required" in capsys.readouterr().err
    assert main(["agents", "pause", "Nobody", "--for", "1h", "--reason", "x", "--config", cfg]) == 2
    assert "unknown agent 'Nobody'; known agents: GG, Mary, Remote" in capsys.readouterr().err
    assert main(["agents", "pause", "GG", "--reason", "x", "--config", cfg]) == 2
    assert "a switch needs an end" in capsys.readouterr().err
    assert main(["agents", "mute", "GG", "--every", "Sundays", "--reason", "x", "--config", cfg]) == 2
    assert "has no duration" in capsys.readouterr().err
    assert main(["agents", "pause", "GG", "--for", "soon", "--reason", "x", "--config", cfg]) == 2
    assert "'soon' is not a duration" in capsys.readouterr().err
