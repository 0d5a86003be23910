"""Live: a real `govheal receiver` (waitress) + real remediator + demo agents + the bridge's fake channels.

Also a real Alertmanager 0.25 in front of it, and a SIGKILL with messages queued.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from govheal.chain import alertmanager_argv
from govheal.client import Alertmanager, PostableAlert, new_session
from govheal.store import db_path
from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from govheal.testing.support import demo_config_text, demo_fleet, free_port, http_get, http_post, is_running, wait_until
from tests.conftest import require_binary
from tests.test_receiver_support import TOKEN, alert, body

pytestmark = pytest.mark.live

CHANNELS = """receiver: {workers: 2, deadman_timeout: 1h}
notifications:
  channels:
    discord: {type: discord}
    telegram: {type: telegram}
"""


class Receiver:
    """`python -m govheal receiver` as a subprocess on a free port."""

    def __init__(self, tmp: Path, config: Path, discord: FakeDiscord, telegram: FakeTelegram) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.log = tmp / "receiver.log"
        self.env = {**os.environ, "GOVHEAL_WEBHOOK_TOKEN": TOKEN, "GOVHEAL_DISCORD_WEBHOOK_URL": discord.url,
                    "GOVHEAL_TELEGRAM_BOT_TOKEN": telegram.token, "GOVHEAL_TELEGRAM_CHAT_ID": "424242",
                    "GOVHEAL_TELEGRAM_API_URL": telegram.api_url}
        self.proc: subprocess.Popen | None = None

    def start(self) -> Receiver:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "govheal", "receiver", "--config", str(self.config), "--listen",
                 f"127.0.0.1:{self.port}"], stdout=log, stderr=subprocess.STDOUT, env=self.env,
                stdin=subprocess.DEVNULL)
        wait_until(lambda: http_get(f"{self.url}/readyz", timeout=1)[0] == 200, 30, what="receiver ready")
        return self

    def post(self, data: bytes, path: str = "/alertmanager") -> tuple[int, str]:
        return http_post(self.url + path, data, timeout=10,
                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def told(fake: FakeDiscord | FakeTelegram, *words: str) -> bool:
    texts = [json.dumps(r.get("body") or r.get("text"), ensure_ascii=False) for r in list(fake.received)]
    return any(all(w in t for w in words) for t in texts)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Iterator[tuple[Receiver, list, FakeDiscord, FakeTelegram, Path]]:
    tmp = tmp_path_factory.mktemp("receiver-live")
    with FakeDiscord() as discord, FakeTelegram() as telegram, demo_fleet(tmp, ["A", "B"]) as agents:
        cfg = tmp / "govheal.yaml"
        cfg.write_text(demo_config_text(agents, extra=CHANNELS))
        receiver = Receiver(tmp, cfg, discord, telegram).start()
        try:
            yield receiver, agents, discord, telegram, tmp
        finally:
            assert receiver.stop() == 0, "SIGTERM → graceful stop, exit 0"
            log = receiver.log.read_text()
            assert TOKEN not in log and discord.token not in log and telegram.token not in log


def crash(agent) -> int:
    old = agent.pid
    agent.fault("crash", code=1)
    wait_until(lambda: not is_running(old), 10, what=f"{agent.name} crashed")
    return old


def test_an_agentdown_webhook_restarts_the_crashed_agent_and_both_channels_are_told(chain) -> None:
    receiver, (a, _b), discord, telegram, _ = chain
    old = crash(a)
    started = time.monotonic()
    data = body(alert("A", fp="a1a1a1a1a1a1a1a1", starts=now_rfc3339()))
    status, text = receiver.post(data)
    assert status == 200 and json.loads(text)["alerts"][0]["outcome"] == "accepted"
    assert time.monotonic() - started < 2, "the answer does not wait for the restart"
    wait_until(lambda: a.pid not in (None, old) and http_get(a.health_url, 1)[0] == 200, 30,
               what="A restarted by the remediator")
    for fake in (discord, telegram):
        wait_until(lambda fake=fake: told(fake, "AgentDown", "restarted in"), 30,
                   what=f"{type(fake).__name__} told about the restart")
    metrics = http_get(f"{receiver.url}/metrics")[1]
    assert 'govheal_webhook_alerts_total{outcome="accepted"} 1.0' in metrics
    assert "govheal_remediations_total" in metrics  # the remediator's metrics on the same registry
    # Alertmanager re-sends the same group (retry or HA peer): recorded as a duplicate, nothing else happens.
    sent = len(discord.received) + len(telegram.received)
    status, text = receiver.post(data)
    assert status == 200 and json.loads(text)["alerts"][0]["outcome"] == "duplicate"
    time.sleep(1)
    assert len(discord.received) + len(telegram.received) == sent


def test_bad_requests_leave_the_live_receiver_serving(chain) -> None:
    receiver, *_ = chain
    assert receiver.post(b"\xff")[0] == 400
    assert receiver.post(b"[" * 100_000 + b"]" * 100_000)[0] == 400
    assert receiver.post(b'{"version": "4"}')[0] == 422
    assert http_post(f"{receiver.url}/alertmanager", body(alert("A")), headers={})[0] == 401
    assert receiver.post(b"x" * (1_048_576 + 1))[0] == 413
    assert http_get(f"{receiver.url}/readyz")[0] == 200


def test_the_live_exposition_passes_promtool_check_metrics(chain) -> None:
    receiver, *_ = chain
    promtool = require_binary("promtool")
    text = http_get(f"{receiver.url}/metrics")[1]
    for family in ("govheal_webhook_requests_total", "govheal_notifications_total", "govheal_remediations_total"):
        assert family in text
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_real_alertmanager_delivers_to_the_receiver_which_restarts_the_agent(chain) -> None:
    receiver, (_a, b), discord, telegram, tmp = chain
    am_bin = require_binary("prometheus-alertmanager", "alertmanager")
    token_file = tmp / "am_token"
    token_file.write_text(TOKEN)
    am_port = free_port()
    (tmp / "am.yml").write_text(f"""
route:
  receiver: govheal
  group_by: ['alertname', 'agent']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="Watchdog"']
      receiver: deadman
receivers:
  - name: deadman
    webhook_configs:
      - url: '{receiver.url}/watchdog'
        send_resolved: false
        http_config:
          authorization: {{type: Bearer, credentials_file: '{token_file}'}}
  - name: govheal
    webhook_configs:
      - url: '{receiver.url}/alertmanager'
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials_file: '{token_file}'}}
""")
    with open(tmp / "am.log", "ab") as log:
        am = subprocess.Popen(alertmanager_argv(am_bin, tmp / "am.yml", tmp / "am-data", f"127.0.0.1:{am_port}"),
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        api = Alertmanager(f"http://127.0.0.1:{am_port}", new_session())
        wait_until(api.ready, 30, what="Alertmanager ready")
        old = crash(b)
        labels = {"alertname": "AgentDown", "agent": "B", "severity": "critical", "remediation": "restart"}
        api.post_alerts([PostableAlert(labels=labels, annotations={"summary": "Agent B is down"})])
        wait_until(lambda: b.pid not in (None, old) and http_get(b.health_url, 1)[0] == 200, 40,
                   what="B restarted after Alertmanager's webhook")
        for fake in (discord, telegram):
            wait_until(lambda fake=fake: told(fake, "Agent B is down", "restarted in"), 30,
                       what=f"{type(fake).__name__} told about B")
        api.post_alerts([PostableAlert(labels={"alertname": "Watchdog", "severity": "none"})])
        wait_until(lambda: "govheal_watchdog_last_seen_timestamp_seconds 0.0" not in http_get(
            f"{receiver.url}/metrics")[1], 20, what="the Watchdog heartbeat recorded via Alertmanager")
    finally:
        am.terminate()
        try:
            am.wait(10)
        except subprocess.TimeoutExpired:
            am.kill()  # never leave an Alertmanager behind
            am.wait(10)


HELD = {  # both services refusing everything for a while: the 429 bodies of ecosystem-facts.md
    "discord": (429, {"message": "You are being rate limited.", "retry_after": 2.0, "global": False},
                {"Retry-After": "2"}),
    "telegram": (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
                       "parameters": {"retry_after": 2}}, {}),
}


def mentions(fake: FakeDiscord | FakeTelegram, name: str) -> int:
    """How many requests the channel accepted (new messages and edits) that carry ``name``."""
    key = "body" if isinstance(fake, FakeDiscord) else "text"
    return sum(name in json.dumps(r.get(key), ensure_ascii=False) for r in list(fake.received))


def test_sigkill_with_200_messages_queued_and_none_in_flight_then_restart_delivers_each_exactly_once(
        tmp_path: Path) -> None:
    """The issue's case, strictly: SIGKILL with 200 messages queued → start again → each delivered once.

    Both channels deliver their first messages, then refuse everything with 429 (retry_after 2 s). A channel
    worker sends one request at a time and records each acknowledgement before its next request, so once
    each channel has refused a request after the hold, no accepted request is waiting to be recorded: nothing
    is in flight at the kill, and no repeat is allowed (the in-flight case is the next test).
    """
    with FakeDiscord() as discord, FakeTelegram() as telegram:
        cfg = tmp_path / "govheal.yaml"
        cfg.write_text(CHANNELS + "node: n1\nstate_dir: state\nagents:\n"
                       "  - {name: GG, health: {url: 'http://127.0.0.1:9/health'}}\n")
        receiver = Receiver(tmp_path, cfg, discord, telegram).start()
        names = [f"Held{i:03d}" for i in range(200)]
        fakes = {"discord": discord, "telegram": telegram}
        db = sqlite3.connect(db_path(tmp_path / "state"))
        try:
            for chunk in range(4):
                alerts = [alert(None, remediation=None, fp=f"{i:016x}", alertname=names[i], severity="warning")
                          for i in range(chunk * 50, chunk * 50 + 50)]
                assert receiver.post(body(*alerts))[0] == 200
            wait_until(lambda: discord.received and telegram.received, 30, what="first messages on both channels")
            for name, fake in fakes.items():
                fake.hold(*HELD[name])
            wait_until(lambda: all(f.refused_while_held for f in fakes.values()), 30,
                       what="each channel refusing a request after the hold (nothing accepted is unrecorded)")
            wait_until(lambda: db.execute("SELECT COUNT(*) FROM outbox_items").fetchone()[0] == 400, 30,
                       what="all 200 notices in the outbox for both channels")
            before = {n: sum(mentions(f, x) > 0 for x in names) for n, f in fakes.items()}
            assert all(0 < b < 200 for b in before.values()), f"delivered before the kill: {before}"
            receiver.stop(signal.SIGKILL)
            for fake in fakes.values():
                fake.release()
            receiver.start()
            for name, fake in fakes.items():
                wait_until(lambda fake=fake: all(mentions(fake, x) for x in names), 90,
                           what=f"all 200 delivered to {name}", interval=0.5)
            time.sleep(1.0)  # a late repeat would arrive now
            for name, fake in fakes.items():
                wrong = {x: c for x in names if (c := mentions(fake, x)) != 1}
                assert not wrong, f"{name}: not delivered exactly once: {dict(list(wrong.items())[:10])}"
            assert db.execute("SELECT COUNT(*) FROM outbox_items WHERE state = 'queued'").fetchone()[0] == 0
            print(f"exactly once after SIGKILL; delivered before the kill: {before}")
        finally:
            db.close()
            receiver.stop()


def test_sigkill_mid_delivery_loses_none_enqueues_each_once_and_repeats_only_the_request_in_flight(
        tmp_path: Path) -> None:
    """Through the receiver every notice enters the outbox exactly once, and every one is delivered.

    The one message a channel had already accepted at the instant of the SIGKILL (its HTTP call in flight,
    not yet marked sent) is sent again after the restart: Discord and Telegram have no idempotency key, so
    at the network edge delivery is at-least-once. The test allows exactly those repeats and no others.
    """
    with FakeDiscord() as discord, FakeTelegram() as telegram:
        cfg = tmp_path / "govheal.yaml"
        cfg.write_text(CHANNELS + "node: n1\nstate_dir: state\nagents:\n"
                       "  - {name: GG, health: {url: 'http://127.0.0.1:9/health'}}\n")
        receiver = Receiver(tmp_path, cfg, discord, telegram).start()
        names = [f"Storm{i:03d}" for i in range(200)]

        def count(fake, name: str) -> int:
            key = "body" if isinstance(fake, FakeDiscord) else "text"
            return sum(name in json.dumps(r.get(key), ensure_ascii=False) for r in list(fake.received))

        try:
            for chunk in range(4):
                alerts = [alert(None, remediation=None, fp=f"{i:016x}", alertname=names[i], severity="warning")
                          for i in range(chunk * 50, chunk * 50 + 50)]
                assert receiver.post(body(*alerts))[0] == 200
            receiver.stop(signal.SIGKILL)
            assert sum(count(discord, n) > 0 for n in names) < 200, "the kill came too late to leave work queued"
            restarted = time.monotonic()
            receiver.start()
            for fake in (discord, telegram):
                wait_until(lambda fake=fake: all(count(fake, n) for n in names), 90,
                           what=f"all 200 delivered to {type(fake).__name__}", interval=0.5)
                key = "body" if isinstance(fake, FakeDiscord) else "text"
                posts = [r for r in list(fake.received) if r["method"] in ("POST", "sendmessage")]
                for n in names:
                    times = [r["t"] for r in posts if n in json.dumps(r.get(key), ensure_ascii=False)]
                    assert len(times) == 1 or (len(times) == 2 and times[0] < restarted), (
                        f"{n} sent {len(times)} times to {type(fake).__name__}; only a message the channel had "
                        "accepted from the killed process may be sent once more")
            db = sqlite3.connect(db_path(tmp_path / "state"))
            rows = db.execute("SELECT channel, key, COUNT(*) FROM outbox_items GROUP BY channel, key").fetchall()
            twice = [tuple(r) for r in db.execute(
                "SELECT channel, key, notice_id, state, fallback_from FROM outbox_items WHERE key IN"
                " (SELECT key FROM outbox_items GROUP BY channel, key HAVING COUNT(*) > 1)")]
            assert len(rows) == 400 and twice == [], f"each notice enqueued once per channel: {twice}"
            assert db.execute("SELECT COUNT(*) FROM inbox_alerts WHERE state = 'pending'").fetchone()[0] == 0
        finally:
            receiver.stop()


def test_the_deadman_pages_both_channels_when_the_watchdog_stops_and_says_when_it_is_back(tmp_path: Path) -> None:
    with FakeDiscord() as discord, FakeTelegram() as telegram:
        cfg = tmp_path / "govheal.yaml"
        cfg.write_text(CHANNELS.replace("deadman_timeout: 1h", "deadman_timeout: 1500ms")
                       + "node: n1\nstate_dir: state\nagents:\n"
                       "  - {name: GG, health: {url: 'http://127.0.0.1:9/health'}}\n")
        receiver = Receiver(tmp_path, cfg, discord, telegram).start()
        try:
            for fake in (discord, telegram):
                wait_until(lambda fake=fake: told(fake, "Alert pipeline silent on n1"), 20,
                           what=f"CRIT on {type(fake).__name__}")
            assert "govheal_alert_pipeline_silent 1.0" in http_get(f"{receiver.url}/metrics")[1]
            time.sleep(1.5)  # ten more checks while still silent: no second page
            for fake in (discord, telegram):
                pages = [r for r in fake.received if r["method"] in ("POST", "sendmessage")
                         and "Alert pipeline silent on n1" in json.dumps(r.get("body") or r.get("text"))]
                assert len(pages) == 1, f"paged once per silence episode on {type(fake).__name__}"
            assert receiver.post(body(alert(None, remediation=None, alertname="Watchdog")), "/watchdog")[0] == 200
            for fake in (discord, telegram):
                wait_until(lambda fake=fake: told(fake, "Alert pipeline back on n1"), 20,
                           what=f"INFO on {type(fake).__name__}")
        finally:
            receiver.stop()


def test_a_frozen_alertmanager_is_paged_directly_within_the_bound_and_its_return_is_told(tmp_path: Path) -> None:
    """SIGSTOP: Alertmanager accepts connections and never answers, so no alert (and no Watchdog) arrives.

    The dead-man's switch would page after deadman_timeout (here 1h); the Alertmanager watch pages within
    receiver.alertmanager_unreachable_after (here 2 s), straight to the channels.
    """
    bound = 2.0
    am_bin = require_binary("prometheus-alertmanager", "alertmanager")
    am_port = free_port()
    (tmp_path / "am.yml").write_text("route: {receiver: nowhere}\nreceivers: [{name: nowhere}]\n")
    with FakeDiscord() as discord, FakeTelegram() as telegram:
        with open(tmp_path / "am.log", "ab") as log:
            am = subprocess.Popen(alertmanager_argv(am_bin, tmp_path / "am.yml", tmp_path / "am-data",
                                                    f"127.0.0.1:{am_port}"),
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        receiver = None
        try:
            wait_until(Alertmanager(f"http://127.0.0.1:{am_port}", new_session()).ready, 30, what="Alertmanager ready")
            cfg = tmp_path / "govheal.yaml"
            cfg.write_text(CHANNELS.replace("deadman_timeout: 1h", f"deadman_timeout: 1h, "
                                            f"alertmanager_unreachable_after: {bound:g}s")
                           + f"alertmanager: {{urls: ['http://127.0.0.1:{am_port}']}}\n"
                           + "node: n1\nstate_dir: state\nagents:\n"
                           "  - {name: GG, health: {url: 'http://127.0.0.1:9/health'}}\n")
            receiver = Receiver(tmp_path, cfg, discord, telegram).start()
            wait_until(lambda: "govheal_alertmanager_reachable 1.0" in http_get(f"{receiver.url}/metrics")[1], 10,
                       what="the receiver sees Alertmanager answer")
            am.send_signal(signal.SIGSTOP)
            frozen = time.monotonic()
            for fake in (discord, telegram):
                wait_until(lambda fake=fake: told(fake, "Alertmanager unreachable from n1"), bound + 5,
                           interval=0.02, what=f"the direct CRIT on {type(fake).__name__}")
            took = time.monotonic() - frozen
            print(f"frozen Alertmanager paged after {took:.2f} s (bound {bound:g} s)")
            assert bound - 0.5 <= took <= bound + 1.5, took
            assert "govheal_alertmanager_unreachable_paged 1.0" in http_get(f"{receiver.url}/metrics")[1]
            am.send_signal(signal.SIGCONT)
            for fake in (discord, telegram):
                wait_until(lambda fake=fake: told(fake, "Alertmanager reachable again from n1"), 10,
                           what=f"the INFO on {type(fake).__name__}")
            pages = [r for r in discord.received if r["method"] == "POST"
                     and "Alertmanager unreachable" in json.dumps(r["body"])]
            assert len(pages) == 1, "paged once per outage"
        finally:
            am.send_signal(signal.SIGCONT)
            am.terminate()
            try:
                am.wait(10)
            except subprocess.TimeoutExpired:
                am.kill()
                am.wait(10)
            if receiver is not None:
                receiver.stop()
