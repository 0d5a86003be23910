"""``govheal systemd render|install|uninstall [--prefix DIR]``: the node's jobs as systemd user units."""

from __future__ import annotations

import argparse

from govheal.commands.deploy import add_common, run_systemd

HELP = "systemd user units (and the daily timer) for the exporter, receiver, Prometheus, Alertmanager, Grafana"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p, "~/.config/systemd/user", "units")


def run(args: argparse.Namespace) -> int:
    return run_systemd(args)
