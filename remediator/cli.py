"""``govheal restart AGENT``: a verified, bounded, audited restart from the command line."""

from __future__ import annotations

import argparse
import json
import time

HELP = "restart a configured agent the right way for how it is supervised, and verify it came back"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("agent", help="a configured agent name")
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and do nothing")
    p.add_argument("--incident", help="incident id for dedupe (default: a new cli-<time> id)")
    p.add_argument("--failover", action="store_true", help="run the agent's configured fallback instead")
    p.add_argument("--failback", action="store_true",
                   help="after a failover: close the circuit, restart the agent if it is not healthy, and record that "
                        "it serves again instead of its fallback (needs --reason)")
    p.add_argument("--reason", default="", help="why (recorded in the audit log; required with --failback)")
    p.add_argument("--owner", default="", help="who (default: $USER)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from remediator.api import Request
    from remediator.engine import Remediator

    config = args.load_config(args.config)  # handed in by govheal/cli.py (govheal/seams.py)
    if args.failback:
        return _failback(config, args)
    incident = args.incident or f"cli-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{time.time_ns() % 10**6}"
    req = Request(agent=args.agent, action="failover" if args.failover else "restart", incident=incident,
                  reason="requested from the command line", source="cli")
    rem = Remediator(config, trials=False)  # one request, then exit: the receiver runs half-open trials
    try:
        if args.dry_run:
            print(rem.plan(req))
            return 0
        rem.subscribe(lambda ev: None if args.json else print(f"  {ev.outcome}: {ev.reason}", flush=True))
        result = rem.submit(req)
    finally:
        rem.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        pids = f" (pid {result.old_pid or '-'} → {result.new_pid or '-'})" if result.new_pid or result.old_pid else ""
        print(f"{result.agent}: {result.outcome}{pids} in {result.duration_seconds:.2f}s, circuit {result.circuit}")
    return 0 if result.outcome in ("healed", "already_recovered", "failover_started", "duplicate") else 1


def _failback(config: object, args: argparse.Namespace) -> int:
    import getpass

    from govheal.errors import UsageError
    from remediator.engine import Remediator

    if args.failover or args.dry_run or args.incident:
        raise UsageError("--failback goes alone (with --reason, --owner, --json)")
    if not args.reason.strip():
        raise UsageError("--failback needs --reason TEXT: failing back is recorded in the audit log")
    owner = args.owner or getpass.getuser()
    rem = Remediator(config)  # type: ignore[arg-type]
    try:
        result = rem.failback(args.agent, args.reason, owner=owner)
    finally:
        rem.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"{result.agent}: {'failed back' if result.outcome == 'healed' else 'failback failed'}: {result.reason}")
    return 0 if result.outcome == "healed" else 1
