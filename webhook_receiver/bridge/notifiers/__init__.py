"""NOTIFIERS: channel ``type`` → notifier class; each notifier module declares its channel's config ``Spec``."""

from __future__ import annotations

from .base import MessageRef, Notifier, NotifyError
from .discord import DiscordNotifier
from .telegram import TelegramNotifier

NOTIFIERS: dict[str, type[Notifier]] = {
    "discord": DiscordNotifier,
    "telegram": TelegramNotifier,
}

__all__ = ["NOTIFIERS", "MessageRef", "Notifier", "NotifyError"]
