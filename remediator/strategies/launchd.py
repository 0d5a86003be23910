"""``strategy: launchd``: ``launchctl kickstart -k <domain>/<label>``; launchd kills its job and starts it again."""

from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import Field

from govheal.config import Agent, Config, RestartSpec
from govheal.types import Duration
from remediator.strategies import base
from remediator.strategies.base import Outcome


class Spec(RestartSpec):
    strategy: Literal["launchd"]
    label: str | None = Field(None, description="defaults to process.launchd")
    domain: str = Field("gui/{uid}", description="launchctl domain; {uid} is the current uid")
    timeout: Duration = 10.0
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the launchctl call")

    def check(self, agent: Agent) -> str | None:
        if self.label or (agent.process is not None and agent.process.kind == "launchd"):
            return None
        return "restart.strategy launchd needs restart.label or process.launchd"

    def target(self, agent: Agent) -> str:
        label = self.label or (agent.process.value if agent.process else None)
        return f"{self.domain.format(uid=os.getuid())}/{label}"

    def describe(self, agent: Agent) -> str:
        return f"launchd: launchctl kickstart -k {self.target(agent)}"

    def bound(self) -> float:
        return self.timeout


class Launchd:
    Spec: ClassVar[type[Spec]] = Spec

    def _target(self, agent: Agent) -> tuple[str, Spec]:
        spec = agent.restart
        assert isinstance(spec, Spec)
        return spec.target(agent), spec

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        target, spec = self._target(agent)
        base.run_supervisor(["launchctl", "kickstart", "-k", target], spec.timeout, spec.env)
        return Outcome(detail=f"launchctl kickstart -k {target}")

    def start(self, config: Config, agent: Agent) -> Outcome:
        target, spec = self._target(agent)
        base.run_supervisor(["launchctl", "kickstart", target], spec.timeout, spec.env)
        return Outcome(detail=f"launchctl kickstart {target}")
