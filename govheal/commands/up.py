"""``govheal up``: start the demo fleet and the stack, supervise it until Ctrl-C, stop it in reverse order.

Order: the fleet's agents (those with a ``command`` restart strategy that are not already running),
the exporter, the receiver (when built), Alertmanager, Prometheus. Runtime configs are rendered from
the committed ones into ``<state dir>/../up/`` (see govheal/chain.py).
"""

from __future__ import annotations

import argparse

HELP = "start the fleet's agents and the govheal stack; Ctrl-C stops everything it started"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    p.add_argument("--profile", choices=["single-host", "fleet"], default="single-host",
                   help="Prometheus profile: 1 s scrape/evaluation (default) or 5 s (docs/alerting.md)")


def run(args: argparse.Namespace) -> int:
    from govheal.seams import load_config
    from govheal.stack import Up

    return Up(load_config(args.config), profile=args.profile).run()
