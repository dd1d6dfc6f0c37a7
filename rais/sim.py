"""Many nodes in one process: a simulated multicast network driven by a fake clock.

The nodes are the real ``Node`` state machines; only the network and the
disk are simulated. The network can drop, duplicate, delay and partition
datagrams, hosts can be killed, restarted and frozen, and everything runs on
clock of simulated time, so a run is deterministic for a seed and takes no
wall time. Used by the model tests and by ``make bench``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from zope.interface import implementer

from rais.catalogue import declarations
from rais.commands import Answered
from rais.config import ServiceConfig
from rais.effects import TICKS_PER_INTERVAL, Driver, RoleChanged, RunAction
from rais.ids import ClusterId, HostClusterId
from rais.interfaces import IEffects, ProbeResult, Status
from rais.keys import Key, Keyring
from rais.node import Node
from rais.probing.schedule import POLL, ProbeDefaults, ProbeOrder
from rais.settings import Identity, Timing
from rais.states import Role
from rais.tables import Tables
from rais.wire import Datagram, Heartbeat, Load, ReplayGuard, WireError, seal
from rais.wire.rows import PolicyRow

CLUSTER = ClusterId.parse("1.2")
SIM_KEYS = Keyring((Key(1, bytes(32)),))
ACTION_TAKES = 0.05  # simulated seconds a start or stop action runs
PROBE_TAKES = 0.002  # simulated seconds a check takes


class _Call:
    __slots__ = ("time", "order", "f", "args", "cancelled", "called")

    def __init__(self, time: float, order: int, f: Callable[..., None], args: tuple) -> None:
        self.time, self.order, self.f, self.args = time, order, f, args
        self.cancelled = self.called = False

    def __lt__(self, other: _Call) -> bool:
        return (self.time, self.order) < (other.time, other.order)

    def cancel(self) -> None:
        self.cancelled = True

    def active(self) -> bool:
        return not (self.cancelled or self.called)


class SimClock:
    """Simulated time, like task.Clock, but each call runs at its own instant.

    task.Clock runs every call due in an advance at the advance's end time,
    which would blur round trips to the step; a heap also keeps a thousand
    hosts' timers cheap.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self._heap: list[_Call] = []
        self._order = 0

    def seconds(self) -> float:
        return self.now

    def callLater(self, delay: float, f: Callable[..., None], *args: Any) -> _Call:
        self._order += 1
        call = _Call(self.now + delay, self._order, f, args)
        heapq.heappush(self._heap, call)
        return call

    def advance(self, amount: float) -> None:
        end = self.now + amount
        heap = self._heap
        while heap and heap[0].time <= end:
            call = heapq.heappop(heap)
            if call.cancelled:
                continue
            self.now = call.time
            call.called = True
            call.f(*call.args)
        self.now = end


@attrs.frozen
class Became:
    """A host took the master role: the invariants are checked on these."""

    host: HostClusterId
    term: int
    at: float
    candidates: tuple[tuple[HostClusterId, str, tuple[int, int]], ...]  # what the others were


@attrs.define
class Faults:
    loss: float = 0.0  # chance a datagram is lost on its way to one receiver
    duplicate: float = 0.0  # chance it arrives twice
    delay: tuple[float, float] = (0.0005, 0.002)  # seconds, uniform
    groups: list[set[HostClusterId]] | None = None  # partitions; None: everyone reaches everyone
    # Which receivers a sender's heartbeats reach (None: all), to thin out big simulations.
    heartbeat_reaches: Callable[[HostClusterId, HostClusterId], bool] | None = None

    def reachable(self, a: HostClusterId, b: HostClusterId) -> bool:
        if self.groups is None:
            return True
        return any(a in g and b in g for g in self.groups)


@implementer(IEffects)
class SimHost:
    """One simulated host: the real Node, driven through the real Driver, with effects in memory."""

    def __init__(self, sim: Simulation, node: Node) -> None:
        self.sim = sim
        self.node = node
        self.id = node.id
        self.alive = True
        self.frozen = False
        self.sequence = 0
        self.saved: Tables | None = None
        self.sent_bytes = 0
        self.dropped = 0
        self.notified: list[tuple[str, ...]] = []
        self.answers: list[Answered] = []  # to operators' commands asked through this host
        # As in the real transport: a datagram overtaken by a newer one from its sender is dropped.
        self.guard = ReplayGuard(own=node.id)
        # Strict: a node bug fails the test that caused it, instead of being logged.
        self.driver = Driver(node, self, sim.clock, strict=True)
        self._timers: list[Any] = []

    def start(self) -> None:
        interval = self.node.timing.interval
        offset = self.sim.rng.uniform(0, interval)  # hosts do not start in lockstep
        self._every(interval, self.beat, offset)
        self._every(interval / TICKS_PER_INTERVAL, self.driver.tick, offset)
        if self.sim.probe_answer is not None:
            self.start_probing()

    def start_probing(self) -> None:
        self._every(POLL, self.driver.poll_probes, self.sim.rng.uniform(0, POLL))

    def _every(self, period: float, f: Callable[[], None], first: float) -> None:
        def fire() -> None:
            if not self.alive:
                return
            if not self.frozen:
                f()
            self._timers.append(self.sim.clock.callLater(period, fire))

        self._timers.append(self.sim.clock.callLater(first, fire))

    def stop(self) -> None:
        self.alive = False
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()

    def beat(self) -> None:
        self.driver.beat(self.sim.load_of(self.id))

    def deliver(self, datagram: Datagram) -> None:
        if self.alive and not self.frozen:
            try:
                self.guard.check(datagram.sender, datagram.boot_epoch, datagram.sequence)
            except WireError:
                self.dropped += 1
                return
            self.driver.received(datagram, "sim")

    # --- IEffects, in memory ---

    def send(self, message: Any, term: int) -> None:
        self.sequence += 1
        node = self.node
        if self.sim.wire:
            self.sent_bytes += len(seal(SIM_KEYS, self.id, node.boot_epoch, self.sequence, term, message))
        self.sim.multicast(self, Datagram(1, self.id, node.boot_epoch, self.sequence, term, message))

    def persist(self, tables: Tables) -> None:
        self.saved = tables

    def run(self, action: RunAction) -> Deferred[tuple[bool, str]]:
        return self._later(ACTION_TAKES, self.sim.action_result(self.id, action.action, action.service))

    def probe(self, order: ProbeOrder) -> Deferred[ProbeResult]:
        answer = self.sim.probe_answer
        assert answer is not None  # hosts poll the probe schedule only once it is set, and it is never unset
        result = answer(order)
        return self._later(PROBE_TAKES, ProbeResult(Status[result.upper()], PROBE_TAKES, f"{result} detail"))

    def _later(self, delay: float, result: Any) -> Deferred[Any]:
        """A result that arrives after ``delay``, unless this host has died by then."""
        d: Deferred[Any] = Deferred()
        self.sim.clock.callLater(delay, lambda: d.callback(result) if self.alive else None)
        return d

    def notify(self, words: tuple[str, ...]) -> None:
        self.notified.append(words)

    def log(self, event: Any) -> None:
        if isinstance(event, RoleChanged) and event.new == Role.MASTER:
            self.sim.became_master(self, event)

    def answered(self, answer: Answered) -> None:
        self.answers.append(answer)


class Simulation:
    def __init__(
        self,
        roles: list[str],
        seed: int = 0,
        interval: float = 1.0,
        dead_after: int = 3,
        quorum: bool = False,
        services: int | dict[int, tuple] = 0,
        wire: bool = False,
        policies: Iterable[PolicyRow] = (),
        probing: ProbeDefaults | None = None,
        balance_after: float = 30.0,
        move_hold: float = 120.0,
        min_spares: int = 0,
    ) -> None:
        self.clock = SimClock(1_000_000.0)  # a wall-clock-like start, so epochs and stamps are positive
        self.rng = random.Random(seed)
        self.faults = Faults()
        self.timing = Timing(interval=interval, dead_after=dead_after, quorum=quorum,
                             balance_after=balance_after, move_hold=move_hold, min_spares=min_spares)
        self.wire = wire
        self.policies = tuple(policies)
        self.probing = probing
        self.services = services
        self.hosts: dict[HostClusterId, SimHost] = {}
        self.became: list[Became] = []
        self.delivered = 0
        # How start and stop actions go, by host, action and service: (ok, detail).
        self.action_result: Callable[[HostClusterId, str, str], tuple[bool, str]] = (
            lambda host, action, service: (True, f"{action}ed"))
        self._probe_answer: Callable[[ProbeOrder], str] | None = None
        # What each host's heartbeat says of its load; tests and benches set their own.
        self.load_of: Callable[[HostClusterId], Load] = default_load
        for host_id, role in enumerate(roles, 1):
            self.add(HostClusterId.of(CLUSTER, host_id), role)

    @property
    def probe_answer(self) -> Callable[[ProbeOrder], str] | None:
        """What each of the master's checks finds ("ok", "critical", ...); while it is None, the
        master probes nothing (and hosts poll no probe schedule, which is cheaper)."""
        return self._probe_answer

    @probe_answer.setter
    def probe_answer(self, answer: Callable[[ProbeOrder], str]) -> None:
        begins = self._probe_answer is None and answer is not None
        self._probe_answer = answer
        if begins:
            for host in self.hosts.values():
                if host.alive:
                    host.start_probing()

    def add(self, hid: HostClusterId, role: str, tables: Tables | None = None, preempt: bool = False) -> SimHost:
        identity = Identity(id=hid, configured=Role(role), address=f"10.0.{hid.host >> 8}.{hid.host & 0xFF}",
                            preempt=preempt)
        node = Node(identity, int(self.clock.seconds() * 1e6), self.timing, self.clock.seconds(),
                    tables, self.policies, self._declared(hid), self.probing)
        host = self.hosts[hid] = SimHost(self, node)
        host.start()
        return host

    def _declared(self, hid: HostClusterId) -> tuple:
        """``services``: a count of generic ones on every host, or host number -> declarations."""
        if isinstance(self.services, dict):
            return self.services.get(hid.host, ())
        return _declarations(self.services)

    def multicast(self, sender: SimHost, datagram: Datagram) -> None:
        faults = self.faults
        thin = faults.heartbeat_reaches if isinstance(datagram.message, Heartbeat) else None
        for host in self.hosts.values():
            if host is sender or not host.alive or not faults.reachable(sender.id, host.id):
                continue
            if thin is not None and not thin(sender.id, host.id):
                continue
            copies = 0 if self.rng.random() < faults.loss else 1
            if copies and self.rng.random() < faults.duplicate:
                copies = 2
            for _ in range(copies):
                self.clock.callLater(self.rng.uniform(*faults.delay), self._deliver, host, datagram)

    def _deliver(self, host: SimHost, datagram: Datagram) -> None:
        self.delivered += 1
        host.deliver(datagram)

    def became_master(self, host: SimHost, change: RoleChanged) -> None:
        now = self.clock.seconds()
        others = tuple(
            (h.id, h.node.role, h.node.tables.version)
            for h in self.hosts.values() if h is not host and h.alive and not h.frozen
        )
        self.became.append(Became(host.id, change.term, now, others))

    # --- driving ---

    def run(self, seconds: float, step: float = 0.05) -> None:
        end = self.clock.seconds() + seconds
        while self.clock.seconds() < end:
            self.clock.advance(min(step, end - self.clock.seconds()))

    def run_until(self, done: Callable[[], bool], limit: float, step: float = 0.05) -> float:
        """Run until ``done()``; the simulated seconds it took, or raise TimeoutError."""
        start = self.clock.seconds()
        while not done():
            if self.clock.seconds() - start > limit:
                raise TimeoutError(f"not done after {limit} simulated seconds")
            self.clock.advance(step)
        return self.clock.seconds() - start

    def kill(self, hid: HostClusterId) -> None:
        self.hosts[hid].stop()

    def restart(self, hid: HostClusterId, preempt: bool = False) -> SimHost:
        old = self.hosts[hid]
        old.stop()
        self.clock.advance(0.001)  # a new boot epoch
        host = self.add(hid, old.node.identity.configured, old.saved, preempt)
        host.saved = old.saved
        return host

    def freeze(self, hid: HostClusterId, frozen: bool = True) -> None:
        self.hosts[hid].frozen = frozen

    # --- what the invariants look at ---

    def alive(self) -> list[SimHost]:
        return [h for h in self.hosts.values() if h.alive and not h.frozen]

    def masters(self) -> list[SimHost]:
        return [h for h in self.alive() if h.node.role == "master"]

    def converged(self) -> bool:
        """One master, followed by every live host, whose tables all equal its own."""
        masters = self.masters()
        if len(masters) != 1:
            return False
        master = masters[0].node
        want = (master.tables.version, master.tables.digest)
        return all(
            h.node.master_id == master.id and h.node.term == master.term
            and (h.node.tables.version, h.node.tables.digest) == want
            for h in self.alive()
        )


def default_load(hid: HostClusterId) -> Load:
    """A different, steady load on each host."""
    return Load(100 + hid.host % 700, 1000 * hid.host, 2000 * hid.host)


def _declarations(count: int) -> tuple:
    services = {
        f"svc{i}": ServiceConfig(f"svc{i}", "tcp", 8000 + i, i % 2 == 0, None, None, 10.0, {})
        for i in range(count)
    }
    return declarations(services)
