"""Locate the Prometheus-ecosystem binaries govheal drives, with this OS's install command when missing."""

from __future__ import annotations

import platform
import shutil

from govheal.errors import GovhealError

# tool → executable names, first found wins. Debian names Alertmanager `prometheus-alertmanager`,
# Homebrew `alertmanager` (ecosystem-facts.md §0).
BINARIES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "amtool": ("amtool",),
}

INSTALL_COMMANDS: dict[str, str] = {
    "Linux": "sudo apt-get install prometheus prometheus-alertmanager",
    "Darwin": "brew install prometheus alertmanager",
}


class MissingBinary(GovhealError):
    """A required binary is not on PATH; the message carries the install command."""


def install_hint(system: str | None = None) -> str:
    system = system or platform.system()
    return INSTALL_COMMANDS.get(system, "install Prometheus >= 2.42 and Alertmanager >= 0.25 with your package manager")


def find(tool: str) -> str | None:
    """The path of ``tool`` (a key of :data:`BINARIES`), or None."""
    for name in BINARIES[tool]:
        path = shutil.which(name)
        if path:
            return path
    return None


def require(tool: str, system: str | None = None) -> str:
    path = find(tool)
    if path is None:
        names = " or ".join(BINARIES[tool])
        raise MissingBinary(f"{tool} not found on PATH (looked for {names}); install it with: "
                            f"{install_hint(system)}  (or run `make run`, which installs it)")
    return path
