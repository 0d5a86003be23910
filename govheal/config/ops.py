"""The daily ops cycle (``reports:``, govheal/report/), deployment (``deploy:``, govheal/deploy/) and the
governance page (``admin:``, docs/governance.md)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from govheal.config.common import NAME_RE, Strict, known_zone
from govheal.types import Duration, HttpUrl

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
