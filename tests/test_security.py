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

from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_telegram import FakeTelegram
from tests.support import free_port, http_get, wait_until
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
