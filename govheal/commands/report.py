"""``govheal report daily``: the daily ops cycle (health, canary, the window's numbers, the five criteria)."""

from __future__ import annotations

import argparse
import sys

HELP = "the daily ops cycle: health checks, the end-to-end canary, the window's numbers, PASS/FAIL report"


def _duration(text: str) -> float:
    from govheal.types import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the window must be longer than 0s")
    return seconds


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    d = sub.add_parser("daily", help="produce the due slot's report (or the one named by --date/--slot)",
                       description="Produce one slot of the daily report: <reports.dir>/CLS_DAILY_<date>_<slot>.log "
                                   "and .json. Without --date/--slot: the latest due slot, once (a late run is a "
                                   "catch-up). Exit 0 verified (or nothing due), 1 verification failed, 2 usage.")
    d.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    d.add_argument("--date", help="YYYY-MM-DD of the slot (local time of reports.timezone); an operator's run")
    d.add_argument("--slot", help="09 or 21 (a configured reports.slots entry); with --date: an operator's run")
    d.add_argument("--window", type=_duration, help="length of the window (default reports.window, 12h)")
    d.add_argument("--out", help="write the report into this directory instead of reports.dir")
    d.add_argument("--no-send", action="store_true", help="do not send the digest through the alert bridge")
    d.add_argument("--prometheus", metavar="URL", help="Prometheus to query (default: prometheus.url)")
    d.add_argument("--alertmanager", metavar="URL", action="append", default=[],
                   help="Alertmanager for the canary; repeat for several (default: alertmanager.urls)")


def run(args: argparse.Namespace) -> int:
    from govheal.report.run import DailyRun, Options
    from govheal.seams import load_config

    config = load_config(args.config)
    opts = Options(date=args.date, slot=args.slot, window=args.window, out=args.out, send=not args.no_send,
                   prometheus=args.prometheus, alertmanagers=args.alertmanager)
    outcome = DailyRun(config, opts).run()
    if outcome.message:
        print(f"govheal report: {outcome.message}", file=sys.stderr)
    return outcome.exit_code
