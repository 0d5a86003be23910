"""The audit trail: one JSON line per decision/action in the telemetry log, rotated without losing a line.

Rotation is size-based: ``autoheal.log`` → ``autoheal.log.1`` → … → ``.N`` (the oldest beyond N is
dropped, by design). Every write takes an exclusive ``flock`` on ``<log>.lock``, so two processes
(receiver + CLI) never interleave, and a writer whose file was rotated by the other process notices the
inode change and reopens before writing: no line lands in a renamed file after it was rotated away.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from govheal.errors import UsageError, path_problem
from govheal.fsmode import open_private, private_dir, tighten
from remediator.api import Event

DEFAULT_MAX_BYTES = 10 * 2**20
DEFAULT_BACKUPS = 5


class AuditLog:
    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        try:
            private_dir(path.parent)  # the log holds diagnostics and log tails: 0700 / 0600 when we create it
            self._lockfile = open_private(path.with_name(path.name + ".lock"))
            for old in [path, *path.parent.glob(path.name + ".*")]:  # left readable by an older version
                tighten(old)
        except OSError as exc:
            raise UsageError(f"telemetry_log: cannot create {path}: {path_problem(path, exc)}; set telemetry_log in "
                             "the config to a file in a directory this user can write") from None
        self._f = None

    def _reopen_if_rotated(self) -> None:
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if self._f is None or current != os.fstat(self._f.fileno()).st_ino:
            if self._f is not None:
                self._f.close()
            self._f = open_private(self.path)

    def _rotate(self) -> None:
        assert self._f is not None
        self._f.close()
        self._f = None
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))  # a rename keeps its 0600
        self._f = open_private(self.path)

    def write(self, event: Event) -> None:
        line = (json.dumps(event.to_dict(), sort_keys=True, default=str) + "\n").encode()
        with self._lock:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX)
            try:
                self._reopen_if_rotated()
                assert self._f is not None
                if self._f.tell() > 0 and self._f.tell() + len(line) > self.max_bytes and self.backups > 0:
                    self._rotate()
                self._f.write(line)
                self._f.flush()
            finally:
                fcntl.flock(self._lockfile, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None
            self._lockfile.close()


def read_events(path: Path) -> list[dict]:
    """Every event in ``path`` and its rotated files, oldest first (for tests and the ops page)."""
    files = sorted(path.parent.glob(path.name + ".*[0-9]"), key=lambda p: -int(p.suffix[1:]))
    out: list[dict] = []
    for f in [*files, path]:
        if f.exists():
            out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out
