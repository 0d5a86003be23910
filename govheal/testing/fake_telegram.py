"""A local fake Telegram Bot API (sendMessage, editMessageText) with the real limits and error shapes
(ecosystem-facts.md §8): ~1 message/s per chat and 20/min per group (negative chat id) → 429 with
``parameters.retry_after``; HTML entity parsing (only Telegram's tags; a bare ``<``/``&`` fails); 4096
characters after parsing; chat not found, 401 bad token, 403 blocked, migrate_to_chat_id.
"""

from __future__ import annotations

import collections
import json
import math
import re
import time
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from govheal.testing.fake_discord import FakeServer

TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji",
        "code", "pre", "blockquote", "tg-time"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:=\"[^\"]*\"|='[^']*'|=[^\s>]+)?)*)\s*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def parse_html(text: str) -> str:
    """Telegram-style HTML → plain text; ValueError(description) on what Telegram rejects."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "<":
            m = _TAG.match(text, i)
            if not m:
                raise ValueError(f"Unexpected end of name token at byte offset {len(text[:i].encode())}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in TAGS:
                raise ValueError(f'Unsupported start tag "{name}" at byte offset {len(text[:i].encode())}')
            if closing:
                if not stack or stack[-1] != name:
                    raise ValueError(f'Unmatched end tag at byte offset {len(text[:i].encode())}, expected '
                                     f'"</{stack[-1] if stack else ""}>", found "</{name}>"')
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif c == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise ValueError(f"Character '&' is reserved at byte offset {len(text[:i].encode())}")
            out.append(unescape(m.group(0)))
            i = m.end()
        elif c == ">":
            out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


class FakeTelegram(FakeServer):
    def __init__(self, *, token: str = "123456789:AAFakeTelegramBotTokenabcdefghijklmnop",  # noqa: S107
                 chats: tuple[str, ...] = ("424242", "-1001234567890"),
                 per_chat: tuple[int, float] = (1, 1.0), per_group: tuple[int, float] = (20, 60.0)) -> None:
        super().__init__()
        self.token = token
        self.chats = set(chats)
        self.per_chat, self.per_group = per_chat, per_group
        self.blocked: set[str] = set()
        self.migrated: dict[str, str] = {}  # old chat id → new supergroup id
        self.sent_at: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.rate_limited = 0
        self.parse_errors = 0
        self.received: list[dict] = []  # accepted sendMessage / editMessageText calls, in order
        self.messages: dict[tuple[str, int], str] = {}
        self._next_id = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def error(code: int, description: str, **parameters: Any) -> tuple[int, dict, dict]:
        body: dict = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return code, body, {}

    def _rate(self, chat: str, now: float) -> float:
        """Seconds to wait, 0 if allowed (and then recorded)."""
        q = self.sent_at[chat]
        windows = [self.per_chat] + ([self.per_group] if chat.startswith("-") else [])
        horizon = max(p for _, p in windows)
        while q and q[0] <= now - horizon:
            q.popleft()
        wait = 0.0
        for count, period in windows:
            recent = [t for t in q if t > now - period]
            if len(recent) >= count:
                wait = max(wait, recent[-count] + period - now)
        if wait <= 0:
            q.append(now)
        return wait

    def handle(self, method: str, path: str, raw: bytes, headers: Any) -> tuple[int, Any, dict]:
        now = time.monotonic()
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", urlsplit(path).path)
        if not m:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, {}
        if m.group(1) != self.token:
            return self.error(401, "Unauthorized")
        api = m.group(2).lower()
        ctype = headers.get("Content-Type", "")
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        params = json.loads(raw or b"{}") if "json" in ctype else form
        chat = str(params.get("chat_id", ""))
        if chat in self.migrated:
            return self.error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                              migrate_to_chat_id=int(self.migrated[chat]))
        if chat not in self.chats:
            return self.error(400, "Bad Request: chat not found")
        if chat in self.blocked:
            return self.error(403, "Forbidden: bot was blocked by the user")
        if api not in ("sendmessage", "editmessagetext"):
            return self.error(404, "Not Found: method not found")
        if api == "editmessagetext" and self.refuse_edits is not None:
            self.refused_edits += 1
            return self.error(self.refuse_edits, {404: "Not Found", 405: "Method Not Allowed"}.get(
                self.refuse_edits, "Not Implemented"))
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            try:
                plain = parse_html(text)
            except ValueError as exc:
                self.parse_errors += 1
                return self.error(400, f"Bad Request: can't parse entities: {exc}")
        elif params.get("parse_mode"):
            return self.error(400, "Bad Request: unsupported parse_mode in this fake")
        else:
            plain = text
        if not plain.strip():
            return self.error(400, "Bad Request: message text is empty")
        if utf16_len(plain) > 4096:
            return self.error(400, "Bad Request: message is too long")
        wait = self._rate(chat, now)
        if wait > 0:
            self.rate_limited += 1
            n = max(1, math.ceil(wait))
            return self.error(429, f"Too Many Requests: retry after {n}", retry_after=n)
        if api == "sendmessage":
            self._next_id += 1
            mid = self._next_id
        else:
            mid = int(params.get("message_id", 0))
            if (chat, mid) not in self.messages:
                return self.error(400, "Bad Request: message to edit not found")
            if self.messages[(chat, mid)] == plain:
                return self.error(400, "Bad Request: message is not modified: specified new message content "
                                       "and reply markup are exactly the same as a current content and reply "
                                       "markup of the message")
        self.messages[(chat, mid)] = plain
        self.received.append({"t": now, "method": api, "chat_id": chat, "message_id": mid, "text": plain,
                              "parse_mode": params.get("parse_mode"), "params": params})
        return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": int(chat)}, "date": int(time.time()),
                                            "text": plain}}, {}
