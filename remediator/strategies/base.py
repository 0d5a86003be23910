"""What every restart strategy shares: the contract, its errors, and running a supervisor command.

A strategy module (``remediator/strategies/<name>.py``) declares ``Spec`` (its ``restart:`` model, a
:class:`govheal.config.RestartSpec` with ``strategy: Literal["<name>"]``, which also says how the plan
describes it and how long a restart may take) and a class with ``Spec``, ``restart(config, agent, pid)``
and ``start(config, agent)``. ``restart`` gets the agent's current PID
(None if not running) and returns the PID it started when it knows it; both raise :class:`StrategyError`
with a reason an operator can act on. Commands are argv lists (no shell) with timeouts; values from alert
labels never reach them: only the config does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from govheal.config import Agent, Config, RestartSpec
from govheal.procs import allowlisted_env


class StrategyError(Exception):
    """The restart could not be carried out; the message says why."""


class Refused(StrategyError):
    """Not carried out on purpose: the PID is not (provably) the agent's. Retrying cannot help."""


@dataclass(frozen=True)
class Outcome:
    new_pid: int | None = None
    detail: str = ""  # e.g. "SIGKILL after 5s: SIGTERM ignored"


class Strategy(Protocol):
    Spec: ClassVar[type[RestartSpec]]

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome: ...

    def start(self, config: Config, agent: Agent) -> Outcome: ...


def run_supervisor(argv: list[str], timeout: float, env: Mapping[str, str] | None = None) -> None:
    """Run a supervisor command (launchctl, systemctl) with the allowlisted environment plus ``env``;
    a non-zero exit or a timeout is a StrategyError naming the program."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env=allowlisted_env(env))
    except FileNotFoundError:
        raise StrategyError(f"{argv[0]} not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise StrategyError(f"{' '.join(argv)} timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise StrategyError(f"{' '.join(argv)} exited {proc.returncode}: {err[-1] if err else 'no output'}"[:300])
