#!/usr/bin/env python3
"""A fake ``launchctl``/``systemctl`` for the remediator tests (symlinked under both names).

It records its argv (one JSON line in $FAKE_SUPERVISOR_LOG) and acts on a real demo agent described in
$FAKE_SUPERVISOR_STATE (JSON): {"mode": "ok"|"fail"|"hang", "kill_grace": 2.0,
"services": {"<label or unit>": {"argv": [...], "pidfile": "...", "log": "..."}}}.
A restart is what launchd/systemd do: SIGTERM the running instance, SIGKILL after kill_grace, start
the argv detached. On macOS/systemd hosts the real programs are used; these stand in for them here.
"""

import json
import os
import signal
import subprocess
import sys
import time


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def read_pid(svc):
    try:
        with open(svc["pidfile"]) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def stop(pid, grace):
    for sig in (signal.SIGTERM, signal.SIGCONT):
        try:
            os.kill(pid, sig)
        except OSError:
            return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.02)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.02)


def start(svc):
    with open(svc.get("log", os.devnull), "ab") as log:
        subprocess.Popen(svc["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)


def main():
    prog = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    with open(os.environ["FAKE_SUPERVISOR_LOG"], "a") as f:
        f.write(json.dumps([prog, *args]) + "\n")
    with open(os.environ["FAKE_SUPERVISOR_STATE"]) as f:
        state = json.load(f)
    words = [a for a in args if not a.startswith("-")]
    verb, name = words[0], words[-1].rsplit("/", 1)[-1]
    svc = state["services"].get(name)
    if svc is None:
        print(f"Could not find service {name!r}", file=sys.stderr)
        return 113 if prog == "launchctl" else 5
    if verb in ("print", "show"):
        pid = read_pid(svc)
        if prog == "launchctl":
            print(f"{words[-1]} = {{\n\tpid = {pid}\n}}" if pid else "")
            return 0 if pid else 113
        print(pid or 0)
        return 0
    mode = state.get("mode", "ok")
    if mode == "hang":
        time.sleep(3600)
    if mode == "fail":
        print("Job failed: the unit could not be started", file=sys.stderr)
        return 1
    pid = read_pid(svc)
    if pid and ("-k" in args or verb == "restart"):
        stop(pid, state.get("kill_grace", 2.0))
    if pid is None or "-k" in args or verb == "restart":
        start(svc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
