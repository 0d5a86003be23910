"""Packaging: dependency floors past known advisories, a constraints file that pins every dependency and
that `make venv` uses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
