"""The local HTTP control endpoint: status.json and a plain-text status page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from rais.statusview import render_status

StatusSource = Callable[[], dict[str, Any]]


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


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1) + "\n"


class QuietSite(Site):
    """No access log: operators and monitors poll the status often."""

    def log(self, request: http.Request) -> None:
        pass


def control_site(status: StatusSource) -> Site:
    root = Resource()
    page = StatusView(status, render_status, b"text/plain; charset=utf-8")
    root.putChild(b"", page)
    root.putChild(b"status", page)
    root.putChild(b"status.json", StatusView(status, _json, b"application/json"))
    site = QuietSite(root)
    site.displayTracebacks = False
    return site
