"""The node as a running service: the reactor side of one node.

``NodeService`` builds the pure Node from the config, opens the multicast
port, and drives the node with timers (heartbeats, ticks, the probe
schedule) through a rais.effects.Driver. ``DaemonEffects`` is how the
daemon carries out what the node decides: seal and multicast, save the
tables off the reactor thread, run start/stop actions and probes as
processes and connections, run the operator's notify command, log, and
count what is worth a metric (rais.metrics).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from rais.actions import Notifier, run_action
from rais.commands import Answered, OperatorCommand
from rais.config import Config, ServiceConfig, own_peers, transport_words
from rais.effects import TICKS_PER_INTERVAL, Driver, Event, RunAction
from rais.epoch import next_boot_epoch
from rais.events import EventLog
from rais.interfaces import IEffects, ProbeResult
from rais.load import LoadSampler, source_for
from rais.metrics import NodeMetrics
from rais.node import Node
from rais.pause import PauseWatch
from rais.policy import policy_row
from rais.probing.discover import ProbeRegistry, discover
from rais.probing.runner import ProbeRunner
from rais.probing.schedule import POLL, ProbeDefaults, ProbeOrder
from rais.settings import Identity, Timing
from rais.statefile import StateFileError, TableSaver, load_tables
from rais.tables import Tables
from rais.transport import NodeProtocol

# Seconds between checks that every unicast peer was heard (at least twice the time to declare a host dead).
PEERS_CHECK = 10.0


@implementer(IEffects)
class DaemonEffects:
    logger = Logger()

    def __init__(self, protocol: NodeProtocol, saver: TableSaver, reactor: Any,
                 services: Mapping[str, ServiceConfig], notifier: Notifier | None, prober: ProbeRunner,
                 metrics: NodeMetrics, events: EventLog, answered: Callable[[Answered], None],
                 log_level: LogLevel = LogLevel.info) -> None:
        self.protocol = protocol
        self.log_level = log_level  # events below it are not logged (rais.logs)
        self.saver = saver
        self.reactor = reactor
        self.services = services
        self.notifier = notifier
        self.prober = prober
        self.metrics = metrics
        self.events = events
        self.answered = answered

    def send(self, message: object, term: int) -> None:
        self.metrics.sent(message)
        self.protocol.send(message, term)

    def persist(self, tables: Tables) -> None:
        self.saver.save(tables)

    def run(self, action: RunAction) -> Deferred[tuple[bool, str]]:
        return run_action(self.reactor, self.services, action.action, action.service)

    def probe(self, order: ProbeOrder) -> Deferred[ProbeResult]:
        return self.prober.run(order).addCallback(self._probed, order.probe)

    def _probed(self, result: ProbeResult, probe: str) -> ProbeResult:
        self.metrics.probed(probe, result)
        return result

    def notify(self, words: tuple[str, ...]) -> None:
        if self.notifier is not None:
            self.notifier(*words)

    def log(self, event: Event) -> None:
        self.metrics.event(event)
        self.events.record(event)
        level = LogLevel.levelWithName(event.log_level())
        if level >= self.log_level:
            self.logger.emit(level, event.text, **event.fields())


class NodeService(Service):
    """Owns the multicast port, the timers, the table saver and the metrics of one node."""

    log = Logger()

    def __init__(self, config: Config, services: tuple, reactor: Any, log_level: LogLevel = LogLevel.info) -> None:
        self.config = config
        self.log_level = log_level
        self.services = services
        self.reactor = reactor
        self.node: Node | None = None
        self.protocol: NodeProtocol | None = None
        self.saver: TableSaver | None = None
        self.registry: ProbeRegistry | None = None  # the probes found at start
        self.events: EventLog | None = None
        self._port = None
        self._driver: Driver | None = None
        self._loops: list[LoopingCall] = []
        self._sampler: LoadSampler | None = None
        self._requests = itertools.count(1)  # the operators' commands through this node, this boot
        self._waiting: dict[int, Deferred[str]] = {}
        self._silent: list[tuple[str, int]] = []  # unicast peers last seen silent
        # Made before the node starts: the control endpoint serves it from the start.
        self.metrics = NodeMetrics(self, reactor)

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
        node = self.node = Node(
            Identity(id=config.self_id, configured=me.role, priority=me.priority, address=me.address,
                     preempt=me.preempt),
            boot_epoch=next_boot_epoch(me.state_dir, now),
            timing=Timing(interval=cluster.heartbeat_interval, dead_after=cluster.dead_after,
                          quorum=cluster.quorum, balance_after=cluster.balance_after, move_hold=cluster.move_hold,
                          settle=cluster.settle, min_spares=cluster.min_spares),
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
        registry = self.registry = discover(config.probes.paths)
        for failure in registry.failures:
            self.log.warn("probe module {file} not loaded: {reason}", file=failure.file, reason=failure.reason)
        mine = own_peers(config)  # at most one: host_problems refused more before twistd got here
        self.protocol = NodeProtocol(cluster.keyring, node.id, node.boot_epoch, cluster.group, cluster.port,
                                     cluster.interface, cluster.ttl,
                                     [p for p in cluster.peers if p not in mine] if cluster.peers else None)
        self.events = EventLog(config.self_id, reactor)
        sampler = self._sampler = LoadSampler(now, source_for(me, reactor, now))
        effects = DaemonEffects(
            self.protocol, self.saver, reactor, config.services,
            Notifier(reactor, me.notify.argv) if me.notify is not None else None,
            ProbeRunner(registry, reactor),
            self.metrics,
            self.events,
            self._answered,
            self.log_level,
        )
        driver = self._driver = Driver(node, effects, reactor)
        self.protocol.deliver = self.metrics.delivering(driver.received)
        if cluster.peers:
            # Sent from this host's own entry, so that the peers know the datagrams as a peer's.
            self._port = reactor.listenUDP(cluster.port, self.protocol, interface=mine[0][0] if mine
                                           else cluster.interface)
        else:
            # Bound to the group, not to every address: a unicast datagram (a host set up with peers,
            # in a cluster without) is not heard at all, rather than heard one way only.
            self._port = reactor.listenMulticast(cluster.port, self.protocol, interface=cluster.group,
                                                 listenMultiple=True)
        self.log.info(
            "node {id} ({role}) in cluster {cluster}, {transport}, boot epoch {epoch}, "
            "tables at generation {generation}, load from {load}",
            id=str(config.self_id), role=me.role, cluster=str(cluster.id),
            transport=transport_words(cluster), epoch=node.boot_epoch,
            generation=node.tables.generation, load=sampler.source,
        )
        interval = cluster.heartbeat_interval
        if self.protocol.unicast:
            self._loop("peers heard", self._peers_heard, max(PEERS_CHECK, 2 * cluster.dead_after * interval),
                       now=False)
        # Sampled before the beat is stamped, so round trips do not include the sampling's time.
        self._loop("heartbeat", lambda: driver.beat(sampler.sample(reactor.seconds())), interval)
        pauses = PauseWatch(interval / TICKS_PER_INTERVAL, interval)

        def tick() -> None:
            paused = pauses.ran(reactor.seconds())
            if paused is not None:
                self._paused(paused)
            if not pauses.wait:  # else judged at the next tick, on what queued meanwhile, read by then
                driver.tick()

        self._loop("tick", tick, interval / TICKS_PER_INTERVAL)
        self._loop("probe schedule", driver.poll_probes, POLL)

    def _paused(self, seconds: float) -> None:
        cluster = self.config.cluster
        self.metrics.paused(seconds)
        self.log.warn("this node was not scheduled for {seconds:.2f}s (heartbeats every {interval:g}s, a host down "
                      "after {dead:g}s of silence): its peers may have judged it suspect or down meanwhile; a host "
                      "too loaded, or paused?", seconds=seconds, interval=cluster.heartbeat_interval,
                      dead=cluster.heartbeat_interval * cluster.dead_after)

    def _peers_heard(self) -> None:
        """Say which peers have sent nothing lately, when that changes: a host down says so in the
        node's own words, but a peer list, port or key that differs between hosts shows only here."""
        assert self.protocol is not None
        silent = self.protocol.silent()
        if silent == self._silent:
            return
        self._silent = silent
        if silent:
            self.log.warn("nothing heard from peers {peers}: is each up, with the same [cluster] peers, port and "
                          "key, and is UDP {port} open between the hosts?",
                          peers=" ".join(f"{a}:{p}" for a, p in silent), port=self.config.cluster.port)
        else:
            self.log.info("every peer heard again")

    def _loop(self, name: str, f: Any, interval: float, now: bool = True) -> None:
        loop = LoopingCall(f)
        loop.clock = self.reactor
        loop.start(interval, now=now).addErrback(
            lambda failure: self.log.failure("timer {name} stopped", failure, name=name)
        )
        self._loops.append(loop)

    def stopService(self) -> Any:
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        if self._sampler is not None:
            self._sampler.stop()  # after the heartbeat loop, so no beat starts a load command again
        waiting, self._waiting = self._waiting, {}
        for d in waiting.values():  # the operators asking get an answer, not a hung connection
            d.errback(ValueError("the node is stopping: the master may or may not have done it"))
        port, self._port = self._port, None
        waits = [port.stopListening()] if port is not None else []
        if self.saver is not None and self.node is not None:
            self.saver.save(self.node.tables)  # the newest, whatever was skipped
            waits.append(self.saver.flush())
        return gatherResults([d for d in waits if d is not None])

    def operate(self, command: OperatorCommand) -> Deferred[str]:
        """An operator's command, through the control endpoint, to the master wherever it is:
        fires with what will happen, or fails with ValueError saying why it cannot be."""
        if self._driver is None:
            return fail(ValueError("node not started"))
        request = next(self._requests)
        # Cancelled (the operator went away): the answer, when it comes, goes nowhere.
        d: Deferred[str] = Deferred(lambda _: self._forget(request))
        self._waiting[request] = d
        if not self._driver.operate(request, command) and self._waiting.pop(request, None) is not None:
            d.errback(ValueError("the node failed on it: see its log"))
        return d

    def _forget(self, request: int) -> None:
        self._waiting.pop(request, None)

    def _answered(self, answer: Answered) -> None:
        d = self._waiting.pop(answer.request, None)
        if d is None:
            return
        if answer.ok:
            d.callback(answer.text)
        else:
            d.errback(ValueError(answer.text))

    def status(self) -> dict[str, Any]:
        if self.node is None or self.protocol is None:
            return {"error": "node not started"}
        doc = self.node.status(self.reactor.seconds())
        doc["traffic"] = self.protocol.counters()
        doc["events"] = self.events.json() if self.events is not None else []
        return doc

