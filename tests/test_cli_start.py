"""The ``govheal`` command imports only the module of the command it runs.

``govheal demo-agent`` is the restart command of every demo agent: each heal waits for its start. Building
the whole command line imported every command and the config models (pydantic, requests, Flask): 0.3 s
of every heal, measured by `make chaos` as act → healthy 0.26 s against the agent's own 0.05 s.
"""

from __future__ import annotations

import json
import subprocess
import sys

from govheal.cli import COMMANDS, build_parser

PROBE = """
import json, sys
from govheal.cli import main
try:
    main(["demo-agent", "--help"])
except SystemExit:
    pass
heavy = [m for m in ("govheal.config", "pydantic", "requests", "flask", "prometheus_client") if m in sys.modules]
print(json.dumps(heavy), file=sys.__stderr__)
"""


def test_a_command_that_reads_no_config_loads_no_config_models() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    assert "--pidfile" in done.stdout  # and it still has its own arguments


def test_the_full_command_line_still_lists_every_command() -> None:
    choices = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(choices) == set(COMMANDS)
