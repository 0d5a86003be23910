"""Notice → Discord embed / Telegram HTML. Pure functions, golden-tested.

Untrusted text (summary, description, label values) is escaped *after* trimming, so a cut never lands
inside markup; the identity (title, status, agent, node) is rendered first and never trimmed away.
Every one-line slot shows control characters as escapes (``\n``, ``\r``, ``\u2028``) like the log does,
so a label value with CR/LF cannot forge a line of the message; only the description keeps its lines, and
Telegram shows it inside a quote block.
"""

from __future__ import annotations

import copy
import html
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from .model import SEVERITY_LABEL, Notice, NoticeStatus

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

STATUS_LABEL = {NoticeStatus.FIRING: "FIRING", NoticeStatus.RESTARTING: "RESTARTING",
                NoticeStatus.RECOVERED: "RECOVERED", NoticeStatus.RESOLVED: "RESOLVED",
                NoticeStatus.GAVE_UP: "GAVE UP", NoticeStatus.INFO: "INFO"}
GOOD_STATUSES = frozenset({NoticeStatus.RECOVERED, NoticeStatus.RESOLVED})
COLOR = {"critical": 0xE74C3C, "warning": 0xE67E22, "info": 0x3498DB, "good": 0x2ECC71}
EMOJI = {"critical": "🔴", "warning": "🟠", "info": "🔵", "good": "✅"}
ELLIPSIS = "…"


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}
_BREAK = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """Control characters (CR, LF, the Unicode line separators…) as visible escapes; tabs stay."""
    def escaped(m: re.Match[str]) -> str:
        c = m.group()
        return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
    return _CONTROL.sub(escaped, text)


def lines(text: str) -> str:
    """Multi-line text (the description): every kind of line break becomes ``\\n``; other controls escaped."""
    return "\n".join(one_line(line) for line in _BREAK.sub("\n", text).split("\n"))


def flat(n: Notice) -> Notice:
    """The notice with every one-line slot folded (:func:`one_line`) and the description's breaks normalised."""
    return replace(n, title=one_line(n.title), summary=one_line(n.summary), agent=n.agent and one_line(n.agent),
                   node=n.node and one_line(n.node), action=n.action and one_line(n.action), key=one_line(n.key),
                   runbook_url=n.runbook_url and one_line(n.runbook_url), description=lines(n.description),
                   fields=tuple((one_line(k), one_line(v)) for k, v in n.fields))


def status_label(status: str) -> str:
    return STATUS_LABEL.get(status, status.upper()[:20])


def headline(n: Notice) -> str:
    """``CRIT · FIRING · AgentDown: GG on mac-studio``."""
    return f"{SEVERITY_LABEL.get(n.severity, 'INFO')} · {status_label(n.status)} · {n.title}"


def tone(n: Notice) -> str:
    if n.status in GOOD_STATUSES:
        return "good"
    return n.severity if n.severity in COLOR else "info"  # an unexpected label value renders as INFO


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


def left_out(n: Notice) -> str:
    """``and 40 more alerts of this group…``: Alertmanager's webhook ``max_alerts`` left them out."""
    alerts = "alert" if n.left_out == 1 else "alerts"
    return f"and {n.left_out} more {alerts} of this group, left out by Alertmanager (webhook max_alerts)"


def _safe_url(url: str | None) -> str | None:
    return url if url and re.match(r"^https?://[^\s<>\"]+$", url) else None


def _relative_runbook(url: str | None) -> str | None:
    """A repo-relative runbook path (no scheme, e.g. ``docs/runbooks.md#agentdown``), shown as text."""
    return url if url and not re.match(r"^[a-z][a-z0-9+.-]*:", url, re.IGNORECASE) else None


# ---------------------------------------------------------------------------------------------- Discord

_DISCORD_MD = re.compile(r"([\\*_~`|\[\]<])")
_DISCORD_LINE_START = re.compile(r"(?m)^(\s*)([#>-])")


def discord_escape(text: str) -> str:
    """Neutralise Discord markdown (emphasis, code, spoilers, masked links, ``<@…>`` mentions, headings,
    quotes and lists at a line start) in untrusted text."""
    return _DISCORD_LINE_START.sub(r"\1\\\2", _DISCORD_MD.sub(r"\\\1", text))


def _escaped_trim(text: str, limit: int, escape, measure=len) -> str:
    """Trim raw text so that its *escaped* form fits ``limit`` (escaping only grows text, so the cut is
    always in the raw text and never inside an escape)."""
    budget = limit
    while True:
        out = escape(trim(text, budget))
        if measure(out) <= limit or budget <= 1:
            return out if measure(out) <= limit else ""
        budget -= max(1, measure(out) - limit)


def embed_size(embed: dict) -> int:
    """The characters Discord counts towards the 6000 total."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


@lru_cache(maxsize=4096)
def _discord_embed(n: Notice) -> dict:
    """One embed, within every per-embed limit and at most DISCORD_TOTAL_MAX on its own."""
    n = flat(n)
    e = lambda s, lim: _escaped_trim(s, lim, discord_escape)  # noqa: E731
    fields: list[dict] = []
    if n.agent:
        fields.append({"name": "Agent", "value": e(n.agent, 256), "inline": True})
    if n.node:
        fields.append({"name": "Node", "value": e(n.node, 256), "inline": True})
    fields.append({"name": "Status", "value": status_label(n.status), "inline": True})
    if n.action:
        fields.append({"name": "What govheal did", "value": e(n.action, DISCORD_FIELD_VALUE_MAX), "inline": False})
    if n.left_out:
        fields.append({"name": "Not shown", "value": left_out(n), "inline": False})
    url = _safe_url(n.runbook_url)
    if url:  # a field, not embed.url: Discord shows only the first of several embeds sharing a url
        fields.append({"name": "Runbook", "value": trim(f"[runbook]({url})", DISCORD_FIELD_VALUE_MAX)})
    elif _relative_runbook(n.runbook_url):  # repo-relative, no notifications.runbook_base_url: still worth reading
        fields.append({"name": "Runbook", "value": e(n.runbook_url, 256)})
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


def discord_embed(n: Notice) -> dict:
    """One embed, within every per-embed limit and at most DISCORD_TOTAL_MAX on its own."""
    return copy.deepcopy(_discord_embed(n))


DISCORD_SUPPRESS_NOTIFICATIONS = 1 << 12  # message flag: delivered without a push notification


def silent(notices: list[Notice]) -> bool:
    """INFO-only messages arrive without a sound; anything WARN or CRIT may wake someone."""
    return all(n.severity == "info" for n in notices)


def discord_payload(notices: list[Notice]) -> dict:
    payload: dict = {"embeds": [discord_embed(n) for n in notices], "allowed_mentions": {"parse": []}}
    if silent(notices):
        payload["flags"] = DISCORD_SUPPRESS_NOTIFICATIONS
    return payload


def pack_discord(notices: list[Notice]) -> int:
    """How many of the leading notices fit one message (≤ 10 embeds, ≤ 6000 in total); at least 1."""
    total = 0
    for i, n in enumerate(notices[:DISCORD_EMBEDS_MAX]):
        total += embed_size(_discord_embed(n))
        if total > DISCORD_TOTAL_MAX:
            return max(1, i)
    return max(1, min(len(notices), DISCORD_EMBEDS_MAX))


# --------------------------------------------------------------------------------------------- Telegram


@dataclass(frozen=True)
class TelegramText:
    html: str
    plain: str  # what Telegram shows (tags removed, entities decoded): the parse-error retry sends this
    silent: bool = False  # disable_notification


def tg_len(text: str) -> int:
    """Length in UTF-16 code units (how Telegram measures; emoji count 2)."""
    return len(text.encode("utf-16-le")) // 2


def tg_escape(text: str) -> str:
    return html.escape(text, quote=False)


_TAG = re.compile(r"<[^>]*>")


def tg_visible(markup: str) -> str:
    """The text Telegram counts against 4096: our tags removed, entities decoded (untrusted text has no
    raw ``<`` after escaping, so every tag matched here is ours)."""
    return html.unescape(_TAG.sub("", markup))


def _tg_block(n: Notice, limit: int) -> str:
    n = flat(n)
    h: list[str] = []
    tone_ = tone(n)
    h.append(f"{EMOJI[tone_]} <b>{tg_escape(trim(headline(n), 300))}</b>")
    where = [(k, trim(v, 128)) for k, v in (("agent", n.agent), ("node", n.node)) if v]
    if where:
        h.append(" · ".join(f"{k} <code>{tg_escape(v)}</code>" for k, v in where))
    if n.summary:
        h.append(tg_escape(trim(n.summary, 600)))
    if n.action:
        h.append(f"<b>govheal:</b> {tg_escape(trim(n.action, 600))}")
    if n.left_out:
        h.append(f"<i>{tg_escape(left_out(n))}</i>")
    url = _safe_url(n.runbook_url)
    if url:
        h.append(f'<a href="{html.escape(url, quote=True)}">Runbook</a>')
    elif _relative_runbook(n.runbook_url):
        h.append(f"Runbook: <code>{tg_escape(trim(n.runbook_url, 256))}</code>")
    if n.fields:
        kv = trim(", ".join(f"{trim(k, 64)}={trim(v, 128)}" for k, v in n.fields[:20]), 600)
        h.append(f"<i>{tg_escape(kv)}</i>")
    key = f"<code>{tg_escape(trim(n.key, 200))}</code>"
    if n.description:
        quote = ("<blockquote>", "</blockquote>")
        room = limit - tg_len("\n".join([*h, key, *quote])) - 1
        if room > 40:
            h.append(quote[0] + _escaped_trim(n.description, room, tg_escape, measure=tg_len) + quote[1])
    h.append(key)
    return "\n".join(h)


@lru_cache(maxsize=4096)
def telegram_block(n: Notice) -> str:
    """One notice as Telegram HTML, at most TELEGRAM_NOTICE_MAX UTF-16 units of markup."""
    return _tg_block(n, TELEGRAM_NOTICE_MAX)


SEPARATOR = "\n\n"


def telegram_text(notices: list[Notice]) -> TelegramText:
    markup = SEPARATOR.join(telegram_block(n) for n in notices)
    return TelegramText(markup, tg_visible(markup), silent(notices))


def pack_telegram(notices: list[Notice]) -> int:
    """How many of the leading notices fit one message (visible length ≤ TELEGRAM_BUDGET); at least 1."""
    total = 0
    for i, n in enumerate(notices):
        total += tg_len(tg_visible(telegram_block(n))) + (len(SEPARATOR) if i else 0)
        if total > TELEGRAM_BUDGET:
            return max(1, i)
    return max(1, len(notices))
