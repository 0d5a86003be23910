"""Read one process's liveness and resources, reusing psutil.Process objects between scrapes."""

from __future__ import annotations

import psutil

from exporter.snapshot import ProcessReading


class ProcessTable:
    """Cache of psutil.Process keyed by PID; an entry is replaced when the PID was reused
    (psutil compares PID + create time), and dropped when not asked for in a scrape."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._seen: set[int] = set()

    def read(self, pid: int) -> tuple[ProcessReading, str | None]:
        """The reading, plus a READ_ERROR_REASONS value when part of it could not be read."""
        self._seen.add(pid)
        try:
            proc = self._procs.get(pid)
            if proc is None or not proc.is_running():
                proc = psutil.Process(pid)
                self._procs[pid] = proc
        except psutil.NoSuchProcess:  # a stale PID (crashed agent, leftover pidfile): not running
            self._procs.pop(pid, None)
            return ProcessReading(pid, running=False), None
        except psutil.AccessDenied:
            return ProcessReading(pid, running=True), "access_denied"
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return ProcessReading(pid, running=False), None
                start = proc.create_time()
                try:
                    cpu_t = proc.cpu_times()
                    cpu = cpu_t.user + cpu_t.system
                    rss = proc.memory_info().rss
                except psutil.AccessDenied:  # alive but not ours to read (e.g. macOS, another user)
                    return ProcessReading(pid, running=True, start_time=start), "access_denied"
        except psutil.ZombieProcess:
            return ProcessReading(pid, running=False), None
        except psutil.NoSuchProcess:  # exited between finding and reading it
            self._procs.pop(pid, None)
            return ProcessReading(pid, running=False), "vanished"
        except psutil.AccessDenied:
            return ProcessReading(pid, running=True), "access_denied"
        return ProcessReading(pid, running=True, start_time=start, cpu_seconds=cpu, rss_bytes=rss), None

    def end_scrape(self) -> None:
        """Forget processes no agent pointed at this scrape."""
        for pid in set(self._procs) - self._seen:
            del self._procs[pid]
        self._seen.clear()
