from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.support import demo_fleet

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def require_binary(name: str, *alternatives: str) -> str:
    """The path of a binary `make test` installs; a missing one is an install bug, so fail loudly."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path:
            return path
    pytest.fail(f"{name} not on PATH: `make test` installs it (apt-get install prometheus prometheus-alertmanager)")


@pytest.fixture
def fleet(tmp_path: Path):
    """Three running demo agents A, B, C (real processes on free loopback ports)."""
    with demo_fleet(tmp_path, ["A", "B", "C"]) as agents:
        yield agents
