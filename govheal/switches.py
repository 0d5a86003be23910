"""Per-agent governance switches, owned at the base so the exporter, the remediator and the receiver read
the same thing.

A switch is typed (:class:`Switch`): a kind, who set it and why, when it starts and expires, an optional
recurrence (in effect only inside its windows: govheal/governance/schedule.py), and the ids of the Alertmanager
silences that carry it. What each kind means:

=============  =============================  ======================================
kind           remediation (restarts)         notifications
=============  =============================  ======================================
``mute``       continues                      silenced (Alertmanager silence)
``pause``      stopped                        continue
``maintenance``  stopped                      silenced (Alertmanager silence)
=============  =============================  ======================================

An agent is *enabled* (``govheal_agent_enabled 1``: its alerts fire) unless a maintenance is in effect; a
paused agent stays enabled (alerts and messages go on) and the remediator skips it. Time is
always passed in (``at``) or read from the injected clock: :func:`in_effect` and :func:`agent_enabled` are
pure. Stored in the shared SQLite file (table ``gov_switches``, component ``switches``); the governance
page, API and CLI are the writers to come (docs/architecture.md).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from govheal.governance import schedule
from govheal.store import connect, migrate, tx


class SwitchKind(StrEnum):
    MUTE = "mute"
    PAUSE = "pause"
    MAINTENANCE = "maintenance"


KINDS: tuple[SwitchKind, ...] = tuple(SwitchKind)
STOPS_REMEDIATION = frozenset({SwitchKind.PAUSE, SwitchKind.MAINTENANCE})
SILENCES_ALERTS = frozenset({SwitchKind.MUTE, SwitchKind.MAINTENANCE})


class Switch(BaseModel):
    """One switch on one agent; ``id`` is None until the store has it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int | None = None
    agent: str = Field(min_length=1)
    kind: SwitchKind
    owner: str = Field(min_length=1, description="who set it (a person or a tool)")
    reason: str = Field(min_length=1, description="why, in the owner's words")
    start: float = Field(description="seconds since the epoch")
    expiry: float | None = Field(None, description="seconds since the epoch; None = until removed")
    recurrence: str | None = Field(None, description="recurring windows (govheal/governance/recurrence.py, "
                                   "normalised); in effect only inside them")
    silence_ids: tuple[str, ...] = ()

    @field_validator("recurrence")
    @classmethod
    def _recurrence_parses(cls, v: str | None) -> str | None:
        if v is not None:
            schedule.compiled(v)  # RecurrenceError (a ValueError) says what is wrong
        return v

    @model_validator(mode="after")
    def _ends_after_start(self) -> Switch:
        if self.expiry is not None and self.expiry <= self.start:
            raise ValueError("expiry must be after start")
        return self

    def in_effect(self, at: float) -> bool:
        """Between start and expiry and, for a recurring switch, inside one of its windows."""
        return schedule.in_effect(self, at)


def in_effect(switches: Iterable[Switch], at: float) -> list[Switch]:
    """The switches in effect at ``at``, in the order given."""
    return [s for s in switches if s.in_effect(at)]


def kinds_in_effect(switches: Iterable[Switch], at: float) -> dict[str, frozenset[SwitchKind]]:
    """agent → the kinds in effect for it at ``at`` (agents without any are absent)."""
    out: dict[str, set[SwitchKind]] = {}
    for s in in_effect(switches, at):
        out.setdefault(s.agent, set()).add(s.kind)
    return {agent: frozenset(kinds) for agent, kinds in out.items()}


def remediation_allowed(kinds: Iterable[SwitchKind | str]) -> bool:
    """False while a pause or a maintenance is among ``kinds``."""
    return not (STOPS_REMEDIATION & {SwitchKind(k) for k in kinds})


def in_service(kinds: Iterable[SwitchKind | str]) -> bool:
    """Not in maintenance: its alerts fire (what ``govheal_agent_enabled`` publishes). A paused agent is in
    service: its alerts and messages go on, only remediation stops (the remediator skips it)."""
    return SwitchKind.MAINTENANCE not in {SwitchKind(k) for k in kinds}


def agent_enabled(switches: Iterable[Switch], agent: str, at: float) -> bool:
    """``govheal_agent_enabled`` for ``agent`` at ``at``: no maintenance in effect."""
    return in_service(s.kind for s in in_effect(switches, at) if s.agent == agent)


# ------------------------------------------------------------------------------------------------
# Store

COMPONENT = "switches"
SCHEMA = [
    """
    CREATE TABLE gov_switches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('mute', 'pause', 'maintenance')),
        owner TEXT NOT NULL, reason TEXT NOT NULL,
        start REAL NOT NULL, expiry REAL, recurrence TEXT,
        silence_ids TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL);
    CREATE INDEX gov_switches_agent ON gov_switches (agent)
    """,
]


def _row(row: Mapping[str, Any]) -> Switch:
    return Switch(id=row["id"], agent=row["agent"], kind=SwitchKind(row["kind"]), owner=row["owner"],
                  reason=row["reason"], start=row["start"], expiry=row["expiry"], recurrence=row["recurrence"],
                  silence_ids=tuple(json.loads(row["silence_ids"])))


class SwitchStore:
    """Switches in the shared SQLite file, on a connection the caller owns (one per process: govheal/state.py).

    ``lock`` serialises use of that connection with the caller's other statements; ``clock`` is wall time
    (switch times are seconds since the epoch, as shown to people and sent to Alertmanager).
    """

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time,
                 lock: threading.RLock | None = None) -> None:
        self.conn = conn
        self.clock = clock
        self.lock = lock or threading.RLock()
        with self.lock:
            migrate(conn, COMPONENT, SCHEMA)

    def add(self, switch: Switch) -> Switch:
        """Store a new switch; it comes back with its id."""
        with self.lock, tx(self.conn):
            cur = self.conn.execute(
                "INSERT INTO gov_switches (agent, kind, owner, reason, start, expiry, recurrence, silence_ids, "
                "created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (switch.agent, switch.kind.value, switch.owner, switch.reason, switch.start, switch.expiry,
                 switch.recurrence, json.dumps(list(switch.silence_ids)), self.clock()))
        return switch.model_copy(update={"id": int(cur.lastrowid or 0)})

    def get(self, switch_id: int) -> Switch | None:
        with self.lock:
            row = self.conn.execute("SELECT * FROM gov_switches WHERE id = ?", (switch_id,)).fetchone()
        return None if row is None else _row(row)

    def remove(self, switch_id: int) -> bool:
        with self.lock, tx(self.conn):
            cur = self.conn.execute("DELETE FROM gov_switches WHERE id = ?", (switch_id,))
        return cur.rowcount == 1

    def set_silences(self, switch_id: int, silence_ids: Iterable[str]) -> None:
        """Record the Alertmanager silences that carry the switch (the ids the client returned)."""
        with self.lock, tx(self.conn):
            self.conn.execute("UPDATE gov_switches SET silence_ids = ? WHERE id = ?",
                              (json.dumps(list(silence_ids)), switch_id))

    def all(self, agent: str | None = None) -> list[Switch]:
        sql, args = "SELECT * FROM gov_switches", ()
        if agent is not None:
            sql, args = sql + " WHERE agent = ?", (agent,)
        with self.lock:
            rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
        return [_row(r) for r in rows]

    def in_effect(self, agent: str | None = None, at: float | None = None) -> list[Switch]:
        return in_effect(self.all(agent), self.clock() if at is None else at)

    def enabled(self, agent: str, at: float | None = None) -> bool:
        return agent_enabled(self.all(agent), agent, self.clock() if at is None else at)


class SwitchReader:
    """For a process that only reads switches (the exporter): opens the state file on first use, reads
    every switch once per call. A file that cannot be opened raises; the caller keeps its default."""

    def __init__(self, db: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._store: SwitchStore | None = None
        self._lock = threading.Lock()

    def kinds(self) -> dict[str, frozenset[SwitchKind]]:
        """agent → kinds in effect now."""
        with self._lock:
            if self._store is None:
                self._store = SwitchStore(connect(self.db), clock=self.clock)
            store = self._store
        return kinds_in_effect(store.all(), self.clock())

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.conn.close()
                self._store = None
