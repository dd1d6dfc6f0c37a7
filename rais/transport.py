"""The datagram protocol: bytes in to authenticated datagrams, messages out to bytes.

Nothing here decides anything. It authenticates and decodes what arrives,
drops and counts what is bad, hands the rest to ``deliver`` (the node's
Driver), and seals and sends what the node wants said: to the multicast
group, or, with ``peers`` (``[cluster] peers``, for networks without
multicast), to each peer by unicast. Everything above is the same either way:
every node hears every datagram, sealed and replay-guarded alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from twisted.internet.interfaces import IMulticastTransport
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from rais.ids import HostClusterId
from rais.keys import Keyring
from rais.wire import Datagram, ReplayGuard, WireError, open_datagram, seal

# Log the first bad datagram of each reason, then one in this many, so an
# attacker or a misconfigured neighbour cannot flood the log.
LOG_EVERY = 1000


class NodeProtocol(DatagramProtocol):
    log = Logger()
    transport: IMulticastTransport | None  # from listenMulticast, or listenUDP (unicast: no multicast calls)

    def __init__(
        self,
        keyring: Keyring,
        sender: HostClusterId,
        boot_epoch: int,
        group: str,
        port: int,
        interface: str,
        ttl: int,
        peers: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        self.keyring = keyring
        self.sender = sender
        self.boot_epoch = boot_epoch
        self.group = group
        self.port = port
        self.interface = interface
        self.ttl = ttl
        # Unicast (peers not None, though it may list no other host): where each datagram goes (every
        # peer but this host), and the peers heard since the last look.
        self.unicast = peers is not None
        self.peers = tuple(peers or ())
        self.heard: set[tuple[str, int]] = set()
        # Set before the port opens: where authenticated datagrams go; False means the node failed on one.
        self.deliver: Callable[[Datagram, str], bool] = lambda datagram, source: True
        self.guard = ReplayGuard(own=sender)
        self.sequence = 0
        self.received = 0
        self.sent = 0
        self.dropped: Counter[str] = Counter()

    def startProtocol(self) -> None:
        transport = self.transport
        assert transport is not None  # set before the port starts this protocol
        if self.unicast:
            self.log.info("unicast on port {port} to {count} peers: {peers}", port=self.port,
                          count=len(self.peers), peers=" ".join(f"{a}:{p}" for a, p in self.peers))
            return
        transport.setTTL(self.ttl)
        # Loopback mode lets several nodes on one machine hear each other.
        transport.setLoopbackMode(True)
        if self.interface != "0.0.0.0":
            # Checked at start (rais.config: an address of this host), so this fails only if the
            # address went away since: say so, rather than leave an unhandled error in a Deferred.
            transport.setOutgoingInterface(self.interface).addErrback(
                lambda f: self.log.failure("cannot send on {interface}", f, interface=self.interface))
        d = transport.joinGroup(self.group, self.interface)
        d.addCallbacks(
            lambda _: self.log.info(
                "joined {group} port {port} on {interface}",
                group=self.group, port=self.port, interface=self.interface,
            ),
            lambda f: self.log.failure("cannot join {group} on {interface}", f,
                                       group=self.group, interface=self.interface),
        )

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        source = f"{addr[0]}:{addr[1]}"
        if self.unicast and addr not in self.peers:
            # Whoever sent it does not hear us (we never send to it): delivering it would make a
            # one-way link of a peer list that differs between hosts, so it is kept out whole.
            self.drop("not-a-peer", source, "not in [cluster] peers: give every host the same list")
            return
        try:
            datagram = open_datagram(data, self.keyring, self.sender.cluster, self.guard)
        except WireError as e:
            self.drop(e.reason, source, str(e))
            return
        self.received += 1
        if self.unicast:
            self.heard.add(addr)  # a peer is heard when what it sends is sealed with our key
        if datagram.sender == self.sender and datagram.boot_epoch != self.boot_epoch:
            # Counted here, still delivered: the node judges whether another process uses our id.
            self.drop("duplicate-id", source, f"another node uses {self.sender} (boot epoch {datagram.boot_epoch})")
        if not self.deliver(datagram, source):
            self.drop("internal", source, "node error")

    def drop(self, reason: str, source: str, detail: str) -> None:
        """Count a dropped datagram; log the first of each reason, then one in LOG_EVERY."""
        self.dropped[reason] += 1
        count = self.dropped[reason]
        if count == 1 or count % LOG_EVERY == 0:
            self.log.warn(
                "dropped datagram from {source}: {reason} ({detail}); {count} so far",
                source=source, reason=reason, detail=detail, count=count,
            )

    def send(self, message: object, term: int) -> None:
        if self.transport is None:
            return
        self.sequence += 1
        data = seal(self.keyring, self.sender, self.boot_epoch, self.sequence, term, message)
        for destination in self.peers if self.unicast else ((self.group, self.port),):
            try:
                self.transport.write(data, destination)
            except OSError as e:
                # No route while an interface is down: keep running, say so once a while.
                self.drop("send-error", "self", e.strerror or str(e))
                continue
            self.sent += 1

    def silent(self) -> list[tuple[str, int]]:
        """Unicast: the peers nothing has come from yet (since the last call), in the configured order."""
        silent = [peer for peer in self.peers if peer not in self.heard]
        self.heard = set()
        return silent

    def counters(self) -> dict[str, object]:
        counters: dict[str, object] = {"received": self.received, "sent": self.sent, "dropped": dict(self.dropped)}
        if self.unicast:
            counters["peers"] = [f"{a}:{p}" for a, p in self.peers]
        return counters
