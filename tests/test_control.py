"""The control endpoint's resources, rendered in memory (twisted.web's DummyRequest)."""

import json

from prometheus_client import CollectorRegistry
from twisted.web.test.requesthelper import DummyRequest

from rais.control import MoveView, control_site
from rais.ids import HostClusterId


def post(resource, args):
    request = DummyRequest([b""])
    request.method = b"POST"
    request.args = args
    body = resource.render(request)
    return request.responseCode or 200, body.decode()


def test_a_move_names_a_service_and_a_host_and_answers_what_happens_or_why_not():
    asked = []

    def move(service, host):
        asked.append((service, host))
        if service == "mail":
            raise ValueError("no host declares mail")
        return f"moving {service} to {host}"

    view = MoveView(move)
    assert post(view, {b"service": [b"web"], b"host": [b"1.2.0.3"]}) == (200, "moving web to 1.2.0.3\n")
    assert asked == [("web", HostClusterId.parse("1.2.0.3"))]
    assert post(view, {b"service": [b"mail"], b"host": [b"1.2.0.3"]}) == (409, "no host declares mail\n")
    for bad in ({b"service": [b"web"]}, {b"service": [b"web"], b"host": [b"1.2.3"]},
                {b"service": [b"web", b"db"], b"host": [b"1.2.0.3"]}, {b"service": [b"\xff"], b"host": [b"1.2.0.3"]}):
        assert post(view, bad) == (400, "expected one service=NAME and one host=A.B.C.D\n")
    assert len(asked) == 2


def test_the_site_serves_the_status_document_and_the_move():
    site = control_site(lambda: {"role": "master"}, lambda service, host: "ok", CollectorRegistry())
    request = DummyRequest([b"status.json"])
    resource = site.getResourceFor(request)
    assert json.loads(resource.render(request)) == {"role": "master"}
    assert isinstance(site.getResourceFor(DummyRequest([b"move"])), MoveView)
