"""N nodes on one host behind an Alertmanager cluster and a Prometheus HA pair (tests, ``make chaos``).

Each node has its own config (rendered from the demo fleet's shape: demo agents with the command
strategy), state dir, exporter and receiver, each receiver acting only on its node's agents and listing
the other nodes as ``receiver.peers``. The Alertmanagers gossip on loopback (``chain.plan_alertmanagers``)
and send every webhook to every node's receiver (``chain.render_alertmanager`` with one entry per node);
every Prometheus replica scrapes every node and sends to every Alertmanager, with its ``replica``
external label dropped from its alerts (``chain.render_prometheus_nodes``). Everything is started through
govheal/chain.py's children and govheal/supervise.py, like ``govheal up``.

With ``proxies=True`` every Alertmanager reaches every receiver through its own
:class:`~govheal.testing.flaky_proxy.FlakyProxy`, so a test can make one node's webhook fail and count what
each Alertmanager delivered (each member then gets its own copy of the routes differing only in those
URLs; the notification log that dedupes between peers does not include the URL).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from govheal import chain
from govheal.client import Alertmanager, Alertmanagers, Prometheus, new_session
from govheal.net import LOOPBACK, free_port, http_ok
from govheal.procs import child_env
from govheal.supervise import Child, Supervisor, kill_child, stop_child
from govheal.testing.flaky_proxy import FlakyProxy
from govheal.testing.support import DemoAgent, demo_config_text
from govheal.tools import require


@dataclass
class Node:
    """One simulated node: its dir, config, agents and the addresses of its exporter and receiver."""

    name: str
    dir: Path
    agents: dict[str, DemoAgent]
    exporter: str
    receiver: str
    token: Path

    @property
    def config(self) -> Path:
        return self.dir / "govheal.yaml"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def audit_log(self) -> Path:
        return self.dir / "telemetry" / "autoheal.log"

    @property
    def receiver_url(self) -> str:
        return f"http://{self.receiver}"

    def audit(self) -> list[dict]:
        try:
            lines = self.audit_log.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Topology:
    """Plan, start and stop the whole set; ``children`` by name (``receiver-node-a``, ``alertmanager-1``...)."""

    base: Path
    nodes_agents: dict[str, list[str]]
    alertmanagers: int = 2
    prometheus: int = 2
    profile: str = "single-host"
    proxies: bool = False
    channels: dict[str, str] = field(default_factory=dict)  # env for the receivers (fake Discord/Telegram)
    channel_config: str = ""  # YAML under notifications.channels, e.g. "discord: {type: discord}"
    replica_skew: str = "2s"
    node_extra: dict[str, str] = field(default_factory=dict)  # extra top-level YAML per node
    agent_extra: dict[str, str] = field(default_factory=dict)  # extra YAML per agent (fallback: ...)
    agent_args: dict[str, list[str]] = field(default_factory=dict)  # extra demo-agent arguments at first start
    # raw YAML agents appended per node; ``{B3.health_url}`` names another node's demo agent
    extra_agents: dict[str, str] = field(default_factory=dict)
    restart_argv: dict[str, list[str]] = field(default_factory=dict)  # an agent restarted with another argv
    gossip: chain.Gossip = chain.FAST_GOSSIP
    out: Callable[[str], None] = lambda line: None

    def __post_init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.supervisor = Supervisor(out=self.out)
        self.session = new_session()
        self.children: dict[str, Child] = {}
        self.proxy: dict[tuple[int, str], FlakyProxy] = {}  # (alertmanager index, node) → proxy
        self.members: list[chain.AlertmanagerMember] = []
        self.prometheus_listen: list[str] = []

    # -- planning -----------------------------------------------------------------------------------
    def plan(self) -> None:
        names = list(self.nodes_agents)
        for name in names:
            d = self.base / name
            agents = {a: DemoAgent(a, free_port(), d / "run" / f"{a}.pid", d / "logs" / f"{a}.log",
                                   extra=list(self.agent_args.get(a, [])))
                      for a in self.nodes_agents[name]}
            token = d / "secrets" / "webhook_token"
            token.parent.mkdir(parents=True, exist_ok=True)
            token.write_text(f"token-{name}\n")
            os.chmod(token, 0o600)
            self.nodes[name] = Node(name, d, agents, f"{LOOPBACK}:{free_port()}", f"{LOOPBACK}:{free_port()}", token)
        self.members = chain.plan_alertmanagers(self.base, self.alertmanagers)
        self.prometheus_listen = [f"{LOOPBACK}:{free_port()}" for _ in range(self.prometheus)]
        for name, node in self.nodes.items():
            node.dir.mkdir(parents=True, exist_ok=True)
            node.config.write_text(self.config_text(node, [n for n in names if n != name]))

    def config_text(self, node: Node, peers: list[str]) -> str:
        am_urls = json.dumps([m.url for m in self.members])
        extra = [
            f"receiver: {{token_file: secrets/webhook_token, peers: {json.dumps(peers)}, replica_skew: "
            f"{self.replica_skew}, workers: 4, deadman_timeout: 1h}}",
            f"alertmanager: {{urls: {am_urls}}}",
            f"prometheus: {{url: http://{self.prometheus_listen[0]}}}",
            "notifications:",
            "  channels:" + ("" if self.channel_config else " {}"),
            *(f"    {line}" for line in self.channel_config.splitlines() if line.strip()),
            self.node_extra.get(node.name, ""),
        ]
        agent_extra = {a: self.agent_extra[a] for a in node.agents if a in self.agent_extra}
        # the restart argv is the plain demo agent: a fault injected at the first start is not restarted into
        restart = [_Restarted(a.name, a.port, a.pidfile, a.log, argv_=self.restart_argv.get(a.name))
                   for a in node.agents.values()]
        text = demo_config_text(restart, node=node.name, extra="\n".join(extra), agent_extra=agent_extra)
        agents = {a.name: a for n in self.nodes.values() for a in n.agents.values()}
        return text + self.extra_agents.get(node.name, "").format(**agents)

    # -- start / stop -------------------------------------------------------------------------------
    def start(self) -> Topology:
        self.plan()
        try:
            for node in self.nodes.values():
                for a in node.agents.values():
                    a.start(wait=False)
            for node in self.nodes.values():
                for a in node.agents.values():
                    a.wait_healthy(timeout=30)
            for node in self.nodes.values():
                self._start(self.exporter_child(node))
                self._start(self.receiver_child(node))
            self._start_alertmanagers()
            self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, child: Child) -> None:
        self.children[child.name] = child
        self.supervisor.start(child)

    def exporter_child(self, node: Node) -> Child:
        return Child(f"exporter-{node.name}", [sys.executable, "-m", "govheal", "exporter", "--config",
                                               str(node.config), "--listen", node.exporter],
                     node.dir / "logs" / "exporter.log", ready=lambda: http_ok(f"http://{node.exporter}/healthz"),
                     health=lambda: http_ok(f"http://{node.exporter}/healthz"), env=child_env(), cwd=node.dir)

    def receiver_child(self, node: Node) -> Child:
        env = child_env(self.channels, secrets=True)
        return Child(f"receiver-{node.name}", [sys.executable, "-m", "govheal", "receiver", "--config",
                                               str(node.config), "--listen", node.receiver],
                     node.dir / "logs" / "receiver.log", ready=lambda: http_ok(f"{node.receiver_url}/readyz"),
                     health=lambda: http_ok(f"{node.receiver_url}/healthz"), env=env, cwd=node.dir, ready_timeout=60)

    def _start_alertmanagers(self) -> None:
        binary = require("alertmanager")
        for i, member in enumerate(self.members):
            targets = []
            for name, node in self.nodes.items():
                url = node.receiver_url
                if self.proxies:
                    proxy = FlakyProxy(url, name=f"{member.name}->{name}").start()
                    self.proxy[(i, name)] = proxy
                    url = proxy.url
                targets.append((url, node.token))
            file = self.base / (f"{member.name}.yml" if self.proxies else "alertmanager.yml")
            file.write_text(chain.render_alertmanager(targets))
            for child in chain.alertmanager_children(binary, file, [member], self.session, self.gossip):
                self._start(child)

    def _start_prometheus(self) -> None:
        binary = require("prometheus")
        targets = [chain.NodeTargets(n.name, n.exporter, n.receiver) for n in self.nodes.values()]
        listens = [m.listen for m in self.members]
        for r, listen in enumerate(self.prometheus_listen, start=1):
            name = "prometheus" if self.prometheus == 1 else f"prometheus-{r}"
            file = self.base / f"{name}.yml"
            file.write_text(chain.render_prometheus_nodes(targets, listens, self.profile,
                                                          replica=None if self.prometheus == 1 else f"r{r}"))
            self._start(chain.prometheus_child(binary, file, self.base, listen, self.session,
                                               expect_alertmanagers=len(listens), name=name))

    def stop(self) -> None:
        self.supervisor.stop_all()
        for proxy in self.proxy.values():
            with contextlib.suppress(Exception):
                proxy.stop()
        for node in self.nodes.values():
            for a in node.agents.values():
                a.stop()
            for pidfile in (node.dir / "run").glob("*.pid"):  # restarted by a remediator under a new pid
                with contextlib.suppress(OSError, ValueError, psutil.Error):
                    proc = psutil.Process(int(pidfile.read_text().strip()))
                    if str(pidfile) in " ".join(proc.cmdline()):  # ours, not a reused pid
                        proc.send_signal(signal.SIGCONT)
                        proc.kill()
        self.session.close()

    # -- control ------------------------------------------------------------------------------------
    def stop_child(self, name: str) -> None:
        """Stop a component (SIGTERM, then SIGKILL); it stays down until :meth:`start_child`."""
        stop_child(self.children[name])

    def kill_child(self, name: str) -> None:
        kill_child(self.children[name])

    def start_child(self, name: str) -> None:
        child = self.children[name]
        self.supervisor.spawn(child)
        deadline_ok = _wait(child.ready, child.ready_timeout)
        if not deadline_ok:
            raise AssertionError(f"{name} did not come back ready; log {child.log}")

    def pid(self, name: str) -> int | None:
        return self.children[name].pid

    # -- clients ------------------------------------------------------------------------------------
    def alertmanager_clients(self) -> Alertmanagers:
        return Alertmanagers([Alertmanager(m.url, self.session) for m in self.members])

    def prometheus_client(self, index: int = 0) -> Prometheus:
        return Prometheus(f"http://{self.prometheus_listen[index]}", self.session)

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class _Restarted(DemoAgent):
    """The agent as its config restarts it: the plain demo agent, or a given argv (a crash loop that never heals)."""

    argv_: list[str] | None = None

    def argv(self) -> list[str]:
        return list(self.argv_) if self.argv_ else super().argv()


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: S110 - not ready yet
            pass
        time.sleep(0.1)
    return False
