"""The Alertmanager silence for one switch window: exactly two equality matchers, ``agent`` and ``node``.

Pure. Never a regex, never a broader matcher: a silence made here can only ever hide that one agent on
that one node. ``createdBy`` is the switch's owner; ``comment`` is its reason with a link back to the
agent on the governance page.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def matchers(agent: str, node: str) -> list[dict[str, Any]]:
    return [{"name": "agent", "value": agent, "isRegex": False, "isEqual": True},
            {"name": "node", "value": node, "isRegex": False, "isEqual": True}]


def comment(kind: str, reason: str, page_url: str, agent: str, recurrence: str | None = None) -> str:
    every = f", every {recurrence}" if recurrence else ""
    link = f"{page_url}#agent-{agent}" if page_url else "(no page URL configured: admin.page_url)"
    return f"govheal {kind}{every}: {reason} — {link}"


def body(*, agent: str, node: str, kind: str, owner: str, reason: str, starts: float, ends: float,
         page_url: str, recurrence: str | None = None) -> dict[str, Any]:
    return {"matchers": matchers(agent, node), "startsAt": rfc3339(starts), "endsAt": rfc3339(ends),
            "createdBy": owner, "comment": comment(kind, reason, page_url, agent, recurrence)}


def digest(b: dict[str, Any]) -> str:
    """Identity of what we asked for (the id excluded): a changed digest means the silence must be updated."""
    clean = {k: v for k, v in b.items() if k != "id"}
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]
