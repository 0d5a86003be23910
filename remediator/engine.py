"""The Remediator: policy + strategies + verification + store + audit + metrics, one action per agent.

``submit`` is blocking. For a ``restart`` it: rejects unknown agents; skips paused/disabled agents and
agents without a restart; dedupes by incident; takes the agent's lock (threads) and lease (processes);
waits (bounded) for ``depends_on`` agents that are down; returns ``already_recovered`` if the agent is
healthy now; otherwise restarts and verifies, with backoff between attempts, until healed or the budget
is spent, which opens the circuit (a CRIT event) and runs the failover when one is configured.

After ``cooldown`` an open circuit is half-open: :meth:`run_due_trials` (run every ``TRIAL_POLL`` by a
thread of a long-lived Remediator, the receiver's) makes the one trial restart for the incident that is
still open, so an agent that can be healed again is healed without an operator or a new alert.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry

from govheal.config import Agent, Config, PolicySpec
from govheal.procs import allowlisted_env
from govheal.serving import fallback_name
from govheal.state import State
from govheal.store import db_path
from remediator import policy as pol
from remediator.api import (
    ACTIONS,
    Action,
    Event,
    Outcome,
    RemediationError,
    Request,
    Result,
    SkipReason,
    Step,
    UnknownAgent,
)
from remediator.audit import AuditLog
from remediator.diagnostics import capture
from remediator.metrics import RemediatorMetrics
from remediator.store import DONE, IN_PROGRESS, REMEDIATOR, Incident, Store
from remediator.strategies import Refused, Strategy, StrategyError, default_strategies
from remediator.verify import Observation, find_pid, observe, verify

log = logging.getLogger("govheal.remediator")

LEASE_POLL = 0.1
FAILOVER_COMMAND_TIMEOUT = 30.0
TRIAL_POLL = 1.0  # seconds between looks for half-open circuits due a trial (one SELECT per agent)


class Remediator:
    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        registry: CollectorRegistry | None = None,
        audit: AuditLog | None = None,
        strategies: Mapping[str, Strategy] | None = None,
        look: Callable[[Config, Agent], Observation] = observe,
        state: State | None = None,
        trials: bool = True,
    ) -> None:
        """``state``: the process's state object (the receiver's), which hands the store its connection.
        ``trials``: run half-open trials in a background thread (the receiver); a one-shot CLI passes False."""
        self.config = config
        if store is None:
            store = Store(state.path, conn=state.connection(REMEDIATOR)) if state is not None \
                else Store(db_path(config.state_path))
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.audit = audit if audit is not None else AuditLog(config.path(config.telemetry_log))
        self.strategies: Mapping[str, Strategy] = strategies if strategies is not None else default_strategies()
        self.look = look
        self.owner = self.store.new_owner()
        self._locks = {a.name: threading.Lock() for a in config.agents}
        self._listeners: list[Callable[[Event], None]] = []
        self.metrics = RemediatorMetrics(config, registry, self.circuit_state) if registry is not None else None
        self._stop = threading.Event()
        self._trials: threading.Thread | None = None
        if trials:
            self._trials = threading.Thread(target=self._trial_loop, name="rem-half-open-trials", daemon=True)
            self._trials.start()

    # -- public -------------------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """``listener`` is called for every Event (progress "restarting", then the outcome)."""
        self._listeners.append(listener)

    def circuit_state(self, agent: str) -> str:
        a = self._agent(agent)
        return pol.refresh(self._policy(a), self.store.circuit(a.name), self.clock()).state

    def submit(self, req: Request, *, dry_run: bool = False) -> Result:
        """Blocking; one action per agent at a time (across threads and processes)."""
        agent = self._agent(req.agent)
        if req.action not in ACTIONS:
            raise RemediationError(f"unknown action {req.action!r}; use one of: {', '.join(ACTIONS)}")
        if dry_run:
            return self._result(agent, req, Outcome.SKIPPED, reason="dry run: " + self.plan(req))
        start = self.clock()
        skip = self._skip_reason(agent, req) or self._failover_gate(agent, req)
        if skip is not None:
            label, why = skip
            return self._finish(agent, req, Outcome.SKIPPED, start, reason=why, skip_label=label)
        pid = find_pid(self.config, agent)
        inc, created = self.store.open_incident(agent.name, req.incident, start, pid, req.reason, req.source,
                                                req.action)
        if not created and (dup := self._duplicate(inc)):
            return self._finish(agent, req, Outcome.DUPLICATE, start, reason=dup)
        lock = self._locks[agent.name]
        with lock:
            holder = self._acquire_lease(agent)
            if holder is not None:
                return self._finish(agent, req, Outcome.SKIPPED, start, skip_label=SkipReason.BUSY,
                                    reason=f"another process ({holder}) is acting on {agent.name}")
            try:
                current = self.store.incident(agent.name, req.incident)
                if current is not None and current.status != IN_PROGRESS:
                    return self._finish(agent, req, Outcome.DUPLICATE, start,
                                        reason=f"incident already handled: {current.outcome}")
                self._gauge(agent, 1)
                try:
                    if req.action == Action.FAILOVER and (done := self._failover_done(agent, req)):
                        outcome, reason, old, new, diag = Outcome.DUPLICATE, done, pid, None, {}
                    elif req.action == Action.FAILOVER:
                        outcome, reason, old, new, diag = self._failover(agent, req, pid)
                    else:
                        outcome, reason, old, new, diag = self._restart(agent, req, inc)
                except Exception as exc:  # a bug or an OS error: audit it, leave the incident resumable, re-raise
                    self._emit(agent, req.incident, req.action, Step.ERROR, self.clock() - start,
                               reason=f"{type(exc).__name__}: {exc}"[:500])
                    raise
                self.store.finish_incident(agent.name, req.incident, outcome, self.clock())
                return self._finish(agent, req, outcome, start, reason=reason, old_pid=old, new_pid=new,
                                    diagnostics=diag, timed=True)
            finally:
                self._gauge(agent, 0)
                self.store.release_lease(agent.name, self.owner)

    def resolve(self, agent: str, incident: str) -> None:
        """The alert resolved: close the incident; the healthy period (→ closed circuit) starts now."""
        a = self._agent(agent)
        now = self.clock()
        closed = self.store.close_incident(a.name, incident, now)
        with self.store.lock:  # not the agent's lock: a resolve must not wait for a running restart
            state = pol.on_healthy(self.store.circuit(a.name), now)
            self.store.save_circuit(a.name, state)
        self._emit(a, incident, "resolve", Step.RESOLVED if closed else Step.RESOLVED_UNKNOWN, 0.0,
                   reason="alert resolved", circuit=state.state)

    def failback(self, name: str, reason: str, *, owner: str = "operator") -> Result:
        """The operator's failback: close the circuit (a fresh budget), make sure the agent itself is healthy
        (restart and verify it if not), then record that it serves again; one audit line ``failback``.

        While the agent does not come back healthy its fallback keeps serving (outcome ``failed``). The fallback
        itself is left running (a hot standby; stop it yourself if it should not be).
        """
        agent = self._agent(name)
        serving = self.store.serving.get(agent.name)
        if serving is None:
            raise RemediationError(f"{agent.name} serves itself (no failover is active); nothing to fail back")
        if not reason.strip():
            raise RemediationError("say why with --reason TEXT: failing back is recorded in the audit log")
        start = self.clock()
        with self.store.lock:
            self.store.save_circuit(agent.name, pol.CircuitState())  # the operator's decision: a fresh budget
        incident = f"failback-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(start))}-{time.time_ns() % 10**6}"
        res = self.submit(Request(agent=agent.name, action=Action.RESTART, incident=incident, source="cli",
                                  reason=f"failback by {owner}: {reason}"))
        back = res.outcome in (Outcome.HEALED, Outcome.ALREADY_RECOVERED)
        if back:
            self.store.serving.clear(agent.name)
        outcome = Step.FAILED_BACK if back else Step.FAILBACK_FAILED
        why = (f"{owner}: {reason}; {agent.name} serves again, {serving.fallback} no longer serves "
               f"(it served since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(serving.since))}, left running)"
               if back else f"{owner}: {reason}; {agent.name} did not come back healthy ({res.outcome}: "
               f"{res.reason}); {serving.fallback} keeps serving")
        self._emit(agent, incident, "failback", outcome, self.clock() - start, reason=why, old_pid=res.old_pid,
                   new_pid=res.new_pid)
        return dataclasses.replace(res, action="failback", outcome=Outcome.HEALED if back else Outcome.FAILED,
                                   reason=why)

    def plan(self, req: Request) -> str:
        """What submit would do (for --dry-run); acts on nothing."""
        agent = self._agent(req.agent)
        p = self._policy(agent)
        now = self.clock()
        state = pol.refresh(p, self.store.circuit(agent.name), now)
        obs = self.look(self.config, agent)
        status = "healthy" if obs.healthy else "unhealthy"
        detail = f", {obs.reason}" if obs.reason else ""
        lines = [f"agent {agent.name} on {self.config.node_of(agent)}: {status} (pid {obs.pid or '-'}{detail})"]
        skip = self._skip_reason(agent, req) or self._failover_gate(agent, req)
        if skip is not None:
            lines.append(f"would skip: {skip[1]}")
            return "\n".join(lines)
        if req.action == Action.FAILOVER:
            lines.append(f"would run the failover: {self._describe_fallback(agent)}")
            return "\n".join(lines)
        lines.append(f"circuit {state.state}; {len(pol.in_window(p, state, now))}/{p.budget} restarts used in the "
                     f"last {p.budget_window:g}s; next backoff {pol.backoff(p, state.streak):g}s")
        for dep in agent.depends_on:
            d = self.config.agent(dep)
            up = self.look(self.config, d).healthy
            lines.append(f"depends on {dep}: {'up' if up else 'DOWN: would wait for it'}")
        if obs.healthy:
            lines.append("would record already_recovered and not restart")
            return "\n".join(lines)
        decision = pol.decide(p, state, now)
        if not decision.allow:
            lines.append(f"would not restart: {decision.reason}")
            if agent.fallback:
                lines.append(f"would run the failover: {self._describe_fallback(agent)}")
            return "\n".join(lines)
        lines.append(f"would restart with {self._describe_restart(agent)}")
        lines.append(f"then verify: {p.verify_successes} healthy observations in a row, every "
                     f"{p.verify_interval:g}s, within start_grace {agent.start_grace:g}s")
        return "\n".join(lines)

    def run_due_trials(self) -> list[Result]:
        """The half-open trial of every agent whose circuit's cooldown is over: one restart for the incident
        that opened it, still unresolved. Not for an agent seen healthy since (it came back by itself: the
        next incident gets the trial), nor a paused or disabled one."""
        results = []
        now = self.clock()
        for agent in self.config.agents:
            if agent.restart is None or self.config.node_of(agent) != self.config.node:
                continue
            state = pol.refresh(self._policy(agent), self.store.circuit(agent.name), now)
            if state.state != pol.HALF_OPEN or state.trial_used or state.healthy_since is not None:
                continue
            inc = self.store.trial_incident(agent.name)
            req = Request(agent.name, Action.RESTART, inc.incident if inc else "", source="trial",
                          reason=f"half-open trial after the {self._policy(agent).cooldown:g}s cooldown")
            if inc is None or self._skip_reason(agent, req) is not None:
                continue
            self.store.reopen_incident(agent.name, inc.incident, now)
            results.append(self.submit(req))
        return results

    def _trial_loop(self) -> None:
        while not self._stop.wait(TRIAL_POLL):
            try:
                self.run_due_trials()
            except Exception:  # a store or probe error: the next round tries again
                log.warning("half-open trial round failed; retrying in %gs", TRIAL_POLL, exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._trials is not None:
            self._trials.join(timeout=10)
        self.audit.close()
        self.store.close()

    # -- the restart loop ---------------------------------------------------------------------------
    def _restart(self, agent: Agent, req: Request, inc: Incident) -> tuple[str, str, int | None, int | None, dict]:
        p = self._policy(agent)
        self._wait_dependencies(agent, req)
        before = self.store.circuit(agent.name)  # we hold the agent's lease
        state = pol.on_incident(p, before, self.clock())
        obs = self.look(self.config, agent)
        if not obs.healthy:  # healthy at once: the one write below records both the incident and the health
            self.store.save_circuit(agent.name, state)
        else:
            # Healthy when we came to act is no new outage (the AgentDown a hung agent's restart causes, the
            # receiver's look after a heal, a repeat): a restart on probation stays on probation, and is forgiven
            # once it has held for min_uptime. Counting it as an incident kept every hang's restart in the budget.
            state = pol.refresh(p, before, self.clock())
        old_pid = inc.first_pid or obs.pid
        resumed = obs.healthy and self._close_interrupted(agent, req, obs)
        if not obs.healthy:
            obs, resumed = self._settle(agent, req, inc, obs, p)
        if obs.healthy:
            now = self.clock()
            # an attempt of ours interrupted mid-restart (the receiver was killed) that came up is a heal like
            # any other: on probation, forgiven after min_uptime (else it stayed in the budget for good)
            self.store.save_circuit(agent.name, pol.on_result(p, pol.refresh(p, state, now), now, True) if resumed
                                    else pol.on_healthy(state, now))
            why = "healthy when we came to act" + (f" (pid {old_pid} → {obs.pid})" if old_pid != obs.pid else "")
            return Outcome.ALREADY_RECOVERED, why, old_pid, obs.pid, {}
        diagnostics: dict = {}  # the result's: what the agent looked like at the first attempt
        last_reason = ""
        renew = False  # the lease was just taken; renew it before each later attempt
        while True:
            now = self.clock()
            state = pol.refresh(p, state, now)
            decision = pol.decide(p, state, now)
            if not decision.allow:
                opening = decision.opened or state.state != pol.OPEN
                if opening:
                    state = pol.opened(state, now)
                    self.store.save_circuit(agent.name, state)
                reason = ("CRIT " if opening else "") + decision.reason + \
                    (f"; last failure: {last_reason}" if last_reason else "")
                return self._circuit_open(agent, req, reason, old_pid, obs.pid, diagnostics, opening=opening)
            if decision.wait > 0:
                self._emit(agent, req.incident, Action.RESTART, Step.BACKOFF, 0.0, old_pid=obs.pid, circuit=state.state,
                           reason=f"waiting {decision.wait:.2f}s before restart {state.streak + 1}")
                self.sleep(decision.wait)
                obs = self.look(self.config, agent)
                if obs.healthy:
                    self.store.save_circuit(agent.name, pol.on_healthy(state, self.clock()))
                    return Outcome.ALREADY_RECOVERED, "healthy again during the backoff", old_pid, obs.pid, diagnostics
            if renew or decision.wait > 0:
                self._acquire_lease(agent)  # renew
            renew = True
            pid = find_pid(self.config, agent)
            diag: dict = {}  # this attempt's own: the process it is about to stop (none when it is gone)
            if pid is not None:
                log = agent.log_file or (agent.restart.agent_log() if agent.restart else None)
                diag = capture(pid, self.config.path(log) if log else None)
            diagnostics = diagnostics or diag
            now = self.clock()
            state = pol.on_attempt(state, now)
            attempt_id = self.store.start_attempt(agent.name, req.incident, Action.RESTART, now, pid, state)
            attempt_no = self._attempts(agent, req)
            self._emit(agent, req.incident, Action.RESTART, Step.RESTARTING, 0.0, old_pid=pid, attempt=attempt_no,
                       circuit=state.state, diagnostics=diag,
                       reason=f"{req.reason or 'requested'}; {decision.reason}; {obs.reason}".strip("; "))
            healed, new_pid, reason, refused = self._attempt(agent, pid, p)
            done = self.clock()
            state = pol.on_result(p, pol.refresh(p, state, done), done, healed)
            self.store.finish_attempt(attempt_id, done, "healed" if healed else "refused" if refused else "failed",
                                      new_pid, reason, agent=agent.name, circuit=state)
            if healed:
                return Outcome.HEALED, reason, old_pid, new_pid, diagnostics
            if refused:  # the pid is not provably the agent: another try would be refused the same way
                self._emit(agent, req.incident, Action.RESTART, Step.REFUSED, done - now, old_pid=pid,
                           attempt=attempt_no, circuit=state.state, reason=reason)
                return Outcome.FAILED, reason, old_pid, None, diagnostics
            last_reason = reason
            self._emit(agent, req.incident, Action.RESTART, Step.ATTEMPT_FAILED, done - now, old_pid=pid,
                       new_pid=new_pid, attempt=attempt_no, circuit=state.state, reason=reason)
            obs = Observation(new_pid, False, reason)
            if state.state == pol.OPEN:
                return self._circuit_open(agent, req, f"CRIT circuit opened after {attempt_no} failed restart(s): "
                                          f"{reason}", old_pid, new_pid, diagnostics, opening=True)

    def _close_interrupted(self, agent: Agent, req: Request, obs: Observation) -> bool:
        """The agent is up, and an attempt of this incident was interrupted (the receiver killed mid-restart):
        that attempt healed it. Record it so; True when there was one."""
        last = self.store.attempts(agent.name, req.incident)[-1:]
        if not last or last[0]["finished_at"] is not None:
            return False
        self.store.finish_attempt(last[0]["id"], self.clock(), "healed", obs.pid,
                                  "resumed: healthy when we came to act")
        return True

    def _settle(self, agent: Agent, req: Request, inc: Incident, obs: Observation,
                p: PolicySpec) -> tuple[Observation, bool]:
        """Before restarting again, give a start already in flight its start_grace instead of killing it.

        Two cases: an attempt of this incident that was interrupted (the remediator was killed while
        verifying; the agent it started detached may still be starting), and a PID that changed since the
        incident began (another supervisor restarted it). The flag: an interrupted attempt came up healthy.
        """
        grace, why = 0.0, ""
        last = self.store.attempts(agent.name, req.incident)[-1:]
        now = self.clock()
        if last and last[0]["finished_at"] is None:
            grace = last[0]["started_at"] + agent.start_grace - now
            why = "an interrupted attempt's start may still be in flight"
            if grace <= 0:
                self.store.finish_attempt(last[0]["id"], now, "failed", None, "interrupted")
        elif obs.pid is not None and inc.first_pid is not None and obs.pid != inc.first_pid:
            grace, why = agent.start_grace, f"pid changed {inc.first_pid} → {obs.pid} since the incident began"
        if grace <= 0:
            return obs, False
        self._emit(agent, req.incident, Action.RESTART, Step.WAITING, 0.0, old_pid=inc.first_pid, new_pid=obs.pid,
                   reason=f"{why}; verifying it for up to {grace:.1f}s before restarting")
        v = verify(self.config, agent, successes=p.verify_successes, interval=p.verify_interval, grace=grace,
                   clock=self.clock, sleep=self.sleep, look=self.look)
        interrupted = bool(last and last[0]["finished_at"] is None)
        if interrupted:
            self.store.finish_attempt(last[0]["id"], self.clock(), "healed" if v.healed else "failed", v.pid,
                                      f"resumed: {v.reason}")
        return Observation(v.pid, v.healed, v.reason), interrupted and v.healed

    def _attempt(self, agent: Agent, pid: int | None, p: PolicySpec) -> tuple[bool, int | None, str, bool]:
        """(healed, new pid, why, refused): refused = nothing was signalled, the pid is not the agent's."""
        assert agent.restart is not None
        strategy = self.strategies[agent.restart.strategy]
        try:
            out = strategy.restart(self.config, agent, pid)
        except StrategyError as exc:
            return False, None, f"{agent.restart.strategy}: {exc}", isinstance(exc, Refused)
        v = verify(self.config, agent, successes=p.verify_successes, interval=p.verify_interval,
                   grace=agent.start_grace, clock=self.clock, sleep=self.sleep, look=self.look)
        return v.healed, v.pid or out.new_pid, f"{out.detail}; {v.reason}", False

    def _circuit_open(self, agent: Agent, req: Request, reason: str, old: int | None, new: int | None,
                      diag: dict, *, opening: bool) -> tuple[str, str, int | None, int | None, dict]:
        """No more restarts. Only the opening itself (not each later request) is CRIT and runs the failover.

        The request's result line says ``circuit_open`` (or the failover's outcome); the ``circuit_open`` step
        is written only when a failover follows, so one opening is one ``circuit_open`` line either way.
        """
        if opening and agent.fallback is not None:
            self._emit(agent, req.incident, Action.RESTART, Step.CIRCUIT_OPENED, 0.0, reason=reason, old_pid=old,
                       new_pid=new, circuit=pol.OPEN, attempt=self._attempts(agent, req))
        if agent.fallback is None or not opening:
            return Outcome.CIRCUIT_OPEN, reason, old, new, diag
        outcome, why, _, fb_pid, _ = self._failover(agent, req, new)
        return outcome, f"{reason}; failover: {why}", old, fb_pid, diag

    # -- failover -----------------------------------------------------------------------------------
    def _failover_gate(self, agent: Agent, req: Request) -> tuple[SkipReason, str] | None:
        """A failover an alert asks for runs only while the agent is unhealthy and its circuit is open (once per
        opening: :meth:`_failover_done`). An operator's explicit request (``source="cli"``) always runs."""
        if req.action != Action.FAILOVER or req.source == "cli":
            return None
        if self.look(self.config, agent).healthy:
            return SkipReason.HEALTHY, f"{agent.name} is healthy: nothing to fail over from"
        circuit = self.circuit_state(agent.name)
        if circuit != pol.OPEN:
            return SkipReason.CIRCUIT_NOT_OPEN, (f"{agent.name}'s circuit is {circuit.replace('_', '-')}: restarts "
                                                 "are still the answer; a failover runs only once it opens")
        return None

    def _failover_done(self, agent: Agent, req: Request) -> str | None:
        """Did this opening of the circuit already fail over? (The engine fails over when the circuit opens,
        and the AgentCircuitOpen alert asks again; only an operator's explicit request repeats it.)"""
        if req.source == "cli":
            return None
        state = self.store.circuit(agent.name)
        if state.state == pol.OPEN and state.failover_at is not None and state.opened_at is not None \
                and state.failover_at >= state.opened_at:
            at = time.strftime("%H:%M:%SZ", time.gmtime(state.failover_at))
            return f"failover already started at {at} for this opening of the circuit"
        return None

    def _failover(self, agent: Agent, req: Request, pid: int | None) -> tuple[str, str, int | None, int | None, dict]:
        fb = agent.fallback
        if fb is None:
            return Outcome.FAILOVER_FAILED, "no fallback configured", pid, None, {}
        self._emit(agent, req.incident, Action.FAILOVER, Step.FAILOVER_RUNNING, 0.0, old_pid=pid,
                   reason=self._describe_fallback(agent), circuit=self.circuit_state(agent.name))
        notes: list[str] = []
        new_pid = None
        try:
            if fb.agent:
                target = self.config.agent(fb.agent)
                if self.look(self.config, target).healthy:
                    notes.append(f"fallback agent {target.name} already healthy")
                    new_pid = find_pid(self.config, target)
                else:
                    if target.restart is None:
                        raise StrategyError(f"fallback agent {target.name} has no restart to start it with")
                    out = self.strategies[target.restart.strategy].start(self.config, target)
                    tp = self._policy(target)
                    v = verify(self.config, target, successes=tp.verify_successes, interval=tp.verify_interval,
                               grace=target.start_grace, clock=self.clock, sleep=self.sleep, look=self.look)
                    if not v.healed:
                        raise StrategyError(f"fallback agent {target.name}: {v.reason}")
                    new_pid = v.pid or out.new_pid
                    notes.append(f"started fallback agent {target.name} (pid {new_pid})")
            if fb.argv:
                self._run_fallback_command(fb.argv)
                notes.append(f"ran {fb.argv[0]}")
        except StrategyError as exc:  # the request's result line (written by _finish) says so
            return Outcome.FAILOVER_FAILED, "; ".join([*notes, str(exc)]), pid, new_pid, {}
        reason = "; ".join(notes) + (f" ({fb.note})" if fb.note else "")
        with self.store.lock:
            self.store.save_circuit(agent.name, pol.on_failover(self.store.circuit(agent.name), self.clock()))
        serving = fallback_name(agent)
        if serving is not None:  # until an operator fails back (govheal restart NAME --failback)
            self.store.serving.activate(agent.name, serving, incident=req.incident, reason=reason, at=self.clock())
        return Outcome.FAILOVER_STARTED, reason, pid, new_pid, {}

    def _run_fallback_command(self, argv: list[str]) -> None:
        cwd = self.config.source.parent if self.config.source else None
        try:
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=FAILOVER_COMMAND_TIMEOUT,
                                  stdin=subprocess.DEVNULL, check=False, env=allowlisted_env())  # allowlist: no secrets
        except FileNotFoundError:
            raise StrategyError(f"fallback command {argv[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise StrategyError(f"fallback command {argv[0]} timed out after {FAILOVER_COMMAND_TIMEOUT:g}s") from None
        if proc.returncode != 0:
            raise StrategyError(f"fallback command {argv[0]} exited {proc.returncode}")

    # -- helpers ------------------------------------------------------------------------------------
    def _agent(self, name: str) -> Agent:
        for a in self.config.agents:
            if a.name == name:
                return a
        raise UnknownAgent(name, [a.name for a in self.config.agents])

    def _policy(self, agent: Agent) -> PolicySpec:
        return self.config.policy_for(agent)

    def _skip_reason(self, agent: Agent, req: Request) -> tuple[str, str] | None:
        sw = self.store.switches(agent.name, self.clock())
        for label, on in ((SkipReason.DISABLED, sw.disabled), (SkipReason.PAUSED, sw.paused)):
            if on:
                who = f" by {sw.owner}" if sw.owner else ""
                why = f": {sw.reason}" if sw.reason else ""
                until = f" until {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(sw.expires_at))}" \
                    if sw.expires_at else ""
                return label, f"{agent.name} is {label}{who}{until}{why}"
        if req.action == Action.RESTART and agent.restart is None:
            return SkipReason.NO_RESTART_CONFIGURED, \
                f"{agent.name} has no restart configured (add restart: to its config)"
        if req.action == Action.FAILOVER and agent.fallback is None:
            return SkipReason.NO_FALLBACK_CONFIGURED, \
                f"{agent.name} has no fallback configured (add fallback: to its config)"
        return None

    def _duplicate(self, inc: Incident) -> str | None:
        if inc.status == IN_PROGRESS:
            holder = self.store.lease_holder(inc.agent, self.clock())
            if holder == self.owner and not self._locks[inc.agent].locked():
                holder = None  # our own lease, left when its release could not be written (full disk): resume
            # a live holder is working on it; none means it was interrupted (crash): resume it
            return f"incident in progress ({holder})" if holder else None
        return f"incident already handled: {inc.outcome}" if inc.status == DONE else "incident already resolved"

    def _lease_ttl(self, agent: Agent) -> float:
        p = self._policy(agent)
        stop = agent.restart.bound() if agent.restart else 30.0
        return agent.start_grace + p.backoff_max + stop + 60.0

    def _acquire_lease(self, agent: Agent) -> str | None:
        """Take (or renew) the agent's lease, waiting up to one lease TTL for another process."""
        ttl = self._lease_ttl(agent)
        deadline = time.monotonic() + ttl
        while True:
            holder = self.store.acquire_lease(agent.name, self.owner, self.clock(), ttl)
            if holder is None or time.monotonic() >= deadline:
                return holder
            time.sleep(LEASE_POLL)

    def _wait_dependencies(self, agent: Agent, req: Request) -> None:
        """Wait (bounded by each dependency's start_grace, twice) for ``depends_on`` agents that are down and
        not served by their fallback (make chaos: a dependent's heal waited 10 s while its failed-over
        dependency's Standby served)."""
        for name in agent.depends_on:
            dep = self.config.agent(name)
            if self.store.serving.get(name) is not None or self.look(self.config, dep).healthy:
                continue  # up, or its fallback serves for it (its circuit is open: waiting would only delay us)
            bound = 2 * dep.start_grace
            self._emit(agent, req.incident, Action.RESTART, Step.WAITING, 0.0,
                       reason=f"dependency {name} is down; waiting up to {bound:g}s for it first")
            deadline = self.clock() + bound
            while self.clock() < deadline and not self.look(self.config, dep).healthy:
                self.sleep(self._policy(dep).verify_interval)

    def _attempts(self, agent: Agent, req: Request) -> int:
        inc = self.store.incident(agent.name, req.incident)
        return inc.attempts if inc else 0

    def _gauge(self, agent: Agent, value: int) -> None:
        if self.metrics:
            self.metrics.in_progress.labels(agent.name, self.config.node_of(agent)).set(value)

    def _describe_restart(self, agent: Agent) -> str:
        spec = agent.restart
        return "nothing (no restart configured)" if spec is None else spec.describe(agent)

    def _describe_fallback(self, agent: Agent) -> str:
        fb = agent.fallback
        if fb is None:
            return "none configured"
        parts = ([f"start agent {fb.agent}"] if fb.agent else []) + ([f"run {fb.argv}"] if fb.argv else [])
        return " and ".join(parts) + (f" ({fb.note})" if fb.note else "")

    def _emit(self, agent: Agent, incident: str, action: str, outcome: str, duration: float, *, reason: str = "",
              old_pid: int | None = None, new_pid: int | None = None, attempt: int = 0, circuit: str | None = None,
              diagnostics: dict | None = None) -> Event:
        ev = Event(time=self.clock(), agent=agent.name, node=self.config.node_of(agent), incident=incident,
                   action=action, outcome=outcome, duration_seconds=round(duration, 4), old_pid=old_pid,
                   new_pid=new_pid, reason=reason, attempt=attempt,
                   circuit=circuit or self.circuit_state(agent.name), diagnostics=diagnostics or {})
        self.audit.write(ev)
        for listener in list(self._listeners):
            try:
                listener(ev)
            except Exception as exc:  # a broken listener must not stop a remediation; record it
                why = f"{type(exc).__name__}: {exc}"
                self.audit.write(dataclasses.replace(ev, outcome=Step.LISTENER_ERROR, reason=why))
        return ev

    def _result(self, agent: Agent, req: Request, outcome: str, *, reason: str = "", duration: float = 0.0,
                old_pid: int | None = None, new_pid: int | None = None, diagnostics: dict | None = None) -> Result:
        return Result(agent=agent.name, node=self.config.node_of(agent), incident=req.incident, action=req.action,
                      outcome=outcome, attempts=self._attempts(agent, req), duration_seconds=round(duration, 4),
                      old_pid=old_pid, new_pid=new_pid, reason=reason,
                      circuit=self.circuit_state(agent.name),
                      diagnostics=diagnostics or {})

    def _finish(self, agent: Agent, req: Request, outcome: str, start: float, *, reason: str = "",
                old_pid: int | None = None, new_pid: int | None = None, diagnostics: dict | None = None,
                skip_label: str | None = None, timed: bool = False) -> Result:
        duration = self.clock() - start
        result = self._result(agent, req, outcome, reason=reason, duration=duration, old_pid=old_pid,
                              new_pid=new_pid, diagnostics=diagnostics)
        self._emit(agent, req.incident, req.action, outcome, duration, reason=reason, old_pid=old_pid,
                   new_pid=new_pid, attempt=result.attempts, circuit=result.circuit, diagnostics=diagnostics)
        if self.metrics:
            node = self.config.node_of(agent)
            self.metrics.remediations.labels(agent.name, node, req.action, outcome).inc()
            if timed:
                self.metrics.duration.labels(agent.name, node, req.action).observe(duration)
            label = skip_label or (SkipReason.CIRCUIT_OPEN if outcome == Outcome.CIRCUIT_OPEN else None)
            if label:
                self.metrics.skips.labels(agent.name, node, label).inc()
        return result

