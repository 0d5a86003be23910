"""Adversarial review: secrets never leave the receiver, every mutating endpoint needs the token,
label values never reach a command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from govheal.testing.support import free_port, http_get, wait_until
from tests.test_receiver_support import alert, body

WEBHOOK_TOKEN = "whTOKEN-9f8e7d6c5b4a39281706"
BAD_BOT_TOKEN = "987654321:AAsecretBotTokenThatTelegramRejects01"
DISCORD_SECRET = "DiscordWebhookSecretPart-0123456789abcdef"

CONFIG = """node: n1
state_dir: state
telemetry_log: telemetry/autoheal.log
receiver: {workers: 1, deadman_timeout: 1h}
notifications:
  channels:
    discord: {type: discord}
    telegram: {type: telegram}
agents:
  - name: GG
    health: {url: "http://127.0.0.1:9/health"}
    restart: {strategy: command, argv: ["/bin/true"]}
"""


def request(url: str, method: str, data: bytes = b"", token: str | None = None) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data or None, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.live
def test_channel_secrets_stay_out_of_logs_responses_and_pages_even_at_debug(tmp_path: Path) -> None:
    """A Discord webhook that 404s and a Telegram token that 401s, --log-level debug (urllib3 then logs every
    request path, which holds both secrets), bad and good requests: no secret anywhere an operator looks."""
    (tmp_path / "govheal.yaml").write_text(CONFIG)
    with FakeDiscord() as discord, FakeTelegram() as telegram:
        discord.hold(404, {"message": "Unknown Webhook", "code": 10015})
        discord_url = f"http://127.0.0.1:{discord.port}/api/webhooks/112233445566778899/{DISCORD_SECRET}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GOVHEAL_WEBHOOK_TOKEN": WEBHOOK_TOKEN, "GOVHEAL_DISCORD_WEBHOOK_URL": discord_url,
               "GOVHEAL_TELEGRAM_BOT_TOKEN": BAD_BOT_TOKEN, "GOVHEAL_TELEGRAM_CHAT_ID": "424242",
               "GOVHEAL_TELEGRAM_API_URL": telegram.api_url}
        log = tmp_path / "receiver.log"
        argv = [sys.executable, "-m", "govheal", "receiver", "--config", str(tmp_path / "govheal.yaml"),
                "--listen", f"127.0.0.1:{port}", "--log-level", "debug"]
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: http_get(f"{url}/readyz", timeout=1)[0] == 200, 30, what="receiver ready")
            pasted = alert("GG", fp="1")
            pasted["annotations"]["summary"] = f"see {discord_url} and bot{BAD_BOT_TOKEN}"
            replies = [
                request(f"{url}/alertmanager", "POST", body(alert("GG")), WEBHOOK_TOKEN),
                # an annotation carrying a secret (someone pasted the webhook URL into a rule)
                request(f"{url}/alertmanager", "POST", body(pasted), WEBHOOK_TOKEN),
                request(f"{url}/alertmanager", "POST", b"{not json", WEBHOOK_TOKEN),
                request(f"{url}/alertmanager", "POST", body(alert("GG")), WEBHOOK_TOKEN[:-1]),
                request(f"{url}/watchdog", "POST", b"[]", "wrong"),
                request(f"{url}/ops/recent", "GET", token=WEBHOOK_TOKEN),
            ]
            wait_until(lambda: discord.requests >= 1 and telegram.requests >= 1, 30, what="both channels tried")
            wait_until(lambda: "HTTP 401" in log.read_text() and "HTTP 404" in log.read_text(), 30,
                       what="both refusals logged")
            replies.append(request(f"{url}/ops/recent", "GET", token=WEBHOOK_TOKEN))
            replies.append(request(f"{url}/metrics", "GET"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    text = log.read_text()
    assert "urllib3" in text  # debug logging of request paths was really on
    everything = text + json.dumps(replies) + " ".join(argv)
    for secret in (WEBHOOK_TOKEN, BAD_BOT_TOKEN, BAD_BOT_TOKEN.split(":")[1], DISCORD_SECRET):
        assert secret not in everything


@pytest.mark.live
def test_label_values_never_reach_a_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts whose labels carry shell syntax, path tricks and command-ish extra labels, through the real
    receiver and remediator: every process started is the configured argv, nothing else runs."""
    from prometheus_client import CollectorRegistry

    from govheal.seams import load_config
    from govheal.testing.support import demo_config_text, demo_fleet
    from tests.test_receiver_support import AUTH, TOKEN, FakeBridge
    from webhook_receiver.app import create_app

    started: list[list[str]] = []
    real_init = subprocess.Popen.__init__

    def spy(self: subprocess.Popen, args: object, *a: object, **kw: object) -> None:
        started.append(list(args) if isinstance(args, list | tuple) else [str(args)])  # type: ignore[arg-type]
        assert not kw.get("shell"), "shell=True"
        real_init(self, args, *a, **kw)  # type: ignore[arg-type]

    pwned = tmp_path / "pwned"
    evil = [f"GG; touch {pwned}", f"$(touch {pwned})", f"`touch {pwned}`", "../../../bin/sh", "GG\n--help", "gg"]
    with demo_fleet(tmp_path, ["GG"]) as [gg]:
        path = tmp_path / "govheal.yaml"
        path.write_text(demo_config_text([gg], extra="remediation: {budget: 1, verify_successes: 1}"))
        config = load_config(path)
        configured = config.agents[0].restart.argv  # type: ignore[union-attr]
        gg.stop()  # down, so the one accepted alert really restarts it
        monkeypatch.setattr(subprocess.Popen, "__init__", spy)
        app = create_app(config, bridge=FakeBridge(), token=TOKEN, registry=CollectorRegistry())
        svc = app.extensions["govheal"]
        client = app.test_client()
        try:
            alerts = [alert(name, fp=f"e{i}") for i, name in enumerate(evil)]
            alerts.append(alert("GG", fp="r1", remediation=f"restart; touch {pwned}"))
            alerts.append(alert("GG", fp="r2", remediation="failover"))  # no fallback configured
            alerts.append(alert("GG", fp="ok", argv=f"touch {pwned}", command=f"$(touch {pwned})",
                                pidfile="/etc/passwd", cwd="../..", job="; rm -rf /"))
            resp = client.post("/alertmanager", data=body(*alerts), headers=AUTH, content_type="application/json")
            assert resp.status_code == 200
            outcomes = {a["fingerprint"]: a["outcome"] for a in resp.json["alerts"]}
            assert all(outcomes[f"e{i}"] == "ignored_unknown_agent" for i in range(len(evil))), outcomes
            assert outcomes["r1"] == "ignored_unknown_remediation" and outcomes["ok"] == "accepted"
            assert svc.dispatcher.wait_idle(90)
        finally:
            svc.stop(5)
            monkeypatch.undo()
    assert started, "the accepted restart ran nothing"
    assert all(argv == configured for argv in started), started
    assert not pwned.exists()


MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def test_every_mutating_endpoint_needs_the_bearer_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Walk the receiver's URL map: every route taking POST/PUT/PATCH/DELETE (and everything under /ops)
    answers 401 without the token or with a wrong one, and the comparison is hmac.compare_digest."""
    import hmac

    from prometheus_client import CollectorRegistry

    from tests.test_receiver_support import TOKEN, FakeBridge, FakeRemediator, receiver_config
    from webhook_receiver import auth
    from webhook_receiver.app import create_app

    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    app = create_app(receiver_config(tmp_path), remediator=FakeRemediator(["GG"]), bridge=FakeBridge(), token=TOKEN,
                     registry=CollectorRegistry(), start=False)
    client = app.test_client()
    checked = []
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & MUTATING
        if rule.rule.startswith("/ops"):
            methods |= (rule.methods or set()) - {"OPTIONS", "HEAD"}
        for method in sorted(methods):
            for header in ({}, {"Authorization": "Bearer " + TOKEN[:-1] + "x"}, {"Authorization": f"Basic {TOKEN}"}):
                resp = client.open(rule.rule, method=method, data=b"{}", headers=header,
                                   content_type="application/json")
                if rule.rule.startswith("/ops/governance"):
                    # the browser page: sent to the login form (public by design, it shows nothing), or refused
                    public = rule.endpoint == "governance.login" and method == "GET"
                    assert public or resp.status_code in (302, 303, 401, 403), (method, rule.rule, resp.status_code)
                    assert public or resp.status_code != 302 or "/ops/governance/login" in resp.headers["Location"]
                else:
                    assert resp.status_code == 401, (method, rule.rule, header, resp.status_code)
                assert TOKEN not in resp.get_data(as_text=True)
            checked.append((method, rule.rule))
    assert {("POST", "/alertmanager"), ("POST", "/watchdog"), ("GET", "/ops/recent")} <= set(checked), checked
    assert compared, "the token was not compared with hmac.compare_digest"
    # nothing was accepted: no alert reached the inbox, the watchdog never beat
    assert app.extensions["govheal"].inbox.counts() == {}
    assert app.extensions["govheal"].deadman.last_seen is None


@pytest.mark.parametrize(("kind", "status", "body", "says"), [
    ("telegram", 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, "GOVHEAL_TELEGRAM_BOT_TOKEN"),
    ("telegram", 404, {"ok": False, "error_code": 404, "description": "Not Found"}, "bot_token_file"),
    ("telegram", 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked"}, "chat_id"),
    ("discord", 401, {"code": 50027, "message": "Invalid Webhook Token"}, "GOVHEAL_DISCORD_WEBHOOK_URL"),
    ("discord", 404, {"code": 10015, "message": "Unknown Webhook"}, "create a new one and update the secret"),
])
def test_a_refused_secret_says_where_to_fix_it_without_showing_it(kind: str, status: int, body: dict,
                                                                   says: str) -> None:
    """A wrong Discord URL or Telegram token: the error (logged, counted, shown) names the field/env to fix."""
    import responses

    from tests.test_bridge_notifiers import HOOK, SEND, TOKEN, N, discord, telegram
    from webhook_receiver.bridge.notifiers import NotifyError

    notifier = telegram() if kind == "telegram" else discord()
    with responses.RequestsMock() as mock:
        mock.post(SEND if kind == "telegram" else HOOK.split("?")[0], status=status, json=body)
        with pytest.raises(NotifyError) as exc:
            notifier.send(notifier.render([N]))
    text = str(exc.value)
    assert exc.value.permanent and says in text, text
    assert TOKEN not in text and "SuperSecretWebhookToken" not in text


def test_the_failover_command_does_not_inherit_the_receivers_secrets(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver runs with the webhook token and channel secrets in its environment; the configured
    failover command (a user's script) gets the environment minus those, like a restarted agent does."""
    from remediator.api import Request
    from tests.test_remediator_policy import FakeClock, World, make

    monkeypatch.setenv("GOVHEAL_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("GOVHEAL_TELEGRAM_BOT_TOKEN", BAD_BOT_TOKEN)
    monkeypatch.setenv("GOVHEAL_DISCORD_WEBHOOK_URL", f"https://discord.example/api/webhooks/1/{DISCORD_SECRET}")
    dump = tmp_path / "env.json"
    code = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    argv = f'[{sys.executable!r}, -c, "{code}", {str(dump)!r}]'
    rem = make(tmp_path, World(healthy={"A": False}), FakeClock(), agents={"A": f"fallback: {{argv: {argv}}}"})
    assert rem.submit(Request("A", "failover", "f1")).outcome == "failover_started"
    env = json.loads(dump.read_text())
    # the supervisor commands (launchctl, systemctl) run through the same helper
    from remediator.strategies.base import run_supervisor

    run_supervisor([sys.executable, "-c", code, str(tmp_path / "env2.json")], timeout=30)
    env2 = json.loads((tmp_path / "env2.json").read_text())
    assert "PATH" in env and "PATH" in env2
    text = json.dumps([env, env2])
    for secret in (WEBHOOK_TOKEN, BAD_BOT_TOKEN, DISCORD_SECRET):
        assert secret not in text


def test_a_traceback_logged_by_the_receiver_is_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    """log.exception of an error whose text (and traceback) holds a channel secret: redacted in full."""
    import logging

    from webhook_receiver.bridge.secrets import ChannelSecrets, Secrets
    from webhook_receiver.cli import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    secrets = Secrets({"tg": ChannelSecrets(bot_token=BAD_BOT_TOKEN, chat_id="1")})
    try:
        setup_logging("info", [WEBHOOK_TOKEN], secrets.redact)
        try:
            raise RuntimeError(f"POST /bot{BAD_BOT_TOKEN}/sendMessage with {WEBHOOK_TOKEN}")
        except RuntimeError:
            logging.getLogger("govheal.bridge").exception("notifier crashed")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "notifier crashed" in err and "Traceback" in err and "<redacted>" in err
    assert BAD_BOT_TOKEN not in err and BAD_BOT_TOKEN.split(":")[1] not in err and WEBHOOK_TOKEN not in err


# Secrets a user's shell commonly holds, under names no pattern of "secret-looking" names catches.
OPERATOR_SECRETS = {"DATABASE_URL": "postgres://app:DbPa55w0rd@db/app", "SMTP_PASSWD": "SmtpPa55wd",
                    "SLACK_HOOK_URL": "https://hooks.slack.example/services/T0/B0/SlackSecret0",
                    "GH_PAT": "ghp_PersonalAccessToken0123456789", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY000001",
                    "GOVHEAL_WEBHOOK_TOKEN": WEBHOOK_TOKEN}


@pytest.mark.live
def test_a_restarted_agent_gets_only_the_allowlisted_environment_and_its_own_env(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the environment of the real agent the remediator started (psutil: /proc/<pid>/environ)."""
    import psutil

    from govheal.seams import parse_config
    from govheal.testing.remediator.reaper import kill_started_under
    from govheal.testing.support import demo_fleet
    from remediator.api import Request
    from remediator.engine import Remediator
    from tests.test_remediator_cli import write_config

    for k, v in OPERATOR_SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LC_TIME", "C")
    try:
        with demo_fleet(tmp_path, ["A"]) as (a,):
            path = write_config(tmp_path, [a])
            path.write_text(path.read_text().replace("      log_file:", "      env: {MODE: blue}\n      log_file:"))
            a.fault("unhealthy")
            old = a.pid
            rem = Remediator(parse_config(path.read_text(), path))
            try:
                r = rem.submit(Request("A", "restart", "env-1"))
            finally:
                rem.close()
            assert r.outcome == "healed" and r.new_pid and r.new_pid != old, r.reason
            env = psutil.Process(r.new_pid).environ()
    finally:
        kill_started_under(tmp_path)
    leaked = sorted(set(OPERATOR_SECRETS) & set(env))
    assert not leaked, f"the restarted agent inherited {leaked}"
    assert not any(v in json.dumps(env) for v in OPERATOR_SECRETS.values())
    assert env["MODE"] == "blue" and env["LC_TIME"] == "C" and "PATH" in env and "HOME" in env
    from govheal.procs import CHILD_ENV
    assert set(env) <= CHILD_ENV | {"MODE", "LC_TIME", "LC_ALL", "LC_CTYPE"} | {k for k in env if k.startswith("LC_")}


def test_failover_and_supervisor_commands_get_the_allowlist_too(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.api import Request
    from remediator.strategies.base import run_supervisor
    from tests.test_remediator_policy import FakeClock, World, make

    for k, v in OPERATOR_SECRETS.items():
        monkeypatch.setenv(k, v)
    code = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    argv = f'[{sys.executable!r}, -c, "{code}", {str(tmp_path / "fo.json")!r}]'
    rem = make(tmp_path, World(healthy={"A": False}), FakeClock(), agents={"A": f"fallback: {{argv: {argv}}}"})
    assert rem.submit(Request("A", "failover", "f1")).outcome == "failover_started"
    run_supervisor([sys.executable, "-c", code, str(tmp_path / "sv.json")], timeout=30, env={"XDG_RUNTIME_DIR": "/r"})
    for name in ("fo.json", "sv.json"):
        env = json.loads((tmp_path / name).read_text())
        assert not set(OPERATOR_SECRETS) & set(env), name
        assert "PATH" in env
    assert json.loads((tmp_path / "sv.json").read_text())["XDG_RUNTIME_DIR"] == "/r"


@pytest.mark.parametrize("url, ok", [
    ("https://discord.com/api/webhooks/1/tok", True),
    ("http://127.0.0.1:8123/api/webhooks/1/tok", True),  # the local fake
    ("http://localhost:8123/api/webhooks/1/tok", True),
    ("http://[::1]:8123/api/webhooks/1/tok", True),
    ("http://discord.com/api/webhooks/1/tok", False),  # the token would travel in clear
    ("http://10.0.0.5/api/webhooks/1/tok", False),
    ("ftp://discord.com/api/webhooks/1/tok", False),
])
def test_a_discord_webhook_url_must_be_https_unless_it_is_loopback(tmp_path: Path, url: str, ok: bool) -> None:
    from govheal.errors import UsageError
    from govheal.seams import parse_config
    from webhook_receiver.bridge.secrets import Secrets

    path = tmp_path / "govheal.yaml"
    path.write_text("notifications:\n  channels:\n    ops: {type: discord}\n"
                    "agents:\n  - name: A\n    health: {url: 'http://127.0.0.1:9/health'}\n")
    cfg = parse_config(path.read_text(), path)
    if ok:
        assert Secrets.load(cfg, env={"GOVHEAL_DISCORD_WEBHOOK_URL": url}).channel("ops").webhook_url == url
        return
    with pytest.raises(UsageError) as info:
        Secrets.load(cfg, env={"GOVHEAL_DISCORD_WEBHOOK_URL": url})
    text = str(info.value)
    assert "notifications.channels.ops: the Discord webhook URL must be https://" in text
    assert "only a loopback address may use http://" in text and "tok" not in text, text


def test_a_telegram_api_url_must_be_https_unless_it_is_loopback(tmp_path: Path) -> None:
    from govheal.config import ConfigError
    from govheal.errors import UsageError
    from govheal.seams import parse_config
    from webhook_receiver.bridge.secrets import Secrets

    def config(api: str):
        path = tmp_path / "govheal.yaml"
        path.write_text("notifications:\n  channels:\n"
                        f"    tg: {{type: telegram, chat_id: '1', api_url: '{api}'}}\n"
                        "agents:\n  - name: A\n    health: {url: 'http://127.0.0.1:9/health'}\n")
        return parse_config(path.read_text(), path)

    assert config("http://127.0.0.1:8081").notifications.channels["tg"].api_url == "http://127.0.0.1:8081"
    with pytest.raises(ConfigError, match=r":3: notifications\.channels\.tg\.api_url: 'http://api\.example' must be "
                                          r"https:// \(the bot token is part of every request URL\); only a "
                                          r"loopback address may use http://"):
        config("http://api.example")
    cfg = config("https://api.telegram.org")
    with pytest.raises(UsageError, match=r"GOVHEAL_TELEGRAM_API_URL .* must be https://"):
        Secrets.load(cfg, env={"GOVHEAL_TELEGRAM_BOT_TOKEN": BAD_BOT_TOKEN,
                               "GOVHEAL_TELEGRAM_API_URL": "http://api.example"})
