"""What only the master holds, for exactly one term.

Pure. A ``Mastership`` is made when a node becomes master and dropped when
it steps down, so nothing of it (the ledger, probe results, round trips,
orders in flight, put-aside hosts, load timers, decisions) can outlive the
term it belongs to. It keeps the tables: it writes what the master hears and
what its probes find into them (``upkeep``, ``probe_done``), commits
generations and answers sync requests, and keeps every service at its copies
(``reconcile``, which runs rais.reconcile and gives the orders it decides).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from rais.catalogue import CatalogueAssembler, service_rows
from rais.commands import Answers
from rais.config import foreign_host
from rais.costs import CostLearner, a_step
from rais.effects import Decided, Notify, PoolChanged, Send, TablesChanged
from rais.ids import HostClusterId
from rais.membership import Membership, Peer
from rais.planner import DRAINED, View
from rais.policy import describe, edit
from rais.pool import REST, held_role, news, pool_of
from rais.probing.schedule import Health, Key, ProbeDefaults, ProbeOrder, ProbeSchedule, Settings, options_of
from rais.reconcile import START_FAILED_FOR, Books, Decision, Exclusion, Situation, lines, reconcile
from rais.settings import Identity, Timing
from rais.states import HostStatus, OrderAction, Result, Role, ServiceState, base_role
from rais.sync import SyncServer
from rais.tables import Ledger, Tables, row_as
from rais.wire import Catalogue, CatalogueRequest, Echo, Load, OrderDone, RowKey, ServiceDecl, SyncNotice, SyncRequest
from rais.wire.rows import MAX_DETAIL, CostRow, CpuRow, LatencyRow, NetworkRow, PolicyRow, Row, ServerRow, ServiceRow
from rais.wire.schema import clip

# Load figures, round trips and probe latencies move with every beat. A quiet cluster should not
# make a generation (a multicast, and a log line on every host) of each wobble: a figure is
# rewritten when it moved more than its deadband from the value in the tables (so a slow drift
# is still written once it adds up), or at once when it crossed a limit a policy compares it with.
CPU_STEP = 100  # permille
RATE_STEP = 0.5  # relative change of a network rate, a round trip or a probe latency
RATE_FLOOR = 125_000  # bytes/s (1 Mbit/s): below this, rates are noise
RTT_FLOOR = 5_000  # microseconds: closer round trips are the same for placing services
RTT_WEIGHT = 0.2  # of a new round-trip sample in the smoothed value
MAX_RTT = 10_000_000  # microseconds; anything longer is a stale echo
PROBE_LATENCY_FLOOR = 5_000  # microseconds: probe latencies closer than this are the same
SETTLE = 2  # heartbeat intervals a new master listens (to every host's catalogue) before it moves services
DECISIONS_KEPT = 5  # per service, for `rais status`


class Mastership:
    def __init__(self, identity: Identity, boot_epoch: int, timing: Timing, probing: ProbeDefaults,
                 term: int, now: float, tables: Tables, policies: Iterable[PolicyRow],
                 cold_until: float = 0.0) -> None:
        self.identity = identity
        self.id = identity.id
        self.boot_epoch = boot_epoch
        self.timing = timing
        self.probing = probing
        self.term = term
        self.since = now
        # A cluster starting up (a master that followed no other in this boot waits until `settle`
        # after its start): hosts still booting have not said what they run, so nothing is placed,
        # and nobody unheard called down, until then; or until every host its saved tables name
        # has been heard.
        self.cold_until = cold_until
        self._known = {r.host for r in tables.table("servers")} - {identity.id} if tables.version != (0, 0) else None
        self.ledger = Ledger(tables)
        self.server = SyncServer(timing.interval / 2)
        self.schedule = ProbeSchedule(probing.concurrency)
        self.books = Books()
        self.answers = Answers()  # to the operators' commands of this term
        # The pool as the tables taken over say it: what the last master told is no news.
        self._pool = (tables, pool_of(View(tables), now, timing.min_spares))
        self.decisions: dict[str, deque[tuple[float, str]]] = {}  # the latest few per service
        self._health: dict[Key, Health] = {}
        self._limits: tuple[Tables, Limits] | None = None
        self._rtt: dict[HostClusterId, float] = {}
        self._asked: dict[HostClusterId, float] = {}  # catalogue requests
        self._catalogues = CatalogueAssembler()
        self.costs = CostLearner()  # what services cost, from the steps their starts and stops make
        self._view: View | None = None
        self._targets: tuple[Tables, dict[Key, ProbeOrder]] | None = None
        # The new master's [policy.*] are the operator's latest word, unless the operator has
        # spoken since with `rais policy set` (the row is live): a failover must not undo that.
        # `rais policy reset` hands a service back to the config. The tables keep the policies
        # of services its config does not name.
        self.configured = {p.name: p for p in policies}
        for policy in self.configured.values():
            current = row_as(PolicyRow, tables.get(policy.key))
            if current is None or not current.live:
                self.ledger.stage(policy)

    @property
    def tables(self) -> Tables:
        return self.ledger.current

    def view(self) -> View:
        """The planner's index of the committed tables, built once per snapshot."""
        tables = self.ledger.current
        if self._view is None or self._view.tables is not tables:
            self._view = View(tables)
        return self._view

    def commit(self, now: float) -> list[object]:
        took = self._stage_roles()
        tables = self.ledger.commit(self.term)
        news = self._pool_news(now, took)
        if tables is None:
            return news
        return [
            TablesChanged("committed", tables.generation, tables.term),
            Send(SyncNotice(tables.term, tables.generation, tables.digest)),
            *(Send(chunk) for chunk in self.server.push(self.ledger, now)),
            *news,
        ]

    def _stage_roles(self) -> list[tuple[str, ...]]:
        """Each host's role as what it serves makes it (rais.pool.held_role), written with the
        change that makes it so; the standbys that became active, with what they took."""
        ledger = self.ledger
        if not ledger.touches(("servers", "services")):
            return []
        serves: dict[HostClusterId, list[str]] = {}
        for row in ledger.table("services"):
            if isinstance(row, ServiceRow) and row.assigned:
                serves.setdefault(row.host, []).append(row.name)
        serving = set(serves)
        took: list[tuple[str, ...]] = []
        for server in ledger.table("servers"):
            assert isinstance(server, ServerRow)
            role = held_role(server, serving, self.id)
            if role != server.role:
                ledger.stage(attrs.evolve(server, role=role))
                if server.role == Role.STANDBY and role == Role.ACTIVE:
                    took.append(("spare-active", str(server.host), ",".join(sorted(serves[server.host]))))
        return took

    def _pool_news(self, now: float, took: list[tuple[str, ...]]) -> list[object]:
        """The pool's changes since the last look, as events and notifications; none while the
        cluster starts (its first state is no news), nor for what this master took over as it was."""
        tables, (seen, pool) = self.ledger.current, self._pool
        if seen is tables and (pool.until is None or now < pool.until) and not took:
            return []
        new = pool_of(self.view(), now, self.timing.min_spares)
        self._pool = (tables, new)
        if now < self.cold_until:
            return []
        out: list[object] = []
        for words in took + news(pool, new):
            out += [PoolChanged(words), Notify(words)]
        return out

    # --- what the master hears ---

    def answer_sync(self, now: float, request: SyncRequest) -> list[object]:
        return [Send(c) for c in self.server.answer(self.ledger, request, now)]

    def echo(self, now: float, host: HostClusterId, echo: Echo) -> None:
        """A host echoed our heartbeat's stamp: a round-trip sample."""
        rtt = int(now * 1e6) - echo.stamp - echo.held
        if 0 <= rtt <= MAX_RTT:
            old = self._rtt.get(host)
            self._rtt[host] = rtt if old is None else old + RTT_WEIGHT * (rtt - old)

    def catalogue(self, now: float, host: HostClusterId, chunk: Catalogue) -> None:
        done = self._catalogues.receive(host, chunk)
        if done is not None:
            self._stage_catalogue(now, host, *done)

    # --- keeping the tables ---

    def upkeep(self, now: float, membership: Membership, load: Load | None, catalogue: bytes,
               services: tuple[ServiceDecl, ...]) -> list[object]:
        """Write what was heard since the last tick into the tables, ask hosts whose catalogue
        changed for it, and commit."""
        ledger = self.ledger
        now_ms = int(now * 1000)
        me = self.identity
        own = ServerRow(host=self.id, role=Role.MASTER, configured=me.configured, status=HostStatus.UP,
                        priority=me.priority, address=me.address, boot_epoch=self.boot_epoch,
                        last_heard_ms=now_ms, catalogue=catalogue)
        self._stage_server(own)
        self._stage_load(self.id, load)
        own_rtt = RowKey("latency", self.id.value, "")
        if ledger.view(own_rtt) is not None:
            ledger.stage_remove(own_rtt)  # measured by a former master; ours to ourselves is nil
        self._stage_catalogue(now, self.id, catalogue, services)
        peers = [(peer, membership.status(peer, now)) for peer in membership.peers()]
        for peer, seen in peers:
            self._stage_peer(peer, seen)
        self._learn_costs(now, peers, load)
        if now < self.cold_until and self._known is not None and all(
                (p := membership.get(host)) is not None and membership.status(p, now) == HostStatus.UP
                for host in self._known):
            self.cold_until = now  # every host we knew of is back: no one else to wait for
        # Hosts the tables know but this master has not heard since it took over.
        for row in ledger.current.table("servers"):
            if (row.host != self.id and membership.get(row.host) is None and row.status != HostStatus.DOWN
                    and now - self.since >= self.timing.dead and now >= self.cold_until):
                ledger.stage(attrs.evolve(row, status=HostStatus.DOWN))
        out = self._request_catalogues(now, membership)
        return out + self.commit(now)

    def _stage(self, row: Row, significant: bool) -> None:
        """Stage ``row`` if it is new or differs significantly from the row in the tables."""
        old = self.ledger.view(row.key)
        if old is None or (old != row and significant):
            self.ledger.stage(row)

    def _stage_server(self, row: ServerRow) -> None:
        # When a host was last heard is live in the status document: written with other news only.
        old = row_as(ServerRow, self.ledger.view(row.key))
        if old is not None:
            row = attrs.evolve(row, drained=old.drained)  # the operator's, not the host's, to change
        self._stage(row, old is None or attrs.evolve(old, last_heard_ms=row.last_heard_ms) != row)

    def limits(self) -> Limits:
        """The policies' limits on load figures, worked out once per committed snapshot."""
        tables = self.ledger.current
        if self._limits is None or self._limits[0] is not tables:
            self._limits = (tables, Limits.of(tables.table("policy")))
        return self._limits[1]

    def _stage_peer(self, peer: Peer, status: HostStatus) -> None:
        beat = peer.beat
        old = row_as(ServerRow, self.ledger.view(RowKey("servers", peer.id.value, "")))
        self._stage_server(ServerRow(
            # The role is the master's to write (_stage_roles), from what the host serves.
            host=peer.id, role=old.role if old is not None else base_role(beat.configured),
            configured=beat.configured, status=status, priority=beat.priority,
            address=beat.address, boot_epoch=peer.boot_epoch, last_heard_ms=int(peer.last_heard * 1000),
            catalogue=old.catalogue if old is not None else bytes(8),
        ))
        self._stage_load(peer.id, beat.load)
        rtt = self._rtt.get(peer.id)
        if rtt is not None:
            old_rtt = row_as(LatencyRow, self.ledger.view(RowKey("latency", peer.id.value, "")))
            self._stage(LatencyRow(peer.id, int(rtt)), old_rtt is None or worth_writing(
                old_rtt.rtt_us, int(rtt), RTT_FLOOR, RATE_STEP, self.limits().latency_us))

    def _stage_load(self, host: HostClusterId, load: Load | None) -> None:
        if load is None:
            return
        limits = self.limits()
        old_cpu = row_as(CpuRow, self.ledger.view(RowKey("cpu", host.value, "")))
        cpu = load.cpu_permille
        self._stage(CpuRow(host, cpu), old_cpu is None or worth_writing(
            old_cpu.cpu_permille, cpu, CPU_STEP, 0.0, limits.cpu_permille))
        old_net = row_as(NetworkRow, self.ledger.view(RowKey("network", host.value, "")))
        rx, tx = load.net_rx_bps, load.net_tx_bps
        self._stage(NetworkRow(host, rx, tx), old_net is None or worth_writing(
            old_net.rx_bps + old_net.tx_bps, rx + tx, RATE_FLOOR, RATE_STEP, limits.net_bps))

    def _learn_costs(self, now: float, peers: Iterable[tuple[Peer, HostStatus]], load: Load | None) -> None:
        """Feed the hosts' heartbeat figures (rais.costs: the rows lag behind them by a deadband) to
        the cost learner, and stage the costs it learned."""
        figures = {p.id: p.beat.load for p, seen in peers
                   if p.beat.load is not None and seen == HostStatus.UP}
        if load is not None:
            figures[self.id] = load
        for row in self.costs.heard(now, figures, lambda name: row_as(
                CostRow, self.ledger.view(RowKey("costs", 0, name)))):
            self.ledger.stage(row)

    def _request_catalogues(self, now: float, membership: Membership) -> list[object]:
        out: list[object] = []
        for peer in membership.peers():
            row = row_as(ServerRow, self.ledger.view(RowKey("servers", peer.id.value, "")))
            if (membership.status(peer, now) == HostStatus.UP and row is not None
                    and row.catalogue != peer.beat.catalogue
                    and now - self._asked.get(peer.id, -1e18) >= self.timing.interval):
                self._asked[peer.id] = now
                out.append(Send(CatalogueRequest(peer.id)))
        return out

    def _stage_catalogue(self, now: float, host: HostClusterId, digest: bytes,
                         decls: tuple[ServiceDecl, ...]) -> None:
        ledger = self.ledger
        key = RowKey("servers", host.value, "")
        committed, server = row_as(ServerRow, ledger.current.get(key)), row_as(ServerRow, ledger.view(key))
        if server is None or (committed is not None and committed.catalogue == digest):
            return
        # As they will be after the next commit: a copy just started here and marked assigned
        # (order_done) must not look unassigned again, or it would be started a second time.
        staged = (row_as(ServiceRow, ledger.view(r.key)) for r in ledger.current.table("services") if r.host == host)
        existing = [r for r in staged if r is not None]
        rows, removes = service_rows(host, decls, existing, int(now * 1000), server.boot_epoch)
        for row in rows:
            ledger.stage(row)
        for key in removes:
            ledger.stage_remove(key)
        ledger.stage(attrs.evolve(server, catalogue=digest))

    # --- keeping services at their copies ---

    @property
    def settles_at(self) -> float:
        """A new master first hears every host's catalogue, then moves anything."""
        return max(self.since + SETTLE * self.timing.interval, self.cold_until)

    def situation(self, now: float) -> Situation:
        """What a reconcile now would decide from (the status document carries it too)."""
        return Situation(self.view(), self.books, self.id, self.timing, now)

    def reconcile(self, now: float) -> list[object]:
        """Decide on the committed tables, give the orders, and commit what changed."""
        changes = reconcile(self.situation(now))
        self.books = changes.books
        for row in changes.rows:
            self.ledger.stage(row)
        out: list[object] = []
        for decision in changes.decisions:
            out.append(self._decided(now, decision))
            if decision.order is not None:
                out.append(Send(decision.order))
        out += [Send(order) for order in changes.resend]
        return out + self.commit(now)

    def move(self, now: float, service: str, host: HostClusterId) -> str:
        """The operator asks for ``service`` on ``host`` (`rais move`): what will happen, or
        ValueError saying why it cannot. The next reconcile carries it out."""
        view = self.view()
        rows = view.services(service)
        if not rows:
            raise ValueError(f"no host declares {service}")
        server = view.servers.get(host)
        if server is None:
            raise ValueError(f"{host} is not in the cluster's tables")
        row = next((r for r in rows if r.host == host), None)
        if row is None:
            raise ValueError(f"{host} does not declare {service}")
        if server.status != HostStatus.UP:
            raise ValueError(f"{host} is {server.status}")
        if server.drained:
            raise ValueError(f"{host} is {DRAINED}")
        if row.assigned:
            raise ValueError(f"{service} is assigned to {host} already")
        if not row.can_start:
            raise ValueError(f"{service} has no start action on {host}")
        books = self.books
        # The operator's word overrides a put-aside (a start that failed there, say): if it fails
        # again, the move is given up with the reason.
        excluded = {k: e for k, e in books.excluded.items() if k != (host, service)}
        self.books = attrs.evolve(books, moves={**books.moves, service: host}, excluded=excluded)
        self._decided(now, Decision("move", service, host, f"{service}: the operator asks for it on {host}"))
        return f"moving {service} to {host}"

    def drain(self, now: float, host: HostClusterId, drained: bool) -> str:
        """The operator drains ``host`` (`rais drain`: everything moves off it, nothing is placed
        there) or undrains it: a change to its servers row, replicated and saved like any other.
        What will happen, or ValueError saying why it cannot be."""
        server = row_as(ServerRow, self.ledger.view(RowKey("servers", host.value, "")))
        if server is None:
            raise ValueError(f"{host} is not in the cluster's tables")
        if server.drained == drained:
            raise ValueError(f"{host} is {'drained' if drained else 'not drained'} already")
        row = attrs.evolve(server, drained=drained)
        self.ledger.stage(row)
        said = ("draining {host}: its services move elsewhere, and nothing is placed there until "
                "`rais undrain`" if drained else "undraining {host}: services may be placed there again "
                "(they do not move back unless a policy prefers it)")
        return said.format(host=host) + "\n" + self.consequences(now, row)

    def set_policy(self, now: float, service: str, assignments: Mapping[str, str]) -> str:
        """The operator changes a service's policy (`rais policy set`), checked by the config's
        rules; kept by later masters over their config's (see __init__). What will happen, or
        ValueError saying why it cannot be."""
        old = row_as(PolicyRow, self.ledger.view(RowKey("policy", 0, service)))
        if old is None and not self.view().services(service):
            raise ValueError(f"no host declares {service}, and it has no policy")
        row = edit(old, service, assignments)
        if row.prefer is not None and (why := foreign_host(row.prefer, self.id.cluster)):
            raise ValueError(f"policy.{service}.prefer: {why}")
        return self._write_policy(now, row, "set live")

    def reset_policy(self, now: float, service: str) -> str:
        """`rais policy reset`: back to this master's config (or, if it names none, to the copies
        the service has now), no longer kept over a later master's config."""
        old = row_as(PolicyRow, self.ledger.view(RowKey("policy", 0, service)))
        if old is None or not old.live:
            raise ValueError(f"{service} has no policy set live")
        configured = self.configured.get(service)
        if configured is None:
            self.ledger.stage_remove(old.key)  # the next reconcile writes the copies it has
            return f"policy {service}: back to the copies it has (no [policy.{service}] here)"
        return self._write_policy(now, configured, "back to the config")

    def _write_policy(self, now: float, row: PolicyRow, how: str) -> str:
        self.ledger.stage(row)
        return f"policy {how}: {describe(row)}\n" + self.consequences(now, row)

    def consequences(self, now: float, row: Row) -> str:
        """What the next reconcile would decide once ``row`` is written: the dry run of `rais plan`."""
        tables = self.ledger.current
        changed = Tables.of(tables.term, tables.generation, [*tables.rows.values(), row])
        changes = reconcile(Situation(View(changed), self.books, self.id, self.timing, now))
        said = [f"  {d.action}: {d.explanation.splitlines()[0]}" for d in changes.decisions
                if d.action != str(OrderAction.REFRESH)]
        return "then the master will:\n" + ("\n".join(said) if said else "  move nothing")

    def order_done(self, now: float, host: HostClusterId, done: OrderDone) -> list[object]:
        """A host answered an order of this term."""
        books = self.books
        pending = books.orders.get(done.order)
        if pending is None or pending.order.host != host:
            return []  # an answer already handled
        orders = {n: p for n, p in books.orders.items() if n != done.order}
        self.books = attrs.evolve(books, orders=orders)
        order = pending.order
        service = order.service
        if order.action == OrderAction.REFRESH:
            return [self._decided(now, Decision("refreshed", service, host, f"{service} announced again on "
                                                f"{host}: {done.detail}"))]
        was = row_as(ServiceRow, self.ledger.current.get(RowKey("services", host.value, service)))
        if done.ok and a_step(order.action, was):  # which teaches what the service costs
            self.costs.step(now, host, service, started=order.action == OrderAction.ASSIGN)
        else:
            self.costs.disturbed(now, host)
        if order.action == OrderAction.RELEASE:
            if done.ok:  # clients that found it there must now find the copies that remain
                self.books = attrs.evolve(self.books, refresh=self.books.refresh | {service})
                self._stopped(host, service)
            return [self._decided(now, Decision("released", service, host,
                                                f"{service} released on {host}: {done.detail}"))]
        row = row_as(ServiceRow, self.ledger.view(RowKey("services", host.value, order.service)))
        if not done.ok:
            excluded = {**books.excluded, (host, service): Exclusion(
                f"start failed: {done.detail}", now + START_FAILED_FOR)}
            # The next reconcile stops it there, before an exclusive copy starts elsewhere.
            self.books = attrs.evolve(self.books, excluded=excluded, cleanup=books.cleanup | {(host, service)})
            if row is not None and row.assigned:
                self.ledger.stage(attrs.evolve(row, assigned=False))  # it was there, and could not be again
            return [self._decided(now, Decision("start-failed", service, host, f"{service} did not start on "
                                                f"{host}: {done.detail}; trying the next host"))]
        if row is not None:
            # Served only once its probe says so: unknown until rise results in a row. Running, by the
            # host's word, at once (if it ran a start: one without answers that it left it as it is):
            # its catalogue says so only a round trip later, and a host cut off meanwhile must be
            # waited for (fencing) as one that holds an exclusive copy.
            self.ledger.stage(attrs.evolve(row, assigned=True, running=row.running or row.can_start,
                                           state=ServiceState.UNKNOWN, result=Result.NONE,
                                           changed_ms=int(now * 1000), epoch=order.epoch))
            self._health.pop((host, order.service), None)
        return [self._decided(now, Decision("started", service, host, f"{service} started on {host} "
                                            f"({done.detail}); waiting for its probe"))]

    def _stopped(self, host: HostClusterId, service: str) -> None:
        """A host's answer to a stop says the service no longer runs there, before its catalogue does.
        A host without a stop action answers that it left the service as it is (rais.orders): that
        says nothing."""
        row = row_as(ServiceRow, self.ledger.view(RowKey("services", host.value, service)))
        if row is not None and row.can_stop and row.running:
            self.ledger.stage(attrs.evolve(row, running=False))

    def _decided(self, now: float, decision: Decision) -> Decided:
        """Keep the latest few decisions per service for the status document; one that repeats
        the last (a degraded service is re-planned every tick) is kept once."""
        kept = self.decisions.setdefault(decision.service, deque(maxlen=DECISIONS_KEPT))
        repeated = bool(kept) and kept[-1][1] == decision.explanation
        if not repeated:
            kept.append((now, decision.explanation))
        return Decided(decision, repeated)

    # --- probing services ---

    def probes_due(self, now: float) -> list[ProbeOrder]:
        """The checks due now, within the concurrency limit."""
        targets = self._probe_targets()
        return [targets[key] for key in self.schedule.take(now, ((k, t.interval) for k, t in targets.items()))]

    def _probe_targets(self) -> dict[Key, ProbeOrder]:
        """What to probe, worked out once per committed snapshot: polls come ten times a second."""
        tables = self.ledger.current
        if self._targets is not None and self._targets[0] is tables:
            return self._targets[1]
        view = self.view()
        targets = {}
        for row in tables.table("services"):
            server = view.servers.get(row.host)
            if server is None or server.status == HostStatus.DOWN:
                continue  # a host that is down is not probed: its failure is already known
            settings = Settings.of(row, self.probing)
            targets[(row.host, row.name)] = ProbeOrder(
                (row.host, row.name), row.probe, row.address or server.address, row.port or None, options_of(row),
                settings.timeout, settings.interval)
        self._targets = (tables, targets)
        return targets

    def probe_done(self, now: float, key: Key, result: Result, latency: float, detail: str) -> None:
        """A check finished: count it, and write what changed into the services table."""
        self.schedule.done(key)
        row = row_as(ServiceRow, self.ledger.view(RowKey("services", key[0].value, key[1])))
        if row is None:
            return  # no longer declared
        settings = Settings.of(row, self.probing)
        health = self._health.setdefault(key, Health())
        change = health.record(result, settings.rise, settings.fall)
        state = row.state
        if not (row.running or row.assigned):
            # A failure stays on record while its host rests (rais.pool); then the copy is just stopped.
            resting = row.state == ServiceState.FAILED and now - row.changed_ms / 1000 < REST
            state = ServiceState.FAILED if resting else ServiceState.STOPPED
        elif change is not None or row.state in (ServiceState.STOPPED, ServiceState.UNKNOWN):
            state = {True: ServiceState.RUNNING, False: ServiceState.FAILED, None: row.state}[health.up]
        if state == ServiceState.FAILED != row.state:
            self.costs.disturbed(now, key[0])  # its load fell by what it cost, or by some of it
        latency_us = round(latency * 1e6)
        new = attrs.evolve(
            row, result=result, latency_us=latency_us, detail=clip(detail, MAX_DETAIL), state=state,
            changed_ms=int(now * 1000) if state != row.state else row.changed_ms,
        )
        significant = (state, result) != (row.state, row.result) or row.latency_us is None or worth_writing(
            row.latency_us, latency_us, PROBE_LATENCY_FLOOR, RATE_STEP, ())
        self._stage(new, significant)


@attrs.frozen
class Limits:
    """Where the policies draw lines on the load figures: a figure crossing one is news at once."""

    cpu_permille: tuple[int, ...]
    net_bps: tuple[int, ...]
    latency_us: tuple[int, ...]

    @classmethod
    def of(cls, policies: Iterable[PolicyRow]) -> Limits:
        cpu, net, latency = set(), set(), set()
        for p in policies:
            recovered = dict(lines(p))  # where a busy host counts as recovered, beside the limits
            if p.max_cpu_permille is not None:
                cpu |= {p.max_cpu_permille, round(recovered["cpu"] * 1000)}
            if p.max_net_bps is not None:
                net |= {p.max_net_bps, round(recovered["network"])}
            if p.max_latency_us is not None:
                latency.add(p.max_latency_us)
        return cls(tuple(sorted(cpu)), tuple(sorted(net)), tuple(sorted(latency)))


def worth_writing(old: int, new: int, floor: int, step: float, limits: Iterable[int]) -> bool:
    """Whether a figure moved more than its deadband (``floor``, or ``step`` of the larger value),
    or crossed one of ``limits``."""
    if abs(new - old) > max(floor, step * max(old, new)):
        return True
    return any((old > limit) != (new > limit) for limit in limits)
