"""The status page at / on the control endpoint: HTML, CSS and a script shipped in the package.

The page is a shell; its script fetches status.json every second or two and
renders it, so a browser never reloads the page and the document stays the
one source (the same one `rais status` and `rais plan` read). Nothing is
fetched from elsewhere: a control endpoint on an operators' network may have
no way out.
"""

from __future__ import annotations

from importlib.resources import files

from twisted.web.resource import Resource
from twisted.web.server import Request

from rais.readable import Readable

# The page's files, in rais/page/ (package data), and how each is served.
FILES = {
    b"page.css": b"text/css; charset=utf-8",
    b"page.js": b"text/javascript; charset=utf-8",
}


class Asset(Readable):
    """One file of the page, read once when the endpoint starts."""

    isLeaf = True

    def __init__(self, name: str, content_type: bytes) -> None:
        super().__init__()
        self._body = (files("rais") / "page" / name).read_bytes()
        self._content_type = content_type

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self._content_type)
        # A node upgraded in place serves new files: the browser asks again rather than guess.
        request.setHeader(b"cache-control", b"no-cache")
        return self._body


def index() -> Resource:
    """The page itself, for /."""
    return Asset("index.html", b"text/html; charset=utf-8")


def assets() -> Resource:
    """Its style and script, for /page/NAME."""
    folder = Resource()
    for name, content_type in FILES.items():
        folder.putChild(name, Asset(name.decode(), content_type))
    return folder
