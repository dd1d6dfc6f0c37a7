"""twistd entry point: `twistd -n rais --config etc/rais.toml [--role R] [--host-id N]`."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import gatherResults
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python import usage

from rais.actions import Notifier, run_action
from rais.catalogue import declarations
from rais.config import ROLES, Config, ConfigError, PolicyConfig, load_config
from rais.control import control_site
from rais.epoch import next_boot_epoch
from rais.load import LoadSampler
from rais.node import Identity, Node, Timing
from rais.probing.discover import discover
from rais.probing.runner import Prober
from rais.probing.schedule import POLL as PROBE_POLL
from rais.probing.schedule import ProbeDefaults
from rais.statefile import StateFileError, TableSaver, load_tables
from rais.transport import NodeProtocol
from rais.wire.rows import PolicyRow, Weights

# Membership is re-checked this many times per heartbeat interval, so a
# silent host is marked down within a fraction of an interval of its deadline.
TICKS_PER_INTERVAL = 4


class Options(usage.Options):
    synopsis = "[--config PATH] [--role active|standby|master] [--host-id N]"
    optParameters = [
        ["config", "c", "/etc/rais/rais.toml", "The node's TOML config file."],
        ["role", "r", None, f"Start in this role ({', '.join(ROLES)}), overriding [node] role."],
        ["host-id", "i", None, "This host's id, 1..65535, overriding [node] host_id."],
    ]
    longdesc = (
        "Runs one RAIS node: it multicasts authenticated heartbeats to the cluster group, "
        "tracks every host it hears, and serves its status on the [node] control endpoint. "
        "A bad config is refused with one 'file: section.key: problem' line per problem, exit 2."
    )

    def postOptions(self) -> None:
        problems: list[str] = []
        host_id = self["host-id"]
        if host_id is not None:
            if not (host_id.isascii() and host_id.isdigit()):
                problems.append(f"--host-id: expected an integer 1..65535, got {host_id!r}")
            host_id = int(host_id) if not problems else None
        try:
            self.loaded = load_config(self["config"], role=self["role"], host_id=host_id)
        except ConfigError as e:
            problems.extend(e.problems)
        else:
            problems.extend(_check_state_dir(self.loaded))
            try:
                self.services = declarations(self.loaded.services)
            except ValueError as e:
                problems.append(f"{self['config']}: {e}")
        if problems:
            # twistd would print the whole usage text; an operator wants only what is wrong.
            print("\n".join(problems), file=sys.stderr)
            raise SystemExit(2)


def _check_state_dir(config: Config) -> list[str]:
    state_dir = config.node.state_dir
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
    except OSError as e:
        return [f"{config.path}: node.state_dir: cannot create {state_dir}: {e.strerror}"]
    if not os.access(state_dir, os.W_OK | os.X_OK):
        return [f"{config.path}: node.state_dir: {state_dir} is not writable"]
    return []


class NodeService(Service):
    """Owns the multicast port and the heartbeat and membership timers."""

    log = Logger()

    def __init__(self, config: Config, services: tuple, reactor: Any) -> None:
        self.config = config
        self.services = services
        self.reactor = reactor
        self.protocol: NodeProtocol | None = None
        self.saver: TableSaver | None = None
        self._port = None
        self._loops: list[LoopingCall] = []

    def startService(self) -> None:
        super().startService()
        config, reactor = self.config, self.reactor
        cluster, me = config.cluster, config.node
        now = reactor.seconds()
        try:
            tables = load_tables(me.state_dir)
        except StateFileError as e:
            self.log.error("saved tables in {dir} are damaged ({why}); moved aside, starting empty",
                           dir=me.state_dir, why=str(e))
            tables = None
        node = Node(
            Identity(config.self_id, me.role, me.priority, me.address, me.preempt),
            boot_epoch=next_boot_epoch(me.state_dir, now),
            timing=Timing(cluster.heartbeat_interval, cluster.dead_after, cluster.quorum,
                          cluster.balance_after, cluster.move_hold),
            now=now,
            tables=tables,
            policies=[policy_row(p) for p in config.policies.values()],
            services=self.services,
            probing=ProbeDefaults(cluster.probe_interval, cluster.probe_timeout, cluster.rise,
                                  cluster.fall, cluster.probe_concurrency),
        )
        pool = reactor.getThreadPool()
        self.saver = TableSaver(
            me.state_dir, lambda f, *args: deferToThreadPool(reactor, pool, f, *args), self.log
        )
        self.protocol = NodeProtocol(
            node, cluster.keyring, cluster.group, cluster.port, cluster.interface,
            cluster.ttl, reactor, LoadSampler(now).sample, self.saver.save,
            lambda action, service: run_action(reactor, config.services, action, service),
            Notifier(reactor, me.notify.argv) if me.notify is not None else None,
        )
        self._port = reactor.listenMulticast(cluster.port, self.protocol, listenMultiple=True)
        registry = discover(config.probes.paths)
        for failure in registry.failures:
            self.log.warn("probe module {file} not loaded: {reason}", file=failure.file, reason=failure.reason)
        prober = Prober(node, registry, reactor)
        self.log.info(
            "node {id} ({role}) in cluster {cluster}, group {group}:{port}, boot epoch {epoch}, "
            "tables at generation {generation}",
            id=str(config.self_id), role=me.role, cluster=str(cluster.id),
            group=cluster.group, port=cluster.port, epoch=node.boot_epoch,
            generation=node.generation,
        )
        interval = cluster.heartbeat_interval
        self._loop(self.protocol.beat, interval)
        self._loop(self.protocol.tick, interval / TICKS_PER_INTERVAL)
        self._loop(prober.poll, PROBE_POLL)

    def _loop(self, f: Any, interval: float) -> None:
        loop = LoopingCall(f)
        loop.clock = self.reactor
        loop.start(interval, now=True).addErrback(
            lambda failure: self.log.failure("timer {name} stopped", failure, name=f.__name__)
        )
        self._loops.append(loop)

    def stopService(self) -> Any:
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        port, self._port = self._port, None
        waits = [port.stopListening()] if port is not None else []
        if self.saver is not None and self.protocol is not None:
            self.saver.save(self.protocol.node.tables)  # the newest, whatever was skipped
            waits.append(self.saver.flush())
        return gatherResults([d for d in waits if d is not None])

    def status(self) -> dict[str, Any]:
        if self.protocol is None:
            return {"error": "node not started"}
        doc = self.protocol.node.status(self.reactor.seconds())
        doc["traffic"] = self.protocol.counters()
        return doc


def policy_row(policy: PolicyConfig) -> PolicyRow:
    return PolicyRow(
        policy.name,
        policy.replicas,
        None if policy.max_cpu is None else max(1, round(policy.max_cpu * 1000)),
        None if policy.max_latency_ms is None else round(policy.max_latency_ms * 1000),
        None if policy.max_net_mbps is None else round(policy.max_net_mbps * 125_000),
        Weights(**{name: round(weight * 1000) for name, weight in policy.weights.items()}),
    )


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor  # the shell picks the reactor; nothing below imports it

    config: Config = options.loaded
    top = MultiService()
    node = NodeService(config, options.services, reactor)
    node.setServiceParent(top)

    control = StreamServerEndpointService(
        _control_endpoint(reactor, *config.node.control), control_site(node.status)
    )
    # Fail the start, not later, when the control port is taken.
    control._raiseSynchronously = True
    control.setServiceParent(top)
    return top


def _control_endpoint(reactor: Any, host: str, port: int) -> Any:
    try:
        v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        v6 = False  # a host name such as localhost: bind() resolves it as IPv4
    return (TCP6ServerEndpoint if v6 else TCP4ServerEndpoint)(reactor, port, interface=host)
