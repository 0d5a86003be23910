"""Telegram Bot API notifier: sendMessage/editMessageText in HTML mode, plain-text retry on an entity
parse error, supergroup migration, and pacing at ~1 message/s per chat and 20/min per group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import field_validator

from govheal.config import ChannelSpec
from govheal.types import HttpUrl, https_or_loopback

from .. import render
from ..model import Notice
from ..render import TelegramText
from ..secrets import ChannelSecrets
from .base import CHANNEL, EDIT_FAILED, MessageRef, Notifier, NotifyError

# Bot Support FAQ "My bot is hitting limits" (ecosystem-facts.md §8).
PER_CHAT = ((1, 1.0),)
PER_GROUP = ((1, 1.0), (20, 60.0))
PERMANENT_400 = ("chat not found", "bot was kicked", "not enough rights", "have no rights", "chat_write_forbidden")


class Spec(ChannelSpec):
    """``type: telegram``: bot token and chat id from files, the config or the environment (secrets.py)."""

    type: Literal["telegram"]
    bot_token_file: str | None = None
    chat_id: str | None = None
    chat_id_file: str | None = None
    api_url: HttpUrl | None = None

    @field_validator("api_url")
    @classmethod
    def _token_never_in_clear(cls, v: str | None) -> str | None:
        if v is not None and not https_or_loopback(v):
            raise ValueError(f"{v!r} must be https:// (the bot token is part of every request URL); only a "
                             "loopback address may use http://")
        return v


class TelegramNotifier(Notifier):
    Spec: ClassVar[type[Spec]] = Spec
    type = "telegram"
    default_pacing = PER_CHAT
    hints = {401: "the bot token was rejected: put the token from @BotFather in bot_token_file or "
                  "GOVHEAL_TELEGRAM_BOT_TOKEN",
             404: "the bot token was rejected: put the token from @BotFather in bot_token_file or "
                  "GOVHEAL_TELEGRAM_BOT_TOKEN",
             403: "the bot may not post to this chat (blocked, or removed from the group): add it back or "
                  "fix chat_id"}

    def pacing_for(self, secrets: ChannelSecrets) -> Sequence[tuple[int, float]]:
        return PER_GROUP if str(secrets.chat_id).startswith("-") else PER_CHAT

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chat_id = str(self.secrets.chat_id)  # replaced after a migrate_to_chat_id answer

    def pack(self, notices: list[Notice]) -> int:
        return render.pack_telegram(notices)

    def render(self, notices: list[Notice]) -> TelegramText:
        return render.telegram_text(notices)

    def send(self, rendered: TelegramText) -> MessageRef:
        return self._call("sendMessage", rendered, {})

    def edit(self, ref: MessageRef, rendered: TelegramText) -> MessageRef:
        return self._call("editMessageText", rendered, {"chat_id": ref.chat_id or self.chat_id,
                                                         "message_id": int(ref.id)})

    def _call(self, method: str, rendered: TelegramText, extra: dict, *, plain: bool = False,
              migrated: bool = False) -> MessageRef:
        payload = {"chat_id": self.chat_id, "link_preview_options": {"is_disabled": True}, **extra}
        if rendered.silent and "message_id" not in extra:
            payload["disable_notification"] = True
        if plain:
            payload["text"] = rendered.plain[: render.TELEGRAM_TEXT_MAX]
        else:
            payload.update(text=rendered.html, parse_mode="HTML")
        url = f"{self.secrets.api_url}/bot{self.secrets.bot_token}/{method}"
        resp = self.request("POST", url, json=payload)
        body = self.body(resp)
        if resp.ok and body.get("ok"):
            result = body.get("result")
            mid = result.get("message_id") if isinstance(result, dict) else extra.get("message_id")
            return MessageRef(str(mid) if mid is not None else "", chat_id=str(payload["chat_id"]))
        desc = str(body.get("description") or resp.reason)
        low = desc.lower()
        params = body.get("parameters") or {}
        if method == "editMessageText" and "message is not modified" in low:
            return MessageRef(str(extra["message_id"]), chat_id=str(payload["chat_id"]))
        if params.get("migrate_to_chat_id") and not migrated:
            self.chat_id = str(params["migrate_to_chat_id"])  # the group became a supergroup: resend there
            if "chat_id" in extra:
                raise NotifyError("telegram: chat migrated; the old message cannot be edited", kind=EDIT_FAILED)
            return self._call(method, rendered, extra, plain=plain, migrated=True)
        if resp.status_code == 400 and "can't parse entities" in low and not plain:
            return self._call(method, rendered, extra, plain=True, migrated=migrated)
        if method == "editMessageText" and resp.status_code == 400 and "message" in low and (
                "edit" in low or "not found" in low):
            raise NotifyError(self.redact(f"telegram: edit failed: {desc}"), kind=EDIT_FAILED)
        if method == "editMessageText" and (refused := self.refused_edit(resp, desc)):
            raise refused
        if resp.status_code == 400 and any(p in low for p in PERMANENT_400):
            raise NotifyError(self.redact(f"telegram: HTTP 400: {desc}"), permanent=True, kind=CHANNEL)
        raise self.fail(resp, body, desc)
