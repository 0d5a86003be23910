"""The ``govheal`` command. Subcommands live in their own modules; this file only maps names to them.

Each module in :data:`COMMANDS` provides ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Modules keep heavy imports inside ``run`` so ``govheal --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from govheal import __version__
from govheal.errors import ConfigError, GovhealError, path_problem

if TYPE_CHECKING:
    from govheal.config import Config

# A path the operator gave us (state_dir, telemetry_log, a log or run dir) that cannot be used: a config error.
PATH_ERRNOS = {errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOENT, errno.EEXIST}

COMMANDS: dict[str, str] = {
    "check": "govheal.commands.check",
    "agents": "govheal.commands.agents",
    "up": "govheal.commands.up",
    "exporter": "exporter.cli",
    "restart": "remediator.cli",
    "receiver": "webhook_receiver.cli",
    "demo-agent": "govheal.demo_agent",
    "report": "govheal.commands.report",
    "launchd": "govheal.commands.launchd",
    "systemd": "govheal.commands.systemd",
}


def load_config(path: str | None = None) -> Config:
    """How every command loads govheal.yaml: through the composition root (govheal/seams.py), which knows
    every registry. Handed to each command as ``args.load_config``: the components' commands (exporter,
    restart, receiver) may not import the top floor themselves. Imported here on use: ``--help`` stays fast."""
    from govheal import seams

    return seams.load_config(path)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; ``only``: just that command's module is imported (``govheal demo-agent``, the
    restart command of every demo agent, starts in 0.09 s instead of 0.3 s: it loads no config models)."""
    parser = argparse.ArgumentParser(
        prog="govheal",
        description="Self-healing and governance for a fleet of long-running agents.",
    )
    parser.add_argument("--version", action="version", version=f"govheal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # a command still being built; not listed
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, load_config=load_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ConfigError as exc:
        print(f"govheal: invalid config ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except GovhealError as exc:
        print(f"govheal {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `govheal check | head`: the reader left; say nothing more, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # the last net: a path or a socket we could not use, said without a traceback
        if exc.filename is None:
            raise
        print(f"govheal {args.command}: cannot use {exc.filename}: {path_problem(exc.filename, exc)}; check the "
              "paths in the config and on the command line (state_dir, telemetry_log, log and pid files) and their "
              "permissions", file=sys.stderr)
        return 2 if exc.errno in PATH_ERRNOS else 1


if __name__ == "__main__":
    raise SystemExit(main())
