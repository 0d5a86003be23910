"""``strategy: signal``: send the configured signal (HUP to reload, CONT to a stopped process); the PID stays."""

from __future__ import annotations

import signal
from typing import ClassVar, Literal

from pydantic import field_validator

from govheal.config import Agent, Config
from remediator import identity
from remediator.strategies.base import Outcome, StrategyError
from remediator.strategies.command import SignalsPid


class Spec(SignalsPid):
    strategy: Literal["signal"]
    signal: str = "HUP"

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, v: str) -> str:
        name = v.upper().removeprefix("SIG")
        if not hasattr(signal, f"SIG{name}"):
            raise ValueError(f"unknown signal {v!r}; use a name such as HUP, USR1, TERM")
        return name

    def describe(self, agent: Agent) -> str:
        return f"signal: send SIG{self.signal} to the agent's pid (it stays)"

    def bound(self) -> float:
        return 1.0


class Signal:
    Spec: ClassVar[type[Spec]] = Spec

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        spec = agent.restart
        assert isinstance(spec, Spec)
        if not pid:
            raise StrategyError(f"no running process to send SIG{spec.signal} to")
        proc = identity.check(config, agent, pid, allow_other_users=spec.allow_other_users,
                              expect_cmdline=spec.expect_cmdline)
        try:
            if proc is None:
                raise ProcessLookupError
            proc.send_signal(getattr(signal, f"SIG{spec.signal}"))  # refuses a PID reused since the check
        except (ProcessLookupError, identity.psutil.NoSuchProcess):
            raise StrategyError(f"pid {pid} exited before SIG{spec.signal} was sent") from None
        except (PermissionError, identity.psutil.AccessDenied):
            raise StrategyError(f"not permitted to signal pid {pid}") from None
        return Outcome(pid, f"sent SIG{spec.signal} to pid {pid}")

    def start(self, config: Config, agent: Agent) -> Outcome:
        raise StrategyError("the signal strategy cannot start a stopped agent; give it a command strategy")
