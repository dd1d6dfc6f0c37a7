"""The local HTTP control endpoint: the status page, status.json, the plain-text status, /metrics,
and the operator's commands, which this node carries to the master wherever it is (rais.commands):
POST /move, /drain, /undrain and /policy.

It listens on loopback unless [node] control says otherwise: whoever reaches it
may move services (`rais move`), drain hosts and change policies, so keep it where
only operators can.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from rais import statuspage
from rais.commands import OperatorCommand
from rais.ids import HostClusterId
from rais.readable import Readable
from rais.statusview import render_status

StatusSource = Callable[[], dict[str, Any]]
Form = Mapping[bytes, list[bytes]]


Operate = Callable[[OperatorCommand], Deferred[str]]  # rais.daemon.NodeService.operate


class StatusView(Readable):
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
    """POST a form to ask the master something, through this node. ``parse`` reads the form
    (KeyError or ValueError: 400 and ``usage``) into the command, which answers 200 and what
    happens, or 409 and why not."""

    isLeaf = True
    log = Logger()

    def __init__(self, operate: Operate, parse: Callable[[Form], OperatorCommand], usage: str) -> None:
        super().__init__()
        self._operate = operate
        self._parse = parse
        self._usage = usage

    def render_POST(self, request: Request) -> bytes | int:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        try:
            command = self._parse(request.args or {})
        except (KeyError, ValueError):  # a missing or repeated field, a bad id, bad UTF-8
            request.setResponseCode(http.BAD_REQUEST)
            return f"expected {self._usage}\n".encode()
        d = self._operate(command)
        finished = request.notifyFinish()
        finished.addErrback(lambda _: d.cancel())  # the operator went away: stop waiting
        d.addCallbacks(lambda text: self._answer(request, http.OK, text), self._refused, errbackArgs=(request,))
        return NOT_DONE_YET

    def _refused(self, failure: Failure, request: Request) -> None:
        if failure.check(CancelledError):
            return
        if failure.check(ValueError):
            self._answer(request, http.CONFLICT, str(failure.value))
            return
        self.log.failure("operator's command failed", failure)
        self._answer(request, http.INTERNAL_SERVER_ERROR, "the node failed on it: see its log")

    @staticmethod
    def _answer(request: Request, code: int, text: str) -> None:
        if request.finished:  # answered already (a lost connection cancels the command: see above)
            return
        request.setResponseCode(code)
        request.write((text + "\n").encode())
        request.finish()


def _one(form: Form, name: bytes) -> str:
    (value,) = form[name]
    return value.decode("utf-8")


def parse_move(form: Form) -> OperatorCommand:
    """service=NAME&host=A.B.C.D: `rais move`."""
    return OperatorCommand("move", _one(form, b"service"), HostClusterId.parse(_one(form, b"host")))


def parse_drain(verb: str) -> Callable[[Form], OperatorCommand]:
    """host=A.B.C.D: `rais drain` (or undrain)."""
    return lambda form: OperatorCommand(verb, host=HostClusterId.parse(_one(form, b"host")))


def parse_policy(form: Form) -> OperatorCommand:
    """service=NAME and set=KEY=VALUE fields (`rais policy set`), or service=NAME&reset=yes."""
    service = _one(form, b"service")
    if b"reset" in form:
        if b"set" in form:
            raise ValueError("reset or set, not both")
        return OperatorCommand("policyReset", service)
    pairs = [field.decode("utf-8").partition("=") for field in form.get(b"set", [])]
    if any(not key or not eq for key, eq, _ in pairs):
        raise ValueError("set=KEY=VALUE")
    return OperatorCommand("policySet", service, settings=tuple((key, value) for key, _, value in pairs))


class MetricsView(Readable):
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


def control_site(status: StatusSource, operate: Operate, metrics: CollectorRegistry) -> Site:
    root = Resource()
    host = "one host=A.B.C.D"
    root.putChild(b"move", CommandView(operate, parse_move, "one service=NAME and one host=A.B.C.D"))
    root.putChild(b"drain", CommandView(operate, parse_drain("drain"), host))
    root.putChild(b"undrain", CommandView(operate, parse_drain("undrain"), host))
    root.putChild(b"policy", CommandView(operate, parse_policy,
                                         "one service=NAME and set=KEY=VALUE fields, or reset=yes"))
    root.putChild(b"metrics", MetricsView(metrics))
    root.putChild(b"", statuspage.index())
    root.putChild(b"page", statuspage.assets())
    root.putChild(b"status", StatusView(status, render_status, b"text/plain; charset=utf-8"))
    root.putChild(b"status.json", StatusView(status, _json, b"application/json"))
    site = QuietSite(root)
    site.displayTracebacks = False
    return site
