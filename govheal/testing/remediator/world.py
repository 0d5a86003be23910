"""Fakes for engine tests: a controllable clock, and a 'world' of agents whose health the fake strategy sets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from govheal.config import Agent, Config
from remediator.strategies import Outcome, StrategyError
from remediator.verify import Observation


@dataclass
class FakeClock:
    t: float = 1_000_000.0
    sleeps: list[float] = field(default_factory=list)
    real: float = 0.0  # real seconds to yield per sleep (lets other threads run)

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.sleeps.append(round(dt, 6))
        self.t += dt
        if self.real:
            time.sleep(self.real)


@dataclass
class World:
    """healthy[name]: what observations see; heals(name) decides whether a restart makes it healthy."""

    healthy: dict[str, bool] = field(default_factory=dict)
    heals: Callable[[str], bool] = lambda name: True
    restart_seconds: float = 0.0  # real time a restart takes (to make threads overlap)
    clock: Callable[[], float] = time.time
    restarts: list[tuple[str, float]] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def look(self, config: Config, agent: Agent) -> Observation:
        ok = self.healthy.get(agent.name, True)
        return Observation(4242 if ok else None, ok, "" if ok else "process not running")

    def strategy(self, fail: str | None = None) -> FakeStrategy:
        return FakeStrategy(self, fail)


@dataclass
class FakeStrategy:
    world: World
    fail: str | None = None

    def restart(self, config: Config, agent: Agent, pid: int | None) -> Outcome:
        with self.world.lock:
            self.world.restarts.append((agent.name, self.world.clock()))
        if self.world.restart_seconds:
            time.sleep(self.world.restart_seconds)
        if self.fail:
            raise StrategyError(self.fail)
        self.world.healthy[agent.name] = self.world.heals(agent.name)
        return Outcome(4243, "fake restart")

    def start(self, config: Config, agent: Agent) -> Outcome:
        self.world.starts.append(agent.name)
        self.world.healthy[agent.name] = True
        return Outcome(4244, "fake start")
