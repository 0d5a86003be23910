"""``make chaos``: hundreds of faults against the full stack, then what was healed, how fast, and what people saw.

``python -m bench.chaos [--faults 300] [--minutes 14] [--seed N] [--out FILE]`` runs ``govheal up`` on the
demo fleet's six agents (bench/chaos_stack.py), real Prometheus and Alertmanager, the fake Discord and
Telegram as its channels, and injects faults at random phases (bench/chaos_faults.py): crash, SIGKILL,
SIGSTOP, alive but not answering, health 503, a crash loop, a slow but healthy agent, and govheal's own:
the receiver SIGKILLed mid-restart, Alertmanager stopped and frozen, Prometheus restarted, a channel
answering 500 for a minute and 429 with ``retry_after``, the state disk full for 30 s. It prints a table
and writes every fault's record to JSON. ``--scale`` runs the fleet curve instead (bench/chaos_scale.py).

Per fault, from the harness's own watching, the receiver's inbox, the audit log and the fakes: detected
(fault → the alert at the receiver), action (→ restart starts), time to healthy (→ a new process answers
/health), downtime (the agent is unavailable from the fault on), restarts, messages created and received
at each fake.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

from bench.chaos_faults import AGENT_KINDS, HEALABLE, Fault, Run, lane, own_lane
from bench.chaos_stack import AGENTS, Stack

TARGETS = {  # issue 12 (heal faster) under chaos: fault → healthy, seconds (p50, p99)
    "crash": (0.5, 1.0), "sigkill": (0.5, 1.0), "hang": (1.5, 2.5), "unanswering": (1.5, 2.5),
    "unhealthy": (1.5, 2.5),
}
MAX_DOWNTIME = 15.0
INCIDENT_ALERTS = ("AgentDown", "AgentUnhealthy")
KEY = re.compile(r"[0-9a-f]{16}:\d{4}-\d\d-\d\dT[0-9:.]+Z(?:#recheck-\d+)?")
NOTICED_WITHIN = 10.0  # a fault is "told" by a message created or edited this long after it healed


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


# -- what the fakes received --------------------------------------------------------------------------

def messages(stack: Stack) -> dict[str, list[dict]]:
    """Per channel: every accepted create/edit as {t (wall), new, keys, titles}."""
    out: dict[str, list[dict]] = {"discord": [], "telegram": []}
    for r in list(stack.discord.received):
        embeds = r["body"].get("embeds", [])
        out["discord"].append({"t": r["t"] + stack.mono_offset, "new": r["method"] == "POST",
                               "keys": [e.get("footer", {}).get("text", "").removeprefix("govheal · ") for e in embeds],
                               "titles": [e.get("title", "") for e in embeds]})
    for r in list(stack.telegram.received):
        out["telegram"].append({"t": r["t"] + stack.mono_offset, "new": r["method"] == "sendmessage",
                                "keys": KEY.findall(r["text"]), "titles": [r["text"][:200]]})
    return out


# -- analysis ---------------------------------------------------------------------------------------------

def analyse(stack: Stack, faults: list[Fault], started: float, ended: float) -> dict:
    audit = stack.audit()
    inbox = [dict(r) for r in stack.query("SELECT id, agent, alertname, status, incident, received, outcome, "
                                          "notified, result FROM inbox_alerts ORDER BY id")]
    msgs = messages(stack)
    lanes: dict[str, list[Fault]] = defaultdict(list)
    for f in faults:
        if f.agent is not None:
            lanes[f.agent].append(f)
    for fs in lanes.values():
        for a, b in zip(fs, [*fs[1:], None], strict=True):
            a.end = b.start if b else ended
    own = [f for f in faults if f.agent is None or f.kind == "receiver_sigkill_mid_restart"]
    own_windows = [(f.start, f.start + max(f.duration, 1.0) + 5.0, f.kind) for f in faults if f.agent is None]
    own_windows += [(f.outage[0], f.outage[1] + 5.0, "receiver_down") for f in faults if f.outage]

    def fault_at(agent: str | None, t: float) -> Fault | None:
        for f in lanes.get(agent or "", []):
            if f.start <= t < (f.end or ended):
                return f
        return None

    # incidents (inbox firing rows of agent alerts) → the fault they belong to
    incidents: dict[str, dict] = {}
    for row in inbox:
        if row["status"] != "firing" or not row["agent"]:
            continue
        f = fault_at(row["agent"], row["received"])
        incidents[row["incident"]] = {"fault": f.id if f else None, "alertname": row["alertname"],
                                      "notified": bool(row["notified"]), "received": row["received"],
                                      "agent": row["agent"]}
    # per channel: in how many created messages each incident key appears
    created: dict[str, Counter[str]] = {ch: Counter() for ch in msgs}
    received: dict[str, Counter[int]] = {ch: Counter() for ch in msgs}
    rechecks: dict[str, Counter[int]] = {ch: Counter() for ch in msgs}  # "down again" messages, by fault
    touched: dict[str, list[tuple[float, str]]] = {ch: [] for ch in msgs}  # (time, agent) of every message
    for ch, items in msgs.items():
        for m in items:
            fs = {incidents[k]["fault"] for k in m["keys"] if k in incidents}
            for fid in fs:
                if fid is not None:
                    received[ch][fid] += 1
            for k in m["keys"]:
                base = incidents.get(k.split("#", 1)[0])
                if base:
                    touched[ch].append((m["t"], base["agent"]))
                    if "#" in k and m["new"]:
                        f = fault_at(base["agent"], m["t"])
                        if f is not None:
                            rechecks[ch][f.id] += 1
            if m["new"]:
                for k in set(m["keys"]):
                    created[ch][k] += 1
    records = []
    restarts_by_fault: Counter[int] = Counter()
    false_restarts = []
    for e in audit:
        if e.get("outcome") != "restarting":
            continue
        f = fault_at(e["agent"], e["time"])
        if f is None or f.kind == "slow" or (f.healthy_at and e["time"] > f.healthy_at + 5 and
                                               f.kind not in ("crash_loop", "stuck")):
            false_restarts.append({"agent": e["agent"], "time": e["time"], "fault": f.id if f else None,
                                   "fault_kind": f.kind if f else None})
        else:
            restarts_by_fault[f.id] += 1
    for f in faults:
        overlaps = sorted({k for s, e, k in own_windows if f.agent and s < (f.healthy_at or f.end or ended)
                           and f.start < e})
        # a dependency faulted at the same time: the remediator restarts the dependency first (by design), so
        # the dependent's heal waits for it; a compound fault, not a clean one
        overlaps += sorted({f"dependency {g.agent} faulted" for g in faults if f.agent and g.kind != "slow"
                            and g.agent in AGENTS.get(f.agent, []) and g.start < (f.healthy_at or f.end or ended)
                            and f.start < (g.healthy_at or g.end or ended)})
        mine = [k for k, inc in incidents.items() if inc["fault"] == f.id]
        agent_incidents = [k for k in mine if incidents[k]["alertname"] in INCIDENT_ALERTS]
        announced = {ch: sum(created[ch][k] for k in agent_incidents) for ch in msgs}
        dup = {ch: sum(max(0, created[ch][k] - 1) for k in mine) for ch in msgs}
        detected = min((incidents[k]["received"] for k in mine), default=None)
        action = min((e["time"] for e in audit if e.get("outcome") == "restarting" and e["agent"] == f.agent
                      and f.start <= e["time"] < (f.end or ended)), default=None)
        rec = {
            "id": f.id, "kind": f.kind, "agent": f.agent, "start": round(f.start - started, 3),
            "healable": f.healable, "overlapping": overlaps,
            "detected_s": round(detected - f.start, 3) if detected else None,
            "action_s": round(action - f.start, 3) if action else None,
            "healthy_s": round(f.healthy_at - f.start, 3) if f.healthy_at else None,
            "downtime_s": round(f.healthy_at - f.start, 3) if f.healthy_at and f.healable else None,
            "restarts": restarts_by_fault.get(f.id, 0), "new_processes": len(f.pids),
            "incidents": [{"incident": k, **{x: incidents[k][x] for x in ("alertname", "notified")},
                           "created": {ch: created[ch][k] for ch in msgs}} for k in mine],
            "messages_created": announced, "messages_received": {ch: received[ch][f.id] for ch in msgs},
            "duplicates": dup, "duration_s": round(f.duration, 1) if f.agent is None else None, "notes": f.notes,
        }
        window = [e for e in audit if e["agent"] == f.agent and f.start <= e["time"] < (f.end or ended)]
        rec["circuit_opened"] = any(e.get("outcome") in ("circuit_open", "failover_started") for e in window)
        rec["failovers"] = sum(e.get("outcome") == "failover_started" for e in window)
        rec["rechecks_told"] = {ch: rechecks[ch][f.id] for ch in msgs}
        if f.healable:
            rec["healed"] = f.healthy_at is not None
            until = (f.healthy_at or f.end or ended) + NOTICED_WITHIN
            heard = {ch: announced[ch] + rechecks[ch][f.id] > 0 for ch in msgs}
            merged = {ch: any(a == f.agent and f.start <= t <= until for t, a in touched[ch]) for ch in msgs}
            quick = rec["downtime_s"] is not None and rec["downtime_s"] < 5.0 and not mine
            # lost: an outage people heard nothing of (no message of its own, no update of the agent's message
            # in the meantime, and not a blip healed before any alert could fire)
            rec["lost"] = {ch: not heard[ch] and not merged[ch] and not quick for ch in msgs}
            rec["told_as"] = {ch: "own message" if heard[ch] else "update of an earlier message" if merged[ch]
                              else "healed before an alert" if quick else "nothing" for ch in msgs}
            rec["double_restart"] = rec["new_processes"] > 1
        records.append(rec)
    # a message that the receiver told the bridge about and that never arrived
    told = [k for k, inc in incidents.items() if inc["notified"]]
    never = {ch: [k for k in told if created[ch][k] == 0] for ch in msgs}
    return {"records": records, "false_restarts": false_restarts, "told_never_arrived": never,
            "own": [r for r in records if r["id"] in {f.id for f in own}], "inbox_rows": len(inbox),
            "messages": {ch: {"created": sum(1 for m in items if m["new"]),
                              "edits": sum(1 for m in items if not m["new"])} for ch, items in msgs.items()},
            "other_alerts_announced": dict(Counter(inc["alertname"] for inc in incidents.values()
                                                   if inc["notified"] and inc["alertname"] not in INCIDENT_ALERTS))}


def summarise(result: dict) -> dict:
    recs = result["records"]
    heal = [r for r in recs if r["healable"]]
    clean = [r for r in heal if not r["overlapping"] and r["kind"] != "receiver_sigkill_mid_restart"]
    loops = [r for r in recs if r["kind"] == "crash_loop"]
    s = {
        "agent_faults": sum(1 for r in recs if r["agent"]),
        "own_faults": sum(1 for r in recs if r["agent"] is None) + sum(1 for r in recs
                                                                     if r["kind"] == "receiver_sigkill_mid_restart"),
        "healable": len(heal), "healed": sum(r["healed"] for r in heal),
        "heal_success": sum(r["healed"] for r in heal) / len(heal) if heal else None,
        "downtime_over_15s": [r["id"] for r in heal if (r["downtime_s"] or 1e9) > MAX_DOWNTIME],
        "downtime_over_15s_clean": [r["id"] for r in clean if (r["downtime_s"] or 1e9) > MAX_DOWNTIME],
        "double_restarts": [r["id"] for r in heal if r["double_restart"]],
        "false_restarts": len(result["false_restarts"]) + sum(r["new_processes"] for r in recs if r["kind"] == "slow"),
        "lost": {ch: [r["id"] for r in heal if r["lost"][ch]] for ch in ("discord", "telegram")},
        "told_never_arrived": {ch: len(v) for ch, v in result["told_never_arrived"].items()},
        "duplicated": {ch: sum(r["duplicates"][ch] for r in recs) for ch in ("discord", "telegram")},
        "crash_loops": [{"id": r["id"], "restarts": r["restarts"], "circuit_opened": r["circuit_opened"],
                         "failovers": r["failovers"],
                         "circuit_open_messages": {ch: sum(i["created"][ch] for i in r["incidents"]
                                                           if i["alertname"] == "AgentCircuitOpen")
                                                   for ch in ("discord", "telegram")}} for r in loops],
    }
    lat: dict[str, dict] = {}
    for kind in sorted({r["kind"] for r in heal}):
        for label, rows in (("all", heal), ("clean", clean)):
            xs = [r["healthy_s"] for r in rows if r["kind"] == kind and r["healthy_s"] is not None]
            lat.setdefault(kind, {})[label] = {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99),
                                               "max": max(xs) if xs else None}
        det = [r["detected_s"] for r in clean if r["kind"] == kind and r["detected_s"] is not None]
        lat[kind]["detected_p50_clean"] = pct(det, 50)
    s["latency"] = lat
    return s


def table(result: dict, s: dict, meta: dict) -> str:
    recs = result["records"]
    lines = [f"machine: {meta['machine']}; load average before {meta['load_before']}, after {meta['load_after']}; "
             f"{meta['duration_s']:.0f} s; state dir {meta['tmpfs']}", "",
             "| fault | n | healed | fault → healthy p50 / p99 / max s (clean) | all p50 / max s | detected p50 s | "
             "restarts / fault | new msgs discord / telegram | told: own msg / update / blip | dup | lost |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in [*AGENT_KINDS, "receiver_sigkill_mid_restart"]:
        rows = [r for r in recs if r["kind"] == kind]
        if not rows:
            continue
        lat = s["latency"].get(kind, {})
        c, a = lat.get("clean", {}), lat.get("all", {})
        healed = f"{sum(r.get('healed', False) for r in rows)}/{len(rows)}" if kind in HEALABLE else "n/a"
        created = [sum(r["messages_created"][ch] for r in rows) for ch in ("discord", "telegram")]
        dup = sum(r["duplicates"][ch] for r in rows for ch in ("discord", "telegram"))
        lost = sum(r.get("lost", {}).get(ch, False) for r in rows for ch in ("discord", "telegram"))
        restarts = sum(r["restarts"] for r in rows) / len(rows)
        told = Counter(r["told_as"]["discord"] for r in rows if "told_as" in r)
        told_s = f"{told['own message']} / {told['update of an earlier message']} / {told['healed before an alert']}" \
            if told else "-"
        lines.append(f"| {kind} | {len(rows)} | {healed} | {fmt(c.get('p50'))} / {fmt(c.get('p99'))} / "
                     f"{fmt(c.get('max'))} ({c.get('n', 0)}) | {fmt(a.get('p50'))} / {fmt(a.get('max'))} | "
                     f"{fmt(lat.get('detected_p50_clean'))} | {restarts:.2f} | {created[0]} / {created[1]} | "
                     f"{told_s} | {dup} | {lost} |")
    lines += ["", "| govheal's own fault | n | what happened (first one) |", "|---|---|---|"]
    own = [r for r in recs if r["agent"] is None]
    for kind in sorted({r["kind"] for r in own}):
        rows = [r for r in own if r["kind"] == kind]
        lines.append(f"| {kind} | {len(rows)} | {'; '.join(rows[0]['notes'])[:160]} |")
    ok = lambda cond: "**held**" if cond else "**missed**"  # noqa: E731
    hs = s["heal_success"]
    no_loss = not s["lost"]["discord"] and not s["lost"]["telegram"] and not any(s["told_never_arrived"].values())
    lines += ["", "| target | measured | |", "|---|---|---|",
              f"| heal success ≥ 99.9 % of healable faults | {s['healed']}/{s['healable']} = "
              f"{(hs or 0) * 100:.2f} % | {ok(hs is not None and hs >= 0.999)} |",
              f"| no downtime over 15 s (healable, clean) | {len(s['downtime_over_15s_clean'])} "
              f"over (all faults: {len(s['downtime_over_15s'])}) | {ok(not s['downtime_over_15s_clean'])} |",
              f"| 0 double restarts | {len(s['double_restarts'])} | {ok(not s['double_restarts'])} |",
              f"| 0 false restarts | {s['false_restarts']} | {ok(s['false_restarts'] == 0)} |",
              f"| 0 messages lost | discord {len(s['lost']['discord'])}, telegram {len(s['lost']['telegram'])}; "
              f"told but never arrived {s['told_never_arrived']} | "
              f"{ok(no_loss)} |",
              f"| 0 messages duplicated | {s['duplicated']} | {ok(not any(s['duplicated'].values()))} |"]
    for cl in s["crash_loops"]:
        held = cl["circuit_opened"] and cl["restarts"] <= 3 + 1 and cl["failovers"] == 1 and \
            all(v == 1 for v in cl["circuit_open_messages"].values())
        lines.append(f"| crash loop #{cl['id']}: circuit open within budget 3, failover once, one CRIT | "
                     f"{cl['restarts']} restarts (the last: the failback), {cl['failovers']} failover, "
                     f"AgentCircuitOpen messages {cl['circuit_open_messages']} | {ok(held)} |")
    for kind, (p50, p99) in TARGETS.items():
        c = s["latency"].get(kind, {}).get("clean", {})
        held = c.get("p50") is not None and c["p50"] <= p50 and (c.get("p99") or 1e9) <= p99
        lines.append(f"| {kind} → healthy p50 ≤ {p50} s, p99 ≤ {p99} s (issue 12) | {fmt(c.get('p50'))} / "
                     f"{fmt(c.get('p99'))} | {ok(held)} |")
    lines += ["", f"messages at the fakes: {result['messages']}; other alerts announced: "
                  f"{result['other_alerts_announced']}"]
    return "\n".join(lines)


def machine() -> str:
    from bench.__main__ import machine as m

    return m()


def run_chaos(faults: int, minutes: float, seed: int, out: Path | None, base: Path | None = None) -> int:
    base = base or Path(tempfile.mkdtemp(prefix="govheal-chaos-"))
    stack = Stack(base)
    meta = {"machine": machine(), "load_before": [round(x, 2) for x in os.getloadavg()], "seed": seed,
            "faults_target": faults, "minutes": minutes}
    print(f"machine: {meta['machine']}; load average {meta['load_before']}", flush=True)
    try:
        stack.start()
        meta["tmpfs"] = stack.tmpfs
        started = time.time()
        run = Run(stack, seed, started + minutes * 60, faults, lambda line: print(line, flush=True))
        threads = [threading.Thread(target=lane, args=(run, name), name=f"lane-{name}", daemon=True)
                   for name in stack.agents]
        threads.append(threading.Thread(target=own_lane, args=(run, minutes * 60), name="own", daemon=True))
        for t in threads:
            t.start()
        for t in threads[:-1]:
            t.join()
        run.stop.set()
        threads[-1].join(timeout=90)
        ended = time.time()
        print("faults done; letting the outbox drain", flush=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and stack.outbox_queued() != 0:
            time.sleep(1)
        time.sleep(5)
        meta["duration_s"] = ended - started
        meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
        result = analyse(stack, run.faults, started, ended)
        summary = summarise(result)
        text = table(result, summary, meta)
        print(text)
        out = out or Path(".govheal") / "chaos" / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "summary": summary, **result,
                                   "faults_raw": [asdict(f) for f in run.faults]}, indent=1, default=str))
        print(f"\nJSON: {out}")
        return 0
    finally:
        stack.stop()


def run(quick: bool) -> str:
    """bench/__main__.py's interface: ``make bench BENCH_ARGS=chaos`` (quick: 40 faults in 3 minutes)."""
    code = run_chaos(40 if quick else 300, 3 if quick else 14, 1, None)
    return f"chaos exit {code} (the table is above)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--faults", type=int, default=300, help="agent faults to inject (default 300)")
    p.add_argument("--minutes", type=float, default=14.0, help="stop injecting after this long (default 14)")
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--out", type=Path, help="JSON file (default .govheal/chaos/chaos-<time>.json)")
    p.add_argument("--scale", action="store_true", help="the fleet curve instead (bench/chaos_scale.py)")
    p.add_argument("--nodes", default="1,3,5", help="--scale: node counts (default 1,3,5)")
    p.add_argument("--agents", type=int, default=10, help="--scale: agents per node (default 10)")
    args = p.parse_args(argv)
    if args.scale:
        from bench.chaos_scale import run_scale

        return run_scale([int(n) for n in args.nodes.split(",")], args.agents, args.out)
    return run_chaos(args.faults, args.minutes, args.seed, args.out)


if __name__ == "__main__":
    sys.exit(main())
