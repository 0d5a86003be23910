"""``python -m govheal.dashboards [--check] [--out DIR]``: write (or check) grafana/dashboards/*.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from govheal.dashboards import stale, write
from govheal.resources import grafana_dashboards_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m govheal.dashboards",
                                     description="Generate the Grafana dashboards from govheal/dashboards/.")
    default = grafana_dashboards_dir()
    parser.add_argument("--out", type=Path, default=default, help=f"directory (default {default})")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files differ from the generator")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        for name in bad:
            print(f"{args.out / name}: differs from the generator; run: python -m govheal.dashboards")
        return 1 if bad else 0
    for path in write(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
