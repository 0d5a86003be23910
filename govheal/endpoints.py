"""Where Prometheus and the Alertmanagers are: govheal.yaml's keys, else what ``govheal up`` started.

``govheal up`` records the servers it started in ``<state_dir>/endpoints.json`` once they are ready and
removes the file when it stops, so ``govheal check`` and every later command run with the same config find
them without flags. ``prometheus.url`` and ``alertmanager.urls`` in the config win over the record (a
Prometheus you run yourself); a record whose ``govheal up`` is gone is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import requests
from pydantic import BaseModel, ConfigDict, ValidationError

from govheal.client import DEFAULT_TIMEOUT, Alertmanagers, Prometheus
from govheal.config import Config
from govheal.errors import UsageError
from govheal.procs import pid_running

FILE_NAME = "endpoints.json"


class RecordedStack(BaseModel):
    """What one ``govheal up`` started (base URLs)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    pid: int
    prometheus: str
    alertmanagers: list[str]
    exporter: str | None = None
    receiver: str | None = None
    started_at: float = 0.0


class NoEndpoint(UsageError):
    """Neither the config nor a running ``govheal up`` says where a server is."""


def record_path(config: Config) -> Path:
    return config.state_path / FILE_NAME


def record(config: Config, stack: RecordedStack) -> Path:
    """Write the record atomically (readers never see half a file), private to this user."""
    path = record_path(config)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(stack.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)
    return path


def recorded(config: Config) -> RecordedStack | None:
    """The record of a ``govheal up`` that is still running, else None (missing, unreadable or stale)."""
    try:
        stack = RecordedStack.model_validate(json.loads(record_path(config).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
    return stack if pid_running(stack.pid) else None


def forget(config: Config, pid: int) -> None:
    """Remove the record if ``pid`` wrote it (a later ``govheal up`` may have replaced it)."""
    path = record_path(config)
    try:
        owner = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if owner == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@dataclass(frozen=True)
class Endpoints:
    """Base URLs, and where each came from (for messages)."""

    prometheus: str | None
    alertmanagers: tuple[str, ...]
    prometheus_from: str = ""
    alertmanagers_from: str = ""


def resolve(config: Config) -> Endpoints:
    stack = recorded(config)
    by_up = f"recorded by govheal up pid {stack.pid} in {record_path(config)}" if stack else ""
    where = str(config.source) if config.source else "the config"
    if config.prometheus.url:
        prom, prom_from = config.prometheus.url, f"prometheus.url in {where}"
    else:
        prom, prom_from = (stack.prometheus, by_up) if stack else (None, "")
    if config.alertmanager.urls:
        ams, ams_from = tuple(config.alertmanager.urls), f"alertmanager.urls in {where}"
    else:
        ams, ams_from = (tuple(stack.alertmanagers), by_up) if stack else ((), "")
    return Endpoints(prom, ams, prom_from, ams_from)


def _missing(config: Config, key: str, what: str) -> NoEndpoint:
    where = config.source or "govheal.yaml"
    return NoEndpoint(f"no {what} known: set {key} in {where}, or start the stack with `govheal up --config {where}` "
                      f"(it records what it started in {record_path(config)})")


def prometheus_for(config: Config, session: requests.Session, *, timeout: float = DEFAULT_TIMEOUT) -> Prometheus:
    url = resolve(config).prometheus
    if url is None:
        raise _missing(config, "prometheus.url", "Prometheus URL")
    return Prometheus(url, session, timeout=timeout)


def alertmanagers_for(config: Config, session: requests.Session, *,
                      timeout: float = DEFAULT_TIMEOUT) -> Alertmanagers:
    urls = resolve(config).alertmanagers
    if not urls:
        raise _missing(config, "alertmanager.urls", "Alertmanager URL")
    return Alertmanagers.from_urls(urls, session, timeout=timeout)
