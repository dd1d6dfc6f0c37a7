"""The state machine of one node: inputs in, decisions out.

Pure: no reactor, no sockets, no files. The transport feeds it authenticated
datagrams and the time; the node answers with outputs: messages to
multicast, tables to save, and events to log. The same object runs in the
daemon, in the tests over an in-memory network, and in the simulator.

A node follows the master of the newest term it has heard and keeps a
replica of the master's tables. When the master falls silent for
``dead_after`` heartbeat intervals, the nodes take their places in the
succession (see rais.election) and the first claims a new term; in quorum
mode it must first win the votes of a majority of the known hosts, and a
master that stops hearing a majority steps down. A master keeps the tables:
it writes what it hears and what its probes find into them, commits a
generation, multicasts it, and answers the sync requests of hosts that are
behind. It also keeps every service at its copies: it asks the planner where
a lost copy should go, orders that host to start it, and releases copies
that must not run (see "orders" below); a host runs the actions it is
ordered to and answers.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

import attrs

from rais.catalogue import CatalogueAssembler, catalogue_messages, digest_of, service_rows
from rais.election import (
    Ballot,
    Candidate,
    majority,
    next_term,
    outranks,
    place,
    term_text,
)
from rais.ids import HostClusterId
from rais.membership import DOWN, UP, Membership, Peer, Transition
from rais.planner import View, replicas
from rais.planner import place as choose_host
from rais.probing.schedule import Health, Key, ProbeDefaults, ProbeOrder, ProbeSchedule, Settings, options_of
from rais.sync import SyncClient, SyncServer, Target
from rais.tables import Ledger, Tables
from rais.wire import (
    Catalogue,
    CatalogueRequest,
    Datagram,
    Echo,
    Heartbeat,
    Load,
    Order,
    OrderDone,
    RowKey,
    ServiceDecl,
    SyncChunk,
    SyncNotice,
    SyncRequest,
    Vote,
    VoteRequest,
)
from rais.wire.rows import MAX_DETAIL, CpuRow, LatencyRow, NetworkRow, PolicyRow, Row, ServerRow, ServiceRow
from rais.wire.schema import clip

# A row that changed only a little is rewritten at most this often (seconds),
# so load figures and last-heard times do not bump the generation every beat.
REFRESH = 30.0
CPU_STEP = 50  # permille
RATE_STEP = 0.25  # relative change of a network rate or a round trip
RATE_FLOOR = 10_000  # bytes/s: below this, rates are noise
RTT_FLOOR = 1_000  # microseconds: closer round trips are the same for placing services
RTT_WEIGHT = 0.2  # of a new round-trip sample in the smoothed value
MAX_RTT = 10_000_000  # microseconds; anything longer is a stale echo
PROBE_LATENCY_FLOOR = 1_000  # microseconds: probe latencies closer than this are the same
ORDER_TIMEOUT = 120.0  # seconds a host may take to answer an order (its own timeout is shorter)
FAILED_HERE_FOR = 60.0  # seconds a service is not moved back to where it failed
START_FAILED_FOR = 300.0  # seconds a host whose start failed is passed over for that service
SETTLE = 2  # heartbeat intervals a new master listens before it moves services
LOAD_HYSTERESIS = 0.1  # of CPU: a busy host must fall this far under max_cpu to count as recovered
RELEASE_HOLD = 5  # heartbeat intervals between releases of one copy (its catalogue catches up)
DECISIONS_KEPT = 5  # per service, for `rais status`
KEPT_ORDERS = 256  # orders a host remembers, to answer repeats without running them again


def base_role(configured: str) -> str:
    """The role a node plays when it is not the master: a configured master waits as a standby."""
    return "standby" if configured == "master" else configured


@attrs.frozen
class Identity:
    id: HostClusterId
    configured: str  # the role the config (or --role) asks for
    priority: int
    address: str
    preempt: bool = False


@attrs.frozen
class Timing:
    interval: float
    dead_after: int
    quorum: bool = False
    balance_after: float = 30.0  # seconds over max_cpu before a copy is moved off a host
    move_hold: float = 120.0  # seconds between two load moves of one service

    @property
    def dead(self) -> float:
        return self.interval * self.dead_after


# --- outputs ---


@attrs.frozen
class Send:
    message: Any


@attrs.frozen
class BeatNow:
    """Send a heartbeat at once (a new master announces itself)."""


@attrs.frozen
class Persist:
    tables: Tables


@attrs.frozen
class RoleChanged:
    old: str
    new: str
    term: int
    reason: str


@attrs.frozen
class Committed:
    tables: Tables


@attrs.frozen
class Applied:
    tables: Tables
    snapshot: bool


@attrs.frozen
class RunAction:
    """Run a service's start or stop command, then call ``Node.action_done``."""

    action: str  # "start" or "stop"
    service: str
    term: int
    order: int


@attrs.frozen
class DuplicateId:
    """Another process signs with our host-cluster id: a configuration error."""

    id: HostClusterId
    source: str
    boot_epoch: int


Output = Send | BeatNow | Persist | RoleChanged | Committed | Applied | DuplicateId | Transition | RunAction


@attrs.define
class _Pending:
    order: Order
    sent_at: float
    deadline: float


@attrs.define
class _Candidacy:
    term: int
    votes: set[HostClusterId]
    started: float


class Node:
    def __init__(
        self,
        identity: Identity,
        boot_epoch: int,
        timing: Timing,
        now: float,
        tables: Tables | None = None,
        policies: Iterable[PolicyRow] = (),
        services: tuple[ServiceDecl, ...] = (),
        probing: ProbeDefaults | None = None,
    ) -> None:
        self.identity = identity
        self.id = identity.id
        self.boot_epoch = boot_epoch
        self.timing = timing
        self.started = now
        self.membership = Membership(timing.interval, timing.dead_after)
        self.role = base_role(identity.configured)
        self.term = 0  # the newest master term heard; a master's own
        self.master_id: HostClusterId | None = None
        self.master_since: float | None = None
        # Each host waits its own share of half an interval before asking for a sync.
        patience = timing.interval * (0.1 + 0.4 * ((identity.id.value * 2654435761) % 1000) / 1000)
        self.client = SyncClient(tables or Tables.empty(), timing.interval, patience)
        self.ledger: Ledger | None = None
        self.server: SyncServer | None = None
        self.policies = tuple(policies)
        self.services = services
        self.catalogue = digest_of(services)
        self._catalogues = CatalogueAssembler()
        self._asked_catalogue: dict[HostClusterId, float] = {}
        self._written: dict[RowKey, float] = {}
        self._rtt: dict[HostClusterId, float] = {}
        self._master_stamp: tuple[int, float] | None = None  # its stamp, when we got it
        self._candidacy: _Candidacy | None = None
        self._ballot = Ballot()
        self._seen_term = 0  # the newest term in any header, vote or claim heard
        self._load: Load | None = None
        self.probing = probing or ProbeDefaults()
        self._schedule = ProbeSchedule(self.probing.concurrency)
        self._health: dict[Key, Health] = {}
        # A host's side of orders.
        self._orders_running: dict[tuple[int, int], str] = {}
        self._orders_done: OrderedDict[tuple[int, int], OrderDone] = OrderedDict()
        # The master's side.
        self._orders: dict[int, _Pending] = {}
        self._order_seq = 0
        self._excluded: dict[str, dict[HostClusterId, tuple[str, float]]] = {}
        self._released_at: dict[Key, float] = {}
        self._over_since: dict[Key, float] = {}  # a copy's host over its max_cpu since then
        self._load_moved_at: dict[str, float] = {}
        self.decisions: dict[str, deque[tuple[float, str]]] = {}  # the latest few per service
        self._planned: View | None = None
        self._probed: tuple[Tables, dict[Key, ProbeOrder]] | None = None
        self._lost_at: float | None = now
        # Listen before acting: after a start, or after a freeze, hear the cluster first.
        self._quiet_until = now + timing.dead
        self._last_tick = now

    # --- what the node holds ---

    @property
    def tables(self) -> Tables:
        return self.ledger.current if self.ledger is not None else self.client.tables

    @property
    def generation(self) -> int:
        return self.tables.generation

    def heartbeat(self, now: float, load: Load | None) -> Heartbeat:
        self._load = load  # a master writes its own figures into the tables too
        tables = self.tables
        echo = None
        if self._master_stamp is not None and self.role != "master":
            stamp, got = self._master_stamp
            echo = Echo(stamp, max(0, int((now - got) * 1e6)))
        return Heartbeat(
            self.role, self.identity.priority, tables.generation, self.identity.address, load,
            self.identity.configured, tables.term, tables.digest, self.catalogue,
            int(now * 1e6), echo,
        )

    def master(self, now: float) -> HostClusterId | None:
        if self.role == "master":
            return self.id
        peer = self.membership.get(self.master_id) if self.master_id is not None else None
        # Alive, and still saying it is the master of our term (it may have stepped down).
        if (peer is not None and self.membership.status(peer, now) != DOWN
                and peer.role == "master" and peer.term == self.term):
            return self.master_id
        return None

    # --- inputs ---

    def receive(self, now: float, datagram: Datagram, source: str) -> list[Output]:
        sender, message = datagram.sender, datagram.message
        if sender == self.id:
            if datagram.boot_epoch == self.boot_epoch:
                return []  # our own multicast, looped back
            return [DuplicateId(sender, source, datagram.boot_epoch)]
        out: list[Output] = []
        self._seen_term = max(self._seen_term, datagram.term,
                              message.term if isinstance(message, VoteRequest) else 0)
        if isinstance(message, Heartbeat):
            self._heard(now, datagram, message, source, out)
        elif isinstance(message, SyncNotice):
            if self._from_master(datagram):
                self.client.follow(Target(sender, message.tables_term, message.generation, message.digest))
                self._ask(now, out)
        elif isinstance(message, SyncRequest):
            if self.role == "master" and message.master == self.id:
                out.extend(Send(c) for c in self.server.answer(self.ledger, message, now))
        elif isinstance(message, SyncChunk):
            if self._from_master(datagram) and self.role != "master":
                tables = self.client.receive(message, now)
                if tables is not None:
                    out += [Applied(tables, message.transfer.snapshot), Persist(tables)]
                self._ask(now, out)
        elif isinstance(message, CatalogueRequest):
            if message.host == self.id and datagram.term >= self.term:
                out.extend(Send(c) for c in catalogue_messages(self.services))
        elif isinstance(message, Catalogue):
            if self.role == "master":
                self._catalogue(now, sender, message)
        elif isinstance(message, VoteRequest):
            if self.timing.quorum:
                granted = self._vote(now, sender, message)
                out.append(Send(Vote(message.term, sender, granted)))
        elif isinstance(message, Vote):
            self._count_vote(now, sender, message, out)
        elif isinstance(message, Order):
            if message.host == self.id and self._from_master(datagram):
                self._take_order(now, datagram.term, message, out)
        elif isinstance(message, OrderDone):
            if self.role == "master" and datagram.term == self.term:
                self._order_done(now, sender, message)
        return out

    def _from_master(self, datagram: Datagram) -> bool:
        # The fencing rule: orders and tables only from the master of the newest term.
        return datagram.sender == self.master_id and datagram.term == self.term

    def _heard(self, now: float, dg: Datagram, beat: Heartbeat, source: str, out: list[Output]) -> None:
        change = self.membership.heard(now, dg.sender, source, dg.boot_epoch, dg.term, beat, dg.sequence)
        if change is not None:
            out.append(change)
        if beat.role == "master" and dg.term > self.term:
            self._follow(now, dg.sender, dg.term, out)
        if beat.role == "master" and dg.sender == self.master_id and dg.term == self.term:
            self._master_stamp = (beat.stamp, now)
            self.client.follow(Target(dg.sender, beat.tables_term, beat.generation, beat.digest))
        if self.role == "master" and beat.echo is not None and dg.term == self.term:
            self._sample_rtt(now, dg.sender, beat.echo)

    def _follow(self, now: float, master: HostClusterId, term: int, out: list[Output]) -> None:
        """A master of a newer term exists: follow it, stepping down if we were master."""
        self.term, self.master_id, self.master_since = term, master, now
        self._candidacy = None
        self._lost_at = None
        self._master_stamp = None
        if self.role == "master":
            self._step_down(f"master {master} has newer term {term_text(term)}", out)

    def _step_down(self, reason: str, out: list[Output]) -> None:
        """Stop being master: keep the tables as our replica, drop what only a master holds."""
        self.client.replace(self.ledger.current)
        self.ledger = self.server = None
        self._change_role(base_role(self.identity.configured), reason, out)

    def _change_role(self, new: str, reason: str, out: list[Output]) -> None:
        if new != self.role:
            out.append(RoleChanged(self.role, new, self.term, reason))
            self.role = new

    # --- time passes ---

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = list(self.membership.tick(now))
        if now - self._last_tick > self.timing.dead:
            # We were frozen (SIGSTOP, a VM pause): what we know is stale, so listen again.
            self._quiet_until = now + self.timing.dead
        self._last_tick = now
        if self.role == "master":
            self._tick_master(now, out)
        else:
            self._tick_follower(now, out)
        return out

    def _tick_follower(self, now: float, out: list[Output]) -> None:
        if self.master(now) is not None:
            self._lost_at = None
            self._maybe_preempt(now, out)
            self._ask(now, out)
            return
        if self._lost_at is None:
            self._lost_at = now
        candidacy = self._candidacy
        if candidacy is not None and now - candidacy.started > self.timing.dead:
            self._candidacy = None  # no majority in time: wait our turn again
            self._lost_at = now
        if self._candidacy is not None or now < self._quiet_until:
            return
        position = place(self.id, self._candidates(now))
        waited = now - max(self._lost_at, self._quiet_until)
        if position is not None and waited >= position * self.timing.interval:
            self._claim(now, "the master is gone", out, preempt=False)

    def _ask(self, now: float, out: list[Output]) -> None:
        request = self.client.request(now)
        if request is not None:
            out.append(Send(request))

    def _me(self) -> Candidate:
        return Candidate(self.id, self.role, self.identity.configured, self.identity.priority,
                         self.tables.version)

    def _candidates(self, now: float) -> list[Candidate]:
        pool = [self._me()]
        for p in self.membership.peers():
            if self.membership.status(p, now) == UP and p.role != "master":
                pool.append(_candidate(p))
        return pool

    def _maybe_preempt(self, now: float, out: list[Output]) -> None:
        if not self.identity.preempt or self._candidacy is not None or now < self._quiet_until:
            return
        master = self.membership.get(self.master_id)
        if master is None or self.client.behind() or not outranks(self._me(), _candidate(master)):
            return
        self._claim(now, f"preempting {self.master_id}", out, preempt=True)

    def _claim(self, now: float, reason: str, out: list[Output], preempt: bool) -> None:
        term = next_term(max(self._seen_term, self.tables.term), self.id)
        if not self.timing.quorum:
            self._become_master(now, term, reason, out)
            return
        self._seen_term = term
        self._candidacy = _Candidacy(term, {self.id}, now)
        self._ballot.grant(term, self.id)
        tables = self.tables
        out.append(Send(VoteRequest(term, tables.term, tables.generation, preempt)))
        self._count_vote(now, self.id, Vote(term, self.id, True), out)

    def _known_hosts(self) -> set[HostClusterId]:
        known = {row.host for row in self.tables.table("servers")}
        known.update(p.id for p in self.membership.peers())
        known.add(self.id)
        return known

    def _vote(self, now: float, candidate: HostClusterId, request: VoteRequest) -> bool:
        if request.term <= self.term or (request.tables_term, request.generation) < self.tables.version:
            return False
        if self.role == "master" and not request.preempt:
            return False
        master = self.master(now)
        if master is not None and master != self.id:
            # A live master keeps our vote unless a preferred master is taking over.
            peer, current = self.membership.get(candidate), self.membership.get(master)
            if not (request.preempt and peer and current
                    and outranks(_candidate(peer), _candidate(current))):
                return False
        if not self._ballot.grant(request.term, candidate):
            return False
        self._candidacy = None  # a newer candidate at least as up to date: let it win
        return True

    def _count_vote(self, now: float, voter: HostClusterId, vote: Vote, out: list[Output]) -> None:
        candidacy = self._candidacy
        if candidacy is None or vote.candidate != self.id or vote.term != candidacy.term or not vote.granted:
            return
        candidacy.votes.add(voter)
        if len(candidacy.votes) >= majority(len(self._known_hosts())):
            self._become_master(now, candidacy.term, f"won {len(candidacy.votes)} votes", out)

    def _become_master(self, now: float, term: int, reason: str, out: list[Output]) -> None:
        self.term, self.master_id, self.master_since = term, self.id, now
        self._candidacy = None
        self._lost_at = None
        self.ledger = Ledger(self.client.tables)
        self.server = SyncServer(self.timing.interval / 2)
        self._schedule = ProbeSchedule(self.probing.concurrency)
        # Everything else only a master holds starts afresh: what an earlier mastership of
        # ours counted (probe results, load, round trips, orders) is stale.
        self._health, self._orders, self._excluded, self._released_at = {}, {}, {}, {}
        self._over_since, self._load_moved_at, self._written, self._rtt = {}, {}, {}, {}
        self._asked_catalogue, self._catalogues = {}, CatalogueAssembler()
        self._change_role("master", f"{reason}; new term {term_text(term)}", out)
        # The new master's [policy.*] are the operator's latest word; the tables keep
        # the policies of services its config does not name.
        for policy in self.policies:
            self.ledger.stage(policy)
        self._maintain(now)
        self._commit(now, out)
        out.append(BeatNow())

    def _tick_master(self, now: float, out: list[Output]) -> None:
        if self.timing.quorum and now - self.master_since > self.timing.dead:
            fresh = (self.timing.dead_after - 1) * self.timing.interval
            support = 1 + sum(
                1 for p in self.membership.peers() if p.term == self.term and now - p.last_heard <= fresh
            )
            needed = majority(len(self._known_hosts()))
            if support < needed:
                self.master_id = None
                self._lost_at = now
                self._step_down(f"lost quorum: {support} of {needed} needed", out)
                return
        if now < self._quiet_until:
            return  # just resumed: a newer master may exist; write nothing until we know
        self._maintain(now)
        self._request_catalogues(now, out)
        self._commit(now, out)  # the planner reads committed tables: include what just changed
        if now - self.master_since >= SETTLE * self.timing.interval:
            # A new master first hears every host's catalogue, then moves anything.
            self._reconcile(now, out)
            self._commit(now, out)

    def _commit(self, now: float, out: list[Output]) -> None:
        tables = self.ledger.commit(self.term)
        if tables is not None:
            out += [Committed(tables), Send(SyncNotice(tables.term, tables.generation, tables.digest))]
            out.extend(Send(chunk) for chunk in self.server.push(self.ledger, now))
            out.append(Persist(tables))

    # --- the master's tables ---

    def _stage(self, row: Row, now: float, significant: bool) -> None:
        """Stage ``row`` if it differs significantly, or at all once its refresh is due."""
        old = self.ledger.view(row.key)
        if old == row:
            return
        if old is None or significant or now - self._written.get(row.key, -1e18) >= REFRESH:
            self.ledger.stage(row)
            self._written[row.key] = now

    def _maintain(self, now: float) -> None:
        ledger = self.ledger
        now_ms = int(now * 1000)
        me = self.identity
        own = ServerRow(self.id, "master", me.configured, UP, me.priority, me.address,
                        self.boot_epoch, now_ms, self.catalogue)
        self._stage_server(own, now)
        self._stage_load(self.id, self._load, now)
        own_rtt = RowKey("latency", self.id.value, "")
        if ledger.view(own_rtt) is not None:
            ledger.stage_remove(own_rtt)  # measured by a former master; ours to ourselves is nil
        self._stage_catalogue(now, self.id, self.catalogue, self.services)
        for peer in self.membership.peers():
            self._stage_peer(peer, now, now_ms)
        # Hosts the tables know but this master has not heard since it took over.
        for row in ledger.current.table("servers"):
            if (row.host != self.id and self.membership.get(row.host) is None and row.status != DOWN
                    and now - self.master_since >= self.timing.dead):
                ledger.stage(attrs.evolve(row, status=DOWN))

    def _stage_server(self, row: ServerRow, now: float) -> None:
        old = self.ledger.view(row.key)
        significant = old is None or attrs.evolve(old, last_heard_ms=row.last_heard_ms) != row
        self._stage(row, now, significant)

    def _stage_peer(self, peer: Peer, now: float, now_ms: int) -> None:
        beat = peer.beat
        key = RowKey("servers", peer.id.value, "")
        old = self.ledger.view(key)
        self._stage_server(ServerRow(
            peer.id, beat.role, beat.configured, self.membership.status(peer, now), beat.priority,
            beat.address, peer.boot_epoch, int(peer.last_heard * 1000),
            old.catalogue if old is not None else bytes(8),
        ), now)
        self._stage_load(peer.id, beat.load, now)
        rtt = self._rtt.get(peer.id)
        if rtt is not None:
            old_rtt = self.ledger.view(RowKey("latency", peer.id.value, ""))
            self._stage(LatencyRow(peer.id, int(rtt)), now,
                        old_rtt is None or _moved(old_rtt.rtt_us, int(rtt), RTT_FLOOR))

    def _stage_load(self, host: HostClusterId, load: Load | None, now: float) -> None:
        if load is None:
            return
        old_cpu = self.ledger.view(RowKey("cpu", host.value, ""))
        cpu = load.cpu_permille
        self._stage(CpuRow(host, cpu), now, old_cpu is None or abs(old_cpu.cpu_permille - cpu) >= CPU_STEP)
        old_net = self.ledger.view(RowKey("network", host.value, ""))
        rx, tx = load.net_rx_bps, load.net_tx_bps
        self._stage(NetworkRow(host, rx, tx), now, old_net is None or
                    _moved(old_net.rx_bps, rx, RATE_FLOOR) or _moved(old_net.tx_bps, tx, RATE_FLOOR))

    def _sample_rtt(self, now: float, host: HostClusterId, echo: Echo) -> None:
        rtt = int(now * 1e6) - echo.stamp - echo.held
        if 0 <= rtt <= MAX_RTT:
            old = self._rtt.get(host)
            self._rtt[host] = rtt if old is None else old + RTT_WEIGHT * (rtt - old)

    def _request_catalogues(self, now: float, out: list[Output]) -> None:
        for peer in self.membership.peers():
            row = self.ledger.view(RowKey("servers", peer.id.value, ""))
            if (self.membership.status(peer, now) == UP and row is not None
                    and row.catalogue != peer.beat.catalogue
                    and now - self._asked_catalogue.get(peer.id, -1e18) >= self.timing.interval):
                self._asked_catalogue[peer.id] = now
                out.append(Send(CatalogueRequest(peer.id)))

    def _catalogue(self, now: float, host: HostClusterId, chunk: Catalogue) -> None:
        done = self._catalogues.receive(host, chunk)
        if done is not None:
            self._stage_catalogue(now, host, *done)

    def _stage_catalogue(self, now: float, host: HostClusterId, digest: bytes,
                         decls: tuple[ServiceDecl, ...]) -> None:
        ledger = self.ledger
        key = RowKey("servers", host.value, "")
        committed, server = ledger.current.get(key), ledger.view(key)
        if server is None or (committed is not None and committed.catalogue == digest):
            return
        existing = [r for r in ledger.current.table("services") if r.host == host]
        rows, removes = service_rows(host, decls, existing, int(now * 1000))
        for row in rows:
            ledger.stage(row)
        for key in removes:
            ledger.stage_remove(key)
        ledger.stage(attrs.evolve(server, catalogue=digest))

    # --- orders: a host's side ---

    def _take_order(self, now: float, term: int, order: Order, out: list[Output]) -> None:
        key = (term, order.order)
        if key in self._orders_done:
            out.append(Send(self._orders_done[key]))  # our answer was lost: say it again
            return
        if key in self._orders_running:
            return
        decl = next((d for d in self.services if d.name == order.service), None)
        if decl is None:
            out.extend(self._answer(key, order.service, False, "not declared here", now))
            return
        action = "start" if order.action == "assign" else "stop"
        if not (decl.can_start if action == "start" else decl.can_stop):
            # Nothing to run: it stays as it is (the planner assigns such a service only
            # where it already answers).
            out.extend(self._answer(key, order.service, True, f"no {action} action: left as it is", now))
            return
        self._orders_running[key] = action
        out.append(RunAction(action, order.service, term, order.order))

    def action_done(self, now: float, term: int, order: int, service: str, ok: bool,
                    detail: str) -> list[Output]:
        """The shell ran a RunAction: note what runs here now, and answer the master."""
        action = self._orders_running.pop((term, order), None)
        if ok and action is not None:
            running = action == "start"
            self.services = tuple(attrs.evolve(d, running=running) if d.name == service else d
                                  for d in self.services)
            self.catalogue = digest_of(self.services)
        return self._answer((term, order), service, ok, detail, now)

    def _answer(self, key: tuple[int, int], service: str, ok: bool, detail: str,
                now: float) -> list[Output]:
        done = OrderDone(key[1], service, ok, clip(detail, MAX_DETAIL))
        self._orders_done[key] = done
        while len(self._orders_done) > KEPT_ORDERS:
            self._orders_done.popitem(last=False)
        pending = self._orders.get(key[1])
        if self.role == "master" and key[0] == self.term and pending and pending.order.host == self.id:
            self._order_done(now, self.id, done)  # an order the master gave itself
            return []
        return [Send(done)]

    # --- orders: the master's side ---

    def _reconcile(self, now: float, out: list[Output]) -> None:
        """Keep every service at its copies: move failed ones, replace lost ones, release extras."""
        view = self._view()
        for pending in list(self._orders.values()):
            order = pending.order
            server = view.servers.get(order.host)
            if now >= pending.deadline or server is None or server.status == DOWN:
                del self._orders[order.order]
                if order.action == "assign":
                    self._exclude(order.service, order.host, "did not answer the start order", now,
                                  START_FAILED_FOR)
            elif now - pending.sent_at >= self.timing.interval:
                pending.sent_at = now  # datagrams get lost: say it again until answered
                out.append(Send(order))
        names = {r.name for r in self.ledger.current.table("policy")}
        names |= {name for name, rows in view.by_name.items() if any(r.assigned for r in rows)}
        names |= {p.order.service for p in self._orders.values()}
        for name in sorted(names):
            self._reconcile_service(now, view, name, out)

    def _view(self) -> View:
        """The planner's index of the current tables, built once per committed snapshot."""
        tables = self.ledger.current
        if self._planned is None or self._planned.tables is not tables:
            self._planned = View(tables)
        return self._planned

    def _reconcile_service(self, now: float, view: View, name: str, out: list[Output]) -> None:
        rows = view.services(name)
        servers = view.servers
        policy = view.policy(name)

        def up(host: HostClusterId) -> bool:
            return host in servers and servers[host].status == UP

        assigned = [r for r in rows if r.assigned]
        lost = [r for r in assigned if r.state == "failed" or servers.get(r.host) is None
                or servers[r.host].status == DOWN]  # a suspect host is given time: no flapping
        serving = [r for r in assigned if r not in lost]
        starting = [p.order.host for p in self._orders.values()
                    if p.order.service == name and p.order.action == "assign"]
        if policy is None:
            # No [policy]: keep the copies it has now (one, for most services), in the tables,
            # so that every later master keeps the same count.
            policy = PolicyRow(name, min(max(1, len(assigned)), 1000), None, None)
            self.ledger.stage(policy)
        want = policy.replicas
        origin = None
        for row in lost:
            origin = row.host
            self.ledger.stage(attrs.evolve(row, assigned=False))
            why = "the service failed here" if row.state == "failed" else "down"
            self._exclude(name, row.host, why, now, FAILED_HERE_FOR)
            self._decided(now, name, f"{name} lost on {row.host} ({why})")
            if up(row.host):
                self._order(now, "release", row.host, name, out)
        missing = want - len(serving) - len(starting)
        if missing == 0 and self._overloaded(now, view, policy, serving):
            missing = 1  # start a copy elsewhere; the extra one, on the busy host, is released after
        if missing > 0:
            exclude = self._exclusions(name, now)
            exclude.update((host, "being started") for host in starting)
            for _ in range(missing):
                decision = choose_host(view, name, exclude, origin=origin, master=self.id)
                self._decided(now, name, decision.explanation)
                if decision.host is None:
                    break
                self._order(now, "assign", decision.host, name, out)
                exclude[decision.host] = "chosen for another copy"
        elif missing < 0 and not starting:
            for decision in replicas(view, name, master=self.id):
                if decision.action == "release":
                    self.ledger.stage(attrs.evolve(
                        next(r for r in rows if r.host == decision.host), assigned=False))
                    self._decided(now, name, decision.explanation)
                    self._order(now, "release", decision.host, name, out)
        if len(serving) >= want:
            # A host running a copy nobody assigned (it came back after the service moved):
            # an exclusive service must not be served twice.
            for row in rows:
                key = (row.host, name)
                if (row.running and not row.assigned and row.can_stop and up(row.host)
                        and now - self._released_at.get(key, -1e18) >= RELEASE_HOLD * self.timing.interval):
                    self._released_at[key] = now
                    self._decided(now, name, f"{name} runs on {row.host} without being assigned there: release")
                    self._order(now, "release", row.host, name, out)

    def _overloaded(self, now: float, view: View, policy: PolicyRow, serving: list[ServiceRow]) -> bool:
        """Whether a copy's host has been over the policy's max_cpu or max_net_mbps long enough.

        Hysteresis: a host counts as over above a limit, and as recovered only
        under 90% of it (CPU: a tenth under); a service moves at most once per move_hold.
        """
        cpu_limit = None if policy.max_cpu_permille is None else policy.max_cpu_permille / 1000
        net_limit = policy.max_net_bps
        if cpu_limit is None and net_limit is None:
            return False
        due = False
        for row in serving:
            key = (row.host, row.name)
            cpu, net = view.cpu(row.host) or 0.0, view.net(row.host) or 0
            over = (cpu_limit is not None and cpu > cpu_limit) or (net_limit is not None and net > net_limit)
            calm = (cpu_limit is None or cpu < cpu_limit - LOAD_HYSTERESIS) and (
                net_limit is None or net < 0.9 * net_limit)
            if calm:
                self._over_since.pop(key, None)
            elif over:
                since = self._over_since.setdefault(key, now)
                due = due or now - since >= self.timing.balance_after
        if due and now - self._load_moved_at.get(policy.name, -1e18) >= self.timing.move_hold:
            self._load_moved_at[policy.name] = now
            self._decided(now, policy.name, f"{policy.name}: a host has been over its load limit for "
                                            f"{self.timing.balance_after:g}s: moving a copy off it")
            return True
        return False

    def _order(self, now: float, action: str, host: HostClusterId, service: str, out: list[Output]) -> None:
        self._order_seq += 1
        if action == "release":
            self._released_at[(host, service)] = now  # one release at a time is enough
        order = Order(self._order_seq, action, host, service)
        self._orders[order.order] = _Pending(order, now, now + ORDER_TIMEOUT)
        if host == self.id:
            self._take_order(now, self.term, order, out)  # our own multicast never comes back to us
        else:
            out.append(Send(order))

    def _order_done(self, now: float, host: HostClusterId, done: OrderDone) -> None:
        pending = self._orders.get(done.order)
        if pending is None or pending.order.host != host:
            return  # an answer to an order of another term, or already handled
        del self._orders[done.order]
        order = pending.order
        if order.action == "release":
            self._decided(now, order.service, f"{order.service} released on {host}: {done.detail}")
            return
        if not done.ok:
            self._exclude(order.service, host, f"start failed: {done.detail}", now, START_FAILED_FOR)
            self._decided(now, order.service, f"{order.service} did not start on {host}: {done.detail}; "
                                              "trying the next host")
            return
        row = self.ledger.view(RowKey("services", host.value, order.service))
        if row is not None:
            # Served only once its probe says so: unknown until rise results in a row.
            self.ledger.stage(attrs.evolve(row, assigned=True, state="unknown", result="none",
                                           changed_ms=int(now * 1000)))
            self._health.pop((host, order.service), None)
        self._decided(now, order.service, f"{order.service} started on {host} ({done.detail}); "
                                          "waiting for its probe")

    def _exclude(self, service: str, host: HostClusterId, why: str, now: float, period: float) -> None:
        self._excluded.setdefault(service, {})[host] = (why, now + period)

    def _exclusions(self, service: str, now: float) -> dict[HostClusterId, str]:
        held = self._excluded.get(service, {})
        for host in [h for h, (_, until) in held.items() if until <= now]:
            del held[host]
        return {host: why for host, (why, _) in held.items()}

    def _decided(self, now: float, service: str, text: str) -> None:
        kept = self.decisions.setdefault(service, deque(maxlen=DECISIONS_KEPT))
        if not kept or kept[-1][1] != text:  # a degraded service is re-planned every tick: say it once
            kept.append((now, text))

    # --- probing services (the master's job) ---

    def probe_orders(self, now: float) -> list[ProbeOrder]:
        """The checks due now, within the concurrency limit."""
        if self.role != "master" or now < self._quiet_until:
            return []
        targets = self._probe_targets()
        return [targets[key] for key in self._schedule.take(now, ((k, t.interval) for k, t in targets.items()))]

    def _probe_targets(self) -> dict[Key, ProbeOrder]:
        """What to probe, worked out once per committed snapshot: polls come ten times a second."""
        tables = self.ledger.current
        if self._probed is not None and self._probed[0] is tables:
            return self._probed[1]
        view = self._view()
        targets = {}
        for row in tables.table("services"):
            server = view.servers.get(row.host)
            if server is None or server.status == DOWN:
                continue  # a host that is down is not probed: its failure is already known
            settings = Settings.of(row, self.probing)
            targets[(row.host, row.name)] = ProbeOrder(
                (row.host, row.name), row.probe, server.address, row.port or None, options_of(row),
                settings.timeout, settings.interval)
        self._probed = (tables, targets)
        return targets

    def probe_result(self, now: float, key: Key, result: str, latency: float, detail: str) -> None:
        """A check finished: count it, and write what changed into the services table."""
        self._schedule.done(key)
        if self.role != "master":
            return  # stepped down while it ran
        row = self.ledger.view(RowKey("services", key[0].value, key[1]))
        if row is None:
            return  # no longer declared
        settings = Settings.of(row, self.probing)
        health = self._health.setdefault(key, Health())
        change = health.record(result, settings.rise, settings.fall)
        state = row.state
        if not (row.running or row.assigned):
            state = "stopped"
        elif change is not None or row.state in ("stopped", "unknown"):
            state = {True: "running", False: "failed", None: row.state}[health.up]
        latency_us = round(latency * 1e6)
        new = attrs.evolve(
            row, result=result, latency_us=latency_us, detail=clip(detail, MAX_DETAIL), state=state,
            changed_ms=int(now * 1000) if state != row.state else row.changed_ms,
        )
        significant = (state, result) != (row.state, row.result) or row.latency_us is None or _moved(
            row.latency_us, latency_us, PROBE_LATENCY_FLOOR)
        self._stage(new, now, significant)

    # --- what operators see ---

    def status(self, now: float) -> dict[str, Any]:
        """The status document served as status.json (see README)."""
        master = self.master(now)
        tables = self.tables
        return {
            "self": str(self.id),
            "cluster": str(self.id.cluster),
            "role": self.role,
            "configured_role": self.identity.configured,
            "priority": self.identity.priority,
            "address": self.identity.address,
            "term": self.term,
            "term_text": term_text(self.term),
            "master": str(master) if master else None,
            "master_since": self.master_since if master else None,
            "quorum": self.timing.quorum,
            "generation": tables.generation,
            "tables_term": tables.term,
            "digest": tables.digest.hex(),
            "behind": self.role != "master" and self.client.behind(),
            "boot_epoch": self.boot_epoch,
            "uptime": round(now - self.started, 3),
            "hosts": [self._host(p, now) for p in self.membership.peers()],
            "tables": tables.to_json(),
            "decisions": {name: [{"at": at, "text": text} for at, text in kept]
                          for name, kept in sorted(self.decisions.items())},
        }

    def _host(self, peer: Peer, now: float) -> dict[str, Any]:
        load = peer.load
        latency = self.tables.get(RowKey("latency", peer.id.value, ""))
        return {
            "id": str(peer.id),
            "address": peer.address,
            "source": peer.source,
            "role": peer.role,
            "configured_role": peer.beat.configured,
            "priority": peer.priority,
            "term": peer.term,
            "generation": peer.beat.generation,
            "status": self.membership.status(peer, now),
            "last_heard": round(now - peer.last_heard, 3),
            "boot_epoch": peer.boot_epoch,
            "cpu": load.cpu_permille / 1000 if load else None,
            "net_rx_bps": load.net_rx_bps if load else None,
            "net_tx_bps": load.net_tx_bps if load else None,
            "latency_ms": latency.rtt_us / 1000 if latency else None,
        }


def _candidate(peer: Peer) -> Candidate:
    beat = peer.beat
    return Candidate(peer.id, beat.role, beat.configured, beat.priority, (beat.tables_term, beat.generation))


def _moved(old: int, new: int, floor: int) -> bool:
    return abs(new - old) > max(floor, RATE_STEP * max(old, new))

