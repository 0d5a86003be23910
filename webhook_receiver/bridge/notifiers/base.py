"""The notifier contract and what every notifier shares: timeouts, status classification, error-body
parsing, pacing and redaction. A notifier is ``__init__(channel_config, secrets, http)``,
``send(rendered) -> MessageRef`` and ``edit(ref, rendered) -> MessageRef``; failures raise NotifyError.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import requests

from govheal.config import ChannelSpec

from ..model import Notice
from ..secrets import ChannelSecrets, Secrets

TIMEOUT = (3.05, 10.0)  # connect, read seconds: a hung service must not stall the worker
USER_AGENT = "DiscordBot (https://github.com/govheal/govheal, 0.1.0) govheal"

# kinds of failure, as the outbox understands them
RATE_LIMITED = "rate_limited"  # wait retry_after, then retry; not the message's fault
TRANSIENT = "transient"  # network, timeout, 5xx: retry with backoff
CHANNEL = "channel"  # permanent for the channel (401/403/404, chat not found): degrade, fall back
REJECTED = "rejected"  # permanent for this message only (400 on our payload): fall back
EDIT_FAILED = "edit_failed"  # the message to edit is gone: send a new one
EDIT_UNSUPPORTED = "edit_unsupported"  # the endpoint cannot edit at all: send new messages, stop editing a while
# An edit refused with these statuses is never the channel's failure: the update goes out as a new message
# (a deleted message, a proxy or a "compatible" service that cannot edit).
EDIT_REFUSED = {404: EDIT_FAILED, 405: EDIT_UNSUPPORTED, 501: EDIT_UNSUPPORTED}


class NotifyError(Exception):
    def __init__(self, msg: str, *, permanent: bool = False, retry_after: float | None = None,
                 kind: str = TRANSIENT) -> None:
        super().__init__(msg)
        self.permanent = permanent
        self.retry_after = retry_after
        self.kind = kind


@dataclass(frozen=True)
class MessageRef:
    id: str
    chat_id: str | None = None  # Telegram: message ids are per chat


class Pacer:
    """Sliding windows ``[(count, seconds), ...]``: :meth:`wait` says how long until one more is allowed."""

    def __init__(self, windows: Sequence[tuple[int, float]], clock: Callable[[], float] = time.monotonic,
                 margin: float = 0.02) -> None:
        # a small safety margin (2 % of each window, at least 5 ms) absorbs clock and network jitter
        self.windows = [(int(c), float(s) * (1 + margin) + 0.005) for c, s in windows]
        self.clock = clock
        depth = max((c for c, _ in self.windows), default=1)
        self._sent: collections.deque[float] = collections.deque(maxlen=depth)
        self.blocked_until = 0.0

    def wait(self) -> float:
        now = self.clock()
        w = self.blocked_until - now
        sent = list(self._sent)
        for count, seconds in self.windows:
            if len(sent) >= count:
                w = max(w, sent[-count] + seconds - now)
        return max(0.0, w)

    def record(self) -> None:
        self._sent.append(self.clock())

    def block(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)


class Notifier:
    """Base: subclasses set ``Spec`` (the channel's config model), ``type``, ``default_pacing`` and implement
    render/pack/send/edit."""

    Spec: ClassVar[type[ChannelSpec]]
    type: ClassVar[str]
    default_pacing: ClassVar[tuple[tuple[int, float], ...]]
    # what the operator does about a refusal that will not go away by itself (status → fix)
    hints: ClassVar[dict[int, str]] = {}

    def __init__(self, channel_config: ChannelSpec, secrets: ChannelSecrets, http: requests.Session, *,
                 redact: Callable[[str], str] | None = None,
                 pacing: Sequence[tuple[int, float]] | None = None) -> None:
        self.config = channel_config
        self.secrets = secrets
        self.http = http
        self.redact = redact or Secrets({"_": secrets}).redact
        self.pacer = Pacer(pacing if pacing is not None else self.pacing_for(secrets))

    def pacing_for(self, secrets: ChannelSecrets) -> Sequence[tuple[int, float]]:
        return self.default_pacing

    # rendering: the outbox asks how many queued notices fit one message, then renders them
    def pack(self, notices: list[Notice]) -> int:
        raise NotImplementedError

    def render(self, notices: list[Notice]) -> Any:
        raise NotImplementedError

    def send(self, rendered: Any) -> MessageRef:
        raise NotImplementedError

    def edit(self, ref: MessageRef, rendered: Any) -> MessageRef:
        raise NotImplementedError

    def ready_in(self) -> float:
        return self.pacer.wait()

    # ------------------------------------------------------------------ HTTP, shared by the notifiers
    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One paced request; transport failures become a redacted transient NotifyError."""
        headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        try:
            return self.http.request(method, url, timeout=TIMEOUT, headers=headers, **kwargs)
        except requests.RequestException as exc:
            raise NotifyError(self.redact(f"{self.type}: {type(exc).__name__}: {exc}"), kind=TRANSIENT) from None
        finally:
            # counted when the answer is back: the service saw the request before that, so spacing
            # measured from here is never shorter on the service's side, whatever the network jitter
            self.pacer.record()

    @staticmethod
    def body(resp: requests.Response) -> dict:
        try:
            data = resp.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def retry_after(resp: requests.Response, body: dict) -> float:
        """Body ``retry_after`` (Discord float s / Telegram ``parameters.retry_after``), else Retry-After."""
        for value in (body.get("retry_after"), (body.get("parameters") or {}).get("retry_after"),
                      resp.headers.get("Retry-After")):
            try:
                if value is not None:
                    return max(0.0, float(value))
            except (TypeError, ValueError):
                continue
        return 1.0

    def refused_edit(self, resp: requests.Response, detail: str) -> NotifyError | None:
        """An edit the endpoint will not do (EDIT_REFUSED), or None: it must not count against the channel."""
        kind = EDIT_REFUSED.get(resp.status_code)
        if kind is None:
            return None
        return NotifyError(self.redact(f"{self.type}: edit refused: HTTP {resp.status_code}: {detail}"[:500]),
                           kind=kind)

    def fail(self, resp: requests.Response, body: dict, detail: str, *, permanent_kind: str = CHANNEL) -> NotifyError:
        """Classify an unsuccessful response: 429 rate limit, 5xx transient, 401/403/404 channel, other 4xx."""
        status = resp.status_code
        msg = self.redact(f"{self.type}: HTTP {status}: {detail}"[:500])
        if status in self.hints and self.hints[status] not in msg:
            msg += f" ({self.hints[status]})"
        if status == 429:
            wait = self.retry_after(resp, body)
            self.pacer.block(wait)
            return NotifyError(msg, retry_after=wait, kind=RATE_LIMITED)
        if status >= 500 or status in (408, 409, 425):
            return NotifyError(msg, kind=TRANSIENT)
        if status in (401, 403, 404):
            return NotifyError(msg, permanent=True, kind=permanent_kind)
        return NotifyError(msg, permanent=True, kind=REJECTED)
