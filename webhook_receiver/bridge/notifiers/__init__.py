"""NOTIFIERS: channel type (``ChannelSpec.type``) → notifier class. Add a channel here and in ChannelSpec."""

from __future__ import annotations

from .base import MessageRef, Notifier, NotifyError
from .discord import DiscordNotifier
from .telegram import TelegramNotifier

NOTIFIERS: dict[str, type[Notifier]] = {
    "discord": DiscordNotifier,
    "telegram": TelegramNotifier,
}

__all__ = ["NOTIFIERS", "MessageRef", "Notifier", "NotifyError"]
