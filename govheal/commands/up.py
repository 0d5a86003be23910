"""``govheal up``: start the demo fleet and the stack, supervise it until Ctrl-C, stop it in reverse order."""

from __future__ import annotations

import argparse

HELP = "start the fleet's agents and the govheal stack; Ctrl-C stops everything it started"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="govheal.yaml (default: the bundled demo fleet)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
