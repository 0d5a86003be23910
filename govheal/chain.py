"""Render the runtime Prometheus and Alertmanager configs from the committed ones.

The committed files (prometheus/prometheus*.yml, alertmanager/alertmanager.yml) are the source of
truth for intervals, rules, routes and timings; rendering only swaps in addresses, absolute paths and
the fleet's node name, so what runs is what `promtool`/`amtool` checked.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from govheal.supervise import Child, Supervisor

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO / "prometheus"
ALERTMANAGER_FILE = REPO / "alertmanager" / "alertmanager.yml"

# profile name → committed Prometheus config (docs/alerting.md explains the trade-off).
PROFILES: dict[str, Path] = {
    "single-host": PROMETHEUS_DIR / "prometheus.yml",
    "fleet": PROMETHEUS_DIR / "prometheus.fleet.yml",
}

EXPORTER_JOB = "govheal-exporter"
RECEIVER_JOB = "govheal-receiver"


@dataclass(frozen=True)
class Endpoints:
    """HOST:PORT of each component of one running chain (receiver None when it is not started)."""

    exporter: str
    alertmanager: str
    prometheus: str
    receiver: str | None = None


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def render_prometheus(endpoints: Endpoints, node: str, profile: str = "single-host",
                      rules_dir: Path = PROMETHEUS_DIR / "rules") -> str:
    """The committed profile with this chain's targets, Alertmanager and absolute rule paths."""
    data = _load(PROFILES[profile])
    data["rule_files"] = [str(rules_dir / "*.yml")]
    data["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [endpoints.alertmanager]}]}]}
    targets = {EXPORTER_JOB: endpoints.exporter, RECEIVER_JOB: endpoints.receiver}
    jobs = []
    for job in data.get("scrape_configs", []):
        name = job.get("job_name")
        if name in targets:
            if targets[name] is None:
                continue  # not started: scraping it would only fire ReceiverDown
            job = {**job, "static_configs": [{"targets": [targets[name]], "labels": {"node": node}}]}
        jobs.append(job)
    data["scrape_configs"] = jobs
    return yaml.safe_dump(data, sort_keys=False)


def render_alertmanager(receiver_url: str, token_file: Path, source: Path = ALERTMANAGER_FILE) -> str:
    """The committed routes with every webhook pointed at ``receiver_url`` (path kept) and the token file."""
    data = _load(source)
    base = urlsplit(receiver_url)
    receivers = []
    for receiver in data.get("receivers", []):
        receiver = copy.deepcopy(receiver)  # YAML aliases share objects; edit each receiver's own copy
        for hook in receiver.get("webhook_configs", []):
            path = urlsplit(hook["url"]).path
            hook["url"] = urlunsplit((base.scheme, base.netloc, path, "", ""))
            auth = hook.setdefault("http_config", {}).setdefault("authorization", {"type": "Bearer"})
            auth["credentials_file"] = str(token_file)
        receivers.append(receiver)
    data["receivers"] = receivers
    return yaml.safe_dump(data, sort_keys=False)


# Prometheus re-sends firing alerts every resend-delay (default 1m). Alerts fired before the
# Alertmanager is discovered are dropped until then, and the Watchdog would be late by a minute;
# 5 s costs a few tiny POSTs. Alertmanager then expires an alert 4 x 5 s = 20 s after Prometheus
# stops sending it (docs/alerting.md).
RESEND_DELAY = "5s"


def prometheus_argv(binary: str, config_file: Path, data_dir: Path, listen: str) -> list[str]:
    return [binary, f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={listen}", "--storage.tsdb.retention.time=15d",
            f"--rules.alert.resend-delay={RESEND_DELAY}", "--log.level=warn"]


def alertmanager_argv(binary: str, config_file: Path, data_dir: Path, listen: str) -> list[str]:
    # --cluster.listen-address= : a lone local instance, no gossip on 0.0.0.0:9094 (ecosystem-facts §2.2).
    return [binary, f"--config.file={config_file}", f"--storage.path={data_dir}",
            f"--web.listen-address={listen}", "--cluster.listen-address=", "--log.level=warn"]


def start_chain(supervisor: Supervisor, config_file: Path, node: str, run_dir: Path, receiver_url: str,
                token_file: Path, profile: str = "single-host") -> Endpoints:
    """Start exporter, Alertmanager and Prometheus for ``config_file`` on free loopback ports, alerts
    going to ``receiver_url`` (the govheal receiver, or a test sink). Used by tests and benchmarks."""
    from govheal.stack import child_env, free_port, http_ok, prometheus_ready
    from govheal.tools import require

    ports = {name: f"127.0.0.1:{free_port()}" for name in ("exporter", "alertmanager", "prometheus")}
    endpoints = Endpoints(exporter=ports["exporter"], alertmanager=ports["alertmanager"],
                          prometheus=ports["prometheus"])
    logs = run_dir / "logs"
    exporter_url = f"http://{endpoints.exporter}"
    supervisor.start(Child(
        "exporter", [sys.executable, "-m", "govheal", "exporter", "--config", str(config_file),
                     "--listen", endpoints.exporter],
        logs / "exporter.log", ready=lambda: http_ok(exporter_url + "/healthz"), env=child_env()))
    am_file = run_dir / "alertmanager.yml"
    am_file.write_text(render_alertmanager(receiver_url, token_file))
    am_url = f"http://{endpoints.alertmanager}"
    supervisor.start(Child(
        "alertmanager", alertmanager_argv(require("alertmanager"), am_file, run_dir / "am-data",
                                          endpoints.alertmanager),
        logs / "alertmanager.log", ready=lambda: http_ok(am_url + "/-/ready")))
    prom_file = run_dir / "prometheus.yml"
    prom_file.write_text(render_prometheus(endpoints, node, profile))
    prom_url = f"http://{endpoints.prometheus}"
    supervisor.start(Child(
        "prometheus", prometheus_argv(require("prometheus"), prom_file, run_dir / "prom-data", endpoints.prometheus),
        logs / "prometheus.log", ready=lambda: prometheus_ready(prom_url), ready_timeout=60))
    return endpoints


@dataclass(frozen=True)
class ToolCheck:
    what: str
    ok: bool | None  # None: the tool is not installed, skipped
    output: str = ""


def check_shipped() -> list[ToolCheck]:
    """`promtool check config` (both profiles, which also checks the rules), `promtool test rules`, and
    `amtool check-config` on the shipped files; a missing tool is reported as skipped, not failed."""
    import subprocess

    from govheal.tools import find

    runs: list[tuple[str, str, list[str]]] = [
        *((f"promtool check config {p.relative_to(REPO)}", "promtool", ["check", "config", str(p)])
          for p in PROFILES.values()),
        ("promtool test rules prometheus/tests/*.yml", "promtool",
         ["test", "rules", *map(str, sorted((PROMETHEUS_DIR / "tests").glob("*.yml")))]),
        ("amtool check-config alertmanager/alertmanager.yml", "amtool", ["check-config", str(ALERTMANAGER_FILE)]),
    ]
    results = []
    for what, tool, args in runs:
        binary = find(tool)
        if binary is None:
            results.append(ToolCheck(what, None, f"{tool} not installed"))
            continue
        try:
            done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=REPO)
        except subprocess.TimeoutExpired:
            results.append(ToolCheck(what, False, "timed out after 120s"))
            continue
        results.append(ToolCheck(what, done.returncode == 0, (done.stdout + done.stderr).strip()))
    return results
