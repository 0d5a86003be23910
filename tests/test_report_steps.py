"""The configured extra steps: argv lists with a timeout and a working dir; a failure is a result, never a crash."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil
import pytest

from govheal.config import ConfigError
from govheal.report.steps import run_step
from govheal.seams import parse_config
from govheal.testing.support import wait_until

PY = json.dumps(sys.executable)


def config(tmp: Path, steps: str):
    text = f"reports:\n  steps:\n{steps}\nagents:\n  - name: GG\n    health: {{url: 'http://127.0.0.1:9/h'}}\n"
    (tmp / "govheal.yaml").write_text(text)
    return parse_config(text, source=tmp / "govheal.yaml")


def test_a_step_runs_in_its_working_dir_with_the_allowlisted_environment_and_its_own(tmp_path, monkeypatch) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("GOVHEAL_WEBHOOK_TOKEN", "s3cret")
    cfg = config(tmp_path, f"    - {{name: sync, argv: [{PY}, -c, 'import os; print(os.getcwd()); "
                           f"print(os.environ.get(\"GOVHEAL_WEBHOOK_TOKEN\")); print(os.environ[\"X\"])'], "
                           "cwd: work, env: {X: 'from-config'}}")
    r = run_step(cfg, cfg.reports.steps[0])
    assert r.ok and r.exit_code == 0
    assert r.output.splitlines() == [str(tmp_path / "work"), "None", "from-config"]


def test_a_failing_step_is_a_result_with_its_exit_code_and_output(tmp_path) -> None:
    cfg = config(tmp_path, f"    - {{name: bad, argv: [{PY}, -c, 'print(\"nope\"); raise SystemExit(4)']}}")
    r = run_step(cfg, cfg.reports.steps[0])
    assert not r.ok and r.exit_code == 4 and r.error == "exit code 4" and r.output == "nope"


def test_a_step_over_its_timeout_is_killed_with_what_it_started(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    code = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
            f"time.sleep(60)']); open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    cfg = config(tmp_path, f"    - {{name: slow, argv: [{PY}, -c, {json.dumps(code)}], timeout: 1s}}")
    t0 = time.monotonic()
    r = run_step(cfg, cfg.reports.steps[0])
    assert time.monotonic() - t0 < 10
    assert not r.ok and r.exit_code is None and "timed out after 1 s" in r.error
    child = int(pidfile.read_text())

    def gone() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_until(gone, 5, what="the step's own child killed too")


def test_a_missing_program_or_directory_is_a_fail_line_that_says_what_to_fix(tmp_path) -> None:
    cfg = config(tmp_path, "    - {name: gone, argv: [/no/such/memsync]}\n"
                           f"    - {{name: nodir, argv: [{PY}, -V], cwd: missing-dir}}")
    gone, nodir = (run_step(cfg, s) for s in cfg.reports.steps)
    assert not gone.ok and "not found" in gone.error and "absolute path" in gone.error
    assert not nodir.ok and "missing-dir does not exist" in nodir.error


@pytest.mark.parametrize(("steps", "message"), [
    ("    - {name: s, argv: 'rsync -a a b'}", "must be a list of arguments, not a shell string"),
    ("    - {name: s, argv: []}", "must not be empty"),
    ("    - {name: s, argv: [x], timout: 5s}", "unknown key 'timout'; did you mean 'timeout'?"),
    ("    - {name: s, argv: [x]}\n    - {name: s, argv: [y]}", "duplicate step name(s) s"),
    ("    - {name: s, argv: [x], timeout: 2h}", "must be less than or equal to 3600"),
])
def test_the_steps_section_is_validated_strictly(tmp_path, steps, message) -> None:
    with pytest.raises(ConfigError) as exc:
        config(tmp_path, steps)
    assert message in str(exc.value)


@pytest.mark.parametrize(("reports", "message"), [
    ("  slots: ['9:00']", "slot '9:00' is not HH:MM"),
    ("  slots: ['09:00', '09:00']", "slots must be unique"),
    ("  timezone: Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("  windw: 12h", "did you mean 'window'?"),
    ("  criteria: {heal_success_min: 98}", "must be less than or equal to 1"),
])
def test_the_reports_section_is_validated_strictly(tmp_path, reports, message) -> None:
    text = f"reports:\n{reports}\nagents:\n  - name: GG\n    health: {{url: 'http://127.0.0.1:9/h'}}\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, source=tmp_path / "govheal.yaml")
    assert message in str(exc.value)
