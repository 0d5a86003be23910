"""``Config``: the whole govheal.yaml, and what components ask of it (an agent, its node, its probe schedule
and policy, paths resolved against the file's directory)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import ClassVar

from pydantic import Field, PrivateAttr, model_validator

from govheal.config.agents import Agent, Detection, PolicyOverride, PolicySpec
from govheal.config.common import Strict
from govheal.config.ops import AdminSpec, DeploySpec, ReportsSpec
from govheal.config.seams import Seams
from govheal.config.servers import (
    AlertmanagerSpec,
    ExporterSpec,
    ListenSpec,
    NotificationsSpec,
    PrometheusSpec,
    ReceiverSpec,
)


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
