"""http and https: one request, checked for status and body; latency is time to the full response."""

from __future__ import annotations

import re
from typing import Any, cast

from treq.client import HTTPClient
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.interfaces import IProtocol, IPushProducer, IStreamClientEndpoint, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web._newclient import ParseError  # not exported elsewhere; raised for non-HTTP replies
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IResponse
from zope.interface import implementer

from rais.checks import boolean, choice, pattern, text
from rais.interfaces import IProbe, Option, Status
from rais.probing.base import BaseProbe, ProbeFailed, Quiet, Verdict, describe, tcp_endpoint, tls_creator

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
BODY_LIMIT = 1 << 20  # bytes of body kept for matching; the rest is read and dropped
_STATUS_RANGE = re.compile(r"([1-5][0-9][0-9])(?:-([1-5][0-9][0-9]))?")


def expect(value: Any) -> tuple[tuple[int, int], ...]:
    """Statuses: 200, "200-299", or an array of those."""
    items = value if type(value) is list else [value]
    if not items:
        raise ValueError("must list at least one status")
    ranges = []
    for item in items:
        if type(item) is int and 100 <= item <= 599:
            ranges.append((item, item))
            continue
        found = _STATUS_RANGE.fullmatch(item) if type(item) is str else None
        if found is None or int(found[2] or found[1]) < int(found[1]):
            raise ValueError(f"expected a status 100..599, a range like \"200-299\", or an array of them, got {item!r}")
        ranges.append((int(found[1]), int(found[2] or found[1])))
    return tuple(ranges)


def headers(value: Any) -> dict[str, str]:
    if type(value) is not dict:
        raise ValueError("expected a table of header names to strings")
    for name, item in value.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise ValueError(f"{name!r} is not a header name")
        if type(item) is not str or "\n" in item or "\r" in item:
            raise ValueError(f"header {name}: expected a one-line string")
    return dict(value)


def _path(value: Any) -> str:
    path = text()(value)
    if not path.startswith("/") or any(c in path for c in " \r\n"):
        raise ValueError(f"expected a path starting with / and without spaces, got {path!r}")
    return path


def _shown(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


@implementer(IProbe)
class HttpProbe(BaseProbe):
    """One HTTP request to the service's address, with the Host header and TLS name of ``host``."""

    def __init__(self, scheme: str, default_port: int) -> None:
        self.name = scheme
        self.default_port = default_port
        self.description = f"{scheme.upper()} request: status in a range, optionally a body match"
        self.options = (
            Option("path", "request path and query", _path, "/"),
            Option("method", f"one of {', '.join(METHODS)}", choice(METHODS), "GET"),
            Option("host", "Host header (and TLS server name); default the target address", text(), None),
            Option("headers", "table of extra request headers", headers, None),
            Option("expect", 'status, "low-high" range or array of them', expect, "200-399"),
            Option("body", "text the body must contain", text(), None),
            Option("body_regex", "regular expression the body must match", pattern, None),
        )
        if scheme == "https":
            self.options += (Option("verify", "check the certificate and its name", boolean, True),)

    def cross_check(self, values: dict[str, Any]) -> dict[str, str]:
        if values["host"] is not None and any(name.lower() == "host" for name in values["headers"] or ()):
            return {"headers": "Host is set by the host option; set it there only"}
        return {}

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        server_name = values["host"] or host
        tls = tls_creator(server_name, values["verify"]) if self.name == "https" else None
        # The URL names the virtual host; the connection goes to the target itself.
        target = _Target(reactor, host, port, tls)
        agent = Agent.usingEndpointFactory(reactor, target, HTTPConnectionPool(reactor, persistent=False))
        shown = f"[{server_name}]" if isIPv6Address(server_name) else server_name
        sent = HTTPClient(agent).request(values["method"], f"{self.name}://{shown}:{port}{values['path']}",
                                         headers=values["headers"] or {}, unbuffered=True,
                                         allow_redirects=False)  # a redirect is a status to judge
        return sent.addCallback(_judge, values).addErrback(_unwrap).addBoth(target.hang_up)


@implementer(IStreamClientEndpoint)
class _Target:
    """Connects to the target whatever the URL names; hangs up once the verdict is in."""

    def __init__(self, reactor: Any, host: str, port: int, tls: Any) -> None:
        self._endpoint = tcp_endpoint(reactor, host, port)
        if tls is not None:
            # Quiet again: the TLS wrapper hides the Agent's factory from the inner endpoint.
            self._endpoint = Quiet(wrapClientTLS(tls, self._endpoint))
        self._connected: list[Protocol] = []

    def endpointForURI(self, uri: object) -> IStreamClientEndpoint:
        return self

    def connect(self, factory: Any) -> Deferred[IProtocol]:
        return self._endpoint.connect(factory).addCallback(self._keep)

    def _keep(self, protocol: IProtocol) -> IProtocol:
        assert isinstance(protocol, Protocol)  # the Agent's HTTP11ClientProtocol
        self._connected.append(protocol)
        return protocol

    def hang_up(self, result: object) -> object:
        # Abort, not close: a TLS close waits a round trip for the server's
        # close_notify, and the probe has to be done with its socket when it fires.
        for protocol in self._connected:
            if protocol.transport is not None:
                # Twisted types it an ITransport; it is a TCP connection, or TLS over one.
                cast(ITCPTransport, protocol.transport).abortConnection()
        return result


class _Body(Protocol):
    """Reads a whole body, keeping its first BODY_LIMIT bytes; cancelling drops the connection."""

    def __init__(self) -> None:
        # IResponse.deliverBody connects a body protocol to an IPushProducer, not an ITransport.
        self.done: Deferred[bytes] = Deferred(lambda _: cast(IPushProducer, self.transport).stopProducing())
        self._kept: list[bytes] = []
        self._room = BODY_LIMIT
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self._room > 0:
            self._kept.append(data[: self._room])
            self._room -= len(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called:  # cancelled: the connection closing is our doing
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self._kept))
        else:
            self.done.errback(reason)


def _judge(response: IResponse, values: dict[str, Any]) -> Deferred[Verdict]:
    reader = _Body()
    response.deliverBody(reader)

    def judged(body: bytes) -> Verdict:
        status = f"HTTP {response.code} {response.phrase.decode('latin-1')}"
        if not any(low <= response.code <= high for low, high in values["expect"]):
            raise ProbeFailed(Status.CRITICAL, f"{status}, expected {_shown(values['expect'])}")
        text = body.decode("utf-8", "replace")
        if values["body"] is not None and values["body"] not in text:
            raise ProbeFailed(Status.CRITICAL, f"{status}, body lacks {values['body']!r}")
        if values["body_regex"] is not None and not values["body_regex"].search(text):
            raise ProbeFailed(Status.CRITICAL, f"{status}, body does not match {values['body_regex'].pattern!r}")
        return Status.OK, f"{status}, {reader.size} bytes"

    return reader.done.addCallback(judged)


def _unwrap(failure: Failure) -> Failure:
    # twisted.web wraps the real cause (refused, reset, TLS) in a list of reasons.
    wrapper = failure.value
    if isinstance(wrapper, (ResponseFailed, ResponseNeverReceived, RequestTransmissionFailed)) and wrapper.reasons:
        cause = wrapper.reasons[0]
        if cause.check(ProbeFailed):
            return cause
        if cause.check(ParseError):
            reason, data = cause.value.args
            return Failure(ProbeFailed(Status.CRITICAL, f"not HTTP: {reason}: {data[:60]!r}"))
        return Failure(ProbeFailed(Status.CRITICAL, describe(cause.value)))
    return failure


http = HttpProbe("http", 80)
https = HttpProbe("https", 443)
