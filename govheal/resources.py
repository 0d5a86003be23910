"""The files govheal ships (rules, routes, the demo fleet), found through the installed package.

Each set lives in a top-level folder of the repository (``prometheus/``, ``alertmanager/``, ``examples/``)
and is bundled as package data under ``govheal/bundled/<set>`` (a symlink in the repository, copies in a
wheel), so an installed govheal (``pip install .``, a launchd plist, a systemd unit) finds the same files
as a checkout. Nothing in govheal looks for files relative to the repository.

Adding a set (``grafana/``, ``launchd/``): a symlink ``govheal/bundled/<set> -> ../../<set>``, its globs under
``[tool.setuptools.package-data]`` in pyproject.toml, a line in :data:`BUNDLES`, and a function below.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from govheal.errors import GovhealError

# set name → what it holds (for messages); the directory is govheal/bundled/<name>.
BUNDLES: dict[str, str] = {
    "prometheus": "Prometheus profiles, rules and rule tests",
    "alertmanager": "Alertmanager routes",
    "examples": "the demo fleet (govheal.yaml)",
    "grafana": "Grafana provisioning files and dashboards",
}

# Prometheus profile name → file in the prometheus set (docs/alerting.md explains the trade-off).
PROFILE_FILES: dict[str, str] = {
    "single-host": "prometheus.yml",
    "fleet": "prometheus.fleet.yml",
}


class MissingResource(GovhealError):
    """A bundled file is not where the installed package should have it: a broken install."""


def bundled(name: str) -> Path:
    """The directory of one bundled set, as a real path (Prometheus and promtool need file names)."""
    if name not in BUNDLES:
        raise KeyError(f"unknown bundled set {name!r}; known: {', '.join(BUNDLES)}")
    path = Path(str(files("govheal").joinpath("bundled", name)))
    if not path.is_dir():
        raise MissingResource(f"{BUNDLES[name]} are missing from this install (looked in {path}); "
                              "reinstall govheal (pip install --force-reinstall govheal, or `make venv` in a checkout)")
    return path


def prometheus_dir() -> Path:
    return bundled("prometheus")


def prometheus_profile(profile: str) -> Path:
    """The committed Prometheus config of ``profile`` (a key of :data:`PROFILE_FILES`)."""
    return prometheus_dir() / PROFILE_FILES[profile]


def prometheus_rules_dir() -> Path:
    return prometheus_dir() / "rules"


def prometheus_rule_tests() -> list[Path]:
    return sorted((prometheus_dir() / "tests").glob("*.yml"))


def alertmanager_file() -> Path:
    return bundled("alertmanager") / "alertmanager.yml"


def example_config() -> Path:
    """The demo fleet, used when no --config, $GOVHEAL_CONFIG or ./govheal.yaml names one."""
    return bundled("examples") / "govheal.yaml"


def grafana_provisioning_dir() -> Path:
    """grafana/provisioning: what Grafana's paths.provisioning points at (datasources/, dashboards/)."""
    return bundled("grafana") / "provisioning"


def grafana_dashboards_dir() -> Path:
    """grafana/dashboards: the boards, as `python -m govheal.dashboards` writes them."""
    return bundled("grafana") / "dashboards"
