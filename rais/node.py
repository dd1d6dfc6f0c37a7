"""One node: routes each input to the part it concerns, and returns what they decide.

Pure: no reactor, no sockets, no files. The inputs are an authenticated
datagram (``receive``), a heartbeat due (``beat``), time passing (``tick``,
then ``reconcile``), the probe schedule (``probes_due``), and the results of
a probe or an action; each returns outputs (rais.effects) for the shell to
carry out. The same object runs in the daemon, in the simulator and in the
tests. The parts:

- ``membership`` (rais.membership): who is up, suspect or down;
- ``election`` (rais.election): the term, the master followed, candidacy and votes;
- ``replica`` (rais.sync.SyncClient): the tables as the master last sent them;
- ``mastership`` (rais.mastership): only while this node is master, for its term;
- ``host`` (rais.orders): this host's services and its side of orders.

A node follows the master of the newest term it has heard. When the master
falls silent for ``dead_after`` intervals, the nodes take their places in
the succession and the first claims a new term (in quorum mode it must win
a majority's votes first, and a master that stops hearing a majority steps
down).

Two masters meet when a partition heals. In quorum mode only one of them can
have a majority, and the newer term wins. Without quorum, the side that holds
more of the cluster keeps its assignments whatever the term numbers: its
master takes a new term above both, and its followers wait for it rather
than follow the smaller side's newer term. In quorum mode a host cut off
from the majority stops its exclusive services (rais.fencing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

from rais.commands import Answered, Asker, OperatorCommand
from rais.effects import (
    DuplicateId,
    Fenced,
    Notify,
    Operated,
    Persist,
    RoleChanged,
    RunAction,
    RunProbe,
    Send,
    TablesChanged,
)
from rais.election import Candidate, Election, majority, outranks, succession, term_text
from rais.fencing import cut_off
from rais.ids import HostClusterId
from rais.interfaces import ProbeResult
from rais.mastership import Mastership
from rais.membership import Membership, Peer
from rais.orders import HostOrders
from rais.planner import View
from rais.pool import Pool, pool_of
from rais.probing.schedule import ProbeDefaults
from rais.settings import Identity, Timing
from rais.states import HostStatus, Result, Role, base_role
from rais.status import document
from rais.sync import SyncClient, Target
from rais.tables import Tables, row_as
from rais.wire import (
    Catalogue,
    CatalogueRequest,
    Command,
    CommandReply,
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
from rais.wire.rows import PolicyRow, ServerRow

Output = Any  # the records of rais.effects, and rais.membership.Transition

# How long a node waits for the master's answer to an operator's command (`rais move`, ...),
# resending every half heartbeat interval: well within the CLI's own 5 s.
ASK_PATIENCE = 3.0

# A heartbeat with our id stamped this close to our clock comes from a live process; an older one
# may be a copy of our own past sent again, which must not stop us leading.
TWIN_SLACK = 30.0


@attrs.frozen
class Twin:
    """Another process using our host id, heard lately: neither may be master until ``until``."""

    source: str
    boot_epoch: int
    until: float


def sync_patience(host: HostClusterId, interval: float) -> float:
    """Each host waits its own share of half an interval before asking for a sync, so a
    missed push does not make every host ask at once."""
    return interval * (0.1 + 0.4 * ((host.value * 2654435761) % 1000) / 1000)


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
        self.policies = tuple(policies)
        self.probing = probing or ProbeDefaults()
        self.membership = Membership(timing.interval, timing.dead_after)
        self.election = Election(identity.id, timing, now)
        self.replica = SyncClient(tables or Tables.empty(), timing.interval,
                                  sync_patience(identity.id, timing.interval))
        self.host = HostOrders(services, boot_epoch)
        self.mastership: Mastership | None = None
        self.asker = Asker(identity.id, timing.interval / 2, ASK_PATIENCE)
        self._view: View | None = None  # of the replica, for the pool (see pool())
        self._load: Load | None = None  # ours, as last sampled
        self._kept = self.tables.kept  # what our state file holds
        self._master_stamp: tuple[int, float] | None = None  # the master's heartbeat stamp, when we got it
        self.twin: Twin | None = None
        self._quorate = False  # part of a majority at some time in this boot (see rais.fencing)
        self._followed = False  # followed another master in this boot: the cluster is not starting

    # --- what the node holds ---

    @property
    def role(self) -> Role:
        """Master, or as the master wrote it in the servers table: active while this host serves
        something, standby while it does not (rais.pool); until then, as configured."""
        if self.mastership is not None:
            return Role.MASTER
        row = row_as(ServerRow, self.tables.get(RowKey("servers", self.id.value, "")))
        if row is None or row.role == Role.MASTER:  # not written yet, or as we wrote it as master
            return base_role(self.identity.configured)
        return row.role

    @property
    def term(self) -> int:
        return self.election.term

    @property
    def master_id(self) -> HostClusterId | None:
        return self.election.master

    @property
    def tables(self) -> Tables:
        return self.mastership.tables if self.mastership is not None else self.replica.tables

    def master(self, now: float) -> HostClusterId | None:
        """The master this node follows, if it is alive and still says it is master of our term."""
        if self.mastership is not None:
            return self.id
        master = self.election.master
        peer = self.membership.get(master) if master is not None else None
        if (peer is not None and self.membership.status(peer, now) != HostStatus.DOWN
                and peer.role == Role.MASTER and peer.term == self.term):
            return master
        return None

    def pool(self, now: float) -> Pool:
        """The spares and the cluster's state, as this node's tables say them (rais.pool)."""
        if self.mastership is not None:
            view = self.mastership.view()
        else:  # the replica's view, once per snapshot: the page and metrics ask every second or so
            if self._view is None or self._view.tables is not self.tables:
                self._view = View(self.tables)
            view = self._view
        return pool_of(view, now, self.timing.min_spares)

    def status(self, now: float) -> dict[str, Any]:
        """The status document (rais.status)."""
        return document(self, now)

    # --- inputs ---

    def beat(self, now: float, load: Load | None) -> list[Output]:
        """Time for our heartbeat; ``load`` is this host's, sampled just now."""
        self._load = load  # a master writes its own figures into the tables too
        return [Send(self._heartbeat(now))]

    def _heartbeat(self, now: float) -> Heartbeat:
        tables = self.tables
        echo = None
        if self._master_stamp is not None and self.mastership is None:
            stamp, got = self._master_stamp
            echo = Echo(stamp, max(0, int((now - got) * 1e6)))
        return Heartbeat(
            role=self.role, priority=self.identity.priority, generation=tables.generation,
            address=self.identity.address, load=self._load, configured=self.identity.configured,
            tables_term=tables.term, digest=tables.digest, catalogue=self.host.catalogue,
            stamp=int(now * 1e6), echo=echo, heard=self.membership.gossip(now),
        )

    def receive(self, now: float, datagram: Datagram, source: str) -> list[Output]:
        sender, message = datagram.sender, datagram.message
        if sender == self.id:
            if datagram.boot_epoch == self.boot_epoch:
                return []  # our own multicast, looped back
            return self._twin(now, datagram, source)
        out: list[Output] = []
        election, mastership = self.election, self.mastership
        election.saw(datagram.term)
        if isinstance(message, Heartbeat):
            self._heard(now, datagram, message, source, out)
        elif isinstance(message, SyncNotice):
            if election.is_master(sender, datagram.term):
                self.replica.follow(Target(sender, message.tables_term, message.generation, message.digest))
                self._ask(now, out)
        elif isinstance(message, SyncRequest):
            if mastership is not None and message.master == self.id:
                out += mastership.answer_sync(now, message)
        elif isinstance(message, SyncChunk):
            if election.is_master(sender, datagram.term) and mastership is None:
                role = self.role
                tables = self.replica.receive(message, now)
                if tables is not None:
                    how = "applied snapshot" if message.transfer.snapshot else "applied"
                    out.append(TablesChanged(how, tables.generation, tables.term))
                    if self.role != role:
                        self._role_changed(role, self._serving(), out)
                self._ask(now, out)
        elif isinstance(message, CatalogueRequest):
            if message.host == self.id and datagram.term >= self.term:
                out += [Send(c) for c in self.host.catalogue_messages()]
        elif isinstance(message, Catalogue):
            peer = self.membership.get(sender)
            # Only the catalogue its latest heartbeat names: an old one sent again changes nothing.
            if mastership is not None and peer is not None and peer.beat.catalogue == message.digest:
                mastership.catalogue(now, sender, message)
        elif isinstance(message, VoteRequest):
            election.saw(message.term)
            if self.timing.quorum:
                out.append(Send(Vote(message.term, sender, self._vote(now, sender, message))))
        elif isinstance(message, Vote):
            self._count_vote(now, sender, message, out)
        elif isinstance(message, Order):
            if message.host == self.id and election.is_master(sender, datagram.term):
                self._take_order(now, datagram.term, message, out)
        elif isinstance(message, OrderDone):
            if mastership is not None and datagram.term == self.term:
                out += mastership.order_done(now, sender, message)
        elif isinstance(message, Command):
            self._commanded(now, datagram, message, out)
        elif isinstance(message, CommandReply):
            answered = self.asker.replied(sender, datagram.term, message)
            if answered is not None:
                out.append(answered)
        self._persist(out)
        return out

    def _heard(self, now: float, dg: Datagram, beat: Heartbeat, source: str, out: list[Output]) -> None:
        change = self.membership.heard(now, dg.sender, source, dg.boot_epoch, dg.term, beat, dg.sequence)
        if change is not None:
            out.append(change)
        if beat.role == Role.MASTER and dg.term > self.term:
            # A master we have been hearing all along took over (it preempted, say); one we had
            # lost (down, or never heard) was elected on the other side of a partition.
            rejoined = change is not None and change.old in (None, HostStatus.DOWN)
            if rejoined and self._keeps_side(now, dg.sender, dg.term):
                if self.mastership is not None:
                    self._retake(now, dg.sender, dg.term, out)
            else:
                self._follow(now, dg.sender, dg.term, out)
        if beat.role == Role.MASTER and self.election.is_master(dg.sender, dg.term):
            self._master_stamp = (beat.stamp, now)
            self.replica.follow(Target(dg.sender, beat.tables_term, beat.generation, beat.digest))
        if self.mastership is not None and beat.echo is not None and dg.term == self.term:
            self.mastership.echo(now, dg.sender, beat.echo)

    def tick(self, now: float) -> list[Output]:
        """Time passes: hosts fall silent, a master may be gone, the master commits what it heard."""
        changes, speak = self.membership.tick(now)
        out: list[Output] = list(changes)
        again, given_up = self.asker.due(now)
        out += [Send(command) for command in again] + given_up
        if speak:
            out.append(Send(self._heartbeat(now)))  # the others wait for our word before calling it down
        self.election.time_passes(now)
        if self.timing.quorum:
            self._fence(now, out)
        mastership = self.mastership
        if mastership is None:
            self._tick_follower(now, out)
        elif not self._keeps_quorum(now, out) or self.election.listening(now):
            pass  # stepped down; or just resumed: a newer master may exist, so write nothing yet
        else:
            out += mastership.upkeep(now, self.membership, self._load, self.host.catalogue, self.host.services)
        self._persist(out)
        return out

    def reconcile(self, now: float) -> list[Output]:
        """The master keeps every service at its copies, deciding on what the tick committed."""
        if self.mastership is None or now < self.acts_from():
            return []
        mastership = self.mastership
        out: list[Output] = []
        for item in mastership.reconcile(now):
            if isinstance(item, Send) and isinstance(item.message, Order) and item.message.host == self.id:
                self._take_order(now, self.term, item.message, out)  # our own multicast never comes back
            else:
                out.append(item)
        self._persist(out)
        return out

    def _persist(self, out: list[Output]) -> None:
        """Save the tables when what they must keep changed (a load figure alone is not worth a
        disk write; a clean stop saves the newest anyway)."""
        tables = self.tables
        if tables.kept != self._kept:
            self._kept = tables.kept
            out.append(Persist(tables))

    def acts_from(self) -> float:
        """When a master may move services: once settled, and not while listening after a freeze."""
        assert self.mastership is not None  # asked of a master only
        return max(self.mastership.settles_at, self.election.quiet_until)

    def operate(self, now: float, request: int, command: OperatorCommand) -> list[Output]:
        """An operator's command (`rais move`, `rais drain`, `rais policy set`...) through this
        node: carried out here if this node is the master, else asked of the master (rais.commands).
        Its answer is an ``Answered`` output for ``request``, now or once the master replies."""
        if self.mastership is not None:
            ok, text = self._carry_out(now, command)
            return [Operated(self.id, str(command), ok, text), Answered(request, ok, text)]
        master = self.master(now)
        peer = self.membership.get(master) if master is not None else None
        if peer is None:
            return [Answered(request, False, "no master is known yet: try again in a moment")]
        return [Send(self.asker.ask(now, request, command, peer.id, peer.boot_epoch, self.term))]

    def _carry_out(self, now: float, command: OperatorCommand) -> tuple[bool, str]:
        assert self.mastership is not None
        try:
            return True, command.carry_out(self.mastership, now)
        except ValueError as e:
            return False, str(e)

    def _commanded(self, now: float, dg: Datagram, command: Command, out: list[Output]) -> None:
        """Another node asks, for its operator: carried out once per request, answered every time."""
        mastership = self.mastership
        if (mastership is None or command.master != self.id or command.epoch != self.boot_epoch
                or dg.term != self.term):
            return  # for another master, an earlier term, or an earlier boot of ours
        try:
            what = OperatorCommand.read(command)
        except ValueError:
            what = None  # a host field that is no host id: answered, not carried out

        def carry_out() -> tuple[bool, str]:
            if what is None:
                return False, f"{command.host} is not a host id"
            ok, text = self._carry_out(now, what)
            out.append(Operated(dg.sender, str(what), ok, text))
            return ok, text

        answer, _ = mastership.answers.answer(dg.sender, dg.boot_epoch, command.request, carry_out)
        out += [Send(reply) for reply in answer]

    def probes_due(self, now: float) -> list[Output]:
        """The checks the master should start now, within its concurrency limit."""
        mastership = self.mastership
        if mastership is None or self.election.listening(now):
            return []
        return [RunProbe(order, mastership.term) for order in mastership.probes_due(now)]

    def probe_done(self, now: float, probe: RunProbe, result: ProbeResult) -> list[Output]:
        mastership = self.mastership
        if mastership is not None and mastership.term == probe.term:  # not a check of an earlier term
            mastership.probe_done(now, probe.order.key, Result(result.status.name.lower()), result.latency,
                                  result.detail)
        return []

    def action_done(self, now: float, action: RunAction, ok: bool, detail: str) -> list[Output]:
        """The shell ran an action: note what runs here now, and answer the master."""
        done = self.host.finished(action, ok, detail)
        what = "fence" if done is None else {"start": "assign", "stop": "release"}.get(action.action, action.action)
        out: list[Output] = [Notify((what, action.service, "ok" if ok else "failed", detail))]
        if done is not None:
            self._answer(now, action.term, done, out)
        return out

    # --- elections ---

    def _twin(self, now: float, datagram: Datagram, source: str) -> list[Output]:
        """Another process signs with our id. Terms are owned by host ids, so two masters with one
        id could lead one term: while we hear it, neither of us may lead."""
        out: list[Output] = []
        beat = datagram.message
        if not isinstance(beat, Heartbeat) or abs(beat.stamp / 1e6 - now) > TWIN_SLACK:
            return out  # perhaps an old datagram of ours sent again (the transport counts it)
        if self.twin is None or now >= self.twin.until:
            out.append(DuplicateId(self.id, source, datagram.boot_epoch))
        self.twin = Twin(source, datagram.boot_epoch, now + self.timing.dead)
        if self.mastership is not None:
            self.election.lost(now)
            self._step_down(f"another process uses our host id {self.id}", out)
        return out

    def _twinned(self, now: float) -> bool:
        return self.twin is not None and now < self.twin.until

    def _follow(self, now: float, master: HostClusterId, term: int, out: list[Output]) -> None:
        """A master of a newer term exists: follow it, stepping down if we were master."""
        self.election.follow(now, master, term)
        self._followed = True
        self._master_stamp = None
        if self.mastership is not None:
            self._step_down(f"master {master} has newer term {term_text(term)}", out)

    def _support(self, now: float, term: int) -> int:
        """The hosts, this one included, that follow ``term`` and were heard lately."""
        return (self.term == term) + sum(1 for p in self.membership.peers()
                                         if p.term == term and self.membership.status(p, now) == HostStatus.UP)

    def _keeps_side(self, now: float, master: HostClusterId, term: int) -> bool:
        """Without quorum: whether to keep the master we have over ``master`` of newer ``term``,
        which has fewer hosts behind it (a partition healed, and the smaller side elected a master
        of its own). With quorum, a newer term was won by a majority: it always wins."""
        self.election.time_passes(now)  # a node just thawed knows nothing current: it must not insist
        if (self.timing.quorum or master == self.election.master or self.master(now) is None
                or self.election.listening(now)):
            return False
        return self._support(now, self.term) > self._support(now, term)

    def _retake(self, now: float, other: HostClusterId, term: int, out: list[Output]) -> None:
        """Stay master over a smaller side's master, in a term above its: fencing by term still
        holds, and every host then follows us."""
        assert self.mastership is not None
        ours, theirs = self._support(now, self.term), self._support(now, term)
        self.election.saw(term)
        self.replica.replace(self.mastership.tables)
        self._become_master(now, self.election.next_term(self.tables.term),
                            f"master {other} of newer term {term_text(term)} leads {theirs} hosts, we lead {ours}",
                            out)

    def _step_down(self, reason: str, out: list[Output]) -> None:
        """Stop being master: keep the tables as our replica; the mastership goes with its term."""
        assert self.mastership is not None
        self.replica.replace(self.mastership.tables)
        self.mastership = None
        self._role_changed(Role.MASTER, reason, out)

    def _become_master(self, now: float, term: int, reason: str, out: list[Output]) -> None:
        old = self.role
        self.election.follow(now, self.id, term)
        # A master that never followed another in this boot may be leading a cluster that is starting.
        cold_until = 0.0 if self._followed else self.started + self.timing.settle
        self.mastership = Mastership(self.identity, self.boot_epoch, self.timing, self.probing, term, now,
                                     self.replica.tables, self.policies, cold_until)
        self._role_changed(old, f"{reason}; new term {term_text(term)}", out)
        out += self.mastership.upkeep(now, self.membership, self._load, self.host.catalogue, self.host.services)
        out.append(Send(self._heartbeat(now)))  # announce ourselves at once

    def _serving(self) -> str:
        """Why this host plays the role the master wrote for it."""
        names = sorted(r.name for r in self.tables.table("services") if r.host == self.id and r.assigned)
        return f"it serves {', '.join(names)}" if names else "it serves nothing: a spare again"

    def _role_changed(self, old: Role, reason: str, out: list[Output]) -> None:
        new = self.role
        if new != old or self.mastership is not None:  # a master in a new term is news too
            out.append(RoleChanged(old, new, self.term, reason))
            out.append(Notify(("role", old, new, term_text(self.term), reason)))

    def _keeps_quorum(self, now: float, out: list[Output]) -> bool:
        """In quorum mode, a master that stops hearing a majority steps down."""
        mastership = self.mastership
        assert mastership is not None  # tick asks a master only
        if not self.timing.quorum or now - mastership.since <= self.timing.dead:
            return True
        # News relayed by others counts: it comes only from hosts connected to ours.
        fresh = (self.timing.dead_after - 1) * self.timing.interval
        support = 1 + sum(1 for p in self.membership.peers()
                          if p.term == self.term and now - self.membership.last_news(p) <= fresh)
        needed = majority(self._known_hosts())
        if support >= needed:
            return True
        self.election.lost(now)
        self._step_down(f"lost quorum: {support} of {needed} needed", out)
        return False

    def _fence(self, now: float, out: list[Output]) -> None:
        """Quorum mode: cut off from the majority, stop our exclusive services ourselves."""
        if not self.host.runs_exclusive() or self.election.listening(now):
            return
        why = cut_off(now, self.id, self.membership, self._known_hosts(), self.timing.dead)
        if why is None:
            self._quorate = True
        elif self._quorate:
            stops = self.host.fence()
            if stops:
                out.append(Fenced(", ".join(a.service for a in stops), why))
                out += stops

    def _tick_follower(self, now: float, out: list[Output]) -> None:
        if self.master(now) is not None:
            self.election.master_alive()
            self._maybe_preempt(now, out)
            self._ask(now, out)
        elif self.election.due(now, lambda: self._place(now)):
            # Term 0: this node has followed no master in this boot, so none can be "gone".
            reason = "the master is gone" if self.election.term else "no master heard yet"
            self._claim(now, reason, out, preempt=False)

    def _ask(self, now: float, out: list[Output]) -> None:
        request = self.replica.request(now)
        if request is not None:
            out.append(Send(request))

    def _place(self, now: float) -> tuple[int | None, float]:
        """Our place in the succession, and until when a better candidate may still be listening
        (dead_after intervals from when we first heard it)."""
        ranked = succession(self._candidates(now))
        for spot, candidate in enumerate(ranked):
            if candidate.id == self.id:
                better = (self.membership.get(c.id) for c in ranked[:spot])
                ready = max((p.first_heard + self.timing.dead for p in better if p is not None), default=-math.inf)
                if self.tables.version == (0, 0) and self.identity.configured != Role.MASTER:
                    # A cluster that never had a master: one configured to lead may be starting
                    # a moment after us, and we may not have heard it yet.
                    ready = max(ready, self.started + 2 * self.timing.dead)
                return spot, ready
        return None, math.inf

    def _me(self) -> Candidate:
        return Candidate(self.id, self.role, self.identity.configured, self.identity.priority, self.tables.version)

    def _candidates(self, now: float) -> list[Candidate]:
        pool = [self._me()]
        for p in self.membership.peers():
            if self.membership.status(p, now) == HostStatus.UP and p.role != Role.MASTER:
                pool.append(_candidate(p))
        return pool

    def _maybe_preempt(self, now: float, out: list[Output]) -> None:
        election = self.election
        if not self.identity.preempt or election.candidacy is not None or election.listening(now):
            return
        master = self.membership.get(election.master) if election.master is not None else None
        if master is None or self.replica.behind() or not outranks(self._me(), _candidate(master)):
            return
        self._claim(now, f"preempting {election.master}", out, preempt=True)

    def _claim(self, now: float, reason: str, out: list[Output], preempt: bool) -> None:
        if self._twinned(now):
            return
        tables = self.tables
        term = self.election.next_term(tables.term)
        if not self.timing.quorum:
            self._become_master(now, term, reason, out)
            return
        reachable = 1 + sum(1 for p in self.membership.peers() if self.membership.status(p, now) != HostStatus.DOWN)
        if reachable < majority(self._known_hosts()):
            # Raft's pre-vote: a candidate that cannot hear a majority cannot win, and each try
            # would only push the term up for everyone (a 2|2 split would leapfrog for ever).
            return
        self.election.stand(now, term)
        out.append(Send(VoteRequest(term, tables.term, tables.generation, preempt)))
        self._count_vote(now, self.id, Vote(term, self.id, True), out)

    def _known_hosts(self) -> int:
        known = {row.host for row in self.tables.table("servers")}
        known.update(p.id for p in self.membership.peers())
        known.add(self.id)
        return len(known)

    def _vote(self, now: float, candidate: HostClusterId, request: VoteRequest) -> bool:
        master = self.master(now)
        if self.mastership is not None:
            blocked = not request.preempt
        elif master is not None:
            # A live master keeps our vote unless a preferred master is taking over.
            peer, current = self.membership.get(candidate), self.membership.get(master)
            blocked = not (request.preempt and peer and current and outranks(_candidate(peer), _candidate(current)))
        else:
            blocked = False
        return self.election.vote(candidate, request.term, (request.tables_term, request.generation),
                                  self.tables.version, blocked)

    def _count_vote(self, now: float, voter: HostClusterId, vote: Vote, out: list[Output]) -> None:
        won = self.election.count(voter, vote.candidate, vote.term, vote.granted, self._known_hosts())
        if won is not None and not self._twinned(now):
            assert self.election.candidacy is not None  # the votes were counted in it
            self._become_master(now, won, f"won {len(self.election.candidacy.votes)} votes", out)

    # --- orders: this host's side ---

    def _take_order(self, now: float, term: int, order: Order, out: list[Output]) -> None:
        taken = self.host.take(term, order)
        if isinstance(taken, RunAction):
            out.append(taken)
        elif taken is not None:
            self._answer(now, term, taken, out)

    def _answer(self, now: float, term: int, done: OrderDone, out: list[Output]) -> None:
        mastership = self.mastership
        if mastership is not None and term == mastership.term:
            pending = mastership.books.orders.get(done.order)
            if pending is not None and pending.order.host == self.id:
                out += mastership.order_done(now, self.id, done)  # an order the master gave itself
                return
        out.append(Send(done))


def _candidate(peer: Peer) -> Candidate:
    beat = peer.beat
    return Candidate(peer.id, beat.role, beat.configured, beat.priority, (beat.tables_term, beat.generation))
