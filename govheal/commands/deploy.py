"""``govheal launchd`` and ``govheal systemd``: render, install or uninstall the node's jobs."""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

ACTIONS = ("render", "install", "uninstall")


def add_common(p: argparse.ArgumentParser, default_prefix: str, what: str) -> None:
    p.add_argument("action", choices=ACTIONS, help=f"render: write the {what} (any OS); install: write them to "
                   f"--prefix and load them; uninstall: unload and remove them")
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    p.add_argument("--prefix", help=f"directory for the {what} (render default: <deploy.dir>/{{launchd,systemd}}; "
                   f"install/uninstall default: {default_prefix})")


def load(args: argparse.Namespace):
    from govheal.deploy import services
    from govheal.seams import load_config

    config = load_config(args.config)
    return config, services.plan(config, token=args.action != "uninstall")


def report(plan, paths: list[Path], say=print) -> None:
    for path in paths:
        say(f"  wrote {path}")
    for note in plan.notes:
        say(f"  note: {note}")


def run_launchd(args: argparse.Namespace) -> int:
    from govheal.deploy import launchd, services
    from govheal.errors import UsageError

    config, plan = load(args)
    if args.action == "render":
        directory = Path(args.prefix).expanduser() if args.prefix else config.path(config.deploy.dir) / "launchd"
        services.write_runtime(plan)
        report(plan, launchd.write(plan, directory.absolute()))
        if config.reports.timezone:
            print(f"  note: launchd runs StartCalendarInterval in the Mac's local time; reports.timezone is "
                  f"{config.reports.timezone}: keep them the same")
        return 0
    if platform.system() != "Darwin":
        raise UsageError(f"launchd {args.action} runs launchctl, which exists on macOS only (this is "
                         f"{platform.system()}): on Linux use `govheal systemd {args.action}`; `govheal launchd "
                         "render` writes the plists anywhere")
    directory = (Path(args.prefix).expanduser() if args.prefix else Path.home() / "Library" / "LaunchAgents").absolute()
    if args.action == "install":
        services.write_runtime(plan)
        for label in launchd.install(plan, directory):
            print(f"  loaded {launchd.domain()}/{label}  ({directory / (label + '.plist')})")
        report(plan, [])
    else:
        gone = launchd.uninstall(plan, directory)
        print(f"  unloaded {', '.join(gone) or 'nothing (none was loaded)'}; removed the plists from {directory}")
    return 0


def run_systemd(args: argparse.Namespace) -> int:
    from govheal.deploy import services, systemd

    config, plan = load(args)
    if args.action == "render":
        directory = Path(args.prefix).expanduser() if args.prefix else config.path(config.deploy.dir) / "systemd"
        services.write_runtime(plan)
        report(plan, systemd.write(plan, directory.absolute()))
        return 0
    systemd.require_systemd()
    directory = (Path(args.prefix).expanduser() if args.prefix else
                 Path.home() / ".config" / "systemd" / "user").absolute()
    if args.action == "install":
        services.write_runtime(plan)
        units = systemd.install(plan, directory)
        print(f"  enabled and started {', '.join(units)} (user units in {directory})")
        print("  to keep them running while you are logged out: loginctl enable-linger $USER")
        report(plan, [])
    else:
        units = systemd.uninstall(plan, directory)
        print(f"  stopped and disabled {', '.join(units)}; removed the units from {directory}")
    return 0
