"""govheal.store: the one way every component opens the state file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# One `govheal restart`-like process: wait for the common start time, open the state file, exit 0 or
# print the error and exit 1. Real processes (not fork from pytest's threads, whose held locks can
# deadlock a forked child that then keeps the interpreter from exiting).
OPENER = """
import sys, time
from pathlib import Path
from govheal.store import connect
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
try:
    connect(Path(sys.argv[1])).execute("SELECT 1")
except Exception as exc:
    print(exc)
    sys.exit(1)
"""


def test_processes_opening_a_new_state_file_at_once_all_succeed(tmp_path: Path) -> None:
    """`govheal restart` twice at once on a fresh state dir: one lost the WAL switch with an instant
    "database is locked" (SQLite skips the busy handler there) and exited 2."""
    failures = []
    for round_ in range(6):
        path = tmp_path / f"r{round_}" / "govheal.sqlite3"
        start_at = time.time() + 1.5  # every interpreter is up by then: they open within a millisecond
        procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), repr(start_at)], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(6)]
        for p in procs:
            try:
                out, _ = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
                failures.append(f"round {round_}: an opener hung for 30 s")
                continue
            if p.returncode != 0:
                failures.append(f"round {round_}: exit {p.returncode}: {out.strip()}")
    assert failures == []
