"""dns: one query to the service's server for a name and type, optionally checking the answer."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import base, defer, udp
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.names import client, dns, error
from twisted.python.failure import Failure
from zope.interface import implementer

from rais.checks import choice, text
from rais.interfaces import REQUIRED, IProbe, Option, Status
from rais.probing.base import BaseProbe, ProbeFailed, Verdict

TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")

_RCODES = {
    error.DNSNameError: "no such name (NXDOMAIN)",
    error.DNSServerError: "server failure (SERVFAIL)",
    error.DNSQueryRefusedError: "query refused (REFUSED)",
    error.DNSFormatError: "format error (FORMERR)",
    error.DNSNotImplementedError: "not implemented (NOTIMP)",
    error.DNSUnknownError: "unknown error",
    defer.TimeoutError: "no answer in time",  # what the resolver raises when it gives up
}

# The resolver gives up a little before the probe's deadline, so it always
# closes its own socket and timer rather than being cancelled mid-query.
_RESOLVER_SHARE = 0.9


def answers(value: Any) -> tuple[str, ...]:
    """A value or an array of values that must all be among the answers."""
    items = value if type(value) is list else [value]
    if not items or any(type(item) is not str or not item for item in items):
        raise ValueError("expected a non-empty string or an array of them")
    return tuple(_canonical(item) for item in items)


def _canonical(value: str) -> str:
    return value.rstrip(".").lower()


def _shown(record: dns.RRHeader) -> str:
    payload = record.payload
    assert payload is not None  # a decoded record always has one
    if isinstance(payload, dns.Record_A):
        return payload.dottedQuad()
    if isinstance(payload, dns.Record_AAAA):
        return socket.inet_ntop(socket.AF_INET6, payload.address)
    if isinstance(payload, dns.Record_TXT):
        return " ".join(part.decode("utf-8", "replace") for part in payload.data)
    if hasattr(payload, "name"):  # CNAME, NS, PTR, MX, SRV: the name they point at
        return str(payload.name)
    return str(payload)


@implementer(IProbe)
class DnsProbe(BaseProbe):
    name = "dns"
    description = "a DNS query over UDP to the service: an answer of the type, optionally the expected one"
    default_port = 53
    options = (
        Option("name", "domain name to look up", text(), REQUIRED),
        Option("type", f"record type: {', '.join(TYPES)}", choice(TYPES), "A"),
        Option("expect", "answer (or array of answers) that must be among those returned", answers, None),
    )

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        address = succeed(host) if isIPAddress(host) or isIPv6Address(host) else reactor.resolve(host)

        def ask(server: str) -> Deferred[Any]:
            resolver = client.Resolver(servers=[(server, port)], reactor=_QuietUDP(reactor))
            query = dns.Query(values["name"], dns.REV_TYPES[values["type"]])
            return resolver.query(query, timeout=(timeout * _RESOLVER_SHARE,))

        return address.addCallback(ask).addCallbacks(_judge, _rcode, callbackArgs=(values,))


class _QuietUDP:
    """The reactor, for a resolver, with UDP ports that log nothing: the resolver opens one per
    query, so once per check, and it opens them only through the reactor it is given."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> udp.Port:
        protocol.noisy = False  # "Starting protocol ..." and "Stopping protocol ..."
        # What the reactor's own listenUDP does (twisted.internet.posixbase), with the quiet port.
        quiet = _QuietPort(port, protocol, interface, maxPacketSize, self._reactor)
        quiet.startListening()
        return quiet


class _QuietPort(udp.Port):
    """Twisted's UDP port without its "... starting on N" and "(UDP Port N Closed)" lines, which
    it logs at info with no ``noisy`` switch to turn them off (twisted#4021). Both methods are
    udp.Port's own (Twisted 26) less the log call and, for the bind, the adopted socket the
    resolver never passes; the dns tests run real queries, and trial fails one that leaves its
    socket open."""

    def _bindSocket(self) -> None:
        try:
            skt = self.createInternetSocket()
            skt.bind((self.interface, self.port))
        except OSError as e:
            raise CannotListenError(self.interface, self.port, e) from e
        self._realPortNumber = skt.getsockname()[1]
        self.connected = 1
        self.socket = skt
        self.fileno = skt.fileno  # type: ignore[method-assign]  # as udp.Port does: the socket's own

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._realPortNumber = None
        self.maxThroughput = -1
        base.BasePort.connectionLost(self, reason)
        self.protocol.doStop()
        self.socket.close()
        del self.socket
        del self.fileno
        if hasattr(self, "d"):  # a Deferred stopListening returned
            self.d.callback(None)
            del self.d


def _judge(result: tuple[list[dns.RRHeader], Any, Any], values: dict[str, Any]) -> Verdict:
    wanted = dns.REV_TYPES[values["type"]]
    found = [_shown(record) for record in result[0] if record.type == wanted]
    asked = f"{values['type']} {values['name']}"
    if not found:
        raise ProbeFailed(Status.CRITICAL, f"{asked}: no {values['type']} record in the answer")
    missing = [value for value in values["expect"] or () if value not in {_canonical(f) for f in found}]
    if missing:
        raise ProbeFailed(Status.CRITICAL, f"{asked}: {', '.join(found)}; expected {', '.join(missing)}")
    return Status.OK, f"{asked}: {', '.join(found)}"


def _rcode(failure: Failure) -> Failure:
    kind = failure.check(*_RCODES)
    if kind is None:
        return failure
    return Failure(ProbeFailed(Status.CRITICAL, _RCODES[kind]))


dns_probe = DnsProbe()
