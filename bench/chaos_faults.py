"""The faults ``make chaos`` injects, and the lanes that inject them (one per agent, plus govheal's own).

An agent's lane waits until its agent is healthy, waits a random 8-13 s from its previous fault (random
phases against the scrape and evaluation ticks), injects one fault and watches the agent every 100 ms
until a new process answers ``/health`` (or, for the slow-but-healthy agent, until its window is over).
The lane of govheal's own faults runs beside them at random times.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.chaos_stack import Stack
from govheal.procs import child_env
from govheal.testing.support import PYTHON, http_post

HEALABLE = ("crash", "sigkill", "hang", "unanswering", "unhealthy", "receiver_sigkill_mid_restart")
AGENT_KINDS = {"crash": 22, "sigkill": 20, "hang": 15, "unanswering": 15, "unhealthy": 15, "slow": 8,
               "crash_loop": 2}
SLOW_SECONDS = 0.12  # 60 % of the 200 ms probe timeout: healthy, only slow
SLOW_WINDOW = 15.0
HEAL_TIMEOUT = 150.0


@dataclass
class Fault:
    id: int
    kind: str
    agent: str | None
    start: float  # wall clock
    old_pid: int | None = None
    pids: list[int] = field(default_factory=list)  # new processes seen while watching
    healthy_at: float | None = None
    end: float | None = None  # the end of its window (next fault on the lane, or the run's end)
    duration: float = 0.0  # govheal's own faults: how long it was held
    outage: tuple[float, float] | None = None  # the receiver killed by this fault: down from, ready again at
    notes: list[str] = field(default_factory=list)

    @property
    def healable(self) -> bool:
        return self.kind in HEALABLE


class Run:
    """Shared by the lanes: the stack, the fault list, the clock of the run."""

    def __init__(self, stack: Stack, seed: int, until: float, target: int, out: Callable[[str], None]) -> None:
        self.stack = stack
        self.rng = random.Random(seed)
        self.until = until
        self.target = target
        self.out = out
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.crash_loops = 0
        self.crash_loop_busy = False
        self.requests: dict[str, str] = {}  # agent → a kind the own-fault lane wants next on it
        self.channel_outages = 0  # alternates the channel that answers 500

    def new(self, kind: str, agent: str | None) -> Fault:
        with self.lock:
            f = Fault(len(self.faults) + 1, kind, agent, time.time())
            self.faults.append(f)
            done = sum(1 for x in self.faults if x.agent is not None)
        if done % 25 == 0 and agent is not None:
            self.out(f"  {done} agent faults injected ({time.strftime('%H:%M:%S')})")
        return f

    def agent_faults(self) -> int:
        with self.lock:
            return sum(1 for f in self.faults if f.agent is not None)

    def more(self) -> bool:
        return not self.stop.is_set() and time.time() < self.until and self.agent_faults() < self.target


# -- one agent's lane ------------------------------------------------------------------------------------

def lane(run: Run, name: str) -> None:
    stack = run.stack
    agent = stack.agents[name]
    last = 0.0
    rng = random.Random(run.rng.random())
    while run.more():
        if not wait_healthy(stack, name, 60):
            f = run.new("stuck", name)
            f.notes.append("not healthy for 60 s before its next fault; failing back to recover it")
            failback(stack, name, "chaos: a lane found it down")
            continue
        settled = max((f.healthy_at or 0.0) for f in run.faults if f.agent == name) if last else 0.0
        # a random phase 8-13 s after the previous fault (never 3 in the 15 s budget window), and not before its
        # restart is verified (3 x 200 ms after the first healthy answer) and its alert had a scrape to resolve
        if not last:  # the lanes' first faults at random phases too, not all six at the same instant
            time.sleep(rng.uniform(0.0, 5.0))
        time.sleep(max(0.0, last + rng.uniform(8, 13) - time.time(), settled + 3.0 - time.time()))
        if not run.more():
            return
        kind = run.requests.pop(name, None) or rng.choices(list(AGENT_KINDS), list(AGENT_KINDS.values()))[0]
        if kind == "crash_loop":
            with run.lock:
                if run.crash_loop_busy or run.crash_loops >= 8:
                    kind = "crash"
                else:
                    run.crash_loop_busy, run.crash_loops = True, run.crash_loops + 1
        fault = run.new(kind, name)
        fault.old_pid = agent.pid
        last = fault.start
        try:
            INJECT[kind](run, fault)
        except Exception as exc:
            fault.notes.append(f"harness error: {type(exc).__name__}: {exc}")
        finally:
            if kind == "crash_loop":
                run.crash_loop_busy = False


def wait_healthy(stack: Stack, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok, _ = stack.healthy(name)
        if ok:
            return True
        time.sleep(0.2)
    return False


def watch(run: Run, fault: Fault, timeout: float = HEAL_TIMEOUT) -> None:
    """Until a process other than the faulted one answers /health (new pids noted on the way). As the
    heal-latency benchmark does it: the pidfile every 10 ms, ``/health`` only once a new pid shows (polling
    six agents' ``/health`` every 10 ms would load the two cores it measures)."""
    deadline = time.monotonic() + timeout
    agent = run.stack.agents[fault.agent or ""]
    while time.monotonic() < deadline and not run.stop.is_set():
        pid = agent.pid
        if pid and pid != fault.old_pid:
            if pid not in fault.pids:
                fault.pids.append(pid)
            ok, _ = run.stack.healthy(fault.agent or "")
            if ok:
                fault.healthy_at = time.time()
                return
        time.sleep(0.01)
    fault.notes.append(f"not healthy within {timeout:.0f}s")


def post(stack: Stack, name: str, path: str) -> None:
    http_post(stack.agents[name].url + path, timeout=2)


def crash(run: Run, f: Fault) -> None:
    post(run.stack, f.agent or "", "/fault/crash?code=1")
    watch(run, f)


def sigkill(run: Run, f: Fault) -> None:
    if f.old_pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(f.old_pid, signal.SIGKILL)
    watch(run, f)


def hang(run: Run, f: Fault) -> None:
    if f.old_pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(f.old_pid, signal.SIGSTOP)
    watch(run, f)
    if f.old_pid:  # healed means the old one was killed; if not, let it go on
        with contextlib.suppress(ProcessLookupError):
            os.kill(f.old_pid, signal.SIGCONT)


def unanswering(run: Run, f: Fault) -> None:
    post(run.stack, f.agent or "", "/fault/hang")
    watch(run, f)


def unhealthy(run: Run, f: Fault) -> None:
    post(run.stack, f.agent or "", "/fault/unhealthy")
    watch(run, f)


def slow(run: Run, f: Fault) -> None:
    """Healthy but slow (60 % of its probe timeout): must never be restarted."""
    name = f.agent or ""
    post(run.stack, name, f"/fault/slow?seconds={SLOW_SECONDS}")
    deadline = time.monotonic() + SLOW_WINDOW
    while time.monotonic() < deadline and not run.stop.is_set():
        pid = run.stack.agents[name].pid
        if pid and pid != f.old_pid and pid not in f.pids:
            f.pids.append(pid)
        time.sleep(0.2)
    post(run.stack, name, "/fault/recover")
    f.healthy_at = time.time()


def crash_loop(run: Run, f: Fault) -> None:
    """Every restart fails (a poison file the agent refuses to start with): the circuit must open within its
    budget, fail over once to Standby and send one CRIT; then the harness repairs it and fails back."""
    name = f.agent or ""
    poison = run.stack.poison / name
    poison.write_text("chaos\n")
    post(run.stack, name, "/fault/crash?code=1")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not run.stop.is_set():
        if any(e["agent"] == name and e["outcome"] == "failover_started" and e["time"] >= f.start
               for e in run.stack.audit()):
            break
        time.sleep(0.25)
    else:
        f.notes.append("no failover within 90 s")
    time.sleep(8)  # AgentCircuitOpen fires, is announced, and its failover request is a duplicate
    poison.unlink(missing_ok=True)
    f.notes.append(failback(run.stack, name, "chaos: poison removed"))
    watch(run, f, timeout=60)


def failback(stack: Stack, name: str, reason: str) -> str:
    done = subprocess.run([PYTHON, "-m", "govheal", "restart", name, "--failback", "--reason", reason, "--owner",
                           "chaos", "--config", str(stack.config)], capture_output=True, text=True, timeout=120,
                          cwd=stack.base, env=child_env(), check=False)
    return f"failback exit {done.returncode}: {(done.stdout or done.stderr).strip()[:200]}"


def receiver_sigkill_mid_restart(run: Run, f: Fault) -> None:
    """Crash the agent, then SIGKILL the receiver while it restarts it (``govheal up`` restarts the receiver)."""
    name = f.agent or ""
    post(run.stack, name, "/fault/crash?code=1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e["agent"] == name and e["outcome"] == "restarting" and e["time"] >= f.start
               for e in run.stack.audit()):
            time.sleep(run.rng.uniform(0.0, 0.4))
            pid = run.stack.signal("receiver", signal.SIGKILL)
            killed = time.time()
            f.notes.append(f"receiver pid {pid} SIGKILLed {killed - f.start:.2f}s after the fault")
            threading.Thread(target=_receiver_outage, args=(run, f, killed), daemon=True).start()
            break
        time.sleep(0.02)
    else:
        f.notes.append("no restart seen within 30 s: the receiver was not killed")
    watch(run, f)


def _receiver_outage(run: Run, f: Fault, killed: float) -> None:
    """How long the receiver was away: every other agent's fault in that window is not a clean one."""
    time.sleep(0.2)  # the killed one may still answer from its socket backlog for an instant
    while not run.stop.is_set() and time.time() - killed < 120:
        if run.stack.receiver_ready():
            f.outage = (killed, time.time())
            f.notes.append(f"receiver ready again {time.time() - killed:.2f}s after the kill")
            return
        time.sleep(0.05)


INJECT: dict[str, Callable[[Run, Fault], None]] = {
    "crash": crash, "sigkill": sigkill, "hang": hang, "unanswering": unanswering, "unhealthy": unhealthy,
    "slow": slow, "crash_loop": crash_loop, "receiver_sigkill_mid_restart": receiver_sigkill_mid_restart,
}


# -- govheal's own faults --------------------------------------------------------------------------------

OWN = ["receiver_sigkill_mid_restart"] * 6 + ["alertmanager_stop", "alertmanager_freeze_60s"] * 2 + \
    ["prometheus_restart"] * 2 + ["channel_500_60s", "channel_429"] * 2 + ["disk_full_30s"] * 2


def own_lane(run: Run, duration: float) -> None:
    kinds = list(OWN)
    run.rng.shuffle(kinds)
    # 300 faults usually take ~10 minutes: spread govheal's own faults over the first 8 so all of them run
    start, span = time.time() + 30, max(60.0, min(duration, 600.0) - 120)
    gap = span / len(kinds)  # spread out, one at a time (each is held up to 60 s), each at a random phase
    slots = [start + i * gap + run.rng.uniform(0, gap / 3) for i in range(len(kinds))]
    for at, kind in zip(slots, kinds, strict=True):
        while time.time() < at:
            if run.stop.wait(0.5):
                return
        if not run.more():
            return
        if kind == "receiver_sigkill_mid_restart":
            run.requests[run.rng.choice(list(run.stack.agents))] = kind
            continue
        if kind == "disk_full_30s" and not run.stack.tmpfs.startswith("tmpfs"):
            run.new(kind, None).notes.append(run.stack.tmpfs)
            continue
        fault = run.new(kind, None)
        run.out(f"  own fault: {kind} at {time.strftime('%H:%M:%S')}")
        try:
            OWN_INJECT[kind](run, fault)
        except Exception as exc:
            fault.notes.append(f"harness error: {type(exc).__name__}: {exc}")
        fault.duration = time.time() - fault.start


def alertmanager_stop(run: Run, f: Fault) -> None:
    f.notes.append(f"SIGTERM to alertmanager pid {run.stack.signal('alertmanager', signal.SIGTERM)}")
    wait_component(run, f, "alertmanager")


def alertmanager_freeze_60s(run: Run, f: Fault) -> None:
    proc = run.stack.component("alertmanager")
    if proc is None:
        f.notes.append("no alertmanager running")
        return
    proc.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and not run.stop.is_set():
        if not proc.is_running() or proc.status() == "zombie":
            f.notes.append(f"govheal up killed the frozen alertmanager after {time.monotonic() - t0:.1f}s")
            break
        time.sleep(0.2)
    with contextlib.suppress(Exception):
        proc.send_signal(signal.SIGCONT)
    wait_component(run, f, "alertmanager")


def prometheus_restart(run: Run, f: Fault) -> None:
    f.notes.append(f"SIGTERM to prometheus pid {run.stack.signal('prometheus', signal.SIGTERM)}")
    wait_component(run, f, "prometheus")


def wait_component(run: Run, f: Fault, kind: str) -> None:
    t0 = time.monotonic()
    time.sleep(1.0)
    while time.monotonic() - t0 < 90:
        proc = run.stack.component(kind)
        if proc is not None and proc.status() != "zombie":
            f.notes.append(f"{kind} running again after {time.monotonic() - t0:.1f}s (pid {proc.pid})")
            return
        time.sleep(0.2)
    f.notes.append(f"{kind} not back within 90 s")


def channel_500_60s(run: Run, f: Fault) -> None:
    run.channel_outages += 1
    fake, name = (run.stack.discord, "discord") if run.channel_outages % 2 else (run.stack.telegram, "telegram")
    body = {"message": "500: Internal Server Error", "code": 0} if name == "discord" else \
        {"ok": False, "error_code": 500, "description": "Internal Server Error"}
    fake.hold(500, body)
    f.notes.append(f"{name} answers 500")
    run.stop.wait(60)
    fake.release()


def channel_429(run: Run, f: Fault) -> None:
    run.stack.discord.inject(429, {"message": "You are being rate limited.", "retry_after": 3.0, "global": False},
                             {"Retry-After": "3"}, times=6)
    run.stack.telegram.inject(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                                    "parameters": {"retry_after": 3}}, times=6)
    f.notes.append("6 x 429 retry_after 3 s on each channel")
    run.stop.wait(20)


def disk_full_30s(run: Run, f: Fault) -> None:
    filler = run.stack.state / "chaos-filler"
    total, _, free = shutil.disk_usage(run.stack.state)
    with open(filler, "wb") as out:
        chunk = b"\0" * (1 << 20)
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
                out.flush()
    f.notes.append(f"filled {free >> 20} MiB of {total >> 20} MiB")
    run.stop.wait(30)
    filler.unlink(missing_ok=True)


OWN_INJECT: dict[str, Callable[[Run, Fault], None]] = {
    "alertmanager_stop": alertmanager_stop, "alertmanager_freeze_60s": alertmanager_freeze_60s,
    "prometheus_restart": prometheus_restart, "channel_500_60s": channel_500_60s, "channel_429": channel_429,
    "disk_full_30s": disk_full_30s,
}
