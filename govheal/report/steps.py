"""The configured extra steps of the daily cycle (``reports.steps``): argv lists with a timeout and a working
directory, run in order with the environment a restarted agent gets (govheal.procs.allowlisted_env: PATH,
HOME, USER, LANG, TZ, ... plus the step's ``env:``; nothing secret by default). A failing step is a FAIL
line in the report; it never stops the report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

from govheal.config import Config, ReportStep
from govheal.procs import allowlisted_env
from govheal.report.model import StepResult

TAIL_LINES = 20
TAIL_CHARS = 4000


def tail(text: str) -> str:
    lines = text.strip().splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-TAIL_CHARS:]


def run_step(config: Config, step: ReportStep, clock: Callable[[], float] = time.monotonic) -> StepResult:
    cwd = config.path(step.cwd) if step.cwd else (config.source.parent if config.source else None)
    env = allowlisted_env(step.env)  # like a restarted agent: a login session's basics plus its env:
    shown_cwd = str(cwd or os.getcwd())
    t0 = clock()

    def result(code: int | None, error: str = "", output: str = "") -> StepResult:
        return StepResult(step.name, tuple(step.argv), shown_cwd, step.timeout, code, clock() - t0, error, tail(output))

    if cwd is not None and not cwd.is_dir():
        what = "is not a directory" if cwd.exists() else "does not exist"
        return result(None, f"working directory {cwd} {what} (reports.steps[{step.name}].cwd)")
    try:
        proc = subprocess.Popen(step.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    except FileNotFoundError:
        return result(None, f"{step.argv[0]}: not found (reports.steps[{step.name}].argv; use an absolute path)")
    except PermissionError as exc:
        return result(None, f"cannot run {step.argv[0]} in {shown_cwd}: {exc.strerror}")
    except OSError as exc:
        return result(None, f"cannot run {step.argv[0]}: {exc.strerror or exc}")
    try:
        out, _ = proc.communicate(timeout=step.timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the step and whatever it started
        out, _ = proc.communicate()
        return result(None, f"timed out after {step.timeout:g} s (killed)", out)
    if proc.returncode != 0:
        return result(proc.returncode, f"exit code {proc.returncode}", out)
    return result(0, "", out)


def run_all(config: Config) -> tuple[StepResult, ...]:
    return tuple(run_step(config, s) for s in config.reports.steps)
