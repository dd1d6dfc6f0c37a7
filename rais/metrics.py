"""Prometheus metrics of one node, served as /metrics on the control endpoint.

What the node holds now (its role, term and generation, the hosts it hears,
the services table, the transport's counters) is read at scrape time by
``NodeCollector``, straight from the node: nothing to keep up to date. What
happens (elections, failovers, generations, probe latencies, sync bytes) is
counted by ``NodeMetrics`` where the daemon already carries those out. Each
node has a registry of its own, not prometheus_client's global one, so
several nodes in one process (the tests) do not collide.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rais.effects import Decided, RoleChanged, TablesChanged
from rais.interfaces import ProbeResult
from rais.pool import DEGRADED, NO_SPARE, OPTIMAL
from rais.states import HostStatus, Role, ServiceState
from rais.wire import Datagram, SyncChunk

if TYPE_CHECKING:
    from rais.node import Node
    from rais.transport import NodeProtocol

# The decisions that move a copy of a service (rais.reconcile.Decision.action): a copy started
# somewhere, lost with its host, or stopped. The others only say what happened or is waiting.
FAILOVERS = ("assign", "unassign", "release")
# Probes take from a millisecond (a TCP connect nearby) to their timeout (2 s by default).
PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Deliver = Callable[[Datagram, str], bool]
E = TypeVar("E", bound=StrEnum)


class MetricsSource(Protocol):
    """What a scrape reads: the node and its transport, None until the node has started."""

    @property
    def node(self) -> Node | None: ...

    @property
    def protocol(self) -> NodeProtocol | None: ...


class NodeCollector(Collector):
    """The node's state as gauges, and the transport's counters, read at each scrape."""

    def __init__(self, source: MetricsSource, clock: Any) -> None:
        self.source = source
        self.clock = clock  # anything with seconds(): the reactor, or a test's Clock

    def collect(self) -> Iterator[Metric]:
        node = self.source.node
        if node is not None:
            yield from node_families(node, self.clock.seconds())
        protocol = self.source.protocol
        if protocol is not None:
            yield from traffic_families(protocol)


def node_families(node: Node, now: float) -> Iterator[Metric]:
    role = GaugeMetricFamily("rais_role", "The role this node plays now: 1 for it, 0 for the others.",
                             labels=["role"])
    for name in Role:
        role.add_metric([name], float(node.role == name))
    yield role
    yield GaugeMetricFamily("rais_term", "The term this node follows (high bits count terms, the low "
                            "16 bits are the host id of the node that started it).", value=node.term)
    yield GaugeMetricFamily("rais_tables_generation", "The generation of this node's tables.",
                            value=node.tables.generation)
    membership = node.membership
    hosts = Tally(membership.status(peer, now) for peer in membership.peers())
    hosts[HostStatus.UP] += 1  # this node
    yield _by("rais_hosts", "The hosts this node knows of, itself included, by status as it sees them.",
              "status", HostStatus, hosts)
    states = Tally(row.state for row in node.tables.table("services"))
    yield _by("rais_services", "The copies of services in the tables (one per host and service), by state.",
              "state", ServiceState, states)
    pool = node.pool(now)
    state = GaugeMetricFamily("rais_cluster_state", "The cluster's state as this node's tables say it (README, "
                              "The pool of spares): 1 for it, 0 for the others.", labels=["state"])
    for word in (OPTIMAL, DEGRADED, NO_SPARE):
        state.add_metric([word.replace(" ", "-")], float(pool.state == word))
    yield state
    spares = GaugeMetricFamily("rais_spares", "The pool of spares: free, in use (configured standbys serving "
                               "now), resting after a failure, and the min_spares kept.", labels=["kind"])
    for kind, count in (("free", len(pool.free)), ("in_use", len(pool.in_use)), ("resting", len(pool.resting)),
                        ("min", pool.min_spares)):
        spares.add_metric([kind], count)
    yield spares


def traffic_families(protocol: NodeProtocol) -> Iterator[Metric]:
    yield CounterMetricFamily("rais_datagrams_received", "Authenticated datagrams received.",
                              value=protocol.received)
    yield CounterMetricFamily("rais_datagrams_sent", "Datagrams sent.", value=protocol.sent)
    dropped = CounterMetricFamily("rais_datagrams_dropped", "Datagrams dropped, by reason (see README, "
                                  "Wire format).", labels=["reason"])
    for reason, count in sorted(protocol.dropped.items()):
        dropped.add_metric([reason], count)
    yield dropped


def _by(name: str, documentation: str, label: str, values: type[E], counts: Tally[E]) -> GaugeMetricFamily:
    """A gauge with one sample per value of ``label``, zero for the values not counted."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in values:
        family.add_metric([value], counts[value])
    return family


class NodeMetrics:
    """One node's registry: the collector above, and the counters of what happens."""

    def __init__(self, source: MetricsSource, clock: Any) -> None:
        self.registry = registry = CollectorRegistry()
        registry.register(NodeCollector(source, clock))
        self.elections = Counter("rais_elections", "Times this node became master (each term it began).",
                                 registry=registry)
        self.failovers = Counter("rais_failovers", "Decisions of this node, as master, that move a copy of "
                                 "a service: assign (start one), unassign (lost with its host), release "
                                 "(stop one).", ["action"], registry=registry)
        for action in FAILOVERS:
            self.failovers.labels(action)
        self.generations = Counter("rais_generations", "Generations of the tables this node committed (as "
                                   "master) or applied (a delta, or a snapshot).", ["how"], registry=registry)
        self.probe_latency = Histogram("rais_probe_latency_seconds", "How long the master's probes took, by "
                                       "probe.", ["probe"], buckets=PROBE_BUCKETS, registry=registry)
        self.sync_sent = Counter("rais_sync_sent_bytes", "Bytes of table rows this node sent in sync chunks.",
                                 registry=registry)
        self.sync_received = Counter("rais_sync_received_bytes", "Bytes of table rows in authenticated sync "
                                     "chunks received (every host hears every transfer).", registry=registry)
        self.pauses = Counter("rais_pauses", "Times this node was not scheduled for longer than a heartbeat "
                              "interval (a host too loaded, or paused): its heartbeats stopped too.", registry=registry)
        self.paused_seconds = Counter("rais_paused_seconds", "Seconds this node was not scheduled, in those "
                                      "pauses.", registry=registry)

    def event(self, event: object) -> None:
        """An event the daemon logs (rais.effects): count the ones that are metrics."""
        if isinstance(event, RoleChanged):
            if event.new == Role.MASTER:
                self.elections.inc()
        elif isinstance(event, Decided):
            if event.decision.action in FAILOVERS and not event.repeated:
                self.failovers.labels(event.decision.action).inc()
        elif isinstance(event, TablesChanged):
            self.generations.labels(event.how).inc()

    def paused(self, seconds: float) -> None:
        self.pauses.inc()
        self.paused_seconds.inc(seconds)

    def probed(self, probe: str, result: ProbeResult) -> None:
        self.probe_latency.labels(probe).observe(result.latency)

    def sent(self, message: object) -> None:
        if isinstance(message, SyncChunk):
            self.sync_sent.inc(len(message.rows))

    def delivering(self, deliver: Deliver) -> Deliver:
        """``deliver`` (the node's Driver), counting the sync bytes it is given on the way."""
        def counted(datagram: Datagram, source: str) -> bool:
            if isinstance(datagram.message, SyncChunk):
                self.sync_received.inc(len(datagram.message.rows))
            return deliver(datagram, source)
        return counted
