"""``strategy: systemd``: ``systemctl [--user] restart -- UNIT`` (systemd stops with the unit's KillMode)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from govheal.config import Agent, Config, RestartSpec
from govheal.types import Duration
from remediator.strategies import base
from remediator.strategies.base import Outcome


class Spec(RestartSpec):
    strategy: Literal["systemd"]
    unit: str | None = Field(None, description="defaults to process.systemd")
    user: bool = False
    timeout: Duration = 30.0
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the systemctl call "
                                "(e.g. XDG_RUNTIME_DIR for a --user unit when govheal runs as a service)")

    def check(self, agent: Agent) -> str | None:
        if self.unit or (agent.process is not None and agent.process.kind == "systemd"):
            return None
        return "restart.strategy systemd needs restart.unit or process.systemd"

    def argv(self, agent: Agent, verb: str) -> list[str]:
        unit = self.unit or (agent.process.value if agent.process else None)
        return ["systemctl", *(["--user"] if self.user else []), verb, "--", str(unit)]

    def describe(self, agent: Agent) -> str:
        return f"systemd: {' '.join(self.argv(agent, 'restart'))}"

    def bound(self) -> float:
        return self.timeout


class Systemd:
    Spec: ClassVar[type[Spec]] = Spec

    def _argv(self, agent: Agent, verb: str) -> tuple[list[str], Spec]:
        spec = agent.restart
        assert isinstance(spec, Spec)
        return spec.argv(agent, verb), spec

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        argv, spec = self._argv(agent, "restart")
        base.run_supervisor(argv, spec.timeout, spec.env)
        return Outcome(detail=" ".join(argv))

    def start(self, config: Config, agent: Agent) -> Outcome:
        argv, spec = self._argv(agent, "start")
        base.run_supervisor(argv, spec.timeout, spec.env)
        return Outcome(detail=" ".join(argv))
