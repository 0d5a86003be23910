"""Bridge against the local fake Discord and Telegram servers: delivery, merging, edits, fallback."""

from __future__ import annotations

import collections
import json
import math
import re
import time
from pathlib import Path

import pytest

from govheal.config import Config
from govheal.errors import GovhealError
from govheal.seams import parse_config
from govheal.state import State
from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from webhook_receiver.bridge import Bridge, Notice, render
from webhook_receiver.bridge.render import tg_len
from webhook_receiver.bridge.secrets import Secrets


def bridge_config(tmp: Path, discord_url: str | None, telegram: tuple[str, str, str] | None,
                  *, discord_min: str = "info", telegram_min: str = "info") -> Config:
    """A config with the given channels; secrets written to files under ``tmp/secrets``."""
    secrets = tmp / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    lines = ["node: n1", "state_dir: state", "agents:", "  - name: GG", "    process: {pidfile: run/GG.pid}",
             "    restart: {strategy: command, argv: ['true']}", "notifications:", "  channels:"]
    if discord_url:
        (secrets / "discord").write_text(discord_url + "\n")
        lines.append(f"    discord: {{type: discord, webhook_url_file: secrets/discord, min_severity: {discord_min}}}")
    if telegram:
        token, chat, api = telegram
        (secrets / "telegram").write_text(token + "\n")
        lines.append(f"    telegram: {{type: telegram, bot_token_file: secrets/telegram, chat_id: '{chat}', "
                     f"api_url: '{api}', min_severity: {telegram_min}}}")
    path = tmp / "govheal.yaml"
    path.write_text("\n".join(lines) + "\n")
    return parse_config(path.read_text(), path)


def make_bridge(cfg: Config, **kw) -> Bridge:
    return Bridge(cfg, state=State.open(cfg.state_path), secrets=Secrets.load(cfg, env={}), **kw)


def notice(i: int | str, **kw) -> Notice:
    base = dict(key=f"k{i}", severity="critical", status="firing", title=f"AgentDown: GG on n1 #{i}",
                summary=f"GG is down (id={i})", agent="GG", node="n1", alertname="AgentDown",
                action=None, runbook_url="https://runbooks.example/AgentDown", created=time.time())
    base.update(kw)
    return Notice(**base)


def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def fakes():
    with FakeDiscord(limit=5, period=0.5) as d, FakeTelegram(per_chat=(1, 0.2), per_group=(20, 4.0)) as t:
        yield d, t


# the fakes' limits, scaled so the storm test runs in seconds (the benchmark uses the real ones)
FAST = {"discord": [(5, 0.5)], "telegram": [(1, 0.2)]}


@pytest.fixture
def bridge_of(tmp_path: Path, fakes):
    made: list[Bridge] = []

    def make(*, discord: bool = True, telegram: bool = True, start: bool = True, **kw) -> Bridge:
        d, t = fakes
        cfg = bridge_config(tmp_path, d.url if discord else None,
                            (t.token, "424242", t.api_url) if telegram else None,
                            discord_min=kw.pop("discord_min", "info"), telegram_min=kw.pop("telegram_min", "info"))
        b = make_bridge(cfg, pacing=kw.pop("pacing", FAST), **kw)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.stop()


def drained(b: Bridge) -> bool:
    return not any(b.depth().values())


def ids_in(texts: list[str]) -> collections.Counter:
    return collections.Counter(int(m) for t in texts for m in re.findall(r"\(id=(\d+)\)", t))


def discord_texts(d: FakeDiscord) -> list[str]:
    return [e["description"] for r in d.received if r["method"] == "POST" for e in r["body"]["embeds"]]


def sample(b: Bridge, name: str, **labels: str) -> float | None:
    return b.registry.get_sample_value(name, labels)


def wait_sample(b: Bridge, value: float, name: str, timeout: float = 30.0, **labels: str) -> None:
    """Wait until a counter reaches ``value``: the fake records a request before the bridge has counted it."""
    try:
        wait_for(lambda: sample(b, name, **labels) == value, timeout=timeout, what=f"{name}{labels} == {value}")
    except AssertionError:
        raise AssertionError(f"{name}{labels} is {sample(b, name, **labels)}, expected {value}") from None


def test_every_channel_series_starts_at_zero(bridge_of) -> None:
    b = bridge_of(start=False)
    for ch in ("discord", "telegram"):
        for outcome in ("sent", "failed", "retried", "dropped_permanent", "merged"):
            assert sample(b, "govheal_notifications_total", channel=ch, outcome=outcome) == 0
        assert sample(b, "govheal_outbox_depth", channel=ch) == 0
        assert sample(b, "govheal_outbox_oldest_age_seconds", channel=ch) == 0
        assert sample(b, "govheal_channel_degraded", channel=ch) == 0
        assert sample(b, "govheal_notification_delivery_seconds_count", channel=ch) == 0


def test_notify_is_durable_and_does_not_touch_the_network(bridge_of, fakes) -> None:
    b = bridge_of(start=False)
    t0 = time.monotonic()
    for i in range(50):
        b.notify(notice(i))
    assert time.monotonic() - t0 < 5
    assert b.depth() == {"discord": 50, "telegram": 50}
    assert sample(b, "govheal_outbox_depth", channel="discord") == 50
    assert fakes[0].requests == 0 and fakes[1].requests == 0


def test_a_storm_of_1000_drains_with_nothing_lost_or_duplicated_near_the_rate_minimum(bridge_of, fakes) -> None:
    d, t = fakes
    b = bridge_of()
    storm = [notice(i) for i in range(1000)]
    t0 = time.monotonic()
    for n in storm:
        b.notify(n)
    wait_for(lambda: drained(b), timeout=60, what="the storm to drain")
    elapsed = time.monotonic() - t0
    assert ids_in(discord_texts(d)) == collections.Counter(range(1000))
    assert ids_in([r["text"] for r in t.received]) == collections.Counter(range(1000))
    # theoretical minimum: Discord 10 embeds/request, 5 requests/0.5 s; Telegram by total text, 1 message/0.2 s
    discord_min = (math.ceil(math.ceil(1000 / 10) / 5) - 1) * 0.5
    text = sum(tg_len(render.tg_visible(render.telegram_block(n))) + 2 for n in storm)
    telegram_min = (math.ceil(text / render.TELEGRAM_TEXT_MAX) - 1) * 0.2
    # 100 requests at 10 embeds each, a few more while the storm is still arriving
    posts = len([r for r in d.received if r["method"] == "POST"])
    assert posts <= 105
    print(f"storm: {elapsed:.2f}s, minimum discord {discord_min:.2f}s telegram {telegram_min:.2f}s")
    assert elapsed <= 1.2 * max(discord_min, telegram_min), (elapsed, discord_min, telegram_min)
    assert d.rate_limited == 0 and t.rate_limited == 0  # paced below the limits, not by 429s
    wait_sample(b, 1000, "govheal_notifications_total", channel="discord", outcome="sent")
    wait_sample(b, 1000 - posts, "govheal_notifications_total", channel="discord", outcome="merged")


def test_one_incident_is_one_message_edited_as_it_moves(bridge_of, fakes) -> None:
    d, t = fakes
    b = bridge_of()
    for status, action in (("firing", None), ("restarting", "restarting (attempt 1 of 3)"),
                           ("recovered", "restarted in 2.3 s, PID 812 → 905")):
        b.notify(notice(7, status=status, action=action))
        wait_for(lambda: drained(b), what=f"{status} delivered")
        time.sleep(0.15)
    assert [r["method"] for r in d.received] == ["POST", "PATCH", "PATCH"]
    assert len({r["id"] for r in d.received}) == 1
    assert d.messages[d.received[0]["id"]]["embeds"][0]["title"].startswith("CRIT · RECOVERED")
    assert [r["method"] for r in t.received] == ["sendmessage", "editmessagetext", "editmessagetext"]
    assert "RECOVERED" in t.messages[("424242", t.received[0]["message_id"])]
    assert "PID 812 → 905" in t.received[-1]["text"]


def test_a_failed_edit_falls_back_to_a_new_message(bridge_of, fakes) -> None:
    d, t = fakes
    b = bridge_of()
    b.notify(notice(1))
    wait_for(lambda: drained(b))
    d.messages.clear()  # someone deleted the message in Discord
    t.messages.clear()
    b.notify(notice(1, status="recovered"))
    wait_for(lambda: drained(b))
    assert [r["method"] for r in d.received] == ["POST", "POST"]
    assert [r["method"] for r in t.received] == ["sendmessage", "sendmessage"]
    assert "RECOVERED" in d.received[-1]["body"]["embeds"][0]["title"]


def test_a_deleted_webhook_degrades_discord_and_the_message_goes_to_telegram(bridge_of, fakes) -> None:
    d, t = fakes
    b = bridge_of(telegram_min="critical", probe_interval=0.5)
    d.deleted = True
    b.notify(notice(1, severity="warning"))  # only Discord wants a warning
    wait_for(lambda: any("(id=1)" in r["text"] for r in t.received), what="fallback to Telegram")
    assert sample(b, "govheal_channel_degraded", channel="discord") == 1
    wait_sample(b, 1, "govheal_notifications_total", channel="discord", outcome="dropped_permanent")
    b.notify(notice(2, severity="warning"))  # while degraded, routed to Telegram as well
    wait_for(lambda: any("(id=2)" in r["text"] for r in t.received), what="routing around the degraded channel")
    d.deleted = False  # the operator fixed the webhook: the next probe succeeds and clears the flag
    b.notify(notice(3, severity="warning"))
    wait_for(lambda: sample(b, "govheal_channel_degraded", channel="discord") == 0, what="recovery")
    assert "(id=3)" in json.dumps(d.received[-1]["body"])


def test_discord_429_retry_after_is_honoured(bridge_of, fakes) -> None:
    d, _ = fakes
    b = bridge_of(telegram=False)
    d.inject(429, {"message": "You are being rate limited.", "retry_after": 0.6, "global": False},
             {"Retry-After": "1"})
    t0 = time.monotonic()
    b.notify(notice(1))
    wait_for(lambda: d.received, what="delivery after the 429")
    assert d.received[0]["t"] - t0 >= 0.6
    assert sample(b, "govheal_notifications_total", channel="discord", outcome="retried") == 1
    assert sample(b, "govheal_notifications_total", channel="discord", outcome="failed") == 0  # a 429 is no failure


def test_5xx_is_retried_until_delivered(bridge_of, fakes) -> None:
    _, t = fakes
    b = bridge_of(discord=False)
    t.inject(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, times=2)
    b.notify(notice(1))
    wait_for(lambda: t.received, timeout=30, what="delivery after two 502s")  # backoff 1 s then 2 s (±20 %)
    wait_sample(b, 1, "govheal_notifications_total", channel="telegram", outcome="sent")
    assert sample(b, "govheal_notifications_total", channel="telegram", outcome="failed") == 2
    assert len(t.received) == 1 and t.requests == 3  # two 502s, then the one delivery


def test_telegram_parse_error_is_retried_as_plain_text(bridge_of, fakes) -> None:
    _, t = fakes
    b = bridge_of(discord=False)
    t.inject(400, {"ok": False, "error_code": 400,
                   "description": "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 3"})
    b.notify(notice(1))
    wait_for(lambda: t.received)
    assert t.received[0]["parse_mode"] is None and "AgentDown: GG on n1 #1" in t.received[0]["text"]


def test_min_severity_routes_per_channel_and_direct_reaches_every_channel(bridge_of, fakes) -> None:
    d, _ = fakes
    b = bridge_of(telegram_min="critical", start=False)
    b.notify(notice(1, severity="info"))
    b.notify(notice(2, severity="critical"))
    assert b.depth() == {"discord": 2, "telegram": 1}
    b.send_direct(notice(3, severity="info", title="alert pipeline silent"))
    assert b.depth() == {"discord": 3, "telegram": 2}
    b.start()
    wait_for(lambda: drained(b))
    first = d.received[0]["body"]["embeds"][0]
    assert "alert pipeline silent" in first["title"]  # the dead-man's switch jumps the queue


def test_a_missing_secret_is_a_clear_error_naming_the_channel(tmp_path: Path) -> None:
    cfg = bridge_config(tmp_path, "https://discord.example/api/webhooks/1/x", None)
    (tmp_path / "secrets" / "discord").unlink()
    with pytest.raises(GovhealError, match=r"notifications\.channels\.discord\.webhook_url_file: cannot read"):
        Secrets.load(cfg, env={})
    path = tmp_path / "govheal.yaml"
    path.write_text(path.read_text().replace(", webhook_url_file: secrets/discord", ""))
    cfg = parse_config(path.read_text(), path)
    with pytest.raises(GovhealError, match="GOVHEAL_DISCORD_WEBHOOK_URL"):
        Secrets.load(cfg, env={})
    assert Secrets.load(cfg, env={"GOVHEAL_DISCORD_WEBHOOK_URL": "https://d.example/api/webhooks/1/abc"})


def test_an_update_to_a_merged_message_edits_it_keeping_the_other_incidents(bridge_of, fakes) -> None:
    d, t = fakes
    b = bridge_of(start=False)
    for i in range(3):
        b.notify(notice(i))
    b.start()
    wait_for(lambda: drained(b))
    assert len(d.received) == 1 and len(d.received[0]["body"]["embeds"]) == 3
    b.notify(notice(1, status="recovered", action="restarted in 1.0 s"))
    wait_for(lambda: drained(b) and len(d.received) == 2)
    edit = d.received[1]
    assert edit["method"] == "PATCH" and edit["id"] == d.received[0]["id"]
    titles = [e["title"] for e in edit["body"]["embeds"]]
    assert [("RECOVERED" in x) for x in titles] == [False, True, False]
    assert t.received[-1]["method"] == "editmessagetext" and t.received[-1]["text"].count("(id=") == 3


def test_queued_states_of_one_incident_collapse_into_the_newest(bridge_of, fakes) -> None:
    d, _ = fakes
    b = bridge_of(start=False)
    b.notify(notice(1))
    b.notify(notice(1, status="restarting"))
    b.notify(notice(1, status="recovered"))
    b.start()
    wait_for(lambda: drained(b))
    assert len(d.received) == 1 and len(d.received[0]["body"]["embeds"]) == 1
    assert "RECOVERED" in d.received[0]["body"]["embeds"][0]["title"]
    wait_sample(b, 2, "govheal_notifications_total", channel="discord", outcome="merged")


def test_a_rejected_merged_message_is_resent_one_notice_at_a_time(bridge_of, fakes) -> None:
    d, _ = fakes
    b = bridge_of(start=False)
    for i in range(3):
        b.notify(notice(i))
    d.inject(400, {"code": 50035, "message": "Invalid Form Body", "errors": {}})
    b.start()
    wait_for(lambda: drained(b))
    assert [len(r["body"]["embeds"]) for r in d.received] == [1, 1, 1]
    assert ids_in(discord_texts(d)) == collections.Counter(range(3))
    assert sample(b, "govheal_notifications_total", channel="discord", outcome="dropped_permanent") == 0


def test_a_rejected_single_notice_goes_to_the_other_channel_without_degrading(bridge_of, fakes) -> None:
    d, t = fakes
    b = bridge_of(telegram_min="critical")
    d.inject(400, {"code": 50035, "message": "Invalid Form Body", "errors": {}})
    b.notify(notice(1, severity="warning"))
    wait_for(lambda: t.received, what="fallback to Telegram")
    assert "(id=1)" in t.received[0]["text"]
    wait_sample(b, 1, "govheal_notifications_total", channel="discord", outcome="dropped_permanent")
    assert sample(b, "govheal_channel_degraded", channel="discord") == 0


def test_a_telegram_supergroup_migration_is_followed_and_remembered(bridge_of, fakes) -> None:
    _, t = fakes
    t.chats.add("-100777")
    t.migrated["424242"] = "-100777"
    first = bridge_of(discord=False)
    first.notify(notice(1))
    wait_for(lambda: t.received)
    assert t.received[0]["chat_id"] == "-100777" and t.requests == 2  # the refusal, then the new chat
    first.stop()
    time.sleep(0.25)  # a new process starts with an empty pacer: let the fake's per-chat window pass
    second = bridge_of(discord=False)  # a restart: no second refusal, straight to the new chat
    second.notify(notice(2))
    wait_for(lambda: len(t.received) == 2)
    assert t.received[1]["chat_id"] == "-100777" and t.requests == 3, (t.requests, t.received)


def test_a_channel_can_be_limited_to_some_agents_and_alerts(tmp_path: Path) -> None:
    cfg = bridge_config(tmp_path, "https://discord.example/api/webhooks/1/x", None)
    path = tmp_path / "govheal.yaml"
    path.write_text(path.read_text().replace(
        "min_severity: info}", "min_severity: info, agents: [GG], alertnames: [AgentDown, AgentCircuitOpen]}"))
    path.write_text(path.read_text().replace(
        "notifications:", "  - name: Mary\n    process: {pidfile: run/Mary.pid}\nnotifications:"))
    cfg = parse_config(path.read_text(), path)
    b = make_bridge(cfg)
    try:
        assert b.routes(notice(1)) == ["discord"]
        assert b.routes(notice(2, agent="Mary")) == []
        assert b.routes(notice(3, alertname="AgentUnhealthy")) == []
        assert b.routes(notice(4, agent=None, alertname="AgentCircuitOpen")) == ["discord"]  # no agent: not filtered
    finally:
        b.stop()


@pytest.mark.parametrize("status", [404, 405, 501])
def test_an_edit_the_channel_refuses_becomes_a_new_message_and_never_degrades_it(bridge_of, fakes,
                                                                                 status: int) -> None:
    """A proxy or a compatible service that cannot edit (405/501), or messages it no longer has (404)."""
    d, t = fakes
    b = bridge_of()
    b.notify(notice(1))
    b.notify(notice(2))
    wait_for(lambda: drained(b), what="both firing")
    d.refuse_edits = t.refuse_edits = status
    b.notify(notice(1, status="resolved", action="alert resolved"))
    b.notify(notice(3))  # queued behind it: must not be dropped with a degraded channel
    wait_for(lambda: drained(b), timeout=15, what="the RESOLVED delivered")
    assert d.refused_edits >= 1 and t.refused_edits >= 1
    for texts in ([json.dumps(r["body"]) for r in d.received if r["method"] == "POST"],
                  [r["text"] for r in t.received if r["method"] == "sendmessage"]):
        assert any("RESOLVED" in x and "(id=1)" in x for x in texts), texts
        assert any("(id=3)" in x for x in texts)
    for ch in ("discord", "telegram"):
        assert sample(b, "govheal_channel_degraded", channel=ch) == 0
        assert sample(b, "govheal_notifications_total", channel=ch, outcome="dropped_permanent") == 0
    assert not any(b.degraded().values())
