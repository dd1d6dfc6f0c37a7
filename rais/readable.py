"""A web resource read with GET, whose HEAD answers the same headers and no body.

twisted.web answers a HEAD from the GET's rendering by eating the body, and logs a warning on every
such request: monitors that check the control endpoint with HEAD would fill the node's log.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request


class Readable(Resource):
    """Subclasses render their GET; HEAD comes with it."""

    def render_GET(self, request: Request) -> bytes:
        raise NotImplementedError

    def render_HEAD(self, request: Request) -> bytes:
        request.setHeader(b"content-length", b"%d" % len(self.render_GET(request)))
        return b""
