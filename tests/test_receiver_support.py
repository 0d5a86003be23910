"""Helpers for the receiver tests (no tests here): config, payloads, doubles of the remediator and bridge APIs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from govheal.config import Config
from govheal.seams import parse_config
from remediator.api import Event, Request, Result, UnknownAgent

TOKEN = "t0k3n-for-tests-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def receiver_config(tmp: Path, extra: str = "", receiver: str = "") -> Config:
    text = f"""
node: n1
state_dir: state
receiver: {{max_body_bytes: 65536, workers: 2, deadman_timeout: 60s{receiver}}}
{extra}
agents:
  - name: GG
    health: {{url: "http://127.0.0.1:9/health"}}
  - name: Mary
    health: {{url: "http://127.0.0.1:9/health"}}
  - name: Remote
    node: n2
    health: {{url: "http://127.0.0.1:9/health"}}
"""
    path = tmp / "govheal.yaml"
    path.write_text(text)
    return parse_config(text, source=path)


def alert(agent: str | None = "GG", *, status: str = "firing", fp: str = "0f0c5c23f0baf7cb",
          starts: str = "2026-11-29T15:39:23.117Z", remediation: str | None = "restart", **labels: str) -> dict:
    lab = {"alertname": "AgentDown", "severity": "critical", **labels}
    if agent is not None:
        lab["agent"] = agent
    if remediation is not None:
        lab["remediation"] = remediation
    return {"status": status, "labels": lab,
            "annotations": {"summary": f"Agent {agent} is down", "description": "agent_up has been 0",
                            "runbook_url": "https://runbooks.example.invalid/AgentDown"},
            "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fp}


def payload(*alerts: dict, **extra: Any) -> dict:
    body = {"receiver": "remediator", "status": "firing", "alerts": list(alerts), "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
            "version": "4", "groupKey": "{}:{alertname=\"AgentDown\"}", "truncatedAlerts": 0}
    body.update(extra)
    return body


def body(*alerts: dict, **extra: Any) -> bytes:
    return json.dumps(payload(*alerts, **extra)).encode()


class FakeRemediator:
    """Follows remediator/engine.py's Remediator API; records calls; ``outcome`` decides the Result."""

    def __init__(self, known: list[str], outcome: str = "healed", gate: threading.Event | None = None) -> None:
        self.known = known
        self.outcome = outcome
        self.gate = gate
        self.submitted: list[Request] = []
        self.resolved: list[tuple[str, str]] = []
        self.listeners: list[Callable[[Event], None]] = []
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self.listeners.append(listener)

    def submit(self, req: Request, *, dry_run: bool = False) -> Result:
        if req.agent not in self.known:
            raise UnknownAgent(req.agent, self.known)
        with self.lock:
            self.submitted.append(req)
            self.calls.append(f"submit:{req.agent}")
        for listener in self.listeners:
            listener(Event(time=0.0, agent=req.agent, node="n1", incident=req.incident, action=req.action,
                           outcome="restarting", duration_seconds=0.0, old_pid=812, new_pid=None, reason="",
                           attempt=1))
        if self.gate is not None:
            self.gate.wait(10)
        return Result(agent=req.agent, node="n1", incident=req.incident, action=req.action, outcome=self.outcome,
                      attempts=1, duration_seconds=2.34, old_pid=812, new_pid=905, reason="", circuit="closed")

    def resolve(self, agent: str, incident: str) -> None:
        with self.lock:
            self.resolved.append((agent, incident))
            self.calls.append(f"resolve:{agent}")

    def close(self) -> None:
        pass


class FakeBridge:
    """Follows webhook_receiver/bridge's Bridge API: records notices."""

    def __init__(self, fail: bool = False) -> None:
        self.notices: list[Any] = []
        self.direct: list[Any] = []
        self.dedupe_ids: list[str | None] = []
        self.fail = fail
        self.lock = threading.Lock()

    def notify(self, notice: Any, *, dedupe_id: str | None = None) -> bool:
        if self.fail:
            raise RuntimeError("outbox unavailable")
        with self.lock:
            self.notices.append(notice)
            self.dedupe_ids.append(dedupe_id)
        return True

    def send_direct(self, notice: Any, *, dedupe_id: str | None = None) -> bool:
        with self.lock:
            self.direct.append(notice)
        return True

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        pass

    def depth(self) -> dict[str, int]:
        return {}
