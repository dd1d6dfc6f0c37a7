"""The local HTTP control endpoint: the status page, status.json, the plain-text status, /metrics,
and the operator's commands to the master: POST /move, /drain, /undrain and /policy.

It listens on loopback unless [node] control says otherwise: whoever reaches it
may move services (`rais move`), drain hosts and change policies, so keep it where
only operators can.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from rais import statuspage
from rais.ids import HostClusterId
from rais.statusview import render_status

StatusSource = Callable[[], dict[str, Any]]
Form = Mapping[bytes, list[bytes]]


class Operator(Protocol):
    """The node's side of the operator's commands: each says what will happen, or raises
    ValueError saying why it cannot be (this node is not the master, say)."""

    def move(self, service: str, host: HostClusterId) -> str: ...

    def drain(self, host: HostClusterId, drained: bool) -> str: ...

    def set_policy(self, service: str, assignments: Mapping[str, str]) -> str: ...

    def reset_policy(self, service: str) -> str: ...


class StatusView(Resource):
    """The node's status document, rendered one way (JSON, or the readable table)."""

    isLeaf = True

    def __init__(self, status: StatusSource, render: Callable[[dict[str, Any]], str],
                 content_type: bytes) -> None:
        super().__init__()
        self._status = status
        self._render = render
        self._content_type = content_type

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self._content_type)
        request.setHeader(b"cache-control", b"no-store")
        return self._render(self._status()).encode()


class CommandView(Resource):
    """POST a form to ask the master something. ``parse`` reads the form (KeyError or ValueError:
    400 and ``usage``) into the command, which answers 200 and what happens, or 409 and why not."""

    isLeaf = True

    def __init__(self, parse: Callable[[Form], Callable[[], str]], usage: str) -> None:
        super().__init__()
        self._parse = parse
        self._usage = usage

    def render_POST(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        try:
            command = self._parse(request.args or {})
        except (KeyError, ValueError):  # a missing or repeated field, a bad id, bad UTF-8
            request.setResponseCode(http.BAD_REQUEST)
            return f"expected {self._usage}\n".encode()
        try:
            text = command()
        except ValueError as e:
            request.setResponseCode(http.CONFLICT)
            text = str(e)
        return (text + "\n").encode()


def _one(form: Form, name: bytes) -> str:
    (value,) = form[name]
    return value.decode("utf-8")


def move_view(operator: Operator) -> CommandView:
    """service=NAME&host=A.B.C.D: `rais move`."""
    def parse(form: Form) -> Callable[[], str]:
        service, host = _one(form, b"service"), HostClusterId.parse(_one(form, b"host"))
        return lambda: operator.move(service, host)
    return CommandView(parse, "one service=NAME and one host=A.B.C.D")


def drain_view(operator: Operator, drained: bool) -> CommandView:
    """host=A.B.C.D: `rais drain` (or undrain)."""
    def parse(form: Form) -> Callable[[], str]:
        host = HostClusterId.parse(_one(form, b"host"))
        return lambda: operator.drain(host, drained)
    return CommandView(parse, "one host=A.B.C.D")


def policy_view(operator: Operator) -> CommandView:
    """service=NAME and set=KEY=VALUE fields (`rais policy set`), or service=NAME&reset=yes."""
    def parse(form: Form) -> Callable[[], str]:
        service = _one(form, b"service")
        if b"reset" in form:
            if b"set" in form:
                raise ValueError("reset or set, not both")
            return lambda: operator.reset_policy(service)
        pairs = [field.decode("utf-8").partition("=") for field in form.get(b"set", [])]
        if any(not key or not eq for key, eq, _ in pairs):
            raise ValueError("set=KEY=VALUE")
        assignments = {key: value for key, _, value in pairs}
        return lambda: operator.set_policy(service, assignments)
    return CommandView(parse, "one service=NAME and set=KEY=VALUE fields, or reset=yes")


class MetricsView(Resource):
    """The node's metrics (rais.metrics) in Prometheus' text format, 0.0.4, which every Prometheus
    reads. Rendered on the reactor thread, as the node is only ever read there: prometheus_client's
    own Twisted resource is a WSGI app, which would read it from a thread while the reactor changes
    it (and imports the global reactor, which twistd must pick)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_PLAIN_0_0_4.encode())
        request.setHeader(b"cache-control", b"no-store")
        return generate_latest(self._registry)


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1) + "\n"


class QuietSite(Site):
    """No access log: operators and monitors poll the status often. Nor its start and stop lines:
    the node says itself that it starts and stops."""

    noisy = False

    def log(self, request: http.Request) -> None:
        pass


def control_site(status: StatusSource, operator: Operator, metrics: CollectorRegistry) -> Site:
    root = Resource()
    root.putChild(b"move", move_view(operator))
    root.putChild(b"drain", drain_view(operator, True))
    root.putChild(b"undrain", drain_view(operator, False))
    root.putChild(b"policy", policy_view(operator))
    root.putChild(b"metrics", MetricsView(metrics))
    root.putChild(b"", statuspage.index())
    root.putChild(b"page", statuspage.assets())
    root.putChild(b"status", StatusView(status, render_status, b"text/plain; charset=utf-8"))
    root.putChild(b"status.json", StatusView(status, _json, b"application/json"))
    site = QuietSite(root)
    site.displayTracebacks = False
    return site
