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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field

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
# HTTP: the subset of govheal/client.py (arch) that governance uses, with the same names and errors.


class ServerError(GovhealError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unreachable(ServerError):
    pass


class Refused(ServerError):
    pass


class NotFound(Refused):
    pass


class NotEverywhere(GovhealError):
    pass


class _Api(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Matcher(_Api):
    name: str
    value: str
    is_regex: bool = Field(False, alias="isRegex")
    is_equal: bool = Field(True, alias="isEqual")

    @classmethod
    def equal(cls, name: str, value: str) -> Matcher:
        return cls(name=name, value=value)


class SilenceSpec(_Api):
    matchers: tuple[Matcher, ...]
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    created_by: str = Field(alias="createdBy")
    comment: str

    def body(self, silence_id: str | None = None) -> dict[str, Any]:
        def wire(t: datetime) -> str:
            return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out: dict[str, Any] = {"matchers": [m.model_dump(by_alias=True) for m in self.matchers],
                               "startsAt": wire(self.starts_at), "endsAt": wire(self.ends_at),
                               "createdBy": self.created_by, "comment": self.comment}
        if silence_id is not None:
            out["id"] = silence_id
        return out


class Silence(SilenceSpec):
    id: str
    state: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Silence:
        return cls.model_validate({**data, "state": (data.get("status") or {}).get("state", "")})


class Alert(_Api):
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    fingerprint: str
    state: str
    silenced_by: tuple[str, ...] = ()
    generator_url: str = Field("", alias="generatorURL")

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Alert:
        status = data.get("status") or {}
        return cls.model_validate({**data, "state": status.get("state", ""),
                                   "silenced_by": tuple(status.get("silencedBy") or ())})


class _Server:
    def __init__(self, kind: str, url: str, session: requests.Session, timeout: float) -> None:
        self.kind, self.url, self.session, self.timeout = kind, url.rstrip("/"), session, timeout

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            resp = self.session.request(method, self.url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise Unreachable(f"{self.kind} {self.url}: {method} {path}: {type(exc).__name__}; is {self.kind} "
                              "running there?") from None
        if resp.status_code < 300:
            return resp
        text = resp.text[:200]
        if resp.status_code == 404 or (resp.status_code == 500 and "silence not found" in resp.text):
            raise NotFound(f"{self.kind} {self.url}: {method} {path}: not found: {text}", resp.status_code)
        cls = Refused if resp.status_code < 500 else ServerError
        raise cls(f"{self.kind} {self.url}: {method} {path}: HTTP {resp.status_code}: {text}", resp.status_code)


class Alertmanager:
    def __init__(self, url: str, session: requests.Session, *, timeout: float = 5.0) -> None:
        self.server = _Server("Alertmanager", url, session, timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def alerts(self, filters: Iterable[str] = (), *, active: bool = True, silenced: bool = True,
               inhibited: bool = True) -> list[Alert]:
        params = [("filter", f) for f in filters] + [("active", str(active).lower()),
                                                      ("silenced", str(silenced).lower()),
                                                      ("inhibited", str(inhibited).lower())]
        return [Alert.from_api(a) for a in self.server.call("GET", "/api/v2/alerts", params=params).json()]

    def silences(self) -> list[Silence]:
        return [Silence.from_api(s) for s in self.server.call("GET", "/api/v2/silences").json()]

    def silence(self, silence_id: str) -> Silence:
        return Silence.from_api(self.server.call("GET", f"/api/v2/silence/{silence_id}").json())

    def create_silence(self, spec: SilenceSpec) -> str:
        return str(self.server.call("POST", "/api/v2/silences", json=spec.body()).json()["silenceID"])

    def update_silence(self, silence_id: str, spec: SilenceSpec) -> str:
        return str(self.server.call("POST", "/api/v2/silences", json=spec.body(silence_id)).json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        self.server.call("DELETE", f"/api/v2/silence/{silence_id}")


class Alertmanagers:
    """Write once (the first member that answers), verify on all."""

    def __init__(self, members: list[Alertmanager]) -> None:
        self.members = members

    @classmethod
    def from_urls(cls, urls: Iterable[str], session: requests.Session, *, timeout: float = 5.0) -> Alertmanagers:
        return cls([Alertmanager(u, session, timeout=timeout) for u in urls])

    def _write(self, action: Any) -> Any:
        errors: list[ServerError] = []
        for member in self.members:
            try:
                return action(member)
            except Unreachable as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise NotEverywhere("no Alertmanager of the cluster answered: " + "; ".join(map(str, errors)))

    def create_silence(self, spec: SilenceSpec) -> str:
        return self._write(lambda m: m.create_silence(spec))

    def update_silence(self, silence_id: str, spec: SilenceSpec) -> str:
        return self._write(lambda m: m.update_silence(silence_id, spec))

    def expire_silence(self, silence_id: str) -> None:
        self._write(lambda m: m.expire_silence(silence_id))


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    time: float
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


class Prometheus:
    def __init__(self, url: str, session: requests.Session, *, timeout: float = 5.0) -> None:
        self.server = _Server("Prometheus", url, session, timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.server.call("GET", "/api/v1/query", params=params).json()["data"]
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][0]), float(data["result"][1]))]
        return [Sample(dict(r["metric"]), float(r["value"][0]), float(r["value"][1])) for r in data["result"]]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self.server.call("GET", "/api/v1/query_range", params=params).json()["data"]
        return [Series(dict(r["metric"]), tuple((float(t), float(v)) for t, v in r["values"])) for r in data["result"]]


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session
