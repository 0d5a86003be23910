"""What a process looked like just before it was killed: cheap and telling, never fatal."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil

LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = LOG_TAIL_BYTES) -> list[str]:
    """The last ``lines`` lines of ``path`` (reads at most ``max_bytes`` from the end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]


def capture(pid: int | None, log_file: Path | None = None) -> dict:
    """RSS, CPU, threads, open files, status of ``pid`` and the tail of ``log_file``; missing facts are left out."""
    out: dict = {}
    if pid:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            with p.oneshot():
                out["status"] = p.status()
                out["rss_bytes"] = p.memory_info().rss
                out["threads"] = p.num_threads()
                t = p.cpu_times()
                age = max(1e-3, time.time() - p.create_time())
                out["cpu_seconds_total"] = round(t.user + t.system, 3)
                out["age_seconds"] = round(age, 1)
                # lifetime average, no blocking sample: a spinning hung agent shows near 100
                out["cpu_percent_avg"] = round(100 * (t.user + t.system) / age, 1)
            with contextlib.suppress(psutil.Error):
                out["open_files"] = p.num_fds() if hasattr(p, "num_fds") else len(p.open_files())
    if log_file is not None:
        out["log_tail"] = log_tail(log_file)
    return out
