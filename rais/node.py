"""The state machine of one node: inputs in, decisions out.

Pure: the transport feeds it authenticated datagrams and the time, and asks
it what to send. Election, terms and the tables arrive with the cluster
protocol; for now a node announces itself and tracks who it hears.
"""

from __future__ import annotations

from typing import Any

import attrs

from rais.ids import HostClusterId
from rais.membership import UP, Membership, Peer, Transition
from rais.wire import Datagram, Heartbeat, Load


@attrs.frozen
class Identity:
    id: HostClusterId
    role: str
    priority: int
    address: str


@attrs.frozen
class DuplicateId:
    """Another process signs with our host-cluster id: a configuration error."""

    id: HostClusterId
    source: str
    boot_epoch: int


class Node:
    def __init__(
        self, identity: Identity, boot_epoch: int, interval: float, dead_after: int, now: float
    ) -> None:
        self.identity = identity
        self.boot_epoch = boot_epoch
        self.started = now
        self.term = 0
        self.generation = 0
        self.membership = Membership(interval, dead_after)

    def heartbeat(self, load: Load | None) -> Heartbeat:
        me = self.identity
        return Heartbeat(me.role, me.priority, self.generation, me.address, load)

    def receive(self, now: float, datagram: Datagram, source: str) -> Transition | DuplicateId | None:
        message = datagram.message
        if datagram.sender == self.identity.id:
            if datagram.boot_epoch == self.boot_epoch:
                return None  # our own multicast, looped back
            return DuplicateId(datagram.sender, source, datagram.boot_epoch)
        if isinstance(message, Heartbeat):
            return self.membership.heard(
                now, datagram.sender, source, datagram.boot_epoch, datagram.term, message
            )
        return None

    def tick(self, now: float) -> list[Transition]:
        return self.membership.tick(now)

    def master(self, now: float) -> HostClusterId | None:
        """The host announcing the master role (the newest term wins a tie)."""
        if self.identity.role == "master":
            return self.identity.id
        masters = [
            p
            for p in self.membership.peers()
            if p.role == "master" and self.membership.status(p, now) == UP
        ]
        if not masters:
            return None
        return min(masters, key=lambda p: (-p.term, p.id)).id

    def status(self, now: float) -> dict[str, Any]:
        """The status document served as status.json (see README)."""
        master = self.master(now)
        return {
            "self": str(self.identity.id),
            "cluster": str(self.identity.id.cluster),
            "role": self.identity.role,
            "priority": self.identity.priority,
            "address": self.identity.address,
            "term": self.term,
            "master": str(master) if master else None,
            "generation": self.generation,
            "boot_epoch": self.boot_epoch,
            "uptime": round(now - self.started, 3),
            "hosts": [self._host(p, now) for p in self.membership.peers()],
        }

    def _host(self, peer: Peer, now: float) -> dict[str, Any]:
        load = peer.load
        return {
            "id": str(peer.id),
            "address": peer.address,
            "source": peer.source,
            "role": peer.role,
            "priority": peer.priority,
            "term": peer.term,
            "generation": peer.generation,
            "status": self.membership.status(peer, now),
            "last_heard": round(now - peer.last_heard, 3),
            "boot_epoch": peer.boot_epoch,
            "cpu": load.cpu_permille / 1000 if load else None,
            "net_rx_bps": load.net_rx_bps if load else None,
            "net_tx_bps": load.net_tx_bps if load else None,
        }
