"""Channel secrets from files named in config or from env; every secret is redacted from outgoing text.

Discord: ``webhook_url_file`` or ``GOVHEAL_DISCORD_WEBHOOK_URL``. Telegram: ``bot_token_file`` or
``GOVHEAL_TELEGRAM_BOT_TOKEN``; ``chat_id`` / ``chat_id_file`` or ``GOVHEAL_TELEGRAM_CHAT_ID``; API base
``api_url`` or ``GOVHEAL_TELEGRAM_API_URL`` (default https://api.telegram.org).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from govheal.config import ChannelSpec, Config
from govheal.errors import UsageError
from govheal.types import https_or_loopback

TELEGRAM_API_URL = "https://api.telegram.org"
REDACTED = "<redacted>"
# Shapes of secrets we may not know about (a URL copied into an annotation, another channel's token).
_PATTERNS = (
    re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_.\-]+"),
    re.compile(r"(/bot)\d+:[A-Za-z0-9_\-]+"),
    re.compile(r"()\b\d{6,}:[A-Za-z0-9_\-]{30,}"),
)


@dataclass(frozen=True)
class ChannelSecrets:
    webhook_url: str | None = None
    bot_token: str | None = None
    chat_id: str | None = None
    api_url: str = TELEGRAM_API_URL

    def values(self) -> list[str]:
        out = [v for v in (self.webhook_url, self.bot_token) if v]
        if self.chat_id and len(self.chat_id.lstrip("-")) >= 6:  # a short id would blank unrelated numbers
            out.append(self.chat_id)
        if self.webhook_url:  # the token segment alone also counts
            out.extend(p for p in self.webhook_url.rstrip("/").split("/")[-1:] if len(p) >= 8)
        return out


class Secrets:
    """Per-channel secrets plus :meth:`redact` over all of them."""

    def __init__(self, channels: Mapping[str, ChannelSecrets]) -> None:
        self._channels = dict(channels)

    @classmethod
    def load(cls, config: Config, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        channels = {
            name: _load_channel(config, name, spec, env)
            for name, spec in config.notifications.channels.items()
            if spec.enabled
        }
        return cls(channels)

    def channel(self, name: str) -> ChannelSecrets:
        return self._channels[name]

    def redact(self, text: str) -> str:
        values = sorted({v for c in self._channels.values() for v in c.values()}, key=len, reverse=True)
        for v in values:
            text = text.replace(v, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


def _read(config: Config, channel: str, field: str, value: str) -> str:
    path = config.path(value)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(
            f"notifications.channels.{channel}.{field}: cannot read {path}: {exc.strerror}; "
            "create the file (mode 0600) or remove the field and use the environment variable"
        ) from None
    if not text:
        raise UsageError(f"notifications.channels.{channel}.{field}: {path} is empty; put the secret in it")
    return text


def _need(channel: str, what: str, field: str, var: str) -> UsageError:
    return UsageError(
        f"notifications.channels.{channel}: no {what}; set {field} in the config or the {var} environment "
        f"variable, or set enabled: false"
    )


def _load_channel(config: Config, name: str, spec: ChannelSpec, env: Mapping[str, str]) -> ChannelSecrets:
    if spec.type == "discord":
        url = (_read(config, name, "webhook_url_file", spec.webhook_url_file) if spec.webhook_url_file
               else env.get("GOVHEAL_DISCORD_WEBHOOK_URL", "").strip())
        if not url:
            raise _need(name, "Discord webhook URL", "webhook_url_file", "GOVHEAL_DISCORD_WEBHOOK_URL")
        if not https_or_loopback(url):  # the token is in the URL: never in clear over the network
            raise UsageError(f"notifications.channels.{name}: the Discord webhook URL must be https:// (copy it "
                             "again from the channel's Integrations); only a loopback address may use http://")
        return ChannelSecrets(webhook_url=url)
    token = (_read(config, name, "bot_token_file", spec.bot_token_file) if spec.bot_token_file
             else env.get("GOVHEAL_TELEGRAM_BOT_TOKEN", "").strip())
    if not token:
        raise _need(name, "Telegram bot token", "bot_token_file", "GOVHEAL_TELEGRAM_BOT_TOKEN")
    chat = spec.chat_id or (_read(config, name, "chat_id_file", spec.chat_id_file) if spec.chat_id_file
                            else env.get("GOVHEAL_TELEGRAM_CHAT_ID", "").strip())
    if not chat:
        raise _need(name, "Telegram chat id", "chat_id or chat_id_file", "GOVHEAL_TELEGRAM_CHAT_ID")
    api = env.get("GOVHEAL_TELEGRAM_API_URL", "").strip() or (str(spec.api_url) if spec.api_url else TELEGRAM_API_URL)
    if not https_or_loopback(api):  # api_url in the config is validated there; this is the variable
        raise UsageError(f"notifications.channels.{name}: GOVHEAL_TELEGRAM_API_URL {api!r} must be https:// (the "
                         "bot token is part of every request URL); only a loopback address may use http://")
    return ChannelSecrets(bot_token=token, chat_id=str(chat), api_url=api.rstrip("/"))
