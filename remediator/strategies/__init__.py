"""How an agent is restarted: STRATEGIES maps each ``restart.strategy`` name to its class.

One module per strategy (launchd, systemd, command, signal), each declaring ``Spec`` (its config model)
beside the implementation; govheal.config builds ``restart:`` from these (via govheal/seams.py), so a new
strategy is one module plus one line here, its test and its docs (docs/contributing.md).
"""

from __future__ import annotations

from remediator.strategies.base import Outcome, Refused, Strategy, StrategyError
from remediator.strategies.command import Command, stop_process
from remediator.strategies.launchd import Launchd
from remediator.strategies.signal import Signal
from remediator.strategies.systemd import Systemd

STRATEGIES: dict[str, type[Strategy]] = {
    "launchd": Launchd,
    "systemd": Systemd,
    "command": Command,
    "signal": Signal,
}


def default_strategies() -> dict[str, Strategy]:
    """A fresh instance of each per Remediator (the command strategy keeps its children to reap them)."""
    return {name: cls() for name, cls in STRATEGIES.items()}


__all__ = ["STRATEGIES", "Outcome", "Refused", "Strategy", "StrategyError", "default_strategies", "stop_process"]
