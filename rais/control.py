"""The local HTTP control endpoint: the status page, status.json, the plain-text status, /metrics
and POST /move.

It listens on loopback unless [node] control says otherwise: whoever reaches it
may move services (`rais move`), so keep it where only operators can.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from rais import statuspage
from rais.ids import HostClusterId
from rais.statusview import render_status

StatusSource = Callable[[], dict[str, Any]]
Mover = Callable[[str, HostClusterId], str]  # (service, host) -> what happens; ValueError: why not


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


class MoveView(Resource):
    """POST service=NAME&host=A.B.C.D: ask the master to move a service there (`rais move`).
    200 and what happens; 400 for a malformed request; 409 and why, when it cannot be."""

    isLeaf = True

    def __init__(self, move: Mover) -> None:
        super().__init__()
        self._move = move

    def render_POST(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        args = request.args or {}
        try:
            (service,), (host,) = args[b"service"], args[b"host"]
            target = HostClusterId.parse(host.decode("ascii"))
            name = service.decode("utf-8")
        except (KeyError, ValueError):  # a missing or repeated field, or a bad id
            request.setResponseCode(http.BAD_REQUEST)
            return b"expected one service=NAME and one host=A.B.C.D\n"
        try:
            text = self._move(name, target)
        except ValueError as e:
            request.setResponseCode(http.CONFLICT)
            text = str(e)
        return (text + "\n").encode()


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


def control_site(status: StatusSource, move: Mover, metrics: CollectorRegistry) -> Site:
    root = Resource()
    root.putChild(b"move", MoveView(move))
    root.putChild(b"metrics", MetricsView(metrics))
    root.putChild(b"", statuspage.index())
    root.putChild(b"page", statuspage.assets())
    root.putChild(b"status", StatusView(status, render_status, b"text/plain; charset=utf-8"))
    root.putChild(b"status.json", StatusView(status, _json, b"application/json"))
    site = QuietSite(root)
    site.displayTracebacks = False
    return site
