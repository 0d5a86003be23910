"""Discord webhook notifier: embeds, ``?wait=true`` for the message id, PATCH to edit, header-driven pacing."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

import requests

from govheal.config import ChannelSpec

from .. import render
from ..model import Notice
from .base import CHANNEL, MessageRef, Notifier

# Undocumented per-webhook budget (Discord staff, discord-api-docs#367): 5 requests per 2 s.
WEBHOOK_BUCKET = ((5, 2.0),)
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008


class Spec(ChannelSpec):
    """``type: discord``: the webhook URL comes from ``webhook_url_file`` or GOVHEAL_DISCORD_WEBHOOK_URL."""

    type: Literal["discord"]
    webhook_url_file: str | None = None


class DiscordNotifier(Notifier):
    Spec: ClassVar[type[Spec]] = Spec
    type = "discord"
    default_pacing = WEBHOOK_BUCKET
    hints = {401: "the webhook URL was rejected: copy it again from the channel's Integrations into "
                  "webhook_url_file or GOVHEAL_DISCORD_WEBHOOK_URL",
             403: "the webhook may not post to its channel: check the channel's permissions"}

    def pack(self, notices: list[Notice]) -> int:
        return render.pack_discord(notices)

    def render(self, notices: list[Notice]) -> dict:
        return render.discord_payload(notices)

    def send(self, rendered: dict) -> MessageRef:
        resp = self.request("POST", self.url, params={**self.query, "wait": "true"}, json=rendered)
        return self._ref(resp, editing=False)

    def edit(self, ref: MessageRef, rendered: dict) -> MessageRef:
        body = {k: v for k, v in rendered.items() if k != "flags"}  # notification flags apply to new messages
        resp = self.request("PATCH", f"{self.url}/messages/{ref.id}", params=self.query, json=body)
        return self._ref(resp, editing=True)

    @property
    def url(self) -> str:
        return (self.secrets.webhook_url or "").split("?")[0].rstrip("/")

    @property
    def query(self) -> dict[str, str]:
        """Query parameters of the configured URL (``thread_id`` posts into a thread), kept on every call."""
        query = urlsplit(self.secrets.webhook_url or "").query
        return {k: v for k, v in parse_qsl(query) if k != "wait"}

    def _ref(self, resp: requests.Response, *, editing: bool) -> MessageRef:
        self._observe_bucket(resp)
        body = self.body(resp)
        if resp.ok:  # delivered; without an id (a proxy dropping ?wait=true) it just cannot be edited later
            return MessageRef(str(body.get("id") or ""))
        code = body.get("code")
        detail = f"code {code}: {body.get('message', resp.reason)}"
        if editing and (refused := self.refused_edit(resp, detail)):
            raise refused  # even 10015 Unknown Webhook: the new message then finds out, and degrades the channel
        if code == UNKNOWN_WEBHOOK:
            detail += " (the webhook was deleted: create a new one and update the secret)"
        raise self.fail(resp, body, detail, permanent_kind=CHANNEL)

    def _observe_bucket(self, resp: requests.Response) -> None:
        """Pace before hitting the bucket: Remaining 0 → wait Reset-After."""
        try:
            remaining = int(resp.headers.get("X-RateLimit-Remaining", "1"))
            reset_after = float(resp.headers.get("X-RateLimit-Reset-After", "0"))
        except ValueError:
            return
        if remaining <= 0 and reset_after > 0:
            self.pacer.block(reset_after + 0.02)
