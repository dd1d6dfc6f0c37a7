"""The control endpoint's resources, rendered in memory (twisted.web's DummyRequest)."""

import json

from prometheus_client import CollectorRegistry, Gauge
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from rais.commands import OperatorCommand
from rais.control import CommandView, control_site
from rais.ids import HostClusterId


def post(resource, args):
    request = DummyRequest([b""])
    request.method = b"POST"
    request.args = args
    body = resource.render(request)
    if body == NOT_DONE_YET:
        assert request.finished, "answered at once: the operator below answers at once"
        body = b"".join(request.written)
    return request.responseCode or 200, body.decode()


class Operator:
    """The node's side, as a master that refuses what names mail or 1.2.0.9."""

    def __init__(self):
        self.asked = []

    def __call__(self, command):
        self.asked.append(command)
        if command.service == "mail" or command.host == HostClusterId.parse("1.2.0.9"):
            return fail(ValueError("no host declares mail"))
        return succeed(f"{command.verb} done")


def site_post(site, path, args):
    return post(site.getResourceFor(DummyRequest([path.encode()])), args)


def site_of(operator):
    return control_site(lambda: {"role": "master"}, operator, CollectorRegistry())


def test_a_move_names_a_service_and_a_host_and_answers_what_happens_or_why_not():
    operator = Operator()
    site = site_of(operator)
    assert site_post(site, "move", {b"service": [b"web"], b"host": [b"1.2.0.3"]}) == (200, "move done\n")
    assert operator.asked == [OperatorCommand("move", "web", HostClusterId.parse("1.2.0.3"))]
    assert site_post(site, "move", {b"service": [b"mail"], b"host": [b"1.2.0.3"]}) == (
        409, "no host declares mail\n")
    for bad in ({b"service": [b"web"]}, {b"service": [b"web"], b"host": [b"1.2.3"]},
                {b"service": [b"web", b"db"], b"host": [b"1.2.0.3"]}, {b"service": [b"\xff"], b"host": [b"1.2.0.3"]}):
        assert site_post(site, "move", bad) == (400, "expected one service=NAME and one host=A.B.C.D\n")
    assert len(operator.asked) == 2


def test_drain_and_undrain_name_a_host_and_a_refusal_answers_409_saying_why():
    operator = Operator()
    site = site_of(operator)
    host = HostClusterId.parse("1.2.0.3")
    assert site_post(site, "drain", {b"host": [b"1.2.0.3"]}) == (200, "drain done\n")
    assert site_post(site, "undrain", {b"host": [b"1.2.0.3"]}) == (200, "undrain done\n")
    assert operator.asked == [OperatorCommand("drain", host=host), OperatorCommand("undrain", host=host)]
    assert site_post(site, "drain", {b"host": [b"1.2.0.9"]}) == (409, "no host declares mail\n")
    for bad in ({}, {b"host": [b"web"]}, {b"host": [b"1.2.0.3", b"1.2.0.4"]}):
        assert site_post(site, "undrain", bad) == (400, "expected one host=A.B.C.D\n")


def test_a_policy_is_set_by_key_value_fields_or_reset():
    operator = Operator()
    site = site_of(operator)
    assert site_post(site, "policy", {b"service": [b"web"], b"set": [b"replicas=2", b"weights.cpu=3", b"prefer="]}) == (
        200, "policySet done\n")
    assert site_post(site, "policy", {b"service": [b"web"], b"reset": [b"yes"]}) == (200, "policyReset done\n")
    assert operator.asked == [
        OperatorCommand("policySet", "web", settings=(("replicas", "2"), ("weights.cpu", "3"), ("prefer", ""))),
        OperatorCommand("policyReset", "web")]
    assert site_post(site, "policy", {b"service": [b"mail"], b"set": [b"replicas=2"]})[0] == 409
    usage = "expected one service=NAME and set=KEY=VALUE fields, or reset=yes\n"
    for bad in ({b"set": [b"replicas=2"]}, {b"service": [b"web"], b"set": [b"replicas"]},
                {b"service": [b"web"], b"set": [b"=2"]}, {b"service": [b"web"], b"set": [b"a=1"], b"reset": [b"yes"]}):
        assert site_post(site, "policy", bad) == (400, usage)


def test_the_site_serves_the_status_document_and_the_move():
    site = site_of(Operator())
    request = DummyRequest([b"status.json"])
    resource = site.getResourceFor(request)
    assert json.loads(resource.render(request)) == {"role": "master"}
    assert isinstance(site.getResourceFor(DummyRequest([b"move"])), CommandView)


def get(site, path):
    request = DummyRequest(path.encode().split(b"/")[1:] or [b""])
    body = site.getResourceFor(request).render(request)
    return request.responseHeaders.getRawHeaders(b"content-type")[0].decode(), body.decode()


STATUS = {"self": "1.2.0.1", "role": "master", "master": None, "address": "10.0.0.1", "cluster": "1.2", "term": 1,
          "generation": 0, "priority": 100, "hosts": []}


def test_the_site_serves_the_status_page_its_files_and_the_text_status():
    site = control_site(lambda: STATUS, Operator(), CollectorRegistry())
    kind, page = get(site, "/")
    assert kind == "text/html; charset=utf-8" and '<meta name="viewport"' in page
    for path, kind in (("/page/page.js", "text/javascript"), ("/page/page.css", "text/css")):
        served, body = get(site, path)
        assert served.startswith(kind) and body and f'"{path[1:]}"' in page
    kind, text = get(site, "/status")
    assert kind.startswith("text/plain") and text.startswith("node 1.2.0.1  cluster 1.2  role master")


def test_an_answer_that_comes_later_is_written_then_and_an_operator_who_leaves_cancels_the_wait():
    waiting = []

    def operate(command):
        d = Deferred(lambda d: waiting.remove(d))
        waiting.append(d)
        return d
    view = site_of(operate).getResourceFor(DummyRequest([b"drain"]))
    request = DummyRequest([b""])
    request.method, request.args = b"POST", {b"host": [b"1.2.0.3"]}
    assert view.render(request) == NOT_DONE_YET and not request.finished
    waiting.pop().callback("draining 1.2.0.3")
    assert request.finished and b"".join(request.written) == b"draining 1.2.0.3\n"

    gone = DummyRequest([b""])
    gone.method, gone.args = b"POST", {b"host": [b"1.2.0.3"]}
    assert view.render(gone) == NOT_DONE_YET and len(waiting) == 1
    gone.processingFailed(Exception("connection lost"))
    assert waiting == [] and gone.written == []


def over_http(site, request):
    """The site's answer to ``request`` (bytes of HTTP/1.1) on an in-memory connection: (status line,
    headers, body), and what twisted.web logged meanwhile."""
    protocol = site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    with capturedLogs() as events:
        protocol.dataReceived(request)
    protocol.connectionLost(Failure(ConnectionDone()))
    head, _, body = transport.value().partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status, headers, body, [formatEvent(e) for e in events]


def test_head_answers_the_headers_of_get_without_a_body_and_logs_nothing():
    """Monitors check an endpoint with HEAD: twisted.web would render the GET, eat its body and log
    a warning on each request."""
    registry = CollectorRegistry()
    Gauge("rais_up", "A metric, so that /metrics has a body.", registry=registry).set(1)
    site = control_site(lambda: STATUS, Operator(), registry)
    for path in ("/", "/status", "/status.json", "/metrics", "/page/page.css"):
        ask = f" {path} HTTP/1.1\r\nHost: rais\r\nConnection: close\r\n\r\n".encode()
        status, got, body, _ = over_http(site, b"GET" + ask)
        assert status == "HTTP/1.1 200 OK" and int(got["content-length"]) == len(body) > 0, path
        status, headed, nobody, said = over_http(site, b"HEAD" + ask)
        assert (status, nobody, said) == ("HTTP/1.1 200 OK", b"", []), path
        assert {k: headed[k] for k in ("content-type", "content-length", "cache-control")} == {
            k: got[k] for k in ("content-type", "content-length", "cache-control")}, path
