"""``govheal launchd render|install|uninstall [--prefix DIR]``: the node's jobs as launchd user agents."""

from __future__ import annotations

import argparse

from govheal.commands.deploy import add_common, run_launchd

HELP = "launchd plists for the exporter, receiver, Prometheus, Alertmanager, Grafana and the daily cycle"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p, "~/Library/LaunchAgents", "plists")


def run(args: argparse.Namespace) -> int:
    return run_launchd(args)
