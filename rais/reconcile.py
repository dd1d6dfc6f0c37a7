"""Keep every service at its copies: the master's decision step, and the dry run's.

Pure, in the manner of Flocker's ``calculate_changes``: a ``Situation`` (a
view of the committed tables, what the master remembers between steps, and
the time) in; ``Changes`` (decisions with their explanations and orders,
table rows to write, orders to say again, and what to remember next) out.
The master runs exactly this after each tick's commit and carries the
changes out; `rais plan` runs exactly this over a status document, which
carries the same memory (see rais.status), so a dry run shows what the
master will do.

For each service: a copy whose state is ``failed`` or whose host is down is
lost (unassigned there, released if the host is still up, and that host put
aside for a while); copies are added until the policy's ``replicas`` are
served or starting, placed by rais.planner (all the copies of one step
together, counting their learned costs: rais.joint); a copy on a host that has been
over a load limit for ``balance_after`` seconds gets a replacement started
elsewhere first (the extra copy is released once it is no longer needed);
extra copies are released, worst first; a copy running where nobody
assigned it is released. An order not answered in time puts its host aside.

A copy is established on a host's boot: a host that restarted since (its
boot epoch in the servers table moved on) has not kept what it ran, so its
start is run again there (starts are idempotent). A master's first step, and
a release of one copy while others serve, ask the remaining holders to
announce the service again (their ``refresh`` action), so clients that
cached the old holder's address (ARP) find the new one. An exclusive copy
lost on a host that went down, in quorum mode, is started elsewhere only once
that host has fenced itself (rais.fencing): never two holders at once.

A service moves to a host the operator names (`rais move`), and back to its
policy's ``prefer`` host once that host has qualified for ``failback_after``:
a copy is started there and then the other released (an exclusive service
is released first, then started there: never two holders). A copy on a host
the operator drained (`rais drain`) is replaced the same way, and kept there
while no other host qualifies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from rais.costs import SETTLE
from rais.ids import HostClusterId
from rais.joint import Wanted, place_jointly
from rais.planner import DRAINED, NONE_ADDED, Added, Placement, Score, Spares, View, place, score_host, surplus
from rais.pool import REST, pool_of
from rais.settings import Timing
from rais.states import HostStatus, OrderAction, ServiceState
from rais.wire import Order
from rais.wire.rows import PolicyRow, Row, ServiceRow

ORDER_TIMEOUT = 120.0  # seconds a host may take to answer an order (its own timeout is shorter)
START_FAILED_FOR = 300.0  # seconds a host whose start failed is passed over for that service
# Where a busy host counts as recovered, as a share of the policy's limit (0.7 of a max_cpu of 0.8);
# a host takes a copy moved for load only under the same line, so a move always gains that much room.
LOAD_HYSTERESIS = 0.875  # of max_cpu
NET_HYSTERESIS = 0.9  # of max_net_mbps
RELEASE_HOLD = 5  # heartbeat intervals between releases of one copy (its catalogue catches up)

Copy = tuple[HostClusterId, str]  # a service on a host


@attrs.frozen
class Pending:
    """An order given and not yet answered."""

    order: Order
    sent_at: float  # last said; said again every interval until answered
    deadline: float


@attrs.frozen
class Exclusion:
    """A host put aside for one service until ``until``, and why."""

    why: str
    until: float


@attrs.frozen
class Books:
    """What the master remembers between steps, beside the tables. Its status document carries
    all of it, so a dry run starts from the same memory. Treat the mappings as read-only."""

    orders: Mapping[int, Pending] = attrs.field(factory=dict)  # in flight, by order number
    next_order: int = 1
    excluded: Mapping[Copy, Exclusion] = attrs.field(factory=dict)
    released_at: Mapping[Copy, float] = attrs.field(factory=dict)  # last release ordered
    over_since: Mapping[Copy, float] = attrs.field(factory=dict)  # a copy's host over a load limit since
    # A service moved for load: the busy host whose copy goes once the new copy's probe says it runs.
    leaving: Mapping[str, HostClusterId] = attrs.field(factory=dict)
    announced: bool = False  # this term's holders were asked to announce their services
    refresh: frozenset[str] = frozenset()  # services whose holders must announce them again
    moves: Mapping[str, HostClusterId] = attrs.field(factory=dict)  # asked for by the operator, not yet done
    back_since: Mapping[Copy, float] = attrs.field(factory=dict)  # a preferred host qualifies again since
    # Copies whose start failed or went unanswered on a host still up: stopped there, in case the start
    # did part of it (a virtual IP taken, then a timeout), before an exclusive one starts elsewhere.
    cleanup: frozenset[Copy] = frozenset()


@attrs.frozen
class Situation:
    view: View  # of the committed tables
    books: Books
    master: HostClusterId
    timing: Timing
    now: float


@attrs.frozen
class Decision:
    """One thing the master decided about a service, with why, and the order it gives, if any.

    ``action``: ``assign`` and ``release`` give an order; ``unassign`` (a copy lost on a host
    that is down), ``degraded`` (no host qualifies), ``overloaded`` (a copy moves for load) and
    ``expired`` (an order went unanswered) only say what happened.
    """

    action: str
    service: str
    host: HostClusterId | None
    explanation: str
    scores: tuple[Score, ...] = ()
    order: Order | None = None


@attrs.frozen
class Changes:
    decisions: tuple[Decision, ...]
    rows: tuple[Row, ...]  # to write into the tables, in order
    resend: tuple[Order, ...]  # in flight, unanswered for an interval: say them again
    books: Books

    @property
    def orders(self) -> tuple[Order, ...]:
        return tuple(d.order for d in self.decisions if d.order is not None)


def lines(policy: PolicyRow) -> list[tuple[str, float]]:
    """Where a host counts as recovered from a policy's load limits: cpu share, network bytes/s."""
    out = []
    if policy.max_cpu_permille is not None:
        out.append(("cpu", round(policy.max_cpu_permille * LOAD_HYSTERESIS) / 1000))
    if policy.max_net_bps is not None:
        out.append(("network", round(policy.max_net_bps * NET_HYSTERESIS)))
    return out


def not_calm(policy: PolicyRow, cpu: float | None, net: int | None) -> str | None:
    """Why a host's load is not under every recovery line of the policy (a figure not known yet,
    or over its line); None if it is calm."""
    figures = {"cpu": cpu, "network": net}
    for name, line in lines(policy):
        figure = figures[name]
        if figure is None:
            return f"no {name} figure yet"
        if figure >= line:
            shown = f"{figure:.2f}" if name == "cpu" else f"{figure * 8 / 1e6:.1f} Mbit/s"
            limit = f"{line:.2f}" if name == "cpu" else f"{line * 8 / 1e6:g} Mbit/s"
            return f"{name} {shown} is not under {limit}"
    return None


def reconcile(situation: Situation) -> Changes:
    """The one decision step: what to do now so that every service has its copies."""
    step = _Step(situation)
    step.follow_up_orders()
    view = situation.view
    names = {r.name for r in view.tables.table("policy")}
    names |= {name for name, rows in view.by_name.items() if any(r.assigned for r in rows)}
    names |= {p.order.service for p in step.orders.values()}
    names |= {name for _, name in step.cleanup}  # a stop owed where a start failed, whatever else it has
    for name in sorted(names):
        step.service(name)
    step.place_wanted()
    return step.changes()


class _Step:
    """The working state of one reconcile: copies of the books, and what was decided so far."""

    def __init__(self, situation: Situation) -> None:
        self.view = situation.view
        self.master = situation.master
        self.timing = situation.timing
        self.now = situation.now
        books = situation.books
        self.orders = dict(books.orders)
        self.next_order = books.next_order
        # Put-aside hosts whose time is up are forgotten.
        self.excluded = {k: e for k, e in books.excluded.items() if e.until > self.now}
        self.released_at = dict(books.released_at)
        self.over_since = dict(books.over_since)
        self.leaving = dict(books.leaving)
        self.refresh = set(books.refresh)
        self.moves = dict(books.moves)
        self.back_since = dict(books.back_since)
        self.cleanup = set(books.cleanup)
        if not books.announced:
            # A new term: after a heal or a master change, a holder may not be where clients last
            # looked, so every holder announces what it serves.
            self.refresh |= {r.name for r in self.view.tables.table("services") if r.assigned}
        self.decisions: list[Decision] = []
        self.rows: list[Row] = []
        self.resend: list[Order] = []
        # Copies to place, placed together once every service has been looked at (rais.joint), and
        # the learned costs of the copies this step starts on their hosts, and of those starting or
        # started lately: a host's figures show a new copy only some seconds later (rais.costs).
        self.wanted: list[Wanted] = []
        self.load_moves: list[Wanted] = []
        self.draining: dict[str, Sequence[ServiceRow]] = {}
        self.added: dict[HostClusterId, Added] = {}
        for pending in self.orders.values():
            if pending.order.action == OrderAction.ASSIGN:
                self.adds(pending.order.host, pending.order.service)
        for cost in self.view.tables.table("costs"):
            for row in self.view.services(cost.name):
                if row.assigned and row.state != ServiceState.FAILED and self.now - row.changed_ms / 1000 < SETTLE:
                    self.adds(row.host, row.name)
        # The free spares, less those a start is on its way to: two services short at once do not
        # both count on the last one.
        pool = pool_of(self.view, self.now, self.timing.min_spares)
        self.spares = Spares(set(pool.free) - {
            p.order.host for p in self.orders.values() if p.order.action == OrderAction.ASSIGN},
            self.timing.min_spares, pool.resting)

    def changes(self) -> Changes:
        books = Books(self.orders, self.next_order, self.excluded, self.released_at, self.over_since,
                      self.leaving, True, frozenset(self.refresh), self.moves, self.back_since,
                      frozenset(self.cleanup))
        return Changes(tuple(self.decisions), tuple(self.rows), tuple(self.resend), books)

    def up(self, host: HostClusterId) -> bool:
        return self.view.status(host) == HostStatus.UP

    def follow_up_orders(self) -> None:
        """Orders past their deadline, or to a host gone down or restarted, are given up; the
        others, said again."""
        for number, pending in sorted(self.orders.items()):
            order = pending.order
            server = self.view.servers.get(order.host)
            if server is not None and server.boot_epoch != order.epoch:
                # It restarted: it will not take an order meant for its earlier start (nor has it
                # kept what that start ran), so the copy is planned afresh.
                del self.orders[number]
                self.decide("expired", order.service, order.host,
                            f"{order.service}: {order.host} restarted before it answered the {order.action} order")
            elif self.now >= pending.deadline or server is None or server.status == HostStatus.DOWN:
                del self.orders[number]
                if order.action == OrderAction.ASSIGN:
                    why = "did not answer the start order"
                    self.exclude(order.service, order.host, why, START_FAILED_FOR)
                    self.cleanup.add((order.host, order.service))  # stopped there if it is up
                    self.decide("expired", order.service, order.host,
                                f"{order.service}: {order.host} {why}; trying another host")
            elif self.now - pending.sent_at >= self.timing.interval:
                # Datagrams get lost: say it again until answered.
                self.orders[number] = attrs.evolve(pending, sent_at=self.now)
                self.resend.append(order)

    def service(self, name: str) -> None:
        view = self.view
        rows = view.services(name)
        policy = view.policy(name)
        assigned = [r for r in rows if r.assigned]
        # A suspect host is given time: no flapping.
        lost = [r for r in assigned if r.state == ServiceState.FAILED or view.status(r.host) in
                (None, HostStatus.DOWN)]
        serving = [r for r in assigned if r not in lost]
        starting = [p.order.host for p in self.orders.values()
                    if p.order.service == name and p.order.action == OrderAction.ASSIGN]
        for row in serving:
            self.reestablish(row, starting)
        self.clean_up(name, rows, starting)
        if policy is None:
            # No [policy]: keep the copies it has now (one, for most services), in the tables,
            # so that every later master keeps the same count.
            policy = PolicyRow(name, min(max(1, len(assigned)), 1000), None, None)
            self.rows.append(policy)
        want = policy.replicas
        origin = None
        for row in lost:
            origin = row.host
            self.rows.append(attrs.evolve(row, assigned=False))
            why = "the service failed here" if row.state == ServiceState.FAILED else "down"
            self.exclude(name, row.host, why, REST)  # not moved back to where it failed, for a while
            text = f"{name} lost on {row.host} ({why})"
            if self.up(row.host):
                self.order(OrderAction.RELEASE, name, row.host, text)
            else:
                self.decide("unassign", name, row.host, text)
        new = len([h for h in starting if h not in {r.host for r in serving}])
        missing = want - len(serving) - new
        leaving = self.leaving.get(name)
        if leaving is not None and (leaving not in {r.host for r in serving} or len(serving) + new <= want):
            # Released; or its replacement failed or never started: the busy copy keeps serving.
            del self.leaving[name]
        # Copies on a drained host are replaced: started elsewhere first, and then released as
        # surplus (the planner rules a drained host out, so its copy scores lowest).
        draining = [r for r in serving if view.drained(r.host)]
        replace = want - (len(serving) - len(draining)) - new
        exclusive = any(r.exclusive for r in rows)
        busy = self.overloaded(policy, rows, serving) if missing == 0 and name not in self.leaving else None
        if busy is not None:
            missing = 1  # start a copy elsewhere; the busy host's is released once the new one runs
        target, keep = self.destination(name, policy, rows, serving, starting)
        if missing > 0 and (fencing := self.fencing(rows)) is not None:
            self.decide("waiting", name, fencing, f"{name}: waiting until {fencing} has fenced itself "
                                                  f"(it holds an exclusive copy) before starting it elsewhere")
        elif missing > 0 and exclusive and (stopping := self.stopping(name)) is not None:
            self.decide("waiting", name, stopping, f"{name}: waiting until {stopping} has stopped it "
                                                   f"(exclusive: never two holders) before starting it elsewhere")
        elif missing > 0 or (replace > 0 and not exclusive):
            exclude = self.exclusions(name)
            exclude.update((host, "being started") for host in starting)
            if busy is not None:
                # A move for load is one service's choice, placed on its own on a host with room,
                # after the copies this step must place (a failover is a necessity, this is not).
                exclude.update(self.no_room(policy, rows))
                self.load_moves.append(Wanted(name, 1, exclude, busy, keep))  # from the busy host
            else:
                origin = origin or (draining[0].host if draining else None)
                self.wanted.append(Wanted(name, max(missing, replace), exclude, origin, keep))
                self.draining[name] = draining
        elif replace > 0:
            self.drain_exclusive(name, draining, keep)
        elif target is not None:
            self.move(name, target, serving)
        elif missing < 0 and not starting:
            releases = surplus(view, name, want, self.master, keep, self.leaving.get(name))
            gone = {p.host for p in releases}
            # Make before break: a copy goes (a drained host's, a busy host's, a surplus one) only once
            # every copy that stays has been seen to run by its probe (a start that exits 0 may still
            # serve nothing).
            if all(r.state == ServiceState.RUNNING for r in serving if r.host not in gone):
                for placement in releases:
                    row = next(r for r in rows if r.host == placement.host)
                    self.rows.append(attrs.evolve(row, assigned=False))
                    self.order(OrderAction.RELEASE, name, row.host, placement.explanation, placement.scores)
        if len(serving) >= want:
            self.release_strays(name, rows)
        if name in self.refresh:
            self.announce(name, serving)

    def destination(self, name: str, policy: PolicyRow, rows: list[ServiceRow], serving: list[ServiceRow],
                    starting: list[HostClusterId]) -> tuple[HostClusterId | None, HostClusterId | None]:
        """Where the service should move now, if anywhere, and the host whose copy it keeps
        (placed there, never released as surplus): the operator's move, or the preferred host."""
        held = {r.host for r in serving}
        moving = self.moves.get(name)
        if moving is not None:
            row = next((r for r in rows if r.host == moving), None)
            why = ("it does not declare the service" if row is None else self.exclusions(name).get(moving)
                   or (None if self.up(moving) else "it is not up")
                   or (DRAINED if self.view.drained(moving) else None))
            if why is not None:
                del self.moves[name]
                self.decide("move-failed", name, moving, f"{name}: the move to {moving} is given up: {why}")
                return None, None
            if row is not None and row.assigned and row.state == ServiceState.RUNNING and len(serving) <= (
                    policy.replicas):
                del self.moves[name]
                self.decide("moved", name, moving, f"{name}: moved to {moving}, as the operator asked")
            return (None if moving in held or moving in starting else moving), moving
        prefer = policy.prefer
        if prefer is None:
            return None, None
        copy = (prefer, name)
        row = next((r for r in rows if r.host == prefer), None)
        if self.view.drained(prefer):
            self.back_since.pop(copy, None)
            return None, None  # neither kept there nor moved back while drained
        if prefer in held or row is None:
            self.back_since.pop(copy, None)
            return None, prefer
        if score_host(self.view, row, self.exclusions(name), None, self.master).total is None:
            self.back_since.pop(copy, None)  # not up, put aside, or over a limit: the hold starts over
            return None, None
        since = self.back_since.setdefault(copy, self.now)
        busy = any(p.order.service == name for p in self.orders.values())
        if self.now - since < policy.failback_ms / 1000 or busy or len(serving) < policy.replicas:
            return None, prefer
        del self.back_since[copy]
        self.moves[name] = prefer  # carried out, and finished, as a move
        self.decide("failback", name, prefer, f"{name}: back to its preferred host {prefer}, which has "
                                              f"qualified for {policy.failback_ms / 1000:g}s")
        return prefer, prefer

    def move(self, name: str, target: HostClusterId, serving: list[ServiceRow]) -> None:
        """Start a copy on ``target`` (the other is released once it runs); an exclusive service
        is released first, and placed on ``target`` when nothing holds it."""
        if any(r.exclusive for r in serving):
            for row in serving:
                self.rows.append(attrs.evolve(row, assigned=False))
                self.order(OrderAction.RELEASE, name, row.host,
                           f"{name} released on {row.host} to move to {target} (exclusive: released first)")
            return
        self.order(OrderAction.ASSIGN, name, target, f"{name} -> {target}: moving it there")

    def drain_exclusive(self, name: str, draining: list[ServiceRow], keep: HostClusterId | None) -> None:
        """An exclusive service leaves a drained host as a move does: released first (never two
        holders), then placed; but kept there while no other host qualifies."""
        placement = place(self.view, name, self.exclusions(name), draining[0].host, self.master, keep, self.spares,
                          self.added)
        if placement.host is None:
            self.place(placement, draining)
            return
        for row in draining:
            self.rows.append(attrs.evolve(row, assigned=False))
            self.order(OrderAction.RELEASE, name, row.host, f"{name} released on {row.host}: drained by the "
                                                            f"operator (exclusive: released first, then placed)")

    def reestablish(self, row: ServiceRow, starting: list[HostClusterId]) -> None:
        """A copy assigned to a host that restarted since it was established there: start it again."""
        server = self.view.servers.get(row.host)
        if (server is None or row.epoch == server.boot_epoch or not self.up(row.host) or row.host in starting
                or not row.can_start):
            return
        starting.append(row.host)
        self.order(OrderAction.ASSIGN, row.name, row.host,
                   f"{row.name} -> {row.host} again: it restarted since the copy was started there "
                   f"(boot epoch {row.epoch} -> {server.boot_epoch})")

    def announce(self, name: str, serving: list[ServiceRow]) -> None:
        """Ask each holder to announce the service again; a holder still starting announces it
        with its start."""
        busy = {p.order.host for p in self.orders.values() if p.order.service == name}
        if any(p.order.action == OrderAction.RELEASE for p in self.orders.values() if p.order.service == name):
            return  # after the release: announced before it, clients could still reach the old holder
        self.refresh.discard(name)
        for row in serving:
            server = self.view.servers.get(row.host)
            if (row.can_refresh and self.up(row.host) and row.host not in busy and server is not None
                    and row.epoch == server.boot_epoch):
                self.order(OrderAction.REFRESH, name, row.host, f"{name}: {row.host} announces it again")

    def clean_up(self, name: str, rows: list[ServiceRow], starting: list[HostClusterId]) -> None:
        """Stop the service where its start failed (or went unanswered), once, as Pacemaker stops a
        resource whose start failed: a start cut short may have done part of its work."""
        for row in rows:
            copy = (row.host, name)
            if copy not in self.cleanup or row.host in starting:
                continue
            self.cleanup.discard(copy)
            if row.can_stop and not row.assigned and self.up(row.host):
                self.order(OrderAction.RELEASE, name, row.host, f"{name} stopped on {row.host}, where its start "
                                                                f"failed, in case it did part of its work")

    def stopping(self, name: str) -> HostClusterId | None:
        """A host still up that was told to stop ``name`` and has not answered yet."""
        for pending in self.orders.values():
            order = pending.order
            if order.service == name and order.action == OrderAction.RELEASE and self.up(order.host):
                return order.host
        return None

    def fencing(self, rows: list[ServiceRow]) -> HostClusterId | None:
        """In quorum mode, a host not up (down, or suspect: cut off a moment ago, its copy's probe
        already failing) that ran an exclusive copy, not yet surely fenced: it stops the copy by
        itself once it has heard no majority for dead_after intervals (rais.fencing); an interval
        more covers the difference between its last news of us and ours of it."""
        if not self.timing.quorum:
            return None
        for row in rows:
            server = self.view.servers.get(row.host)
            if (row.exclusive and row.running and server is not None and server.status != HostStatus.UP
                    and self.now < server.last_heard_ms / 1000 + self.timing.dead + self.timing.interval):
                return row.host
        return None

    def place_wanted(self) -> None:
        """Place the copies every service asked for, together (a host does not take them all), then
        the copies moved for load."""
        for placement in place_jointly(self.view, self.wanted, self.master, self.spares, self.added):
            self.place(placement, self.draining[placement.service])
        for w in self.load_moves:
            assert w.origin is not None  # the busy host
            placement = place(self.view, w.service, w.exclude, w.origin, self.master, w.prefer, self.spares,
                              self.added)
            self.move_for_load(placement, w.origin, self.view.services(w.service))

    def adds(self, host: HostClusterId, service: str) -> None:
        """A copy of ``service`` starts on ``host``: its learned cost (if any) counts there for this
        step, and its policy's limits bind the copies placed after it, as in rais.joint."""
        self.added[host] = self.added.get(host, NONE_ADDED).plus(self.view.cost(service), self.view.policy(service))

    def place(self, placement: Placement, draining: Sequence[ServiceRow] = ()) -> None:
        if placement.host is None:
            held = ", ".join(str(r.host) for r in draining)
            kept = f"{placement.service} stays on drained {held}: " if draining else ""
            self.decide("degraded", placement.service, None, kept + placement.explanation, placement.scores)
        else:
            self.order(OrderAction.ASSIGN, placement.service, placement.host, placement.explanation,
                       placement.scores)

    def release_strays(self, name: str, rows: list[ServiceRow]) -> None:
        """A host running a copy nobody assigned (it came back after the service moved): an
        exclusive service must not be served twice."""
        hold = RELEASE_HOLD * self.timing.interval
        for row in rows:
            copy = (row.host, name)
            if (row.running and not row.assigned and row.can_stop and self.up(row.host)
                    and self.now - self.released_at.get(copy, -1e18) >= hold):
                self.order(OrderAction.RELEASE, name, row.host,
                           f"{name} runs on {row.host} without being assigned there: release")

    def overloaded(self, policy: PolicyRow, rows: list[ServiceRow], serving: list[ServiceRow]) -> HostClusterId | None:
        """The host a copy should move off: over the policy's max_cpu or max_net_mbps for
        balance_after, the busiest such; None if none, or within move_hold of the last load move.

        Hysteresis: a host counts as over above a limit, and as recovered only well under it
        (``calm``); a service moves for load at most once per move_hold, counted from the tables,
        so a new master honours it too.
        """
        name = policy.name
        held = {r.host for r in serving}
        for copy in [c for c in self.over_since if c[1] == name and c[0] not in held]:
            del self.over_since[copy]  # the service left that host: its timer starts afresh if it comes back
        cpu_limit = None if policy.max_cpu_permille is None else policy.max_cpu_permille / 1000
        net_limit = policy.max_net_bps
        if cpu_limit is None and net_limit is None:
            return None
        due: list[tuple[float, HostClusterId]] = []
        for row in serving:
            copy = (row.host, name)
            cpu, net = self.view.cpu(row.host) or 0.0, self.view.net(row.host) or 0
            over = (cpu_limit is not None and cpu > cpu_limit) or (net_limit is not None and net > net_limit)
            if not_calm(policy, cpu, net) is None:
                self.over_since.pop(copy, None)
            elif over:
                since = self.over_since.setdefault(copy, self.now)
                if self.now - since >= self.timing.balance_after:
                    due.append((cpu, row.host))
        last = max((r.moved_ms for r in rows), default=0) / 1000
        if not due or self.now - last < self.timing.move_hold:
            return None
        return max(due)[1]

    def move_for_load(self, placement: Placement, busy: HostClusterId, rows: list[ServiceRow]) -> None:
        """Start a copy where ``placement`` says, to release the busy host's once it runs; or, if no
        host has room, say (once: repeated each tick, it is logged at debug level) that it stays."""
        name, over = placement.service, f"has been over its load limit for {self.timing.balance_after:g}s"
        if placement.host is None:
            self.decide("stays", name, busy, f"{name} stays on {busy}, which {over}: {placement.explanation}",
                        placement.scores)
            return
        self.decide("overloaded", name, busy, f"{name}: {busy} {over}: moving a copy off it")
        self.place(placement)
        self.leaving[name] = busy
        moved = next(r for r in rows if r.host == placement.host)
        self.rows.append(attrs.evolve(moved, moved_ms=int(self.now * 1000)))  # the hold, for any master

    def no_room(self, policy: PolicyRow, rows: list[ServiceRow]) -> dict[HostClusterId, str]:
        """Hosts without room to take a copy moved for load: not under the line where a busy host
        counts as recovered, or with no load figures yet (a move is a choice, not a gamble)."""
        out = {}
        for row in rows:
            why = not_calm(policy, self.view.cpu(row.host), self.view.net(row.host))
            if why is not None:
                out[row.host] = f"{why}: no room to take load"
        return out

    def order(self, action: OrderAction, service: str, host: HostClusterId, explanation: str,
              scores: tuple[Score, ...] = ()) -> None:
        server = self.view.servers[host]  # the planner places copies only on hosts in the servers table
        order = Order(self.next_order, action, host, service, server.boot_epoch)
        self.next_order += 1
        if action == OrderAction.RELEASE:
            self.released_at[(host, service)] = self.now  # one release at a time is enough
        elif action == OrderAction.ASSIGN:
            self.spares = self.spares.taken(host)
            self.adds(host, service)
        self.orders[order.order] = Pending(order, self.now, self.now + ORDER_TIMEOUT)
        self.decide(str(action), service, host, explanation, scores, order)

    def decide(self, action: str, service: str, host: HostClusterId | None, explanation: str,
               scores: tuple[Score, ...] = (), order: Order | None = None) -> None:
        self.decisions.append(Decision(action, service, host, explanation, scores, order))

    def exclude(self, service: str, host: HostClusterId, why: str, period: float) -> None:
        self.excluded[(host, service)] = Exclusion(why, self.now + period)

    def exclusions(self, service: str) -> dict[HostClusterId, str]:
        return {host: e.why for (host, name), e in self.excluded.items() if name == service}
