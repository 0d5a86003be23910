"""Packaging: dependency floors past known advisories, a constraints file that pins every dependency and
that `make venv` uses, and a wheel that works installed outside the checkout (issue 8 point 6)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# package → the first release past its known advisories (issue 13 point 6)
ADVISORY_FLOORS = {"requests": "2.32.4", "waitress": "3.0.1"}


def requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def pins() -> dict[str, Version]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            out[canonical(name)] = Version(version)
    return out


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_floors_are_past_the_known_advisories():
    floors = {canonical(r.name): r.specifier for r in requirements()}
    for name, first_fixed in ADVISORY_FLOORS.items():
        spec = floors[name]
        lowest = min((Version(s.version) for s in spec if s.operator == ">="), default=None)
        assert lowest is not None and lowest >= Version(first_fixed), f"{name}: floor {spec} is below {first_fixed}"


def test_every_dependency_is_pinned_and_the_pin_satisfies_its_floor():
    pinned = pins()
    for req in requirements():
        name = canonical(req.name)
        assert name in pinned, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pinned[name]), f"{req.name}=={pinned[name]} does not satisfy {req.specifier}"


def test_make_venv_installs_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"pip install .*-c constraints\.txt -e '\.\[dev\]'", makefile)
    assert re.search(r"^\$\(STAMP\): .*constraints\.txt", makefile, flags=re.M), "a new pin must reinstall"


# -- an installed govheal finds its own files ------------------------------------------------------

IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", ".govheal", "__pycache__",
                                 ".pytest_cache", ".ruff_cache", "telemetry", "reports")


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 180), **kw)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """govheal built as a wheel from a copy of this checkout and installed (not editable) into a fresh
    virtualenv outside it; dependencies at the pinned versions of constraints.txt."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=IGNORED)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(src)])
    (wheel,) = (tmp / "dist").glob("govheal-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"),
         str(wheel)], timeout=300)
    outside = tmp / "elsewhere"
    outside.mkdir()
    path = os.pathsep.join([str(venv / "bin"), *(p for p in os.environ["PATH"].split(os.pathsep)
                                                 if not p.startswith(str(REPO)))])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GOVHEAL_CONFIG", "VIRTUAL_ENV")}
    env["PATH"] = path
    return SimpleNamespace(venv=venv, bin=venv / "bin", cwd=outside, env=env, tmp=tmp)


@pytest.mark.live
def test_the_installed_package_is_the_one_that_runs_with_real_bundled_files(installed):
    where = run([str(installed.bin / "python"), "-c", "import govheal, sys; print(govheal.__file__); print(sys.path)"],
                cwd=installed.cwd, env=installed.env).stdout
    assert where.startswith(str(installed.venv)) and str(REPO) not in where
    bundled = next((installed.venv / "lib").glob("python3*/site-packages/govheal/bundled"))
    for rel in ("prometheus/prometheus.yml", "prometheus/rules/agents.yml", "prometheus/tests/agents_test.yml",
                "alertmanager/alertmanager.yml", "examples/govheal.yaml"):
        f = bundled / rel
        assert f.is_file() and not f.is_symlink(), rel


@pytest.mark.live
def test_the_installed_govheal_checks_the_bundled_demo_fleet_from_outside_the_checkout(installed):
    done = run([str(installed.bin / "govheal"), "check"], cwd=installed.cwd, env=installed.env)
    assert "OK, 6 agents on node demo-node" in done.stdout
    assert str(installed.venv) in done.stdout.splitlines()[0], "the demo fleet bundled with the install"
    for what in ("promtool check config prometheus/prometheus.yml", "promtool test rules prometheus/tests/*.yml",
                 "amtool check-config alertmanager/alertmanager.yml"):
        assert f"ok       {what}" in done.stdout, done.stdout


@pytest.mark.live
def test_the_installed_govheal_up_starts_and_stops_cleanly_on_ctrl_c(installed):
    from govheal.testing.support import free_port, is_running

    work = installed.cwd / "fleet"
    work.mkdir()
    port = free_port()
    (work / "govheal.yaml").write_text(f"""\
node: wheel-node
state_dir: state
listen: {{exporter: '127.0.0.1:{free_port()}', receiver: '127.0.0.1:{free_port()}'}}
agents:
  - name: A
    process: {{pidfile: run/A.pid}}
    health: {{url: "http://127.0.0.1:{port}/health", timeout: 500ms}}
    restart: {{strategy: command, argv: [govheal, demo-agent, --name, A, --port, "{port}", --pidfile, run/A.pid]}}
""")
    proc = subprocess.Popen([str(installed.bin / "govheal"), "up"], cwd=work, env=installed.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("govheal up: ready:"):
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    children: list[psutil.Process] = []
    try:
        assert ready.wait(60), "".join(lines)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5, children  # agent, exporter, receiver, Alertmanager, Prometheus
        assert all(str(installed.venv) in " ".join(c.cmdline()) or c.name().startswith(("prometheus", "alertm"))
                   for c in children), [c.cmdline() for c in children]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, "".join(lines)
    assert lines[-1] == "govheal up: stopped\n", "".join(lines)
    left = [c for c in children if is_running(c.pid)]
    assert left == [], [(c.pid, c.name()) for c in left]
