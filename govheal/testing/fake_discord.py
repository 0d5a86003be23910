"""A local fake Discord webhook API enforcing the real limits and error shapes (ecosystem-facts.md §7).

``POST /api/webhooks/{id}/{token}[?wait=true]`` and ``PATCH .../messages/{message_id}``; per-webhook
bucket (default 5 requests / 2 s) with X-RateLimit-* headers and 429 ``retry_after``; embed limits → 400
code 50035; unknown or deleted webhook → 404 code 10015; unknown message → 404 code 10008.
``refuse_edits = 404 | 405 | 501`` answers every edit with that status (a proxy or a compatible service
that cannot edit, or messages deleted), as the services word it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) in a thread; subclasses implement ``handle``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.injected: list[tuple[int, dict, dict]] = []
        self.held: tuple[int, dict, dict] | None = None
        self.refused_while_held = 0
        self.refuse_edits: int | None = None
        self.refused_edits = 0
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = fake.dispatch(self.command, self.path, raw, self.headers)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, str(v))
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-request (the SIGKILL tests): it never sees the answer

            do_GET = do_POST = do_PATCH = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, status: int, body: dict, headers: dict | None = None, times: int = 1) -> None:
        """The next ``times`` requests get this answer (before any other check)."""
        with self.lock:
            self.injected.extend([(status, body, headers or {})] * times)

    def hold(self, status: int, body: dict, headers: dict | None = None) -> None:
        """Answer every request with this until :meth:`release` (a service refusing for a while)."""
        with self.lock:
            self.held, self.refused_while_held = (status, body, headers or {}), 0

    def release(self) -> None:
        with self.lock:
            self.held = None

    def dispatch(self, method: str, path: str, raw: bytes, headers: Any) -> tuple[int, Any, dict]:
        with self.lock:
            self.requests += 1
            if self.held is not None:
                self.refused_while_held += 1
                return self.held
            if self.injected:
                return self.injected.pop(0)
            return self.handle(method, path, raw, headers)

    def handle(self, method: str, path: str, raw: bytes, headers: Any) -> tuple[int, Any, dict]:
        raise NotImplementedError


def embed_errors(body: dict) -> dict:
    """Discord's Invalid Form Body checks for content and embeds; {} when valid."""
    errors: dict = {}
    if body.get("flags", 0) & ~(1 << 2 | 1 << 12 | 1 << 15):  # SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, V2
        errors["flags"] = "Invalid flags"
    if not body.get("content") and not body.get("embeds"):
        errors["content"] = "Cannot send an empty message"
    if len(body.get("content") or "") > 2000:
        errors["content"] = "Must be 2000 or fewer in length."
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, e in enumerate(embeds):
        parts = {"title": (e.get("title") or "", 256), "description": (e.get("description") or "", 4096),
                 "footer.text": ((e.get("footer") or {}).get("text") or "", 2048),
                 "author.name": ((e.get("author") or {}).get("name") or "", 256)}
        fields = e.get("fields") or []
        if len(fields) > 25:
            errors[f"embeds.{i}.fields"] = "Must be 25 or fewer in length."
        for j, f in enumerate(fields):
            parts[f"fields.{j}.name"] = (f.get("name") or "", 256)
            parts[f"fields.{j}.value"] = (f.get("value") or "", 1024)
            if not f.get("name") or not f.get("value"):
                errors[f"embeds.{i}.fields.{j}"] = "This field is required"
        for name, (text, limit) in parts.items():
            if len(text.strip()) > limit:
                errors[f"embeds.{i}.{name}"] = f"Must be {limit} or fewer in length."
            total += len(text.strip())
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    return errors


class FakeDiscord(FakeServer):
    def __init__(self, *, limit: int = 5, period: float = 2.0, webhook_id: str = "112233445566778899",
                 token: str = "fakeWebhookToken_abcdefghijklmnopqrstuvwxyz0123456789") -> None:  # noqa: S107
        super().__init__()
        self.limit, self.period = limit, period
        self.webhook_id, self.token = webhook_id, token
        self.deleted = False
        self.window_start = 0.0
        self.window_count = 0
        self.rate_limited = 0
        self.received: list[dict] = []  # accepted POSTs and PATCHes, in order
        self.messages: dict[str, dict] = {}
        self._next_id = 1_000_000

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/{self.webhook_id}/{self.token}"

    def _bucket(self, now: float) -> tuple[bool, dict]:
        if now >= self.window_start + self.period:
            self.window_start, self.window_count = now, 0
        reset_after = self.window_start + self.period - now
        if self.window_count >= self.limit:
            return False, {"X-RateLimit-Limit": self.limit, "X-RateLimit-Remaining": 0,
                           "X-RateLimit-Reset-After": f"{reset_after:.3f}", "X-RateLimit-Bucket": "fakebucket",
                           "X-RateLimit-Scope": "user", "Retry-After": max(1, math.ceil(reset_after))}
        self.window_count += 1
        return True, {"X-RateLimit-Limit": self.limit, "X-RateLimit-Remaining": self.limit - self.window_count,
                      "X-RateLimit-Reset-After": f"{reset_after:.3f}", "X-RateLimit-Bucket": "fakebucket"}

    def handle(self, method: str, path: str, raw: bytes, headers: Any) -> tuple[int, Any, dict]:
        now = time.monotonic()
        parts = urlsplit(path)
        seg = parts.path.strip("/").split("/")
        if seg[:2] != ["api", "webhooks"] or len(seg) < 4:
            return 404, {"message": "404: Not Found", "code": 0}, {}
        if seg[2] != self.webhook_id or seg[3] != self.token or self.deleted:
            return 404, {"message": "Unknown Webhook", "code": 10015}, {}
        ok, rl = self._bucket(now)
        if not ok:
            self.rate_limited += 1
            retry = float(rl["X-RateLimit-Reset-After"])
            return 429, {"message": "You are being rate limited.", "retry_after": retry, "global": False}, rl
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"message": "Cannot send an empty message", "code": 50006}, rl
        errors = embed_errors(body)
        if errors:
            return 400, {"code": 50035, "message": "Invalid Form Body", "errors": errors}, rl
        if method == "POST" and len(seg) == 4:
            self._next_id += 1
            mid = str(self._next_id)
            self.messages[mid] = body
            self.received.append({"t": now, "method": "POST", "id": mid, "body": body})
            wait = parse_qs(parts.query).get("wait", ["false"])[0] == "true"
            return (200, {"id": mid, "webhook_id": self.webhook_id, "channel_id": "1", **body}, rl) if wait \
                else (204, None, rl)
        if method == "PATCH" and len(seg) == 6 and seg[4] == "messages":
            mid = seg[5]
            if self.refuse_edits is not None:
                self.refused_edits += 1
                return self.refuse_edits, {404: {"message": "Unknown Message", "code": 10008},
                                           405: {"message": "405: Method Not Allowed", "code": 0},
                                           }.get(self.refuse_edits, {"message": "Not Implemented"}), rl
            if mid not in self.messages:
                return 404, {"message": "Unknown Message", "code": 10008}, rl
            self.messages[mid] = body
            self.received.append({"t": now, "method": "PATCH", "id": mid, "body": body})
            return 200, {"id": mid, "webhook_id": self.webhook_id, **body}, rl
        return 405, {"message": "405: Method Not Allowed", "code": 0}, rl
