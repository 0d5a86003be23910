"""Notifier request shapes and error handling with ``responses`` (no network), plus redaction."""

from __future__ import annotations

import json
import logging

import pytest
import requests
import responses

from govheal.config import ChannelSpec
from webhook_receiver.bridge.model import Notice
from webhook_receiver.bridge.notifiers import NOTIFIERS, MessageRef, NotifyError
from webhook_receiver.bridge.notifiers.base import (
    CHANNEL,
    EDIT_FAILED,
    EDIT_UNSUPPORTED,
    RATE_LIMITED,
    TRANSIENT,
    Pacer,
)
from webhook_receiver.bridge.secrets import ChannelSecrets, Secrets

HOOK = "https://discord.example/api/webhooks/123456789/SuperSecretWebhookToken_abcdef"
TOKEN = "987654321:AASuperSecretBotToken_abcdefghijklmnop"
API = "https://tg.example"
SEND = f"{API}/bot{TOKEN}/sendMessage"
EDIT = f"{API}/bot{TOKEN}/editMessageText"
N = Notice(key="k1", severity="critical", status="firing", title="AgentDown: GG on n1", summary="GG is down",
           agent="GG", node="n1", runbook_url="https://runbooks.example/AgentDown")


def discord():
    return NOTIFIERS["discord"](ChannelSpec(type="discord"), ChannelSecrets(webhook_url=HOOK), requests.Session(),
                                pacing=[(100, 1.0)])


def telegram(chat: str = "424242"):
    secrets = ChannelSecrets(bot_token=TOKEN, chat_id=chat, api_url=API)
    return NOTIFIERS["telegram"](ChannelSpec(type="telegram"), secrets, requests.Session(), pacing=[(100, 1.0)])


# ------------------------------------------------------------------------------------------ contract
# One table drives every notifier through success, rate limit, transient and permanent failure.
def _discord_error(status: int, body: dict, headers: dict | None = None):
    responses.post(HOOK, status=status, json=body, headers=headers or {})


def _telegram_error(status: int, body: dict, headers: dict | None = None):
    responses.post(SEND, status=status, json={"ok": False, "error_code": status, **body}, headers=headers or {})


CONTRACT = {
    "discord": (discord, lambda: responses.post(HOOK, json={"id": "555"}), _discord_error,
                {"message": "You are being rate limited.", "retry_after": 1.5, "global": False},
                {"code": 10015, "message": "Unknown Webhook"}, 404),
    "telegram": (telegram, lambda: responses.post(SEND, json={"ok": True, "result": {"message_id": 7}}),
                 _telegram_error, {"description": "Too Many Requests: retry after 2", "parameters": {"retry_after": 2}},
                 {"description": "Unauthorized"}, 401),
}


@pytest.mark.parametrize("name", sorted(NOTIFIERS))
@responses.activate
def test_every_notifier_returns_a_message_ref_on_success(name: str) -> None:
    make, ok, *_ = CONTRACT[name]
    ok()
    ref = make().send(make().render([N]))
    assert isinstance(ref, MessageRef) and ref.id in {"555", "7"}


@pytest.mark.parametrize("name", sorted(NOTIFIERS))
@responses.activate
def test_every_notifier_reports_rate_limits_with_retry_after(name: str) -> None:
    make, _, error, body429, *_ = CONTRACT[name]
    error(429, body429, {"Retry-After": "9"})
    n = make()
    with pytest.raises(NotifyError) as exc:
        n.send(n.render([N]))
    assert exc.value.kind == RATE_LIMITED and not exc.value.permanent
    assert exc.value.retry_after == (1.5 if name == "discord" else 2.0)  # the body's precise value wins
    assert n.ready_in() > 1.0  # and the notifier itself holds back until then


@pytest.mark.parametrize("name", sorted(NOTIFIERS))
@responses.activate
def test_every_notifier_treats_5xx_and_timeouts_as_transient(name: str) -> None:
    make, _, error, *_ = CONTRACT[name]
    error(502, {"description": "Bad Gateway", "message": "Bad Gateway"})
    n = make()
    with pytest.raises(NotifyError) as exc:
        n.send(n.render([N]))
    assert exc.value.kind == TRANSIENT and not exc.value.permanent
    url = HOOK if name == "discord" else SEND
    responses.replace(responses.POST, url, body=requests.ConnectTimeout(f"timed out connecting to {url}"))
    with pytest.raises(NotifyError) as exc:
        n.send(n.render([N]))
    assert exc.value.kind == TRANSIENT
    assert "SuperSecret" not in str(exc.value) and "<redacted>" in str(exc.value)


@pytest.mark.parametrize("name", sorted(NOTIFIERS))
@responses.activate
def test_every_notifier_marks_auth_and_unknown_target_permanent(name: str) -> None:
    make, _, error, _, body, status = CONTRACT[name]
    error(status, body)
    n = make()
    with pytest.raises(NotifyError) as exc:
        n.send(n.render([N]))
    assert exc.value.permanent and exc.value.kind == CHANNEL


# ------------------------------------------------------------------------------------------ Discord
@responses.activate
def test_discord_posts_embeds_with_wait_true_and_no_mentions() -> None:
    call = responses.post(HOOK, json={"id": "555"}, match=[responses.matchers.query_param_matcher({"wait": "true"})])
    discord().send(discord().render([N]))
    body = json.loads(call.calls[0].request.body)
    assert body["allowed_mentions"] == {"parse": []}
    assert body["embeds"][0]["title"] == "CRIT · FIRING · AgentDown: GG on n1"
    assert call.calls[0].request.headers["User-Agent"].startswith("DiscordBot (")


@responses.activate
def test_discord_edits_with_patch_and_reports_a_vanished_message_as_edit_failed() -> None:
    patch = responses.patch(f"{HOOK}/messages/555", json={"id": "555"})
    assert discord().edit(MessageRef("555"), discord().render([N])) == MessageRef("555")
    assert json.loads(patch.calls[0].request.body)["embeds"]
    responses.patch(f"{HOOK}/messages/556", status=404, json={"code": 10008, "message": "Unknown Message"})
    with pytest.raises(NotifyError) as exc:
        discord().edit(MessageRef("556"), discord().render([N]))
    assert exc.value.kind == EDIT_FAILED


@responses.activate
def test_discord_paces_itself_when_the_bucket_is_empty() -> None:
    responses.post(HOOK, json={"id": "1"}, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.25"})
    n = discord()
    n.send(n.render([N]))
    assert 1.2 < n.ready_in() <= 1.3


# ------------------------------------------------------------------------------------------ Telegram
@responses.activate
def test_telegram_sends_html_without_link_previews() -> None:
    call = responses.post(SEND, json={"ok": True, "result": {"message_id": 7}})
    ref = telegram().send(telegram().render([N]))
    body = json.loads(call.calls[0].request.body)
    assert body["parse_mode"] == "HTML" and body["chat_id"] == "424242"
    assert body["link_preview_options"] == {"is_disabled": True}
    assert "<b>CRIT · FIRING · AgentDown: GG on n1</b>" in body["text"]
    assert ref == MessageRef("7", chat_id="424242")
    assert "disable_notification" not in body  # CRIT rings


@responses.activate
def test_telegram_retries_an_entity_parse_error_as_plain_text() -> None:
    responses.post(SEND, status=400, json={"ok": False, "error_code": 400, "description":
                   "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""})
    responses.post(SEND, json={"ok": True, "result": {"message_id": 8}})
    ref = telegram().send(telegram().render([N]))
    second = json.loads(responses.calls[1].request.body)
    assert "parse_mode" not in second and "<b>" not in second["text"] and "AgentDown: GG on n1" in second["text"]
    assert ref.id == "8"


@responses.activate
def test_telegram_follows_a_supergroup_migration() -> None:
    responses.post(SEND, status=400, json={"ok": False, "error_code": 400, "description": "Bad Request: group chat "
                   "was upgraded to a supergroup chat", "parameters": {"migrate_to_chat_id": -1009999}})
    responses.post(SEND, json={"ok": True, "result": {"message_id": 9}})
    n = telegram("-123")
    ref = n.send(n.render([N]))
    assert json.loads(responses.calls[1].request.body)["chat_id"] == "-1009999"
    assert ref == MessageRef("9", chat_id="-1009999") and n.chat_id == "-1009999"


@pytest.mark.parametrize(("status", "description"), [
    (400, "Bad Request: chat not found"), (403, "Forbidden: bot was blocked by the user"), (401, "Unauthorized")])
@responses.activate
def test_telegram_chat_and_auth_errors_are_permanent(status: int, description: str) -> None:
    responses.post(SEND, status=status, json={"ok": False, "error_code": status, "description": description})
    with pytest.raises(NotifyError) as exc:
        telegram().send(telegram().render([N]))
    assert exc.value.permanent and exc.value.kind == CHANNEL
    assert TOKEN not in str(exc.value)


@responses.activate
def test_telegram_edit_not_modified_is_success_and_missing_message_falls_back() -> None:
    responses.post(EDIT, status=400, json={"ok": False, "error_code": 400,
                                           "description": "Bad Request: message is not modified: same"})
    assert telegram().edit(MessageRef("7", "424242"), telegram().render([N])).id == "7"
    responses.replace(responses.POST, EDIT, status=400, json={"ok": False, "error_code": 400,
                                                              "description": "Bad Request: message to edit not found"})
    with pytest.raises(NotifyError) as exc:
        telegram().edit(MessageRef("7", "424242"), telegram().render([N]))
    assert exc.value.kind == EDIT_FAILED


def test_telegram_paces_groups_at_twenty_per_minute_and_chats_at_one_per_second() -> None:
    group = NOTIFIERS["telegram"](ChannelSpec(type="telegram"), ChannelSecrets(bot_token=TOKEN, chat_id="-100"),
                                  requests.Session())
    assert [c for c, _ in group.pacer.windows] == [1, 20]
    private = NOTIFIERS["telegram"](ChannelSpec(type="telegram"), ChannelSecrets(bot_token=TOKEN, chat_id="5"),
                                    requests.Session())
    assert [c for c, _ in private.pacer.windows] == [1]


def test_pacer_allows_a_burst_then_waits_for_the_window() -> None:
    now = [100.0]
    p = Pacer([(5, 2.0)], clock=lambda: now[0], margin=0.0)
    for _ in range(5):
        assert p.wait() == 0
        p.record()
    assert p.wait() == pytest.approx(2.005)
    now[0] += 2.01
    assert p.wait() == 0


# ------------------------------------------------------------------------------------------ secrets
@responses.activate
def test_no_error_or_log_line_contains_a_token(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(SEND, status=401, json={"ok": False, "error_code": 401,
                                           "description": f"Unauthorized for {SEND} token {TOKEN}"})
    responses.post(HOOK, status=404, json={"code": 10015, "message": f"Unknown Webhook {HOOK}"})
    caplog.set_level(logging.DEBUG)
    texts = []
    for n in (telegram(), discord()):
        with pytest.raises(NotifyError) as exc:
            n.send(n.render([N]))
        texts.append(str(exc.value))
        logging.getLogger("govheal.bridge").warning("%s", exc.value)
    everything = "\n".join(texts) + caplog.text
    assert "<redacted>" in everything
    for secret in (TOKEN, "SuperSecretWebhookToken_abcdef", "SuperSecretBotToken"):
        assert secret not in everything


def test_redact_catches_secret_shapes_it_was_not_told_about() -> None:
    s = Secrets({})
    text = s.redact("see https://discord.com/api/webhooks/42/abcDEF-123 and https://api.telegram.org/bot1:xyz/x")
    assert "abcDEF" not in text and "1:xyz" not in text


@responses.activate
def test_discord_keeps_thread_id_from_the_configured_url() -> None:
    post = responses.post(HOOK, json={"id": "5"}, match=[
        responses.matchers.query_param_matcher({"thread_id": "77", "wait": "true"})])
    patch = responses.patch(f"{HOOK}/messages/5", json={"id": "5"},
                            match=[responses.matchers.query_param_matcher({"thread_id": "77"})])
    n = NOTIFIERS["discord"](ChannelSpec(type="discord"), ChannelSecrets(webhook_url=HOOK + "?thread_id=77"),
                             requests.Session(), pacing=[(100, 1.0)])
    ref = n.send(n.render([N]))
    n.edit(ref, n.render([N]))
    assert post.call_count == 1 and patch.call_count == 1


@responses.activate
def test_discord_204_without_an_id_counts_as_delivered_not_as_a_failure() -> None:
    responses.post(HOOK, status=204)
    assert discord().send(discord().render([N])) == MessageRef("")


@pytest.mark.parametrize(("status", "kind"), [(404, EDIT_FAILED), (405, EDIT_UNSUPPORTED), (501, EDIT_UNSUPPORTED)])
@responses.activate
def test_an_edit_refused_with_404_405_or_501_is_never_a_channel_failure_or_transient(status: int, kind: str) -> None:
    responses.patch(f"{HOOK}/messages/555", status=status, json={"code": 10015 if status == 404 else 0,
                                                                  "message": "nope"})
    responses.post(EDIT, status=status, json={"ok": False, "error_code": status, "description": "Not Found"})
    for n, ref in ((discord(), MessageRef("555")), (telegram(), MessageRef("7", "424242"))):
        with pytest.raises(NotifyError) as exc:
            n.edit(ref, n.render([N]))
        assert exc.value.kind == kind and not exc.value.permanent, (n.type, exc.value.kind)
