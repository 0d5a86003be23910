"""Notice → Discord embed / Telegram HTML. Pure functions, golden-tested.

Untrusted text (summary, description, label values) is escaped *after* trimming, so a cut never lands
inside markup; the identity (title, status, agent, node) is rendered first and never trimmed away.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .model import SEVERITY_LABEL, Notice

# Discord limits: discord-api-docs message.mdx "Embed Limits" (ecosystem-facts.md §7).
DISCORD_CONTENT_MAX = 2000
DISCORD_EMBEDS_MAX = 10
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_FOOTER_MAX = 2048
DISCORD_TOTAL_MAX = 6000
# Telegram: sendMessage text is 1-4096 characters after entity parsing (ecosystem-facts.md §8).
# We measure the HTML source in UTF-16 units, which is always ≥ the parsed length; keep a margin.
TELEGRAM_TEXT_MAX = 4096
TELEGRAM_BUDGET = 4000
TELEGRAM_NOTICE_MAX = 3500

STATUS_LABEL = {"firing": "FIRING", "restarting": "RESTARTING", "recovered": "RECOVERED",
                "resolved": "RESOLVED", "gave_up": "GAVE UP", "info": "INFO"}
GOOD_STATUSES = frozenset({"recovered", "resolved"})
COLOR = {"critical": 0xE74C3C, "warning": 0xE67E22, "info": 0x3498DB, "good": 0x2ECC71}
EMOJI = {"critical": "🔴", "warning": "🟠", "info": "🔵", "good": "✅"}
ELLIPSIS = "…"


def status_label(status: str) -> str:
    return STATUS_LABEL.get(status, status.upper()[:20])


def headline(n: Notice) -> str:
    """``CRIT · FIRING · AgentDown: GG on mac-studio``."""
    return f"{SEVERITY_LABEL.get(n.severity, 'INFO')} · {status_label(n.status)} · {n.title}"


def tone(n: Notice) -> str:
    return "good" if n.status in GOOD_STATUSES else n.severity


def trim(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a line or word boundary when one is near, marked with ``…``."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    cut = text[: limit - 1]
    for sep in ("\n", " "):
        at = cut.rfind(sep)
        if at >= limit * 0.6:
            cut = cut[:at]
            break
    return cut.rstrip() + ELLIPSIS


def _safe_url(url: str | None) -> str | None:
    return url if url and re.match(r"^https?://[^\s<>\"]+$", url) else None


# ---------------------------------------------------------------------------------------------- Discord

_DISCORD_MD = re.compile(r"([\\*_~`|\[\]<])")
_DISCORD_LINE_START = re.compile(r"(?m)^(\s*)([#>-])")


def discord_escape(text: str) -> str:
    """Neutralise Discord markdown (emphasis, code, spoilers, masked links, ``<@…>`` mentions, headings,
    quotes and lists at a line start) in untrusted text."""
    return _DISCORD_LINE_START.sub(r"\1\\\2", _DISCORD_MD.sub(r"\\\1", text))


def _escaped_trim(text: str, limit: int, escape) -> str:
    """Trim raw text so that its *escaped* form fits ``limit`` (escaping can only grow text)."""
    budget = limit
    while True:
        out = escape(trim(text, budget))
        if len(out) <= limit or budget <= 1:
            return out[:limit] if len(out) > limit else out
        budget -= max(1, len(out) - limit)


def embed_size(embed: dict) -> int:
    """The characters Discord counts towards the 6000 total."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def discord_embed(n: Notice) -> dict:
    """One embed, within every per-embed limit and at most DISCORD_TOTAL_MAX on its own."""
    e = lambda s, lim: _escaped_trim(s, lim, discord_escape)  # noqa: E731
    fields: list[dict] = []
    if n.agent:
        fields.append({"name": "Agent", "value": e(n.agent, 256), "inline": True})
    if n.node:
        fields.append({"name": "Node", "value": e(n.node, 256), "inline": True})
    fields.append({"name": "Status", "value": status_label(n.status), "inline": True})
    if n.action:
        fields.append({"name": "What govheal did", "value": e(n.action, DISCORD_FIELD_VALUE_MAX), "inline": False})
    url = _safe_url(n.runbook_url)
    if url:  # a field, not embed.url: Discord shows only the first of several embeds sharing a url
        fields.append({"name": "Runbook", "value": trim(f"[runbook]({url})", DISCORD_FIELD_VALUE_MAX)})
    for k, v in n.fields[: DISCORD_FIELDS_MAX - len(fields)]:
        fields.append({"name": e(k, 64) or "-", "value": e(v, 256) or "-", "inline": True})
    embed: dict = {
        "title": e(headline(n), DISCORD_TITLE_MAX),
        "color": COLOR[tone(n)],
        "fields": fields,
        "footer": {"text": trim(f"govheal · {n.key}", 200)},
    }
    if n.created:
        embed["timestamp"] = datetime.fromtimestamp(n.created, UTC).isoformat(timespec="seconds")
    summary = e(n.summary, 1024)
    room = min(DISCORD_DESCRIPTION_MAX, DISCORD_TOTAL_MAX - embed_size(embed)) - len(summary) - 2
    desc = e(n.description, room) if n.description and room > 20 else ""
    embed["description"] = (summary + ("\n\n" + desc if desc else "")) or "-"
    return embed


def discord_payload(notices: list[Notice]) -> dict:
    return {"embeds": [discord_embed(n) for n in notices], "allowed_mentions": {"parse": []}}


def pack_discord(notices: list[Notice]) -> int:
    """How many of the leading notices fit one message (≤ 10 embeds, ≤ 6000 in total); at least 1."""
    total = 0
    for i, n in enumerate(notices[:DISCORD_EMBEDS_MAX]):
        total += embed_size(discord_embed(n))
        if total > DISCORD_TOTAL_MAX:
            return max(1, i)
    return max(1, min(len(notices), DISCORD_EMBEDS_MAX))


# --------------------------------------------------------------------------------------------- Telegram


@dataclass(frozen=True)
class TelegramText:
    html: str
    plain: str  # the same message without markup, for the parse-error retry


def tg_len(text: str) -> int:
    """Length in UTF-16 code units (how Telegram measures; emoji count 2)."""
    return len(text.encode("utf-16-le")) // 2


def tg_escape(text: str) -> str:
    return html.escape(text, quote=False)


def _tg_block(n: Notice, limit: int) -> TelegramText:
    h: list[str] = []
    p: list[str] = []

    def line(html_part: str, plain_part: str) -> None:
        h.append(html_part)
        p.append(plain_part)

    head = trim(headline(n), 300)
    line(f"{EMOJI[tone(n)]} <b>{tg_escape(head)}</b>", f"{EMOJI[tone(n)]} {head}")
    where = []
    if n.agent:
        where.append(("agent", trim(n.agent, 128)))
    if n.node:
        where.append(("node", trim(n.node, 128)))
    if where:
        line(" · ".join(f"{k} <code>{tg_escape(v)}</code>" for k, v in where), " · ".join(f"{k} {v}" for k, v in where))
    if n.summary:
        s = trim(n.summary, 600)
        line(tg_escape(s), s)
    if n.action:
        a = trim(n.action, 600)
        line(f"<b>govheal:</b> {tg_escape(a)}", f"govheal: {a}")
    url = _safe_url(n.runbook_url)
    if url:
        line(f'<a href="{html.escape(url, quote=True)}">Runbook</a>', f"Runbook: {url}")
    if n.fields:
        kv = ", ".join(f"{trim(k, 64)}={trim(v, 128)}" for k, v in n.fields[:20])
        kv = trim(kv, 600)
        line(f"<i>{tg_escape(kv)}</i>", kv)
    key = trim(n.key, 200)
    line(f"<code>{tg_escape(key)}</code>", key)
    if n.description:
        used = tg_len("\n".join(h)) + 2
        room = limit - used
        if room > 40:
            d = trim(n.description, room)
            while tg_len(tg_escape(d)) > room and len(d) > 1:
                d = trim(n.description, len(d) - (tg_len(tg_escape(d)) - room) - 1)
            h.insert(len(h) - 1, tg_escape(d))
            p.insert(len(p) - 1, d)
    return TelegramText("\n".join(h), "\n".join(p))


def telegram_block(n: Notice) -> TelegramText:
    return _tg_block(n, TELEGRAM_NOTICE_MAX)


SEPARATOR = "\n\n"


def telegram_text(notices: list[Notice]) -> TelegramText:
    blocks = [telegram_block(n) for n in notices]
    return TelegramText(SEPARATOR.join(b.html for b in blocks), SEPARATOR.join(b.plain for b in blocks))


def pack_telegram(notices: list[Notice]) -> int:
    """How many of the leading notices fit one message under TELEGRAM_BUDGET; at least 1."""
    total = 0
    for i, n in enumerate(notices):
        total += tg_len(telegram_block(n).html) + (2 if i else 0)
        if total > TELEGRAM_BUDGET:
            return max(1, i)
    return max(1, len(notices))
