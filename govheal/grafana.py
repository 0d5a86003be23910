"""How `govheal up` starts Grafana when one is installed: argv, environment, a free loopback port, URLs.

Grafana reads the bundled grafana/provisioning/ (govheal/resources.py) as it is: the datasource URLs, the
scrape interval and the dashboards directory come from the GOVHEAL_* variables set here (Grafana expands ``${VAR}``
in provisioning files), everything else from GF_* variables. Nothing is written into the repository.
When no Grafana is installed, :func:`missing_hint` is the one line `govheal up` prints instead.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from govheal import resources
from govheal.net import LOOPBACK, free_port
from govheal.supervise import Child

HOME_DASHBOARD = "govheal-governance"

# `grafana` (Grafana >= 10, `grafana server ...`) first; `grafana-server` is the older entry point.
BINARIES = ("grafana", "grafana-server")
HOMEPATH_ENV = "GOVHEAL_GRAFANA_HOMEPATH"  # overrides the search below
INSTALL_HINTS = {
    "Darwin": "brew install grafana",
    "Linux": "install Grafana >= 11 from grafana.com's apt/rpm repository (Debian does not package it)",
}

@dataclass(frozen=True)
class Install:
    binary: Path
    homepath: Path  # holds conf/defaults.ini and public/

    def argv(self) -> list[str]:
        if self.binary.name == "grafana-server":
            return [str(self.binary), "--homepath", str(self.homepath)]
        return [str(self.binary), "server", "--homepath", str(self.homepath)]


SYSTEM_HOMES = (
    Path("/usr/share/grafana"),                          # the deb and rpm packages
    Path("/opt/homebrew/opt/grafana/share/grafana"),     # Homebrew on Apple silicon
    Path("/usr/local/opt/grafana/share/grafana"),        # Homebrew on Intel
)


def homepath_candidates(binary: Path, system_homes: tuple[Path, ...] = SYSTEM_HOMES) -> list[Path]:
    """Where the installs we know keep Grafana's home, for the binary found on PATH."""
    real = binary.resolve()
    return [
        real.parent.parent / "share" / "grafana",           # Homebrew: Cellar/grafana/X/{bin,share/grafana}
        real.parent.parent,                                  # the release tarball: grafana-X/{bin,conf,public}
        *system_homes,
    ]


def is_home(path: Path) -> bool:
    return (path / "conf" / "defaults.ini").is_file()


def find(which: Callable[[str], str | None] = shutil.which, env: Mapping[str, str] = os.environ,
         system_homes: tuple[Path, ...] = SYSTEM_HOMES) -> Install | None:
    """The first Grafana on PATH with a usable home directory, or None."""
    for name in BINARIES:
        found = which(name)
        if not found:
            continue
        binary = Path(found)
        candidates = ([Path(env[HOMEPATH_ENV])] if env.get(HOMEPATH_ENV)
                      else homepath_candidates(binary, system_homes))
        home = next((p for p in candidates if is_home(p)), None)
        if home is not None:
            return Install(binary, home)
    return None


def missing_hint(system: str | None = None) -> str:
    """The one line `govheal up` prints when no Grafana is installed (and it goes on without one)."""
    how = INSTALL_HINTS.get(system or platform.system(), "install Grafana >= 11")
    return (f"  grafana        not installed, skipped ({how}; `govheal up` then starts it with the govheal "
            f"boards; to use your own Grafana: docs/dashboards.md)")


@dataclass(frozen=True)
class Plan:
    """One Grafana child process: argv, its environment additions, where it listens, where to look."""

    argv: list[str]
    env: dict[str, str]
    listen: str
    log: Path
    board_params: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def health_url(self) -> str:
        return self.url + "/api/health"

    def board_url(self, uid: str = HOME_DASHBOARD) -> str:
        """The board's URL with its link variables set (governance page, Alertmanager, runbooks)."""
        query = urlencode({f"var-{k}": v for k, v in self.board_params.items() if v})
        return f"{self.url}/d/{uid}" + (f"?{query}" if query else "")

    def child(self, base_env: Mapping[str, str], ready: Callable[[], bool]) -> Child:
        """A supervised child for govheal.supervise (``ready``: e.g. stack.http_ok on health_url)."""
        return Child(name="grafana", argv=self.argv, log=self.log, ready=ready, url=self.board_url(),
                     env={**base_env, **self.env}, ready_timeout=60)


def plan(install: Install, run_dir: Path, *, prometheus_url: str, alertmanager_url: str, scrape_interval: str,
         receiver_url: str = "", runbook_base_url: str = "", port: int | None = None,
         provisioning_dir: Path | None = None, dashboards_dir: Path | None = None) -> Plan:
    """Grafana on a free loopback port, state under ``run_dir``, provisioned from the committed files.

    ``scrape_interval`` is Prometheus's (1s single-host, 5s fleet): the datasource's timeInterval, from
    which Grafana derives $__rate_interval (at least 4 scrape intervals).
    """
    port = port or free_port()
    provisioning_dir = provisioning_dir or resources.grafana_provisioning_dir()
    dashboards_dir = dashboards_dir or resources.grafana_dashboards_dir()
    data = run_dir / "grafana-data"
    env = {
        # read by grafana/provisioning/*/govheal.yaml
        "GOVHEAL_PROMETHEUS_URL": prometheus_url,
        "GOVHEAL_ALERTMANAGER_URL": alertmanager_url,
        "GOVHEAL_SCRAPE_INTERVAL": scrape_interval,
        "GOVHEAL_GRAFANA_DASHBOARDS": str(dashboards_dir),
        # Grafana's own settings ([section] key → GF_SECTION_KEY)
        "GF_PATHS_PROVISIONING": str(provisioning_dir),
        "GF_PATHS_DATA": str(data),
        "GF_PATHS_LOGS": str(run_dir / "logs" / "grafana"),
        "GF_PATHS_PLUGINS": str(data / "plugins"),
        "GF_SERVER_HTTP_ADDR": LOOPBACK,
        "GF_SERVER_HTTP_PORT": str(port),
        "GF_AUTH_ANONYMOUS_ENABLED": "true",     # loopback only: view the boards without a login
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",  # read-only; the admin login stays for changes
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": str(dashboards_dir / f"{HOME_DASHBOARD}.json"),
    }
    params = {"receiver_url": receiver_url, "alertmanager_url": alertmanager_url,
              "runbook_base_url": runbook_base_url}
    return Plan(install.argv(), env, f"{LOOPBACK}:{port}", run_dir / "logs" / "grafana.log", params)
