"""The multicast datagram protocol: datagrams in, node inputs; node output, datagrams out.

Nothing here decides anything. It authenticates and decodes what arrives,
drops and counts what is bad, hands the rest to the pure Node, and seals
and multicasts what the node wants said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from rais.election import term_text
from rais.keys import Keyring
from rais.membership import Transition
from rais.node import (
    Applied,
    BeatNow,
    Committed,
    DuplicateId,
    Node,
    Output,
    Persist,
    RoleChanged,
    RunAction,
    Send,
)
from rais.tables import Tables
from rais.wire import ReplayGuard, WireError, open_datagram, seal

# Log the first bad datagram of each reason, then one in this many, so an
# attacker or a misconfigured neighbour cannot flood the log.
LOG_EVERY = 1000


class NodeProtocol(DatagramProtocol):
    log = Logger()

    def __init__(
        self,
        node: Node,
        keyring: Keyring,
        group: str,
        port: int,
        interface: str,
        ttl: int,
        clock: IReactorTime,
        load: Callable[[float], object] | None = None,
        persist: Callable[[Tables], None] | None = None,
        run_action: Callable[[str, str], Deferred[tuple[bool, str]]] | None = None,
        notify: Callable[..., None] | None = None,
    ) -> None:
        self.node = node
        self.keyring = keyring
        self.group = group
        self.port = port
        self.interface = interface
        self.ttl = ttl
        self.clock = clock
        self.load = load
        self.persist = persist
        self.run_action = run_action
        self.notify = notify
        self.guard = ReplayGuard()
        self.sequence = 0
        self.received = 0
        self.sent = 0
        self.dropped: Counter[str] = Counter()

    def startProtocol(self) -> None:
        self.transport.setTTL(self.ttl)
        # Loopback mode lets several nodes on one machine hear each other.
        self.transport.setLoopbackMode(True)
        if self.interface != "0.0.0.0":
            self.transport.setOutgoingInterface(self.interface)
        d = self.transport.joinGroup(self.group, self.interface)
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
        try:
            datagram = open_datagram(data, self.keyring, self.node.identity.id.cluster, self.guard)
        except WireError as e:
            self._drop(e.reason, source, str(e))
            return
        self.received += 1
        if not self._feed(f"a datagram from {source}", self.node.receive, datagram, source):
            self._drop("internal", source, "node error")

    def _feed(self, what: str, step: Callable[..., list[Output]], *args: Any) -> bool:
        """Give the node one input and carry out its answer; False if the node failed on it.

        A bug must cost one input, never the node: an exception escaping a timer
        would stop that timer for good.
        """
        try:
            outputs = step(self.clock.seconds(), *args)
        except Exception:
            self.log.failure("node failed on {what}", what=what)
            return False
        self._act(outputs)
        return True

    def _drop(self, reason: str, source: str, detail: str) -> None:
        self.dropped[reason] += 1
        count = self.dropped[reason]
        if count == 1 or count % LOG_EVERY == 0:
            self.log.warn(
                "dropped datagram from {source}: {reason} ({detail}); {count} so far",
                source=source, reason=reason, detail=detail, count=count,
            )

    def _act(self, outputs: list[Output]) -> None:
        """Carry out what the node decided, in order."""
        for out in outputs:
            if isinstance(out, Send):
                self.send(out.message)
            elif isinstance(out, BeatNow):
                self.beat()
            elif isinstance(out, Persist):
                if self.persist is not None:
                    self.persist(out.tables)
            elif isinstance(out, RunAction):
                self._run(out)
            elif isinstance(out, RoleChanged):
                if self.notify is not None:
                    self.notify("role", out.old, out.new, term_text(out.term), out.reason)
                self.log.info("role {old} -> {new} in term {term}: {reason}", old=out.old, new=out.new,
                              term=term_text(out.term), reason=out.reason)
            elif isinstance(out, Committed | Applied):
                self.log.debug("tables at generation {generation} of term {term}",
                               generation=out.tables.generation, term=term_text(out.tables.term))
            elif isinstance(out, DuplicateId):
                self._drop("duplicate-id", out.source, f"another node uses {out.id}")
            elif isinstance(out, Transition):
                self.log.info(
                    "host {host} is {new} (was {old}){restarted}",
                    host=str(out.id), new=out.new, old=out.old or "unknown",
                    restarted=", restarted" if out.restarted else "",
                )

    def _run(self, action: RunAction) -> None:
        """Run a start or stop action off the reactor's back, then tell the node how it went."""
        if self.run_action is None:
            self._feed("an action", self.node.action_done, action.term, action.order, action.service,
                       False, "this node runs no actions")
            return
        self.log.info("{action} {service} (order {order} of term {term})", action=action.action,
                      service=action.service, order=action.order, term=term_text(action.term))
        d = self.run_action(action.action, action.service)

        def done(result: tuple[bool, str]) -> None:
            ok, detail = result
            if self.notify is not None:
                self.notify("assign" if action.action == "start" else "release", action.service,
                            "ok" if ok else "failed", detail)
            self._feed("an action's result", self.node.action_done, action.term, action.order,
                       action.service, ok, detail)

        d.addCallback(done)
        d.addErrback(lambda f: self.log.failure("{action} {service} failed", f,
                                                action=action.action, service=action.service))

    def tick(self) -> None:
        self._feed("a tick", self.node.tick)

    def beat(self) -> None:
        load = self.load(self.clock.seconds()) if self.load else None
        # Stamp after sampling the load, so round trips do not include psutil's time.
        self.send(self.node.heartbeat(self.clock.seconds(), load))

    def send(self, message: object) -> None:
        if self.transport is None:
            return
        self.sequence += 1
        data = seal(
            self.keyring, self.node.identity.id, self.node.boot_epoch,
            self.sequence, self.node.term, message,
        )
        try:
            self.transport.write(data, (self.group, self.port))
        except OSError as e:
            # No route while an interface is down: keep running, say so once a while.
            self._drop("send-error", "self", e.strerror or str(e))
            return
        self.sent += 1

    def counters(self) -> dict[str, object]:
        return {"received": self.received, "sent": self.sent, "dropped": dict(self.dropped)}
