"""The local HTTP control endpoint: status.json and a plain-text status page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from rais.statusview import render_status

StatusSource = Callable[[], dict[str, Any]]


class StatusJSON(Resource):
    isLeaf = True

    def __init__(self, status: StatusSource) -> None:
        super().__init__()
        self._status = status

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(self._status(), indent=1).encode() + b"\n"


class StatusPage(Resource):
    isLeaf = True

    def __init__(self, status: StatusSource) -> None:
        super().__init__()
        self._status = status

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return render_status(self._status()).encode()


class QuietSite(Site):
    """No access log: operators and monitors poll the status often."""

    def log(self, request: Request) -> None:
        pass


def control_site(status: StatusSource) -> Site:
    root = Resource()
    root.putChild(b"", StatusPage(status))
    root.putChild(b"status", StatusPage(status))
    root.putChild(b"status.json", StatusJSON(status))
    site = QuietSite(root)
    site.displayTracebacks = False
    return site
