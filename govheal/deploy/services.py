"""What a deployed node runs, as plain data: one :class:`Service` per job (exporter, receiver, Prometheus,
Alertmanager, optionally Grafana, and the daily cycle), with absolute argv lists, log files, and the
Prometheus/Alertmanager configs rendered from the bundled ones. launchd.py and systemd.py turn the same
plan into plists and units, so the two never disagree.

Secrets go by file path only: the webhook token is ``receiver.token_file`` (created 0600 when missing, like
``govheal up`` does), channel secrets are the config's ``*_file`` keys. Nothing secret is written into a
plist or a unit.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from govheal import chain, resources, tools
from govheal import grafana as gf
from govheal.config import Config
from govheal.errors import UsageError

# Where Prometheus and Alertmanager listen on a deployed node when the config does not say (prometheus.url,
# alertmanager.urls). Not 9090/9093: Debian's own packaged services already hold those.
DEFAULT_PROMETHEUS = "127.0.0.1:9829"
DEFAULT_ALERTMANAGER = "127.0.0.1:9828"
GRAFANA_PORT = 3000  # Grafana's own default; loopback only
# the conventional install path when a binary is not on this machine's PATH (rendering for another host)
FALLBACK_BIN = {"Darwin": "/opt/homebrew/bin", "Linux": "/usr/bin"}
FALLBACK_NAME = {"prometheus": "prometheus", "alertmanager": "alertmanager"}


@dataclass(frozen=True)
class Service:
    name: str  # exporter | autoheal | prometheus | alertmanager | grafana | daily
    label: str  # launchd Label (= plist file name)
    unit: str  # systemd unit name, without the suffix
    description: str
    argv: tuple[str, ...]
    workdir: str
    stdout: str
    stderr: str
    env: Mapping[str, str] = field(default_factory=dict)
    long_running: bool = True  # KeepAlive / Restart=always; False: the daily oneshot
    calendar: tuple[str, ...] = ()  # HH:MM, local time (the daily cycle)
    timezone: str | None = None
    stop_timeout: int = 20
    run_timeout: int = 0  # oneshot: TimeoutStartSec


@dataclass(frozen=True)
class Plan:
    services: tuple[Service, ...]
    files: Mapping[Path, str]  # rendered configs to write (absolute path → text)
    dirs: tuple[Path, ...]  # to create (logs, data)
    notes: tuple[str, ...] = ()  # what the operator should know or do

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


def _hostport(url: str | None, default: str) -> str:
    if not url:
        return default
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def binary(tool: str, system: str, found: Mapping[str, str] | None) -> tuple[str, str | None]:
    """This machine's absolute path of ``tool`` (``found`` overrides, for rendering another host's plan)."""
    if found and tool in found:
        return found[tool], None
    path = tools.find(tool)
    if path:  # as found on PATH, not resolved: Homebrew's symlink survives `brew upgrade`, the Cellar path does not
        return str(Path(path).absolute()), None
    guess = f"{FALLBACK_BIN.get(system, '/usr/local/bin')}/{FALLBACK_NAME[tool]}"
    return guess, (f"{tool} is not on this machine's PATH; the job names {guess}: install it "
                   f"({tools.install_hint(system)})")


def plan(config: Config, *, python: str | None = None, system: str | None = None,
         binaries: Mapping[str, str] | None = None, grafana: gf.Install | bool | None = True,
         grafana_bundle: Path | None = None, token: bool = True) -> Plan:
    """Every job of this node for ``config`` (its file must exist: the jobs pass it by absolute path).

    ``python``/``binaries``/``system`` default to this install and this machine; an example for another host
    (the committed launchd/ and examples/systemd/ folders) passes them explicitly. ``grafana``: True finds an installed
    Grafana (govheal/grafana.py, as ``govheal up`` does), an ``Install`` names one, None leaves it out;
    ``grafana_bundle`` is where the boards and provisioning are (default: this install's bundled grafana/).
    ``token=False`` skips creating the webhook token file (rendering examples).
    """
    system = system or platform.system()
    if config.source is None:
        raise UsageError("the deployment needs a config file on disk (govheal.yaml): its jobs pass it by path")
    if not config.receiver.token_file:
        raise UsageError(f"{config.source}: receiver.token_file is not set: a launchd/systemd receiver and its "
                         "Alertmanager read the webhook token from a file (secrets go by path, never into a plist or "
                         "unit); set receiver.token_file, e.g. .govheal/secrets/webhook_token")
    for key, listen in (("listen.exporter", config.listen.exporter), ("listen.receiver", config.listen.receiver)):
        if listen.endswith(":0"):
            raise UsageError(f"{config.source}: {key} is {listen}: a deployed service needs a fixed port (Prometheus "
                             "scrapes it there); set one, e.g. 127.0.0.1:9826")
    cfg_path = str(config.source)
    py = python or sys.executable
    dep = config.deploy
    base = config.path(dep.dir)
    logs, etc = base / "logs", base / "etc"
    workdir = str(config.source.parent)
    prefix, unit = dep.label_prefix, dep.unit_prefix
    env = {"PATH": ":".join(dict.fromkeys([str(Path(py).parent), *dep.path])), "PYTHONUNBUFFERED": "1"}
    notes: list[str] = []
    token_file = config.path(config.receiver.token_file)
    if token:
        from govheal.stack import ensure_token

        ensure_token(token_file)

    prom = _hostport(config.prometheus.url, DEFAULT_PROMETHEUS)
    ams = [_hostport(u, DEFAULT_ALERTMANAGER) for u in config.alertmanager.urls] or [DEFAULT_ALERTMANAGER]
    local_am = ams[0]
    if not config.prometheus.url or not config.alertmanager.urls:
        notes.append(f"add to {cfg_path} so every command finds them: prometheus: {{url: http://{prom}}} and "
                     f"alertmanager: {{urls: [http://{local_am}]}}")

    def log(name: str) -> tuple[str, str]:
        return str(logs / f"{name}.out.log"), str(logs / f"{name}.err.log")

    def govheal(*args: str) -> tuple[str, ...]:
        return (py, "-m", "govheal", *args, "--config", cfg_path)

    services: list[Service] = []
    out, err = log("exporter")
    services.append(Service("exporter", f"{prefix}.exporter", f"{unit}-exporter",
                            "govheal exporter: agent health as Prometheus metrics",
                            (*govheal("exporter"), "--listen", config.listen.exporter), workdir, out, err, env))
    out, err = log("autoheal")
    services.append(Service("autoheal", f"{prefix}.autoheal", f"{unit}-receiver",
                            "govheal receiver (autoheal): Alertmanager webhooks, remediation, alert bridge",
                            (*govheal("receiver"), "--listen", config.listen.receiver), workdir, out, err, env))

    files: dict[Path, str] = {}
    prom_bin, note = binary("prometheus", system, binaries)
    notes += [note] if note else []
    endpoints = chain.Endpoints(exporter=config.listen.exporter, alertmanagers=tuple(ams), prometheus=prom,
                                receiver=config.listen.receiver)
    files[etc / "prometheus.yml"] = chain.render_prometheus(endpoints, config.node)
    out, err = log("prometheus")
    services.append(Service("prometheus", f"{prefix}.prometheus", f"{unit}-prometheus",
                            "Prometheus for govheal (the bundled rules)",
                            tuple(chain.prometheus_argv(prom_bin, etc / "prometheus.yml", base / "prometheus-data",
                                                        prom)), workdir, out, err, env, stop_timeout=60))
    am_bin, note = binary("alertmanager", system, binaries)
    notes += [note] if note else []
    files[etc / "alertmanager.yml"] = chain.render_alertmanager(f"http://{config.listen.receiver}", token_file)
    out, err = log("alertmanager")
    services.append(Service("alertmanager", f"{prefix}.alertmanager", f"{unit}-alertmanager",
                            "Alertmanager for govheal (the bundled routes)",
                            tuple(chain.alertmanager_argv(am_bin, etc / "alertmanager.yml", base / "alertmanager-data",
                                                          local_am, dep.alertmanager_cluster_listen,
                                                          tuple(dep.alertmanager_peers))), workdir, out, err, env))
    install = gf.find() if grafana is True else (grafana or None)
    if install is not None:
        bundle = grafana_bundle or resources.bundled("grafana")
        g = gf.plan(install, base, prometheus_url=f"http://{prom}", alertmanager_url=f"http://{local_am}",
                    scrape_interval="1s", receiver_url=f"http://{config.listen.receiver}",
                    runbook_base_url=config.notifications.runbook_base_url or "", port=GRAFANA_PORT,
                    provisioning_dir=bundle / "provisioning", dashboards_dir=bundle / "dashboards")
        out, err = log("grafana")
        services.append(Service("grafana", f"{prefix}.grafana", f"{unit}-grafana",
                                "Grafana for govheal's boards (provisioned from the bundled grafana/)",
                                tuple(g.argv), workdir, out, err, {**env, **g.env}))
    else:
        notes.append(f"Grafana is not installed here: no Grafana job ({gf.INSTALL_HINTS.get(system, 'install it')}"
                     ", then render again)")
    out, err = log("daily")
    spec = config.reports
    daily_args = ["report", "daily"]
    if not config.prometheus.url:
        daily_args += ["--prometheus", f"http://{prom}"]
    if not config.alertmanager.urls:
        daily_args += ["--alertmanager", f"http://{local_am}"]
    run_timeout = int(spec.canary.deadline + sum(s.timeout for s in spec.steps) + 300)
    services.append(Service("daily", f"{prefix}.daily", f"{unit}-daily",
                            "govheal daily ops cycle (report, canary, the five criteria)",
                            govheal(*daily_args), workdir, out, err, env, long_running=False,
                            calendar=tuple(spec.slots), timezone=spec.timezone, run_timeout=run_timeout))
    dirs = (logs, etc, base / "prometheus-data", base / "alertmanager-data")
    return Plan(tuple(services), files, dirs, tuple(notes))


def write_runtime(p: Plan) -> list[Path]:
    """Create the log/data dirs and write the rendered Prometheus/Alertmanager configs."""
    for d in p.dirs:
        d.mkdir(parents=True, exist_ok=True)
    for path, text in p.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(p.files)
