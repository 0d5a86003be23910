"""STAND-IN for ``govheal/switches.py`` and ``govheal/client.py`` (the architecture step, branch ``arch``).

Only what governance needs, written against the interface those modules are expected to have, so the
rest of ``govheal/governance`` imports two names from here and nothing else. Replaced by the real
modules when the branch is rebased onto them; do not grow it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from govheal.errors import GovhealError
from govheal.store import migrate, tx

KINDS = ("mute", "pause", "maintenance")


@dataclass(frozen=True)
class Switch:
    agent: str
    kind: str  # one of KINDS
    owner: str
    reason: str
    start: float
    expires_at: float | None
    recurrence: str | None = None
    silence_ids: tuple[str, ...] = ()
    created_at: float = 0.0

    def with_ids(self, ids: Iterable[str]) -> Switch:
        return replace(self, silence_ids=tuple(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "kind": self.kind, "owner": self.owner, "reason": self.reason,
                "start": self.start, "expires_at": self.expires_at, "recurrence": self.recurrence,
                "silence_ids": list(self.silence_ids)}


SCHEMA = ["""
CREATE TABLE sw_switches (
    agent TEXT NOT NULL, kind TEXT NOT NULL, owner TEXT NOT NULL, reason TEXT NOT NULL, start REAL NOT NULL,
    expires_at REAL, recurrence TEXT, silence_ids TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL,
    PRIMARY KEY (agent, kind))
"""]


class SwitchStore:
    """One switch per (agent, kind) in the shared state file."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None = None) -> None:
        self.conn = conn
        self.lock = lock or threading.RLock()
        with self.lock:
            migrate(conn, "switches", SCHEMA)

    def all(self, agent: str | None = None) -> list[Switch]:
        sql, args = "SELECT * FROM sw_switches", ()
        if agent is not None:
            sql, args = sql + " WHERE agent = ?", (agent,)
        with self.lock:
            rows = self.conn.execute(sql + " ORDER BY agent, kind", args).fetchall()
        return [_switch(r) for r in rows]

    def get(self, agent: str, kind: str) -> Switch | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM sw_switches WHERE agent = ? AND kind = ?", (agent, kind)).fetchone()
        return _switch(row) if row else None

    def put(self, sw: Switch, conn: sqlite3.Connection | None = None) -> None:
        c = conn or self.conn
        c.execute("INSERT INTO sw_switches (agent, kind, owner, reason, start, expires_at, recurrence, silence_ids, "
                  "created_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (agent, kind) DO UPDATE SET owner=excluded.owner,"
                  " reason=excluded.reason, start=excluded.start, expires_at=excluded.expires_at, "
                  "recurrence=excluded.recurrence, silence_ids=excluded.silence_ids, created_at=excluded.created_at",
                  (sw.agent, sw.kind, sw.owner, sw.reason, sw.start, sw.expires_at, sw.recurrence,
                   json.dumps(list(sw.silence_ids)), sw.created_at))

    def delete(self, agent: str, kind: str, conn: sqlite3.Connection | None = None) -> None:
        (conn or self.conn).execute("DELETE FROM sw_switches WHERE agent = ? AND kind = ?", (agent, kind))

    def transaction(self) -> tx:
        return tx(self.conn)


def _switch(row: sqlite3.Row) -> Switch:
    return Switch(agent=row["agent"], kind=row["kind"], owner=row["owner"], reason=row["reason"], start=row["start"],
                  expires_at=row["expires_at"], recurrence=row["recurrence"],
                  silence_ids=tuple(json.loads(row["silence_ids"])), created_at=row["created_at"])


# ---------------------------------------------------------------------------------------------
# HTTP


class Unavailable(GovhealError):
    """The server could not be reached or answered 5xx: try again later."""


class Refused(GovhealError):
    """The server answered 4xx: the request is wrong; retrying it as it is will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class AlertmanagerClient:
    urls: list[str]
    session: requests.Session = field(default_factory=requests.Session)
    timeout: float = 2.0

    def _call(self, url: str, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            resp = self.session.request(method, url.rstrip("/") + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise Unavailable(f"Alertmanager {url}: {method} {path} failed: {type(exc).__name__}; is it running?") \
                from None
        if resp.status_code >= 500:
            raise Unavailable(f"Alertmanager {url}: {method} {path} answered {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise Refused(f"Alertmanager {url}: {method} {path} answered {resp.status_code}: {resp.text[:200]}",
                          resp.status_code)
        return resp

    def _first(self, method: str, path: str, **kw: Any) -> requests.Response:
        errors = []
        for url in self.urls:
            try:
                return self._call(url, method, path, **kw)
            except Unavailable as exc:
                errors.append(str(exc))
        raise Unavailable("; ".join(errors) or "no Alertmanager configured (alertmanager.urls)")

    def put_silence(self, body: dict[str, Any]) -> str:
        """Create (no ``id``) or update a silence; returns the id that holds (an update may expire the old)."""
        return str(self._first("POST", "/api/v2/silences", json=body).json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        self._first("DELETE", f"/api/v2/silence/{silence_id}")

    def silence(self, silence_id: str, url: str) -> dict[str, Any] | None:
        try:
            return self._call(url, "GET", f"/api/v2/silence/{silence_id}").json()
        except Refused as exc:
            if exc.status == 404:
                return None
            raise

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        return list(self._first("GET", "/api/v2/alerts", params=params).json())


@dataclass
class PrometheusClient:
    url: str
    session: requests.Session = field(default_factory=requests.Session)
    timeout: float = 5.0

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            resp = self.session.get(self.url.rstrip("/") + path, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unavailable(f"Prometheus {self.url}: GET {path} failed: {type(exc).__name__}; is it running?") \
                from None
        if resp.status_code != 200:
            raise Unavailable(f"Prometheus {self.url}: GET {path} answered {resp.status_code}: {resp.text[:200]}")
        return resp.json()["data"]["result"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/query", {"query": expr}))

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}))
