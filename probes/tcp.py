"""tcp: the service accepts a TCP connection within the timeout."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from rais.interfaces import IProbe, Status
from rais.probing.base import BaseProbe, Verdict, tcp_endpoint


class _Hangup(Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None  # makeConnection sets it first
        self.transport.loseConnection()


@implementer(IProbe)
class TcpProbe(BaseProbe):
    name = "tcp"
    description = "connects to the port within the timeout, then closes"

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        connecting = tcp_endpoint(reactor, host, port).connect(Factory.forProtocol(_Hangup))
        return connecting.addCallback(lambda _: (Status.OK, f"connected to port {port}"))


tcp = TcpProbe()
