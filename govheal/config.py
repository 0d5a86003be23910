"""govheal.yaml: typed, strict models and a loader whose errors name file, line, field and fix.

Every section is a pydantic model with ``extra="forbid"``: a misspelt key is an error with a
did-you-mean, never silently ignored. Cross-field rules (unique names, ``depends_on`` targets and
cycles, fallbacks) are checked after the per-field pass, and every problem is reported at once.

Relative paths in the file are resolved against the directory of the file itself (as Prometheus
does), so a config and its state directory can move together. See docs/config.md.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from govheal.types import Duration, HttpUrl, Listen
from govheal.yamlpos import YamlSyntaxError, line_for, load_with_lines

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _compile(pattern: str, what: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} does not compile: {exc}; fix the regular expression") from None
    return pattern


# ---------------------------------------------------------------------------------------------
# The seams. The base says what every entry of a seam has in common; each entry declares its own model
# beside its implementation (govheal/matchers.py, remediator/strategies/<name>.py,
# webhook_receiver/bridge/notifiers/<name>.py), and build_config_model(seams) makes the file's model
# from those registries. govheal/seams.py (the top floor) hands them in: this module imports none of them.


def regex_field(what: str) -> Any:
    """A string that must compile as a regular expression; the error names ``what`` and the fix."""
    return Annotated[str, AfterValidator(lambda v: _compile(v, what))]


class ProcessSpec(Strict):
    """Exactly one way to find the agent's process. The built model has every matcher's fields (a matcher's
    model names its key after the matcher, e.g. ``pidfile``, plus its own options, e.g. ``user_unit``)."""

    matchers: ClassVar[Mapping[str, type[BaseModel]]] = {}
    _spec: BaseModel | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _exactly_one(self) -> ProcessSpec:
        names = tuple(self.matchers)
        given = [k for k in names if getattr(self, k, None) is not None]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of {', '.join(names)} (got {got})")
        own = self.matchers[given[0]]
        for key in sorted(self.model_fields_set - set(own.model_fields)):
            owner = next((n for n, m in self.matchers.items() if key in m.model_fields), "another matcher")
            raise ValueError(f"{key} is an option of process.{owner}, not of process.{given[0]}; remove it")
        self._spec = own.model_validate({k: getattr(self, k) for k in own.model_fields})
        return self

    @property
    def kind(self) -> str:
        return next(k for k in self.matchers if getattr(self, k, None) is not None)

    @property
    def value(self) -> Any:
        return getattr(self, self.kind)

    @property
    def spec(self) -> Any:
        """The matcher's own model (govheal/matchers.py), holding only its key and options."""
        return self._spec


MIN_PROBE_INTERVAL = 0.05  # seconds; faster than this the probes themselves become the load


class HealthCheck(Strict):
    url: HttpUrl
    timeout: Duration = Field(1.0, gt=0, le=60)
    expect_status: int = Field(200, ge=100, le=599)
    body_match: str | None = None
    interval: Duration | None = Field(
        None, ge=MIN_PROBE_INTERVAL, le=3600,
        description="time between probe starts; default exporter.probe_interval (docs/alerting.md)")
    consecutive_failures: int | None = Field(
        None, ge=1, le=100,
        description="failed probes in a row before AgentUnhealthy fires; default exporter.consecutive_failures")

    @field_validator("body_match")
    @classmethod
    def _body_compiles(cls, v: str | None) -> str | None:
        return None if v is None else _compile(v, "body_match regex")


class RestartSpec(Strict):
    """What every restart strategy's model (``Spec`` in remediator/strategies/<name>.py) has in common."""

    strategy: str
    needs_process: ClassVar[bool] = True  # False: it can act on an agent with no local process (a command)

    def check(self, agent: Agent) -> str | None:
        """A rule across the agent's keys (e.g. a label that may come from ``process:``): the message, or None."""
        return None

    def describe(self, agent: Agent) -> str:
        """What a restart runs, for ``govheal restart --dry-run``."""
        return f"{self.strategy}: {self.model_dump(exclude={'strategy'})}"

    def bound(self) -> float:
        """The longest one restart (the stop and start commands, not verification) may take: sizes the lease."""
        return 30.0

    def agent_log(self) -> str | None:
        """The agent's log this strategy writes (its tail goes into the diagnostics), if any."""
        return None


class FallbackSpec(Strict):
    """What to do when the primary cannot be healed: start another agent, run a command, or both."""

    agent: str | None = Field(None, description="name of a fallback agent in this config to start")
    argv: list[str] | None = Field(None, min_length=1, description="a command to run, e.g. to activate a backup")
    note: str = ""

    @model_validator(mode="after")
    def _something(self) -> FallbackSpec:
        if self.agent is None and self.argv is None:
            raise ValueError("give fallback.agent or fallback.argv")
        return self


class PolicySpec(Strict):
    """Remediation policy; global defaults, overridable per agent."""

    verify_successes: int = Field(3, ge=1, le=100, description="consecutive healthy observations = healed")
    verify_interval: Duration = Field(0.2, gt=0)
    backoff_initial: Duration = 1.0
    backoff_max: Duration = 60.0
    backoff_multiplier: float = Field(2.0, ge=1.0)
    budget: int = Field(3, ge=1, description="restarts allowed per budget_window before the circuit opens")
    budget_window: Duration = 600.0
    min_uptime: Duration = Field(60.0, description="a restart that healed and stayed healthy this long does not "
                                 "count against the budget (and resets the backoff)")
    cooldown: Duration = Field(300.0, description="open → half-open after this long")
    healthy_reset: Duration = Field(600.0, description="healthy this long closes the circuit and resets backoff")


class PolicyOverride(Strict):
    verify_successes: int | None = Field(None, ge=1, le=100)
    verify_interval: Duration | None = None
    backoff_initial: Duration | None = None
    backoff_max: Duration | None = None
    backoff_multiplier: float | None = Field(None, ge=1.0)
    budget: int | None = Field(None, ge=1)
    budget_window: Duration | None = None
    min_uptime: Duration | None = None
    cooldown: Duration | None = None
    healthy_reset: Duration | None = None


class Agent(Strict):
    name: str = Field(pattern=NAME_RE)
    role: str = ""
    node: str | None = Field(None, description="defaults to the top-level node")
    critical: bool = False
    process: ProcessSpec | None = None
    health: HealthCheck | None = None
    restart: RestartSpec | None = None  # the built model: the union of every strategy's Spec
    start_grace: Duration = Field(10.0, gt=0)
    fallback: FallbackSpec | None = None
    depends_on: list[str] = Field(default_factory=list)
    log_file: str | None = Field(None, description="tail of this file goes into the audit event before a kill")
    remediation: PolicyOverride | None = None

    @model_validator(mode="after")
    def _process_or_health(self) -> Agent:
        if self.process is None and self.health is None:
            raise ValueError("give process (a local agent) or health (a remote endpoint), or both")
        if self.process is None and self.restart is not None and self.restart.needs_process:
            raise ValueError(
                f"restart.strategy {self.restart.strategy} needs a local process; add process or use a command"
            )
        if self.restart is not None and (why := self.restart.check(self)):
            raise ValueError(why)
        return self

    @property
    def remote(self) -> bool:
        """A remote endpoint: up means its health check answers."""
        return self.process is None


# ---------------------------------------------------------------------------------------------
# Global sections


class ListenSpec(Strict):
    exporter: Listen = "127.0.0.1:9826"
    receiver: Listen = "127.0.0.1:9827"


class ExporterSpec(Strict):
    probe_workers: int = Field(32, ge=1, le=512, description="concurrent health probes (one per agent at a time)")
    scrape_budget: Duration = Field(
        0.25, gt=0, description="unused since probes run on their own schedule; kept so existing files load"
    )
    probe_interval: Duration = Field(
        0.25, ge=MIN_PROBE_INTERVAL, le=3600,
        description="default time between health probe starts of one agent (health.interval overrides)")
    consecutive_failures: int = Field(
        3, ge=1, le=100,
        description="default failed probes in a row before AgentUnhealthy (health.consecutive_failures overrides)")
    process_interval: Duration = Field(
        0.1, ge=0.02, le=60, description="how often every agent's process is looked at (pid gone → AgentDown)")


@dataclass(frozen=True)
class Detection:
    """One agent's effective health-probe schedule (its health: keys, else the exporter: defaults)."""

    interval: float
    timeout: float
    consecutive_failures: int

    @property
    def tolerated_stall(self) -> float:
        """An agent that stops answering for less than this is never reported unhealthy.

        While it stalls, every probe waits its full timeout and the next one starts when it ends (or one
        interval after the previous start, when that is later); the N-th failure in a row ends
        (N-1)·max(timeout, interval) + timeout after the first failing probe started.
        """
        return (self.consecutive_failures - 1) * max(self.timeout, self.interval) + self.timeout

    @property
    def worst_detection(self) -> float:
        """Fault → the N-th failed probe ends, at worst (the stall plus one interval of phase)."""
        return self.interval + self.tolerated_stall


class ChannelSpec(Strict):
    """What every channel's model (``Spec`` beside its notifier in webhook_receiver/bridge/notifiers/) has."""

    type: str
    min_severity: Literal["info", "warning", "critical"] = "info"
    enabled: bool = True
    agents: list[str] = Field(default_factory=list, description="only notices about these agents (empty: all)")
    alertnames: list[str] = Field(default_factory=list, description="only these alerts (empty: all)")


class NotificationsSpec(Strict):
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)  # the built model: each channel's own Spec
    runbook_base_url: HttpUrl | None = Field(
        None, description="relative runbook_url annotations (docs/runbooks.md#x) are links under this URL")


class ReceiverSpec(Strict):
    token_file: str | None = Field(None, description="bearer token for POST /alertmanager (or GOVHEAL_WEBHOOK_TOKEN)")
    max_body_bytes: int = Field(1_048_576, ge=1024)
    workers: int = Field(4, ge=1, le=64)
    threads: int = Field(8, ge=1, le=64, description="waitress request threads")
    deadman_timeout: Duration = Field(180.0, gt=0, description="no Watchdog for this long → CRIT")
    alertmanager_unreachable_after: Duration = Field(
        60.0, ge=0, description="no answer from any Alertmanager for this long → CRIT straight to the channels "
                                "(0 = do not watch)")
    max_connections: int = Field(1000, ge=10, le=65536, description="open connections the server accepts")
    max_connections_per_ip: int = Field(100, ge=1, le=65536,
                                        description="of those, from one non-loopback address")
    request_timeout: Duration = Field(10.0, gt=0, le=600,
                                      description="a request must arrive whole (headers and body) within this")
    peers: list[str] = Field(
        default_factory=list, description="the other nodes whose receivers get the same alerts from one Alertmanager "
        "cluster: this receiver then announces only its own node's alerts, and a peer's while that peer's receiver "
        "is down (docs/ha.md)")
    takeover_grace: Duration = Field(
        10.0, ge=0, description="a peer's alerts that started up to this long before its ReceiverDown are announced "
        "by its deputy too (a scrape and an evaluation interval: the fleet profile's 5 s + 5 s)")
    replica_skew: Duration = Field(
        0.0, ge=0, le=300, description="an HA pair of Prometheus servers: one alert may arrive with startsAt this far "
        "apart (one scrape plus one evaluation interval); every startsAt within it of an open incident is that "
        "incident. 0: one Prometheus")

    @field_validator("peers")
    @classmethod
    def _peer_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.match(NAME_RE, name):
                raise ValueError(f"{name!r} is not a node name; use letters, digits, '_', '.', '-'")
        if len(set(v)) != len(v):
            raise ValueError("a peer is listed twice; list each node once")
        return v


class PrometheusSpec(Strict):
    url: HttpUrl | None = Field(
        None, description="base URL of Prometheus (with its route prefix); default: the one `govheal up` started")


class AlertmanagerSpec(Strict):
    urls: list[HttpUrl] = Field(
        default_factory=list, description="every Alertmanager of the cluster; default: the ones `govheal up` started")

    @field_validator("urls")
    @classmethod
    def _each_once(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for url in v:
            key = url.rstrip("/")
            if key in seen:
                raise ValueError(f"{url!r} is listed twice; list each Alertmanager once")
            seen.add(key)
        return v


def known_zone(v: str | None) -> str | None:
    """An IANA time zone name this machine knows (reports' slots, recurring switch windows), or None."""
    if v is None:
        return v
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Bangkok, Europe/Berlin or "
                         "UTC") from None
    return v


# ---------------------------------------------------------------------------------------------
# The daily ops cycle (govheal/report/) and deployment (govheal/deploy/)

_SLOT_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ReportStep(Strict):
    """An extra step of the daily cycle (e.g. a memory sync): an argv list, never a shell string."""

    name: str = Field(pattern=NAME_RE)
    argv: list[str] = Field(min_length=1)
    cwd: str | None = Field(None, description="working directory (default: the config file's directory)")
    timeout: Duration = Field(300.0, gt=0, le=3600)
    env: dict[str, str] = Field(default_factory=dict)


class CanarySpec(Strict):
    enabled: bool = True
    deadline: Duration = Field(30.0, gt=0, le=600, description="post → every hop seen, per Alertmanager")
    alertmanagers: list[HttpUrl] = Field(
        default_factory=list, description="the Alertmanagers that deliver to this node's receiver (default: all "
                                          "of alertmanager.urls)")


class CriteriaSpec(Strict):
    """Bounds of the five success criteria (the user's objectives are the defaults)."""

    heal_success_min: float = Field(0.98, ge=0, le=1)
    ui_latency_max: Duration = Field(0.25, gt=0)
    delivery_max: Duration = Field(3.0, gt=0)
    downtime_max: Duration = Field(120.0, gt=0, description="longest unplanned downtime of one agent")
    coverage_min: float = Field(0.999, ge=0, le=1, description="share of the window Prometheus must have seen")


class ReportsSpec(Strict):
    dir: str = Field("reports/daily", description="where CLS_DAILY_<date>_<slot>.log and .json go")
    volume: str | None = Field(None, description="mount point dir lives on (default: /Volumes/<name> of dir)")
    pending_dir: str | None = Field(None, description="where a report waits while the volume is absent")
    slots: list[str] = Field(default_factory=lambda: ["09:00", "21:00"], min_length=1, max_length=24)
    timezone: str | None = Field(None, description="IANA zone of the slots (default: this machine's)")
    window: Duration = Field(43200.0, gt=0, le=7 * 86400)
    catch_up_after: Duration = Field(600.0, ge=0, description="a run later than this after its slot is a catch-up")
    send: bool = Field(True, description="send the digest through the alert bridge")
    ui_url: HttpUrl | None = Field(None, description="default: http://<listen.receiver>/ops/governance")
    ui_token_file: str | None = None
    canary: CanarySpec = Field(default_factory=CanarySpec)
    criteria: CriteriaSpec = Field(default_factory=CriteriaSpec)
    steps: list[ReportStep] = Field(default_factory=list)

    @field_validator("slots")
    @classmethod
    def _slots(cls, v: list[str]) -> list[str]:
        for s in v:
            if not isinstance(s, str) or not _SLOT_RE.match(s):
                raise ValueError(f"slot {s!r} is not HH:MM (24 h, local time); write e.g. 09:00")
        if len(set(v)) != len(v):
            raise ValueError("slots must be unique")
        return sorted(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return known_zone(v)

    @model_validator(mode="after")
    def _unique_steps(self) -> ReportsSpec:
        names = [s.name for s in self.steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate step name(s) {', '.join(dup)}; names must be unique")
        return self


class DeploySpec(Strict):
    """launchd labels / systemd unit names and where the deployed services keep their files."""

    label_prefix: str = Field("com.02luka.cls", pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]$",
                              description="launchd Label = <prefix>.<service>; the receiver is <prefix>.autoheal")
    unit_prefix: str = Field("govheal", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    dir: str = Field(".govheal/deploy", description="logs, Prometheus/Alertmanager data and rendered configs")
    path: list[str] = Field(default_factory=lambda: ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin",
                                                     "/usr/sbin", "/sbin"],
                            description="PATH of the services (launchd gives agents a minimal one)")
    alertmanager_cluster_listen: str | None = Field(None, description="IP:PORT for gossip (HA); default: off")
    alertmanager_peers: list[str] = Field(default_factory=list, description="other Alertmanagers' IP:PORT")


class AdminSpec(Strict):
    """The governance page and API (docs/governance.md): tokens, session, links, switch defaults."""

    token_file: str | None = Field(None, description="admin token: change switches, log in (or GOVHEAL_ADMIN_TOKEN)")
    read_token_file: str | None = Field(None, description="read-only token for the page and GET /api/agents "
                                        "(or GOVHEAL_READ_TOKEN)")
    session_key_file: str | None = Field(None, description="Flask session key; default <state_dir>/admin_session.key, "
                                         "created 0600")
    session_lifetime: Duration = Field(43200.0, gt=0, le=30 * 86400)
    page_url: HttpUrl | None = Field(None, description="the page as people reach it (links in silence comments); "
                                     "default http://<listen.receiver>/ops/governance")
    grafana_url: HttpUrl | None = Field(None, description="Grafana base URL for the board links")
    alertmanager_url: HttpUrl | None = Field(None, description="Alertmanager as people reach it; default the first "
                                             "of alertmanager.urls")
    timezone: str | None = Field(None, description="zone of recurring windows without one; default the host's")
    silence_horizon: Duration = Field(7 * 86400.0, ge=3600, le=90 * 86400,
                                      description="silences of recurring windows are created this far ahead")
    sync_interval: Duration = Field(5.0, ge=0.1, le=3600, description="retry pending silences this often")
    refresh: Duration = Field(10.0, ge=1, le=3600, description="the page reloads itself this often")
    prometheus_refresh: Duration = Field(5.0, ge=1, le=3600, description="health and uptime from Prometheus are "
                                         "refreshed this often in the background (history: every 12 x this)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        return known_zone(v)


class Config(Strict):
    node: str = Field(default_factory=lambda: socket.gethostname().split(".")[0] or "localhost")
    state_dir: str = ".govheal/state"
    telemetry_log: str = "telemetry/autoheal.log"
    listen: ListenSpec = Field(default_factory=ListenSpec)
    exporter: ExporterSpec = Field(default_factory=ExporterSpec)
    remediation: PolicySpec = Field(default_factory=PolicySpec)
    receiver: ReceiverSpec = Field(default_factory=ReceiverSpec)
    notifications: NotificationsSpec = Field(default_factory=NotificationsSpec)
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    alertmanager: AlertmanagerSpec = Field(default_factory=AlertmanagerSpec)
    reports: ReportsSpec = Field(default_factory=ReportsSpec)
    deploy: DeploySpec = Field(default_factory=DeploySpec)
    admin: AdminSpec = Field(default_factory=AdminSpec)
    agents: list[Agent] = Field(min_length=1)

    seams: ClassVar[Seams | None] = None  # set on the model build_config_model makes
    # Not part of the file: where it came from, for resolving relative paths and for messages.
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        return self._source

    def path(self, value: str | os.PathLike[str]) -> Path:
        """Resolve a path from the file against the file's directory (``~`` expanded)."""
        p = Path(os.path.expanduser(os.fspath(value)))
        if p.is_absolute() or self.source is None:
            return p
        return self.source.parent / p

    @property
    def state_path(self) -> Path:
        return self.path(self.state_dir)

    @model_validator(mode="after")
    def _not_own_peer(self) -> Config:
        if self.node in self.receiver.peers:
            raise ValueError(f"receiver.peers lists this node ({self.node!r}) itself; list only the other nodes")
        return self

    def agent(self, name: str) -> Agent:
        for a in self.agents:
            if a.name == name:
                return a
        known = ", ".join(a.name for a in self.agents)
        raise KeyError(f"unknown agent {name!r}; known agents: {known}")

    def node_of(self, agent: Agent) -> str:
        return agent.node or self.node

    def detection_for(self, agent: Agent) -> Detection | None:
        """The agent's probe schedule and threshold; None without a health check."""
        h = agent.health
        if h is None:
            return None
        return Detection(
            interval=h.interval if h.interval is not None else self.exporter.probe_interval,
            timeout=h.timeout,
            consecutive_failures=h.consecutive_failures if h.consecutive_failures is not None
            else self.exporter.consecutive_failures,
        )

    def policy_for(self, agent: Agent) -> PolicySpec:
        if agent.remediation is None:
            return self.remediation
        # the values themselves: model_dump would serialise durations back to text ("10ms")
        overrides = {k: v for k in PolicyOverride.model_fields if (v := getattr(agent.remediation, k)) is not None}
        return self.remediation.model_copy(update=overrides)


# ---------------------------------------------------------------------------------------------
# The file's model, built from the registries


@dataclass(frozen=True, eq=False)
class Seams:
    """name → config model of every entry of each seam (govheal/seams.py builds the real one)."""

    process: Mapping[str, type[BaseModel]]  # govheal/matchers.py MATCHERS: name → Matcher.spec
    restart: Mapping[str, type[RestartSpec]]  # remediator/strategies STRATEGIES: name → Strategy.Spec
    channel: Mapping[str, type[ChannelSpec]]  # webhook_receiver/bridge/notifiers NOTIFIERS: name → Notifier.Spec

    def _key(self) -> tuple:
        return tuple(tuple(m.items()) for m in (self.process, self.restart, self.channel))

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Seams) and self._key() == other._key()


def _tag(model: type[BaseModel], field: str) -> str | None:
    """The single Literal value of ``model.field`` (a discriminated union's tag), if it is one."""
    f = model.model_fields.get(field)
    args = get_args(f.annotation) if f is not None and get_origin(f.annotation) is Literal else ()
    return args[0] if len(args) == 1 else None


def _tagged_union(models: Mapping[str, type[BaseModel]], field: str, seam: str) -> Any:
    for name, model in models.items():
        if _tag(model, field) != name:
            raise TypeError(f"{seam} {name!r}: its model's {field!r} must be Literal[{name!r}] "
                            f"(got {model.model_fields.get(field)})")
    members = tuple(models.values())
    return Annotated[Union[members], Field(discriminator=field)]  # noqa: UP007 - built at run time


def _process_model(matchers: Mapping[str, type[BaseModel]]) -> type[ProcessSpec]:
    """One flat model with every matcher's fields: its key optional, its options with their defaults."""
    fields: dict[str, Any] = {}
    for name, model in matchers.items():
        if name not in model.model_fields:
            raise TypeError(f"matcher {name!r}: its model must have a field named {name!r}")
        for key, f in model.model_fields.items():
            ann = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
            spec = (ann | None, Field(None, description=f.description)) if key == name else \
                (ann, Field(f.default, description=f.description))
            if key in fields and key != name:
                raise TypeError(f"matcher {name!r}: option {key!r} is declared by another matcher too")
            fields[key] = spec
    model = create_model("ProcessSpec", __base__=ProcessSpec, **fields)
    model.matchers = MappingProxyType(dict(matchers))
    return model


@functools.cache
def build_config_model(seams: Seams) -> type[Config]:
    """The model of a govheal.yaml whose ``process:``, ``restart:`` and channels are those of ``seams``."""
    process = _process_model(seams.process)
    restart = _tagged_union(seams.restart, "strategy", "restart strategy")
    channel = _tagged_union(seams.channel, "type", "channel type")
    agent = create_model("Agent", __base__=Agent, process=(process | None, None), restart=(restart | None, None))
    notifications = create_model("NotificationsSpec", __base__=NotificationsSpec,
                                 channels=(dict[str, channel], Field(default_factory=dict)))
    model = create_model("Config", __base__=Config, agents=(list[agent], Field(min_length=1)),
                         notifications=(notifications, Field(default_factory=notifications)))
    model.seams = seams
    return model


# ---------------------------------------------------------------------------------------------
# Errors and loading


class Problem(BaseModel):
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a config file; ``str()`` lists them, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def field_path(loc: Iterable[str | int]) -> str:
    """pydantic's ``('agents', 0, 'health')`` → ``agents[0].health``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _strip(ann: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` → X."""
    while True:
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        elif get_origin(ann) in (Union, UnionType) and type(None) in get_args(ann):
            rest = [a for a in get_args(ann) if a is not type(None)]
            if len(rest) != 1:
                return ann
            ann = rest[0]
        else:
            return ann


def _union_members(ann: Any) -> dict[str, Any]:
    """The members of a union of models by the names pydantic puts in an error location (tag or class name)."""
    if get_origin(ann) not in (Union, UnionType):
        return {}
    out: dict[str, Any] = {}
    for member in get_args(ann):
        if isinstance(member, type) and issubclass(member, BaseModel):
            out[member.__name__] = member
            for key in member.model_fields:
                if (tag := _tag(member, key)) is not None:
                    out[tag] = member
    return out


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], type[BaseModel] | None]:
    """Follow an error location through the model: drop pydantic's union tags ("command", "function-after[…]")
    and return the clean location and the model that holds its last key (for did-you-mean suggestions)."""
    out: list[str | int] = []
    ann: Any = root
    holder: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, str) and "[" in part:
            continue
        ann = _strip(ann)
        members = _union_members(ann)
        if members and isinstance(part, str) and part in members:
            ann = members[part]
            continue
        out.append(part)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            holder = ann
            f = ann.model_fields.get(part) if isinstance(part, str) else None
            ann = f.annotation if f is not None else None
        elif get_origin(ann) in (list, tuple):
            ann = get_args(ann)[0]
        elif get_origin(ann) is dict:
            ann = get_args(ann)[1]
        else:
            ann = None
    return tuple(out), holder


_HINTS: dict[str, str] = {
    "string_pattern_mismatch": "use letters, digits, '_', '.', '-' (starting with a letter or digit, at most 63)",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "float_parsing": "use a number",
    "dict_type": "use a mapping (key: value)",
    "string_type": "use a string (quote it)",
}


def _tag_names(seams: Seams, discriminator: str) -> list[str]:
    return list(seams.restart if discriminator == "strategy" else seams.channel)


def _problem_from_error(err: dict[str, Any], file: str, lines: dict, model: type[Config]) -> Problem:
    loc, holder = _walk(model, tuple(err["loc"]))
    kind = err["type"]
    field = field_path(loc)
    line = line_for(lines, loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        choices = list(holder.model_fields) if holder else []
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(choices)}"
        msg = f"unknown key {key!r}; {hint}"
    elif kind == "missing":
        msg = "required key is missing; add it"
    elif kind == "union_tag_invalid":
        key = err["ctx"]["discriminator"].strip("'")
        names = _tag_names(model.seams, key)
        tag = err["ctx"]["tag"]
        msg = (f"unknown restart strategy {tag!r}; use one of: {', '.join(names)}" if key == "strategy"
               else f"unknown value {tag!r}; use one of: {', '.join(repr(n) for n in names)}")
        line = line_for(lines, (*loc, key))
        field = field_path((*loc, key))
    elif kind == "union_tag_not_found":
        key = err["ctx"]["discriminator"].strip("'")
        msg = f"missing {key!r}; use one of: {', '.join(_tag_names(model.seams, key))}"
    elif kind == "string_pattern_mismatch":
        msg = f"{err.get('input')!r} is not a valid name; {_HINTS[kind]}"
    elif kind == "list_type" and loc[-1] in ("argv",):
        msg = f"must be a list of arguments, not a shell string (got {err.get('input')!r}); write e.g. [gg, --serve]"
    elif kind == "list_type":
        msg = f"must be a list (got {err.get('input')!r}); write e.g. [a, b]"
    elif kind == "too_short" and loc == ("agents",):
        msg = "the fleet is empty; add at least one agent under agents:"
    elif kind == "too_short":
        msg = f"must not be empty (got {err.get('input')!r})"
    elif kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        msg = f"unknown value {err.get('input')!r}; use one of: {allowed.replace(' or ', ', ')}"
    elif kind in ("less_than_equal", "greater_than_equal", "greater_than", "less_than"):
        bound = err["msg"].removeprefix("Input should be ")
        msg = f"must be {bound} (got {err.get('input')!r})"
    else:
        text = err["msg"].removeprefix("Value error, ")
        typed = kind.endswith(("_type", "_parsing")) or kind in _HINTS
        msg = f"{text} (got {err.get('input')!r})" if typed else text
        if kind in _HINTS:
            msg = f"{msg}; {_HINTS[kind]}"
    return Problem(file=file, line=line, field=field, message=msg)


def _cross_checks(data: dict[str, Any], file: str, lines: dict) -> list[Problem]:
    """Rules across agents, checked on the raw data so they are reported beside field errors."""
    problems: list[Problem] = []

    def add(loc: tuple[str | int, ...], msg: str) -> None:
        problems.append(Problem(file=file, line=line_for(lines, loc), field=field_path(loc), message=msg))

    agents = data.get("agents")
    if not isinstance(agents, list):
        return problems
    entries = [(i, a) for i, a in enumerate(agents) if isinstance(a, dict) and isinstance(a.get("name"), str)]
    names: dict[str, int] = {}
    for i, agent in entries:
        name = agent["name"]
        if name in names:
            add(("agents", i, "name"), f"duplicate agent name {name!r} (also agents[{names[name]}]); "
                "names must be unique")
        else:
            names[name] = i
    graph: dict[str, list[str]] = {}
    for i, agent in entries:
        deps = agent.get("depends_on") or []
        deps = deps if isinstance(deps, list) else []
        graph.setdefault(agent["name"], [])
        for j, dep in enumerate(deps):
            if not isinstance(dep, str):
                continue
            if dep == agent["name"]:
                add(("agents", i, "depends_on", j), "an agent cannot depend on itself; remove it")
            elif dep not in names:
                close = difflib.get_close_matches(dep, list(names), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known agents: {', '.join(names)}"
                add(("agents", i, "depends_on", j), f"unknown agent {dep!r}; {hint}")
            else:
                graph[agent["name"]].append(dep)
        fallback = agent.get("fallback")
        fb = fallback.get("agent") if isinstance(fallback, dict) else None
        if isinstance(fb, str):
            if fb == agent["name"]:
                add(("agents", i, "fallback", "agent"), "an agent cannot be its own fallback")
            elif fb not in names:
                add(("agents", i, "fallback", "agent"), f"unknown agent {fb!r}; known agents: {', '.join(names)}")
    channels = data.get("notifications", {}).get("channels") if isinstance(data.get("notifications"), dict) else None
    for ch_name, ch in (channels or {}).items() if isinstance(channels, dict) else ():
        wanted = ch.get("agents") if isinstance(ch, dict) else None
        for j, name in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(name, str) and name not in names:
                add(("notifications", "channels", ch_name, "agents", j),
                    f"unknown agent {name!r}; known agents: {', '.join(names)}")
    cycle = _find_cycle(graph)
    if cycle:
        add(("agents", names[cycle[0]], "depends_on"),
            f"depends_on cycle: {' → '.join([*cycle, cycle[0]])}; break one of the links")
    return problems


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = grey
        stack.append(n)
        for m in graph.get(n, []):
            if color[m] == grey:
                return stack[stack.index(m):]
            if color[m] == white and (found := visit(m)):
                return found
        stack.pop()
        color[n] = black
        return None

    for node in graph:
        if color[node] == white and (found := visit(node)):
            return found
    return None


def parse_config(text: str, source: Path | None = None, *, seams: Seams) -> Config:
    """Validate config text against the model built from ``seams``; raise :class:`ConfigError` listing every
    problem. Callers use :func:`govheal.seams.parse_config`, which passes the real registries."""
    file = str(source) if source else "<config>"
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise ConfigError([Problem(file=file, line=exc.line, field="", message=exc.message)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(file=file, line=1, field="",
                                   message="the file must be a YAML mapping with an 'agents' list")])
    problems = _cross_checks(data, file, lines)
    model = build_config_model(seams)
    try:
        cfg = model.model_validate(data)
        cfg._source = source
    except ValidationError as exc:
        problems = [_problem_from_error(e, file, lines, model) for e in exc.errors()] + problems
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise ConfigError(_dedupe(problems))
    return cfg


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def default_config_path() -> Path:
    """--config wins; then $GOVHEAL_CONFIG; then ./govheal.yaml; then the bundled demo fleet."""
    env = os.environ.get("GOVHEAL_CONFIG")
    if env:
        return Path(env)
    local = Path("govheal.yaml")
    if local.is_file():
        return local
    from govheal.resources import example_config

    return example_config()


def load_config(path: str | os.PathLike[str] | None = None, *, seams: Seams) -> Config:
    """Read and validate a file (see :func:`parse_config`; callers use :func:`govheal.seams.load_config`)."""
    p = Path(path) if path is not None else default_config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(file=str(p), line=None, field="",
                                   message="file not found; pass --config FILE or set GOVHEAL_CONFIG")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = "it is a directory" if p.is_dir() else ("it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                                                     else getattr(exc, "strerror", None) or str(exc))
        raise ConfigError([Problem(file=str(p), line=None, field="",
                                   message=f"cannot read: {why}; pass --config with a govheal.yaml file")]) from None
    return parse_config(text, source=p.resolve(), seams=seams)
