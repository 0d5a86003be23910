"""``govheal agents``: list the governance switches, or mute / pause / maintenance / enable one agent.

The CLI works on the local state file and Alertmanager directly, through the same service as the page
and the API (govheal/governance/service.py), not through the receiver: it works while the receiver is
down (when an operator most needs to stop remediation), needs no admin token (permission to write the
state dir is the permission), and writes the same audit line as the page ("via": "cli"). The owner is
the login name (``--owner`` to say otherwise, e.g. from a script).
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

HELP = "governance switches: list, or mute / pause / maintenance / enable an agent (docs/governance.md)"
ACTIONS = ("list", "mute", "pause", "maintenance", "enable")
DAY = 86400.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS, help="list, or the switch to set (enable clears all of an agent's)")
    p.add_argument("name", nargs="?", help="the agent (list: all, or this one)")
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--for", dest="duration", metavar="D", help="how long: 30m, 2h, 1d")
    when.add_argument("--until", metavar="T", help="until when: 2026-12-01T08:00Z, '2026-12-01 08:00' (admin.timezone)")
    p.add_argument("--every", metavar="SPEC", help="a recurring window: 'Sundays 02:00 for 1h', 'cron 0 2 * * 0 for 1h "
                   "Europe/Berlin' (with --until: the last day; without: until enabled)")
    p.add_argument("--start", metavar="T", help="start later than now (same forms as --until)")
    p.add_argument("--reason", help="why (required to change anything; goes into the audit log and the silence)")
    p.add_argument("--owner", help="who (default: your login name)")
    p.add_argument("--json", action="store_true", help="list: print JSON (the API's switch fields)")


def run(args: argparse.Namespace) -> int:
    from govheal.client import new_session
    from govheal.endpoints import resolve
    from govheal.errors import UsageError
    from govheal.governance.defaults import local_zone, page_url
    from govheal.governance.service import Governance, GovernanceError, parse_time
    from govheal.seams import load_config
    from govheal.store import connect, db_path
    from govheal.types import parse_duration
    from remediator.audit import AuditLog

    config = load_config(args.config)
    tz = config.admin.timezone or local_zone()
    if args.action != "list":
        if not args.name:
            raise UsageError(f"govheal agents {args.action} needs the agent's name, e.g. govheal agents "
                             f"{args.action} GG --for 2h --reason 'deploying'")
        if not args.reason:
            raise UsageError("--reason is required: say why (it goes into the audit log and the silence comment)")
    import time

    from govheal.client import Alertmanagers

    urls = resolve(config).alertmanagers
    am = Alertmanagers.from_urls(urls, new_session(), timeout=2.0) if urls else None
    audit = AuditLog(config.path(config.telemetry_log)) if args.action != "list" else None
    gov = Governance(config, connect(db_path(config.state_path)), alertmanager=am, audit=audit, clock=time.time,
                     page_url=page_url(config), horizon=config.admin.silence_horizon, default_tz=tz)
    try:
        if args.action == "list":
            if args.name:
                gov._agent(args.name)  # unknown → the usage error naming the known agents
            print(listing(gov, args.name, time.time(), as_json=args.json))
            return 0
        owner = args.owner or getpass.getuser()
        try:
            if args.action == "enable":
                change = gov.enable(args.name, owner=owner, reason=args.reason, via="cli")
            else:
                seconds = parse_duration(args.duration) if args.duration else None
                change = gov.set(args.name, args.action, owner=owner, reason=args.reason, via="cli",
                                 duration=seconds, until=parse_time(args.until, tz) if args.until else None,
                                 start=parse_time(args.start, tz, "start") if args.start else None, every=args.every)
        except ValueError as exc:  # a bad --for
            raise UsageError(f"--for: {exc}") from None
        except GovernanceError as exc:
            raise UsageError(str(exc)) from None
        print(describe(change.to_dict(), am is not None))
        return 0
    finally:
        if audit is not None:
            audit.close()
        gov.conn.close()


def describe(change: dict[str, Any], have_am: bool) -> str:
    lines = [f"{change['agent']}: {change['op']} by {change['audit']['actor']}"]
    for s in change["switches"]:
        lines.append("  " + _switch_line(s))
    for si in change["silences"]:
        lines.append(f"  silence {si['kind']} {si['state']} {si['silence_id'] or ''} {si['starts_at']} → "
                     f"{si['ends_at']}" + (f"  ({si['error']})" if si["error"] else ""))
    if change["pending"]:
        lines.append("  pending: " + ("Alertmanager did not answer; the receiver writes it when it is back"
                                      if have_am else "no Alertmanager known (alertmanager.urls, or a running "
                                      "govheal up): the switch applies locally only"))
    return "\n".join(lines)


def _switch_line(s: dict[str, Any]) -> str:
    every = f" every {s['recurrence']}" if s["recurrence"] else ""
    until = f" until {s['expires_at']}" if s["expires_at"] else ""
    return f"{s['kind']}{every}{until} by {s['owner']}: {s['reason']}"


def listing(gov: Any, name: str | None, now: float, *, as_json: bool = False) -> str:
    from govheal.governance import schedule
    from govheal.governance.service import switch_dict

    rows = []
    for a in gov.config.agents:
        if name and a.name != name:
            continue
        for sw in gov.switches(a.name):
            d = switch_dict(sw) | {"agent": a.name, "in_effect": schedule.in_effect(sw, now),
                                   "expiring_24h": schedule.expires_within(sw, now, DAY)}
            d["silences"] = [r.to_dict() for r in gov.silences(a.name) if r.kind == sw.kind]
            rows.append(d)
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "no switches" + (f" on {name}" if name else "") + ": every agent is alerting and remediated"
    out = ["AGENT  SWITCH", *(f"{r['agent']}  {'ON  ' if r['in_effect'] else 'off '}" + _switch_line(r) +
                              "".join(f"\n         silence {s['state']} {s['silence_id'] or '(none yet)'} "
                                      f"{s['starts_at']} → {s['ends_at']}" for s in r["silences"]) for r in rows)]
    soon = [r for r in rows if r["expiring_24h"]]
    out.append("")
    out.append("expiring within 24 h: " + (", ".join(f"{r['agent']} {r['kind']} at {r['expires_at']}" for r in soon)
                                           or "none"))
    return "\n".join(out)
