"""Fakes and helpers that both the tests and the benchmarks use (bench/ imports no test module).

Fake Discord/Telegram servers, a recording webhook sink, real demo agents as subprocesses, and fake
``launchctl``/``systemctl`` programs (package data beside these modules: :data:`FAKES`). Nothing in
govheal's own code paths imports this package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The directory of this package: launchctl, exporter/systemctl, remediator/{launchctl,systemctl}.
FAKES: Path = Path(str(files(__name__)))
