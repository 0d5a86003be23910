"""The example deployment committed in ``launchd/`` and ``examples/systemd/``: what ``govheal launchd|systemd render``
writes for a Mac user ``you`` with Homebrew, and for a Linux user ``you`` with Debian's packages. A test
regenerates them and fails on any difference, so the committed files are always what the code writes."""

from __future__ import annotations

from pathlib import Path

from govheal.config import Config
from govheal.deploy.services import Plan, plan
from govheal.grafana import Install
from govheal.seams import parse_config

HOMES = {"Darwin": "/Users/you", "Linux": "/home/you"}
BINARIES = {"Darwin": {"prometheus": "/opt/homebrew/bin/prometheus", "alertmanager": "/opt/homebrew/bin/alertmanager"},
            "Linux": {"prometheus": "/usr/bin/prometheus", "alertmanager": "/usr/bin/prometheus-alertmanager"}}
GRAFANA = {"Darwin": Install(Path("/opt/homebrew/bin/grafana"), Path("/opt/homebrew/opt/grafana/share/grafana")),
           "Linux": Install(Path("/usr/sbin/grafana-server"), Path("/usr/share/grafana"))}
SITE = "02luka/.venv/lib/python3.12/site-packages"

CONFIG = """
node: {node}
state_dir: .govheal/state
listen: {{exporter: 127.0.0.1:9826, receiver: 127.0.0.1:9827}}
prometheus: {{url: http://127.0.0.1:9829}}
alertmanager: {{urls: [http://127.0.0.1:9828]}}
receiver: {{token_file: .govheal/secrets/webhook_token}}
notifications:
  channels:
    discord: {{type: discord, webhook_url_file: .govheal/secrets/discord_webhook_url}}
reports:
  dir: {reports}
agents:
  - name: CLS
    process: {{launchd: com.02luka.cls.agent}}
    restart: {{strategy: launchd}}
"""


def config(system: str) -> Config:
    home = HOMES[system]
    reports = "/Volumes/Backup/02luka/reports/daily" if system == "Darwin" else "reports/daily"
    node = "mac-studio" if system == "Darwin" else "linux-node"
    return parse_config(CONFIG.format(node=node, reports=reports), source=Path(f"{home}/02luka/govheal.yaml"))


def example(system: str) -> Plan:
    home = HOMES[system]
    return plan(config(system), python=f"{home}/02luka/.venv/bin/python", system=system,
                binaries=BINARIES[system], grafana=GRAFANA[system],
                grafana_bundle=Path(f"{home}/{SITE}/govheal/bundled/grafana"), token=False)
