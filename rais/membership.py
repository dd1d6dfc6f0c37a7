"""Who is up, suspect or down: a judgement the hosts share, from heartbeats and a clock.

Pure: no reactor, no sockets. The caller says what was heard and when, and
asks what the view is at a given time. A host is up while there is news of
it, suspect once its news is half an interval overdue, and down when there
has been no news of it for ``dead_after`` intervals and the others have none
either.

One observer's silence is weak evidence: on a lossy network one link loses
three beats in a row far more often than a host dies (at 30% loss, 2.7% of
the time). So, in the manner of SWIM and Lifeguard, every heartbeat carries
``heard``: the hosts its sender suspects, and its news of any host another
host suspects (how long ago it last had news of it). News of a host from
anyone counts as news. A host is down after ``dead_after`` intervals without
news only if every other live host reports that it, too, has had none for
that long (a real death: everyone stops hearing it at once, and a host whose
silence of another crosses ``dead_after`` says so at once in an extra
heartbeat, so this costs next to no time); otherwise only after ``PATIENCE``
times as long, by which time news would have come by some path if it were
alive. A false "down" then needs every observer to miss ``dead_after`` beats
in a row: at 30% loss and three observers, 0.3^9.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from rais.effects import Event
from rais.ids import HostClusterId
from rais.states import HostStatus, Role
from rais.wire import Heard, Heartbeat, Load
from rais.wire.messages import MAX_HEARD

# A beat is "missed" once half an interval late: scheduling jitter and
# network delay on a healthy LAN are far below that.
SUSPECT_AFTER = 1.5
# Without every live host confirming the silence, a host is down only after this many times
# dead_after intervals without news: a false "down" then needs every path to lose every beat.
PATIENCE = 2.0
MAX_AGE_MS = 2**32 - 1


@attrs.frozen
class Peer:
    """What was last heard from one host."""

    id: HostClusterId
    source: str  # where its datagrams come from, "ip:port"
    term: int  # the term it follows, from its envelope
    boot_epoch: int
    sequence: int  # of the datagram that carried ``beat``
    beat: Heartbeat  # its latest heartbeat
    first_heard: float
    last_heard: float

    @property
    def role(self) -> Role:
        return self.beat.role

    @property
    def priority(self) -> int:
        return self.beat.priority

    @property
    def address(self) -> str:
        return self.beat.address

    @property
    def load(self) -> Load | None:
        return self.beat.load


@attrs.frozen
class Transition(Event):
    """A host's status changed; ``old`` is None for a host heard the first time."""

    text = "host {host} is {new} (was {old}){restarted}"

    id: HostClusterId
    old: HostStatus | None
    new: HostStatus
    restarted: bool = False

    def fields(self) -> dict[str, object]:
        return {"host": str(self.id), "new": self.new, "old": self.old or "unknown",
                "restarted": ", restarted" if self.restarted else ""}


class Membership:
    def __init__(self, interval: float, dead_after: int) -> None:
        if interval <= 0 or dead_after < 2:
            raise ValueError("interval must be > 0 and dead_after >= 2")
        self.interval = interval
        self.dead_after = dead_after
        self._suspect_after = SUSPECT_AFTER * interval
        self._dead = dead_after * interval
        self._peers: dict[HostClusterId, Peer] = {}
        self._reported: dict[HostClusterId, HostStatus] = {}
        self._news: dict[HostClusterId, float] = {}  # the latest time anyone knew a host alive
        self._said_silent: set[HostClusterId] = set()  # whose dead_after silence our beats already told

    def heard(
        self,
        now: float,
        sender: HostClusterId,
        source: str,
        boot_epoch: int,
        term: int,
        beat: Heartbeat,
        sequence: int = 0,
    ) -> Transition | None:
        """Record a heartbeat; return the transition it causes, if any."""
        old = self._peers.get(sender)
        if old is not None and (boot_epoch, sequence) < (old.boot_epoch, old.sequence):
            # Overtaken on the way by a newer one: it says nothing new.
            return None
        self._peers[sender] = Peer(
            id=sender,
            source=source,
            term=term,
            boot_epoch=boot_epoch,
            sequence=sequence,
            beat=beat,
            first_heard=old.first_heard if old and old.boot_epoch == boot_epoch else now,
            last_heard=now,
        )
        self._news[sender] = now
        for entry in beat.heard:
            # Its news of a host, on our clock: news only ever gets newer.
            at = now - entry.age_ms / 1000
            if at > self._news.get(entry.host, -1e18):
                self._news[entry.host] = at
        previous = self._reported.get(sender)
        self._reported[sender] = HostStatus.UP
        restarted = old is not None and boot_epoch > old.boot_epoch
        if previous != HostStatus.UP or restarted:
            return Transition(sender, previous, HostStatus.UP, restarted)
        return None

    def last_news(self, peer: Peer) -> float:
        """The latest time this host, or anyone it heard, knew ``peer`` alive."""
        return max(peer.last_heard, self._news.get(peer.id, -1e18))

    def status(self, peer: Peer, now: float) -> HostStatus:
        silent = now - self.last_news(peer)
        if silent <= self._suspect_after:
            return HostStatus.UP
        if silent <= self._dead or (silent <= PATIENCE * self._dead and not self.confirmed(peer.id, now)):
            return HostStatus.SUSPECT
        return HostStatus.DOWN

    def confirmed(self, host: HostClusterId, now: float) -> bool:
        """Whether every other live host's latest heartbeat says it has had no news of ``host``
        (which may be this node itself: rais.fencing) for dead_after intervals either."""
        dead_ms = self._dead * 1000
        for witness in self._peers.values():
            if witness.id == host or now - self.last_news(witness) > self._dead:
                continue  # itself silent: not a witness
            if not any(e.host == host and e.age_ms >= dead_ms for e in witness.beat.heard):
                return False  # it has news, or has not said yet
        return True

    def gossip(self, now: float) -> tuple[Heard, ...]:
        """What our heartbeat says of others: the hosts we suspect (so others vouch for them or
        confirm), and our news of any host a live peer suspects. The longest silent first, as many
        as fit."""
        asked = {entry.host for p in self._peers.values() if now - p.last_heard <= self._suspect_after
                 for entry in p.beat.heard}
        said = []
        for peer in self._peers.values():
            silent = now - self.last_news(peer)
            # A host down for long is no longer news to anyone.
            suspect = self._suspect_after < silent <= PATIENCE * self._dead + self._suspect_after
            if suspect or (peer.id in asked and silent <= self._suspect_after):
                said.append((silent, peer.id))
        said.sort(reverse=True)
        return tuple(Heard(host, min(round(silent * 1000), MAX_AGE_MS)) for silent, host in said[:MAX_HEARD])

    def tick(self, now: float) -> tuple[list[Transition], bool]:
        """Status changes caused by silence since the last tick, and whether to send a heartbeat
        now: our silence of some host has just reached dead_after intervals, which the others
        wait to hear before they call it down."""
        changes = []
        speak = False
        for peer in self._peers.values():
            silent = now - self.last_news(peer) > self._dead
            if silent and peer.id not in self._said_silent:
                self._said_silent.add(peer.id)
                speak = True
            elif not silent:
                self._said_silent.discard(peer.id)
            new = self.status(peer, now)
            old = self._reported[peer.id]
            if new != old:
                self._reported[peer.id] = new
                changes.append(Transition(peer.id, old, new))
        return changes, speak

    def peers(self) -> Iterator[Peer]:
        return iter(sorted(self._peers.values(), key=lambda p: p.id))

    def get(self, host: HostClusterId) -> Peer | None:
        return self._peers.get(host)
