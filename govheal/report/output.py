"""Where a report goes, written atomically; kept locally while its volume is absent; never overwriting a
verified one.

``reports.dir`` may live on an external volume (the seed's does). If that volume is not mounted, creating
the directory would silently write onto the startup disk under ``/Volumes`` instead: so a missing volume
is an error that names it, and the report waits in ``reports.pending_dir`` (default
``<state_dir>/reports-pending``) until a later run finds the volume back and moves it over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govheal.config import Config
from govheal.errors import GovhealError, path_problem
from govheal.report.model import Destination

SUFFIXES = (".log", ".json")


class VerifiedExists(GovhealError):
    """The slot already has a verified report in the destination; it is never overwritten."""


@dataclass(frozen=True)
class Target:
    directory: Path  # reports.dir
    pending: Path
    volume: Path | None
    problem: str  # non-empty: write to `pending`

    @property
    def where(self) -> Path:
        return self.pending if self.problem else self.directory

    def destination(self) -> Destination:
        return Destination(str(self.directory), str(self.where), self.problem)


def volume_of(directory: Path, explicit: str | None, config: Config) -> Path | None:
    """The mount point the directory must be on: ``reports.volume``, else ``/Volumes/<name>`` for a macOS path."""
    if explicit:
        return config.path(explicit)
    parts = directory.parts
    if len(parts) >= 3 and parts[0] == "/" and parts[1] == "Volumes":
        return Path("/", "Volumes", parts[2])
    return None


def target(config: Config, out: str | None = None, is_mount: Callable[[Path], bool] = os.path.ismount) -> Target:
    spec = config.reports
    directory = Path(os.path.expanduser(out)).resolve() if out else config.path(spec.dir)
    pending = config.path(spec.pending_dir) if spec.pending_dir else config.state_path / "reports-pending"
    volume = None if out else volume_of(directory, spec.volume, config)
    problem = ""
    if volume is not None and not is_mount(volume):
        problem = (f"volume {volume} is not mounted (reports.dir {directory}): the report is kept in {pending} "
                   "until it is back")
    else:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK | os.X_OK):
                problem = f"reports.dir {directory} is not writable by this user: the report is kept in {pending}"
        except OSError as exc:
            problem = f"reports.dir {directory}: {path_problem(directory, exc)}: the report is kept in {pending}"
    return Target(directory, pending, volume, problem)


def is_verified(json_path: Path) -> bool:
    try:
        return bool(json.loads(json_path.read_text(encoding="utf-8")).get("passed"))
    except (OSError, ValueError, AttributeError):
        return False


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    with contextlib.suppress(OSError):  # the rename itself durable (not supported everywhere)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write(t: Target, stem: str, text: str, data: dict[str, Any]) -> Path:
    """Write ``<stem>.json`` then ``<stem>.log`` atomically into ``t.where``; the .log path.

    A verified report of the same slot in the destination (or waiting in the pending dir) is never replaced.
    """
    for where in {t.directory, t.pending}:
        if is_verified(where / f"{stem}.json"):
            raise VerifiedExists(f"{where / stem}.log is a verified report; it is never overwritten")
    where = t.where
    try:
        where.mkdir(parents=True, exist_ok=True)
        _atomic(where / f"{stem}.json", (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
                .encode())
        _atomic(where / f"{stem}.log", text.encode())
    except OSError as exc:
        raise GovhealError(f"cannot write the report to {where}: {path_problem(where, exc)}; fix reports.dir / "
                           "reports.pending_dir or their permissions") from None
    return where / f"{stem}.log"


def flush_pending(t: Target) -> list[Path]:
    """Move reports that waited for the volume into ``reports.dir``, once it is there; the moved .log paths."""
    if t.problem or not t.pending.is_dir():
        return []
    moved = []
    for log in sorted(t.pending.glob("CLS_DAILY_*.log")):
        stem = log.stem
        dest_json = t.directory / f"{stem}.json"
        if is_verified(dest_json):
            continue  # the destination has a verified one (another host?): never replaced; this copy stays
        for suffix in (".json", ".log"):
            src = t.pending / f"{stem}{suffix}"
            if src.exists():
                _atomic(t.directory / src.name, src.read_bytes())
        for suffix in (".json", ".log"):
            with contextlib.suppress(FileNotFoundError):
                (t.pending / f"{stem}{suffix}").unlink()
        moved.append(t.directory / log.name)
    with contextlib.suppress(OSError):
        if not any(t.pending.iterdir()):
            shutil.rmtree(t.pending)
    return moved
