"""Render and start Prometheus and Alertmanager: the one way ``govheal up``, the tests and the benchmarks do it.

Rendering: the committed files (bundled with the package, govheal/resources.py) are the source of truth
for intervals, rules, routes and timings; rendering only swaps in addresses, absolute paths and the fleet's
node name, so what runs is what ``promtool``/``amtool`` checked.

Starting: :func:`alertmanager_children` and :func:`prometheus_child` build the supervisor's
:class:`~govheal.supervise.Child` for each server (argv with explicit paths and loopback addresses, data
dir, log, readiness and health through govheal/client.py). N Alertmanagers form a gossip cluster on
loopback (each lists the others with ``--cluster.peer``); a single one runs with clustering off
(``--cluster.listen-address=``). Prometheus sends to every one of them. :func:`start_chain` starts
exporter, Alertmanagers and Prometheus for the tests and the benchmarks; ``govheal up`` (stack.py) starts
the same children around its own agents, exporter and receiver.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml

from govheal import resources
from govheal.client import Alertmanager, Prometheus, ServerError, new_session
from govheal.net import LOOPBACK, free_port, http_ok
from govheal.procs import child_env
from govheal.supervise import Child, Supervisor

PROFILES = tuple(resources.PROFILE_FILES)  # "single-host", "fleet" (docs/alerting.md)

EXPORTER_JOB = "govheal-exporter"
RECEIVER_JOB = "govheal-receiver"


@dataclass(frozen=True)
class Endpoints:
    """HOST:PORT of each component of one running chain (receiver None when it is not started)."""

    exporter: str
    alertmanagers: tuple[str, ...]
    prometheus: str
    receiver: str | None = None

    @property
    def alertmanager(self) -> str:
        return self.alertmanagers[0]


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


# -- rendering ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTargets:
    """What Prometheus scrapes on one node: its exporter and (when started) its receiver, labelled ``node``."""

    node: str
    exporter: str
    receiver: str | None = None


# scrape job of the committed profiles → the component of each node it scrapes
SCRAPE_ROLES = {EXPORTER_JOB: "exporter", RECEIVER_JOB: "receiver"}
REPLICA_LABEL = "replica"


def render_prometheus(endpoints: Endpoints, node: str, profile: str = "single-host",
                      rules_dir: Path | None = None) -> str:
    """The committed profile with this chain's targets, every Alertmanager, and absolute rule paths."""
    return render_prometheus_nodes([NodeTargets(node, endpoints.exporter, endpoints.receiver)],
                                   endpoints.alertmanagers, profile, rules_dir)


def render_prometheus_nodes(nodes: list[NodeTargets], alertmanagers: tuple[str, ...] | list[str],
                            profile: str = "single-host", rules_dir: Path | None = None,
                            replica: str | None = None) -> str:
    """The committed profile scraping every node's exporter and receiver (each target labelled with its node),
    sending to every Alertmanager.

    ``replica`` (an HA pair of Prometheus servers with the same config): the external label
    ``replica=<name>`` tells the two apart in their own data, and ``alert_relabel_configs`` drops it from the
    alerts they send, so both replicas' alerts have one fingerprint and Alertmanager merges them.
    """
    data = _load(resources.prometheus_profile(profile))
    data["rule_files"] = [str((rules_dir or resources.prometheus_rules_dir()) / "*.yml")]
    data["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    if replica is not None:
        data.setdefault("global", {}).setdefault("external_labels", {})[REPLICA_LABEL] = replica
        data["alerting"]["alert_relabel_configs"] = [{"action": "labeldrop", "regex": REPLICA_LABEL}]
    jobs = []
    for job in data.get("scrape_configs", []):
        role = SCRAPE_ROLES.get(job.get("job_name"))
        if role is not None:
            statics = [{"targets": [getattr(n, role)], "labels": {"node": n.node}}
                       for n in nodes if getattr(n, role) is not None]
            if not statics:
                continue  # not started: scraping it would only fire ReceiverDown
            job = {**job, "static_configs": statics}
        jobs.append(job)
    data["scrape_configs"] = jobs
    return yaml.safe_dump(data, sort_keys=False)


def scrape_interval(profile: str = "single-host") -> str:
    """The profile's global scrape interval as Prometheus writes it ("1s", "5s"): what Grafana's
    datasource needs to size $__rate_interval."""
    return str(_load(resources.prometheus_profile(profile)).get("global", {}).get("scrape_interval", "1m"))


def render_alertmanager(receiver_url: str | list[tuple[str, Path]], token_file: Path | None = None,
                        source: Path | None = None) -> str:
    """The committed routes with every webhook pointed at the receiver (path kept) and its token file.

    Several receivers (one per node, each with its own token): ``receiver_url`` is a list of
    ``(url, token_file)`` and every webhook of the committed file is repeated once per receiver, so each
    node's receiver gets every alert (each acts only on its own node's agents; docs/ha.md).
    """
    targets = receiver_url if isinstance(receiver_url, list) else [(receiver_url, token_file)]
    data = _load(source or resources.alertmanager_file())
    receivers = []
    for receiver in data.get("receivers", []):
        receiver = copy.deepcopy(receiver)  # YAML aliases share objects; edit each receiver's own copy
        hooks = []
        for hook in receiver.get("webhook_configs", []):
            path = urlsplit(hook["url"]).path
            for url, token in targets:
                base = urlsplit(url)
                one = copy.deepcopy(hook)
                one["url"] = urlunsplit((base.scheme, base.netloc, path, "", ""))
                auth = one.setdefault("http_config", {}).setdefault("authorization", {"type": "Bearer"})
                auth["credentials_file"] = str(token)
                hooks.append(one)
        if "webhook_configs" in receiver:
            receiver["webhook_configs"] = hooks
        receivers.append(receiver)
    data["receivers"] = receivers
    return yaml.safe_dump(data, sort_keys=False)


# -- argv ---------------------------------------------------------------------------------------------

# Prometheus re-sends firing alerts every resend-delay (default 1m). Alerts fired before the
# Alertmanager is discovered are dropped until then, and the Watchdog would be late by a minute;
# 5 s costs a few tiny POSTs. Alertmanager then expires an alert 4 x 5 s = 20 s after Prometheus
# stops sending it (docs/alerting.md).
RESEND_DELAY = "5s"


def prometheus_argv(binary: str, config_file: Path, data_dir: Path, listen: str) -> list[str]:
    return [binary, f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={listen}", "--storage.tsdb.retention.time=15d",
            f"--rules.alert.resend-delay={RESEND_DELAY}", "--log.level=warn"]


@dataclass(frozen=True)
class Gossip:
    """Cluster timings (Alertmanager 0.25 flags and defaults; ecosystem-facts.md §2.2)."""

    interval: str = "200ms"   # --cluster.gossip-interval
    pushpull: str = "1m"      # --cluster.pushpull-interval (also the default settle timeout)
    # --cluster.peer-timeout: how long the n-th peer waits (n x this) for the ones before it to notify
    # before it notifies too. The receiver is idempotent, so a duplicate costs nothing and a short wait
    # bounds how late an alert is when the first peer is frozen or its webhook fails (docs/ha.md).
    peer_timeout: str = "2s"


# Tests and benchmarks: a silence reaches the peers well within a second, a joiner settles in ~1 s.
FAST_GOSSIP = Gossip(interval="50ms", pushpull="1s", peer_timeout="1s")


def alertmanager_argv(binary: str, config_file: Path, data_dir: Path, listen: str, cluster: str | None = None,
                      peers: tuple[str, ...] = (), gossip: Gossip = Gossip()) -> list[str]:
    argv = [binary, f"--config.file={config_file}", f"--storage.path={data_dir}", f"--web.listen-address={listen}"]
    if cluster is None:
        # a lone local instance: no gossip on 0.0.0.0:9094 (ecosystem-facts §2.2)
        argv.append("--cluster.listen-address=")
    else:
        argv += [f"--cluster.listen-address={cluster}", *(f"--cluster.peer={p}" for p in peers),
                 f"--cluster.gossip-interval={gossip.interval}", f"--cluster.pushpull-interval={gossip.pushpull}",
                 f"--cluster.settle-timeout={gossip.pushpull}", f"--cluster.peer-timeout={gossip.peer_timeout}"]
    return [*argv, "--log.level=warn"]


# -- children -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertmanagerMember:
    """One Alertmanager of a plan: its name in ``govheal up``'s output, API and gossip addresses, dirs."""

    name: str
    listen: str
    data_dir: Path
    log: Path
    cluster: str | None = None
    peers: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://{self.listen}"


def plan_alertmanagers(run_dir: Path, count: int = 1, host: str = LOOPBACK) -> list[AlertmanagerMember]:
    """Free loopback ports and dirs for ``count`` Alertmanagers: one alone, or a cluster peering with each other."""
    if count < 1:
        raise ValueError("start at least one Alertmanager")
    logs = run_dir / "logs"
    if count == 1:
        return [AlertmanagerMember("alertmanager", f"{host}:{free_port(host)}", run_dir / "alertmanager-data",
                                   logs / "alertmanager.log")]
    gossip = [f"{host}:{free_port(host)}" for _ in range(count)]
    return [AlertmanagerMember(f"alertmanager-{i}", f"{host}:{free_port(host)}", run_dir / f"alertmanager-{i}-data",
                               logs / f"alertmanager-{i}.log", cluster=gossip[i - 1],
                               peers=tuple(g for g in gossip if g != gossip[i - 1]))
            for i in range(1, count + 1)]


def alertmanager_children(binary: str, config_file: Path, members: list[AlertmanagerMember],
                          session: requests.Session, gossip: Gossip = Gossip()) -> list[Child]:
    """One supervised child per member: ready on ``/-/ready``, healthy while ``/-/healthy`` answers."""
    children = []
    for m in members:
        api = Alertmanager(m.url, session)
        children.append(Child(
            name=m.name, log=m.log, url=m.url, health=api.healthy, ready=api.ready,
            argv=alertmanager_argv(binary, config_file, m.data_dir, m.listen, m.cluster, m.peers, gossip)))
    return children


def prometheus_child(binary: str, config_file: Path, run_dir: Path, listen: str, session: requests.Session,
                     expect_alertmanagers: int = 1, name: str = "prometheus") -> Child:
    """Ready once it has discovered every Alertmanager (until then a fired alert is dropped, not sent).
    A second replica of an HA pair gets its own ``name``, data dir and log (``prometheus-2``...)."""
    api = Prometheus(f"http://{listen}", session)

    def ready() -> bool:
        try:
            return api.ready() and len(api.active_alertmanagers()) >= expect_alertmanagers
        except ServerError:
            return False
    return Child(name=name, log=run_dir / "logs" / f"{name}.log", url=api.url, ready=ready,
                 health=api.healthy, ready_timeout=60,
                 argv=prometheus_argv(binary, config_file, run_dir / f"{name}-data", listen))


def start_chain(supervisor: Supervisor, config_file: Path, node: str, run_dir: Path, receiver_url: str,
                token_file: Path, profile: str = "single-host", alertmanagers: int = 1,
                gossip: Gossip = FAST_GOSSIP, session: requests.Session | None = None) -> Endpoints:
    """Start exporter, Alertmanager(s) and Prometheus for ``config_file`` on free loopback ports, alerts
    going to ``receiver_url`` (the govheal receiver, or a test sink). Used by tests and benchmarks."""
    from govheal.tools import require

    session = session or new_session()
    exporter = f"{LOOPBACK}:{free_port()}"
    supervisor.start(Child(
        "exporter", [sys.executable, "-m", "govheal", "exporter", "--config", str(config_file), "--listen", exporter],
        run_dir / "logs" / "exporter.log", ready=lambda: http_ok(f"http://{exporter}/healthz"),
        health=lambda: http_ok(f"http://{exporter}/healthz"), env=child_env()))
    am_file = run_dir / "alertmanager.yml"
    am_file.write_text(render_alertmanager(receiver_url, token_file))
    members = plan_alertmanagers(run_dir, alertmanagers)
    for child in alertmanager_children(require("alertmanager"), am_file, members, session, gossip):
        supervisor.start(child)
    endpoints = Endpoints(exporter=exporter, alertmanagers=tuple(m.listen for m in members),
                          prometheus=f"{LOOPBACK}:{free_port()}")
    prom_file = run_dir / "prometheus.yml"
    prom_file.write_text(render_prometheus(endpoints, node, profile))
    supervisor.start(prometheus_child(require("prometheus"), prom_file, run_dir, endpoints.prometheus, session,
                                      expect_alertmanagers=len(members)))
    return endpoints


# -- the shipped files --------------------------------------------------------------------------------


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

    prom_dir, am_file = resources.prometheus_dir(), resources.alertmanager_file()
    runs: list[tuple[str, str, list[str]]] = [
        *((f"promtool check config prometheus/{resources.PROFILE_FILES[p]}", "promtool",
           ["check", "config", str(resources.prometheus_profile(p))]) for p in PROFILES),
        ("promtool test rules prometheus/tests/*.yml", "promtool",
         ["test", "rules", *map(str, resources.prometheus_rule_tests())]),
        ("amtool check-config alertmanager/alertmanager.yml", "amtool", ["check-config", str(am_file)]),
    ]
    results = []
    for what, tool, args in runs:
        binary = find(tool)
        if binary is None:
            results.append(ToolCheck(what, None, f"{tool} not installed"))
            continue
        try:
            done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=prom_dir)
        except subprocess.TimeoutExpired:
            results.append(ToolCheck(what, False, "timed out after 120s"))
            continue
        results.append(ToolCheck(what, done.returncode == 0, (done.stdout + done.stderr).strip()))
    return results
