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


def get(site, path):
    request = DummyRequest(path.encode().split(b"/")[1:] or [b""])
    body = site.getResourceFor(request).render(request)
    return request.responseHeaders.getRawHeaders(b"content-type")[0].decode(), body.decode()


def test_the_site_serves_the_status_page_its_files_and_the_text_status():
    site = control_site(lambda: {"self": "1.2.0.1", "role": "master", "master": None, "address": "10.0.0.1",
                                 "cluster": "1.2", "term": 1, "generation": 0, "priority": 100, "hosts": []},
                        lambda service, host: "ok", CollectorRegistry())
    kind, page = get(site, "/")
    assert kind == "text/html; charset=utf-8" and '<meta name="viewport"' in page
    for path, kind in (("/page/page.js", "text/javascript"), ("/page/page.css", "text/css")):
        served, body = get(site, path)
        assert served.startswith(kind) and body and f'"{path[1:]}"' in page
    kind, text = get(site, "/status")
    assert kind.startswith("text/plain") and text.startswith("node 1.2.0.1  cluster 1.2  role master")
