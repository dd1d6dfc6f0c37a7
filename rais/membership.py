"""Who is up, suspect or down, from heartbeats and a clock.

Pure: no reactor, no sockets. The caller says what was heard and when, and
asks what the view is at a given time. A host is up while its heartbeats
arrive, suspect once a beat is overdue, and down after ``dead_after``
intervals of silence.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from rais.effects import Event
from rais.ids import HostClusterId
from rais.states import HostStatus, Role
from rais.wire import Heartbeat, Load

# A beat is "missed" once half an interval late: scheduling jitter and
# network delay on a healthy LAN are far below that.
SUSPECT_AFTER = 1.5


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
        self._peers: dict[HostClusterId, Peer] = {}
        self._reported: dict[HostClusterId, HostStatus] = {}

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
        previous = self._reported.get(sender)
        self._reported[sender] = HostStatus.UP
        restarted = old is not None and boot_epoch > old.boot_epoch
        if previous != HostStatus.UP or restarted:
            return Transition(sender, previous, HostStatus.UP, restarted)
        return None

    def status(self, peer: Peer, now: float) -> HostStatus:
        age = now - peer.last_heard
        if age > self.dead_after * self.interval:
            return HostStatus.DOWN
        if age > SUSPECT_AFTER * self.interval:
            return HostStatus.SUSPECT
        return HostStatus.UP

    def tick(self, now: float) -> list[Transition]:
        """Status changes caused by silence since the last tick."""
        changes = []
        for peer in self._peers.values():
            new = self.status(peer, now)
            old = self._reported[peer.id]
            if new != old:
                self._reported[peer.id] = new
                changes.append(Transition(peer.id, old, new))
        return changes

    def peers(self) -> Iterator[Peer]:
        return iter(sorted(self._peers.values(), key=lambda p: p.id))

    def get(self, host: HostClusterId) -> Peer | None:
        return self._peers.get(host)
