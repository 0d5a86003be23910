"""govheal.store: the one way every component opens the state file."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from govheal.store import connect


def _open(path: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    barrier.wait()
    try:
        connect(Path(path)).execute("SELECT 1")
    except Exception as exc:
        errors.put(str(exc))


def test_processes_opening_a_new_state_file_at_once_all_succeed(tmp_path: Path) -> None:
    """`govheal restart` twice at once on a fresh state dir: one lost the WAL switch with an instant
    "database is locked" (SQLite skips the busy handler there) and exited 2."""
    ctx = multiprocessing.get_context("fork")
    errors: multiprocessing.Queue = ctx.Queue()
    for round_ in range(12):
        path = tmp_path / f"r{round_}" / "govheal.sqlite3"
        barrier = ctx.Barrier(6)
        procs = [ctx.Process(target=_open, args=(str(path), barrier, errors)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
