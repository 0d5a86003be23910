"""``make bench``: run every benchmark (or those named) and print one table each.

Each module in :data:`BENCHMARKS` provides ``run(quick: bool) -> str`` returning a printable table
(markdown). Results and the machine description go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import platform
import sys

BENCHMARKS: dict[str, str] = {
    # name: module (each issue adds its own line)
    "bridge": "bench.bridge",
    "remediation": "bench.remediation",
    "exporter_scrape": "bench.exporter_scrape",
    "detection_latency": "bench.detection_latency",
    "receiver": "bench.receiver",
    "governance": "bench.governance",
    "heal_latency": "bench.heal_latency",
    "soak": "bench.soak",
}


def machine() -> str:
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:  # pragma: no cover
        mem = "?"
    return f"{platform.system()} {platform.release()}, {platform.machine()}, {os.cpu_count()} CPUs, {mem}, " \
           f"Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    p.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    p.add_argument("--minutes", type=float, default=None,
                   help="run length of the benchmarks that take one (soak: default 15, --quick 2)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    print(f"machine: {machine()}\n")
    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        print(f"## {name}\n")
        kwargs = {"minutes": args.minutes} if "minutes" in inspect.signature(module.run).parameters else {}
        print(module.run(quick=args.quick, **kwargs))
        print()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
