"""The one client for the Prometheus and Alertmanager HTTP APIs (nothing else in govheal speaks HTTP to them).

One injected :class:`requests.Session`, a timeout on every request, typed results, and errors that name
the server, the request and the fix (:class:`ServerError`), never a traceback:

- :class:`Prometheus`: instant and range PromQL queries, ``activeAlertmanagers``, ``/-/ready``, ``/-/healthy``.
- :class:`Alertmanager`: alerts (list, post), silences (list, get, create, update, expire), status, health.
- :class:`Alertmanagers`: several Alertmanagers of one cluster. Silences are gossiped between peers, so a
  silence is written once (to the first member that answers) and can be verified on all; alerts are
  *not* gossiped (each Alertmanager only knows what was posted to it), so alerts are posted to every member,
  as Prometheus does.

API facts (Alertmanager 0.25, Prometheus 2.42) are in /work/shared/reference/ecosystem-facts.md §2.1, §3.9.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from govheal.errors import GovhealError
from govheal.types import display_url

DEFAULT_TIMEOUT = 5.0  # seconds, every request; health checks pass a shorter one
HEALTH_TIMEOUT = 1.0

PROMETHEUS = "Prometheus"
ALERTMANAGER = "Alertmanager"
# where the operator points govheal at each server (docs/config.md)
CONFIG_KEYS = {PROMETHEUS: "prometheus.url", ALERTMANAGER: "alertmanager.urls"}


# ------------------------------------------------------------------------------------------------
# Errors


class ServerError(GovhealError):
    """A request to Prometheus or Alertmanager failed. ``str()``: server, request, what happened, the fix."""

    def __init__(self, kind: str, url: str, request: str, problem: str, fix: str, *, status: int | None = None):
        self.kind, self.url, self.request, self.problem, self.fix, self.status = (
            kind, display_url(url), request, problem, fix, status)
        super().__init__(f"{kind} {self.url}: {request}: {problem}; {fix}")


class Unreachable(ServerError):
    """Nothing answered: connection refused, reset, or no answer within the timeout."""


class Refused(ServerError):
    """The server answered 4xx: the request is wrong (a bad query, a bad silence)."""


class NotFound(Refused):
    """The server does not know the thing asked for (a silence id)."""


class NotEverywhere(GovhealError):
    """A write did not show up on every member of an Alertmanager cluster in time."""


# ------------------------------------------------------------------------------------------------
# Typed results


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar: no labels)."""

    labels: Mapping[str, str]
    time: float
    value: float


@dataclass(frozen=True)
class Series:
    """One element of a range query's matrix."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class _Api(BaseModel):
    """Alertmanager's JSON: camelCase on the wire, snake_case here; unknown keys ignored (newer versions)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Matcher(_Api):
    name: str = Field(min_length=1)
    value: str
    is_regex: bool = Field(False, alias="isRegex")
    is_equal: bool = Field(True, alias="isEqual")

    @classmethod
    def equal(cls, name: str, value: str) -> Matcher:
        return cls(name=name, value=value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time needs a timezone (use datetime.now(UTC))")
    return value.astimezone(UTC)


def _wire_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SilenceSpec(_Api):
    """What a silence is: matchers, a time window, who and why."""

    matchers: tuple[Matcher, ...] = Field(min_length=1)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    created_by: str = Field(alias="createdBy", min_length=1)
    comment: str = Field(min_length=1)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return _utc(v)

    def body(self, silence_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "matchers": [m.model_dump(by_alias=True) for m in self.matchers],
            "startsAt": _wire_time(self.starts_at), "endsAt": _wire_time(self.ends_at),
            "createdBy": self.created_by, "comment": self.comment,
        }
        if silence_id is not None:
            out["id"] = silence_id
        return out


class Silence(SilenceSpec):
    """A silence as Alertmanager returns it."""

    id: str
    state: str  # active | pending | expired
    updated_at: datetime | None = Field(None, alias="updatedAt")

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Silence:
        return cls.model_validate({**data, "state": (data.get("status") or {}).get("state", "")})


class Alert(_Api):
    """An alert as ``GET /api/v2/alerts`` returns it (``endsAt`` is the computed expiry)."""

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    fingerprint: str
    state: str  # unprocessed | active | suppressed
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Alert:
        status = data.get("status") or {}
        return cls.model_validate({
            **data, "state": status.get("state", ""), "silenced_by": tuple(status.get("silencedBy") or ()),
            "inhibited_by": tuple(status.get("inhibitedBy") or ()),
            "receivers": tuple(r.get("name", "") for r in data.get("receivers") or ())})


class PostableAlert(_Api):
    """An alert to post (the canary, tests): labels required; Alertmanager fills in missing times."""

    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = Field(None, alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"labels": self.labels, "annotations": self.annotations}
        if self.starts_at is not None:
            out["startsAt"] = _wire_time(self.starts_at)
        if self.ends_at is not None:
            out["endsAt"] = _wire_time(self.ends_at)
        if self.generator_url:
            out["generatorURL"] = self.generator_url
        return out


class ClusterStatus(_Api):
    status: str  # ready | settling | disabled
    name: str = ""
    peers: tuple[str, ...] = ()  # peer addresses (host:port), this instance included
    version: str = ""


# ------------------------------------------------------------------------------------------------
# Transport


def new_session() -> requests.Session:
    """The session a process hands to every client it makes (connection reuse; no proxies from the
    environment: every server govheal talks to is named in its config, usually on loopback)."""
    session = requests.Session()
    session.trust_env = False
    return session


class _Server:
    """One server: its base URL, the session, the timeout, and the mapping of failures to messages."""

    def __init__(self, kind: str, url: str, session: requests.Session, timeout: float) -> None:
        self.kind = kind
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = timeout

    @property
    def display(self) -> str:
        return display_url(self.url)

    def error(self, cls: type[ServerError], request: str, problem: str, fix: str,
              status: int | None = None) -> ServerError:
        return cls(self.kind, self.url, request, problem, fix, status=status)

    def call(self, method: str, path: str, *, params: Any = None, json: Any = None, data: Any = None,
             timeout: float | None = None, refused_fix: str = "", not_found_fix: str = "",
             not_found: Callable[[requests.Response], bool] | None = None) -> requests.Response:
        """One request; a 2xx response or a :class:`ServerError` saying what to do."""
        request = f"{method} {path}"
        limit = self.timeout if timeout is None else timeout
        try:
            resp = self.session.request(method, self.url + path, params=params, json=json, data=data, timeout=limit,
                                        allow_redirects=False)
        except requests.Timeout:
            raise self.error(Unreachable, request, f"no answer within {limit:g}s",
                             f"is {self.kind} overloaded or stopped (a SIGSTOPped server accepts connections but "
                             f"never answers)? See its log, or restart it") from None
        except requests.ConnectionError as exc:
            raise self.error(Unreachable, request, _connection_problem(exc),
                             f"is {self.kind} running there? `govheal up` starts one and records its address for "
                             f"the other commands; or set {CONFIG_KEYS[self.kind]} in govheal.yaml") from None
        except requests.RequestException as exc:
            raise self.error(Unreachable, request, f"request failed ({type(exc).__name__})",
                             f"check {CONFIG_KEYS[self.kind]} in govheal.yaml") from None
        if 200 <= resp.status_code < 300:
            return resp
        message = _message(resp)
        if resp.status_code == 404 or (not_found is not None and not_found(resp)):
            raise self.error(NotFound, request, f"not found (HTTP {resp.status_code}: {message})",
                             not_found_fix or f"is {self.display} really {self.kind} (check {CONFIG_KEYS[self.kind]}"
                             ", and the route prefix in the URL)?", status=resp.status_code)
        if 400 <= resp.status_code < 500:
            raise self.error(Refused, request, f"refused with HTTP {resp.status_code}: {message}",
                             refused_fix or "fix the request", status=resp.status_code)
        raise self.error(ServerError, request, f"server error HTTP {resp.status_code}: {message}",
                         f"see the {self.kind} log", status=resp.status_code)

    def json(self, resp: requests.Response, request: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise self.error(ServerError, request, f"answered HTTP {resp.status_code} with a body that is not JSON",
                             f"is {self.display} really {self.kind}? Check {CONFIG_KEYS[self.kind]}") from None

    def shape(self, request: str, exc: Exception) -> ServerError:
        detail = exc.errors()[0]["loc"] if isinstance(exc, ValidationError) else type(exc).__name__
        return self.error(ServerError, request, f"answered with an unexpected shape ({detail})",
                          f"is {self.display} really {self.kind} (govheal reads Prometheus >= 2.42, "
                          "Alertmanager >= 0.25)?")

    def probe(self, path: str, timeout: float | None) -> bool:
        """True when ``path`` answers 2xx in time; never raises (readiness and health checks)."""
        try:
            resp = self.session.get(self.url + path, timeout=HEALTH_TIMEOUT if timeout is None else timeout,
                                    allow_redirects=False)
        except requests.RequestException:
            return False
        return 200 <= resp.status_code < 300


def _connection_problem(exc: requests.ConnectionError) -> str:
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text or "Errno 61" in text:
        return "connection refused (nothing listens there)"
    if "Connection reset" in text or "RemoteDisconnected" in text:
        return "the connection was closed without an answer"
    if "Name or service not known" in text or "nodename nor servname" in text or "Failed to resolve" in text:
        return "the host name does not resolve"
    return "cannot connect"


def _message(resp: requests.Response) -> str:
    """The server's own words: Prometheus ``error``, Alertmanager ``message`` or a JSON string, else text."""
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    if isinstance(body, dict):
        body = body.get("error") or body.get("message") or body
    text = body if isinstance(body, str) else str(body)
    text = " ".join(text.split())
    return (text[:300] + "…") if len(text) > 300 else (text or "(empty body)")


# ------------------------------------------------------------------------------------------------
# Prometheus


class Prometheus:
    """Prometheus' HTTP API v1 at ``url`` (a base URL, with a route prefix if it has one)."""

    def __init__(self, url: str, session: requests.Session, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server = _Server(PROMETHEUS, url, session, timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def _data(self, path: str, params: Mapping[str, Any], refused_fix: str) -> Any:
        request = f"GET {path}"
        resp = self.server.call("GET", path, params=params, refused_fix=refused_fix)
        body = self.server.json(resp, request)
        if not isinstance(body, dict) or body.get("status") != "success":
            got = body.get("status") if isinstance(body, dict) else type(body).__name__
            error = body.get("error") if isinstance(body, dict) else None
            raise self.server.error(ServerError, request, f"answered status {got!r}: {error or 'no error given'}",
                                    refused_fix or "see the Prometheus log")
        return body.get("data")

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant query: the vector (or a scalar as one unlabelled sample) at ``at`` (default: now)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._data("/api/v1/query", params, f"fix the PromQL expression {expr!r}")
        request = "GET /api/v1/query"
        try:
            kind, result = data["resultType"], data["result"]
            if kind == "vector":
                return [Sample(dict(r["metric"]), float(r["value"][0]), float(r["value"][1])) for r in result]
            if kind == "scalar":
                return [Sample({}, float(result[0]), float(result[1]))]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise self.server.shape(request, exc) from None
        raise self.server.error(Refused, request, f"the expression {expr!r} gives a {kind}, not a vector or scalar",
                                "query a vector or a scalar")

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query: one series per label set, points (time, value) from ``start`` to ``end`` (inclusive)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._data("/api/v1/query_range", params,
                          f"fix the PromQL expression {expr!r} or the range (start <= end, step > 0, "
                          "at most 11000 points)")
        try:
            return [Series(dict(r["metric"]), tuple((float(t), float(v)) for t, v in r["values"]))
                    for r in data["result"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self.server.shape("GET /api/v1/query_range", exc) from None

    def rule_group_intervals(self) -> dict[str, float]:
        """Loaded recording-rule groups → their evaluation interval in seconds (the daily report's known step:
        one sample of a step series per evaluation)."""
        data = self._data("/api/v1/rules", {"type": "record"}, "")
        try:
            return {g["name"]: float(g["interval"]) for g in data["groups"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise self.server.shape("GET /api/v1/rules", exc) from None

    def active_alertmanagers(self) -> list[str]:
        """The Alertmanager API URLs Prometheus sends alerts to now (empty until it has discovered them)."""
        data = self._data("/api/v1/alertmanagers", {}, "")
        try:
            return [a["url"] for a in data["activeAlertmanagers"]]
        except (KeyError, TypeError) as exc:
            raise self.server.shape("GET /api/v1/alertmanagers", exc) from None

    def ready(self, timeout: float | None = None) -> bool:
        return self.server.probe("/-/ready", timeout)

    def healthy(self, timeout: float | None = None) -> bool:
        return self.server.probe("/-/healthy", timeout)


# ------------------------------------------------------------------------------------------------
# Alertmanager

SILENCE_FIX = "fix the silence: at least one matcher, endsAt in the future and after startsAt, createdBy and comment"
UNKNOWN_SILENCE_FIX = ("the silence id is unknown to this Alertmanager (expired silences are dropped after "
                       "--data.retention, 120h by default); list them with `amtool silence query --expired`")


def _silence_not_found(resp: requests.Response) -> bool:
    """0.25 answers an unknown id on DELETE with 500 "silence not found" (0.26+: 404)."""
    return resp.status_code == 500 and "silence not found" in resp.text


class Alertmanager:
    """One Alertmanager's API v2 at ``url``."""

    def __init__(self, url: str, session: requests.Session, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server = _Server(ALERTMANAGER, url, session, timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def _get(self, path: str, params: Any = None, **kw: Any) -> Any:
        return self.server.json(self.server.call("GET", path, params=params, **kw), f"GET {path}")

    # -- alerts -------------------------------------------------------------------------------------

    def alerts(self, filters: Iterable[str] = (), *, active: bool = True, silenced: bool = True,
               inhibited: bool = True) -> list[Alert]:
        """Alerts this Alertmanager knows (resolved ones excluded); ``filters`` are matcher strings
        such as ``agent="GG"``."""
        params: list[tuple[str, str]] = [("filter", f) for f in filters]
        params += [("active", str(active).lower()), ("silenced", str(silenced).lower()),
                   ("inhibited", str(inhibited).lower())]
        body = self._get("/api/v2/alerts", params, refused_fix='fix the filter: matchers such as agent="GG"')
        try:
            return [Alert.from_api(a) for a in body]
        except (ValidationError, TypeError, AttributeError) as exc:
            raise self.server.shape("GET /api/v2/alerts", exc) from None

    def post_alerts(self, alerts: Sequence[PostableAlert]) -> None:
        self.server.call("POST", "/api/v2/alerts", json=[a.body() for a in alerts],
                         refused_fix="fix the alerts: each needs labels (alertname at least)")

    # -- silences -----------------------------------------------------------------------------------

    def silences(self) -> list[Silence]:
        """Every silence, expired ones included (until --data.retention drops them)."""
        body = self._get("/api/v2/silences")
        try:
            return [Silence.from_api(s) for s in body]
        except (ValidationError, TypeError, AttributeError) as exc:
            raise self.server.shape("GET /api/v2/silences", exc) from None

    def silence(self, silence_id: str) -> Silence:
        path = f"/api/v2/silence/{silence_id}"
        body = self._get(path, not_found_fix=UNKNOWN_SILENCE_FIX, refused_fix="a silence id is a UUID")
        try:
            return Silence.from_api(body)
        except (ValidationError, TypeError, AttributeError) as exc:
            raise self.server.shape(f"GET {path}", exc) from None

    def create_silence(self, spec: SilenceSpec) -> str:
        """Create a silence; its id."""
        return self._post_silence(spec.body())

    def update_silence(self, silence_id: str, spec: SilenceSpec) -> str:
        """Change a silence; the id that holds now. Alertmanager updates in place when it can; when the
        change cannot be applied in place (new matchers, a new start of an active silence) it expires the old
        one and returns a NEW id: store the returned id, not the old one."""
        return self._post_silence(spec.body(silence_id))

    def _post_silence(self, body: dict[str, Any]) -> str:
        request = "POST /api/v2/silences"
        resp = self.server.call("POST", "/api/v2/silences", json=body, refused_fix=SILENCE_FIX,
                                not_found_fix=UNKNOWN_SILENCE_FIX)
        data = self.server.json(resp, request)
        try:
            return str(data["silenceID"])
        except (KeyError, TypeError) as exc:
            raise self.server.shape(request, exc) from None

    def expire_silence(self, silence_id: str) -> None:
        """Expire a silence now (idempotent: an expired one stays expired); NotFound for an unknown id."""
        self.server.call("DELETE", f"/api/v2/silence/{silence_id}", not_found=_silence_not_found,
                         not_found_fix=UNKNOWN_SILENCE_FIX, refused_fix="a silence id is a UUID")

    # -- status -------------------------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        body = self._get("/api/v2/status")
        try:
            cluster = body["cluster"]
            return ClusterStatus(status=cluster["status"], name=cluster.get("name", ""),
                                 peers=tuple(p["address"] for p in cluster.get("peers") or ()),
                                 version=(body.get("versionInfo") or {}).get("version", ""))
        except (KeyError, TypeError, ValidationError) as exc:
            raise self.server.shape("GET /api/v2/status", exc) from None

    def ready(self, timeout: float | None = None) -> bool:
        return self.server.probe("/-/ready", timeout)

    def healthy(self, timeout: float | None = None) -> bool:
        return self.server.probe("/-/healthy", timeout)


class Alertmanagers:
    """The Alertmanagers of one cluster: write once, verify all.

    Silence writes go to the first member that answers (a member that is down is skipped), and gossip
    carries them to the others; ``verify=`` seconds waits until every member shows the result. Alerts are
    posted to every member, because Alertmanager does not gossip alerts.
    """

    def __init__(self, members: Sequence[Alertmanager], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not members:
            raise ValueError("an Alertmanager cluster needs at least one member")
        self.members = list(members)
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def from_urls(cls, urls: Iterable[str], session: requests.Session, *,
                  timeout: float = DEFAULT_TIMEOUT) -> Alertmanagers:
        return cls([Alertmanager(u, session, timeout=timeout) for u in urls])

    def _write(self, action: Callable[[Alertmanager], Any]) -> Any:
        """``action`` on the first member that is reachable; a refusal (4xx) is final, not retried elsewhere."""
        errors: list[ServerError] = []
        for member in self.members:
            try:
                return action(member)
            except Unreachable as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise NotEverywhere("no Alertmanager of the cluster answered: " + "; ".join(map(str, errors)))

    def create_silence(self, spec: SilenceSpec, *, verify: float | None = None) -> str:
        silence_id = self._write(lambda m: m.create_silence(spec))
        if verify is not None:
            self.verify_silence(silence_id, "active", within=verify, pending_ok=True)
        return silence_id

    def update_silence(self, silence_id: str, spec: SilenceSpec, *, verify: float | None = None) -> str:
        new_id = self._write(lambda m: m.update_silence(silence_id, spec))
        if verify is not None:
            self.verify_silence(new_id, "active", within=verify, pending_ok=True)
            if new_id != silence_id:
                self.verify_silence(silence_id, "expired", within=verify)
        return new_id

    def expire_silence(self, silence_id: str, *, verify: float | None = None) -> None:
        self._write(lambda m: m.expire_silence(silence_id))
        if verify is not None:
            self.verify_silence(silence_id, "expired", within=verify)

    def verify_silence(self, silence_id: str, state: str, *, within: float, pending_ok: bool = False) -> None:
        """Wait until every member has the silence in ``state`` (``pending`` counts as active when asked)."""
        wanted = {state, "pending"} if pending_ok else {state}

        def holds(member: Alertmanager) -> bool:
            try:
                return member.silence(silence_id).state in wanted
            except NotFound:
                return False
        self.verify(holds, within=within, what=f"silence {silence_id} {state}")

    def post_alerts(self, alerts: Sequence[PostableAlert]) -> list[ServerError]:
        """Post to every member; the failures (empty: all took them). Raises when none took them."""
        errors: list[ServerError] = []
        for member in self.members:
            try:
                member.post_alerts(alerts)
            except ServerError as exc:
                errors.append(exc)
        if len(errors) == len(self.members):
            if len(errors) == 1:
                raise errors[0]
            raise NotEverywhere("no Alertmanager of the cluster took the alerts: " + "; ".join(map(str, errors)))
        return errors

    def verify(self, holds: Callable[[Alertmanager], bool], *, within: float, what: str,
               interval: float = 0.1) -> None:
        """Poll until ``holds(member)`` is true for every member; NotEverywhere naming the others after ``within``."""
        deadline = self.clock() + within
        pending = list(self.members)
        last: dict[str, str] = {}
        while True:
            still = []
            for member in pending:
                try:
                    ok = holds(member)
                except ServerError as exc:
                    ok, last[member.url] = False, exc.problem
                if not ok:
                    still.append(member)
            pending = still
            if not pending:
                return
            if self.clock() >= deadline:
                names = ", ".join(m.server.display + (f" ({last[m.url]})" if m.url in last else "") for m in pending)
                raise NotEverywhere(f"{what}: not seen within {within:g}s on {names}; gossip between the "
                                    "Alertmanagers may be broken (check --cluster.peer and their logs)")
            self.sleep(interval)

    def ready(self, timeout: float | None = None) -> dict[str, bool]:
        return {m.url: m.ready(timeout) for m in self.members}
