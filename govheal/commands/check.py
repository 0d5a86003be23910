"""``govheal check``: validate a config and print a one-screen summary of the fleet."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from govheal.config import Config
from govheal.errors import UsageError
from govheal.seams import load_config
from govheal.types import display_url, format_duration

HELP = "validate the config (exit 2 on problems) and print a summary of the fleet"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing when the config is valid")


def summary(cfg: Config) -> str:
    rows = [("AGENT", "ROLE", "NODE", "CRIT", "FIND BY", "HEALTH", "RESTART", "DEPENDS ON")]
    for a in cfg.agents:
        find = f"{a.process.kind}={a.process.value}" if a.process else "remote"
        health = "-"
        if a.health and (d := cfg.detection_for(a)):
            health = (f"{display_url(a.health.url)} ({format_duration(d.timeout)}, {d.consecutive_failures} "
                      f"in a row, every {format_duration(d.interval)})")
        restart = a.restart.strategy if a.restart else "-"
        if a.fallback:
            restart += f" → {a.fallback.agent or 'command'}"
        rows.append((a.name, a.role or "-", cfg.node_of(a), "yes" if a.critical else "",
                     find, health, restart, ",".join(a.depends_on) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{cfg.source}: OK, {len(cfg.agents)} agents on node {cfg.node}",
             f"state {cfg.state_path}   telemetry {cfg.path(cfg.telemetry_log)}",
             f"exporter {cfg.listen.exporter}   receiver {cfg.listen.receiver}",
             ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    channels = ", ".join(f"{n} ({c.type}, ≥{c.min_severity})" for n, c in cfg.notifications.channels.items())
    lines += ["", f"channels: {channels or 'none configured'}"]
    return "\n".join(lines)


def path_problems(cfg: Config) -> list[str]:
    """state_dir and the telemetry_log's directory must be creatable/writable (checked without creating)."""
    problems = []
    for field, target in (("state_dir", cfg.state_path), ("telemetry_log", cfg.path(cfg.telemetry_log).parent)):
        existing = next((p for p in (target, *target.parents) if p.exists()), Path("/"))
        if not existing.is_dir():
            problems.append(f"{field}: {existing} is not a directory")
        elif not os.access(existing, os.W_OK | os.X_OK):
            problems.append(f"{field}: {existing} is not writable by this user")
    return problems


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    problems = path_problems(cfg)
    if problems:
        raise UsageError(f"{cfg.source}: {'; '.join(problems)}; point it at a directory this user can write")
    if not args.quiet:
        print(summary(cfg))
        print("\n".join(["", *stack_lines(cfg)]))
    return check_shipped_configs(quiet=args.quiet)


def stack_lines(cfg: Config) -> list[str]:
    """Where Prometheus and the Alertmanagers are (config keys, else what `govheal up` recorded) and
    whether they answer; informational, never a failure of the check."""
    from govheal import endpoints
    from govheal.client import HEALTH_TIMEOUT, Alertmanager, Prometheus, new_session

    found = endpoints.resolve(cfg)
    lines = []
    with new_session() as session:
        if found.prometheus:
            ok = Prometheus(found.prometheus, session).ready(HEALTH_TIMEOUT)
            lines.append(f"prometheus    {display_url(found.prometheus)}  {'ready' if ok else 'NOT ANSWERING'}  "
                         f"({found.prometheus_from})")
        else:
            lines.append("prometheus    none known (set prometheus.url in the config, or start `govheal up`)")
        for url in found.alertmanagers:
            ok = Alertmanager(url, session).ready(HEALTH_TIMEOUT)
            lines.append(f"alertmanager  {display_url(url)}  {'ready' if ok else 'NOT ANSWERING'}  "
                         f"({found.alertmanagers_from})")
        if not found.alertmanagers:
            lines.append("alertmanager  none known (set alertmanager.urls in the config, or start `govheal up`)")
    return lines


# -- integration layer (issue 3): the shipped Prometheus/Alertmanager files, when the tools exist --


def check_shipped_configs(quiet: bool = False) -> int:
    import sys

    from govheal.chain import check_shipped
    from govheal.tools import install_hint

    failed = False
    lines = [""]
    for check in check_shipped():
        if check.ok is None:
            lines.append(f"skipped  {check.what}: {check.output} ({install_hint()})")
        elif check.ok:
            lines.append(f"ok       {check.what}")
        else:
            failed = True
            lines.append(f"FAILED   {check.what}:\n" + "\n".join(f"    {x}" for x in check.output.splitlines()))
    if failed or not quiet:
        print("\n".join(lines), file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0
