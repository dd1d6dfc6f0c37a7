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
it writes what it hears into them, commits a generation, multicasts a sync
notice, and answers the sync requests of hosts that are behind.
"""

from __future__ import annotations

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
from rais.probing import Health, Key, ProbeDefaults, ProbeOrder, ProbeSchedule, Settings, options_of
from rais.sync import SyncClient, SyncServer, Target
from rais.tables import Ledger, Tables
from rais.wire import (
    Catalogue,
    CatalogueRequest,
    Datagram,
    Echo,
    Heartbeat,
    Load,
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
RTT_FLOOR = 200  # microseconds
RTT_WEIGHT = 0.2  # of a new round-trip sample in the smoothed value
MAX_RTT = 10_000_000  # microseconds; anything longer is a stale echo
PROBE_LATENCY_FLOOR = 1_000  # microseconds: probe latencies closer than this are the same


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
class DuplicateId:
    """Another process signs with our host-cluster id: a configuration error."""

    id: HostClusterId
    source: str
    boot_epoch: int


Output = Send | BeatNow | Persist | RoleChanged | Committed | Applied | DuplicateId | Transition


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
            self.client.replace(self.ledger.current)
            self.ledger = self.server = None
            self._change_role(base_role(self.identity.configured), f"master {master} has newer term "
                              f"{term_text(term)}", out)

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
        self._health = {}  # rise and fall count afresh: results of another master are not ours
        self._change_role("master", f"{reason}; new term {term_text(term)}", out)
        if not self.ledger.current.table("policy"):
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
                self.client.replace(self.ledger.current)
                self.ledger = self.server = None
                self.master_id = None
                self._lost_at = now
                self._change_role(base_role(self.identity.configured),
                                  f"lost quorum: {support} of {needed} needed", out)
                return
        if now < self._quiet_until:
            return  # just resumed: a newer master may exist; write nothing until we know
        self._maintain(now)
        self._request_catalogues(now, out)
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

    # --- probing services (the master's job) ---

    def probe_orders(self, now: float) -> list[ProbeOrder]:
        """The checks due now, within the concurrency limit."""
        if self.role != "master" or now < self._quiet_until:
            return []
        tables = self.ledger.current
        rows: dict[Key, ServiceRow] = {}
        wanted = []
        for key, row in tables.rows.items():
            if key.table != "services":
                continue
            server = tables.get(RowKey("servers", key.host, ""))
            if server is None or server.status == DOWN:
                continue  # a host that is down is not probed: its failure is already known
            settings = Settings.of(row, self.probing)
            rows[(row.host, row.name)] = row
            wanted.append(((row.host, row.name), settings.interval))
        orders = []
        for key in self._schedule.take(now, wanted):
            row = rows[key]
            server = tables.get(RowKey("servers", key[0].value, ""))
            orders.append(ProbeOrder(key, row.probe, server.address, row.port or None, options_of(row),
                                     Settings.of(row, self.probing).timeout))
        return orders

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

