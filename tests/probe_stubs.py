"""A probe that breaks its contract in one chosen way, for the tests of the safety nets."""

from __future__ import annotations

import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from rais.interfaces import IProbe, ProbeResult, Status


@implementer(IProbe)
class Flawed:
    """A probe whose name is its flaw: errbacks, blocks, leaks (a timer), lenient (takes any
    option), raises, junk (a result that is not one), hangs; "fine" has none."""

    description = "a flawed probe"
    default_port = 1
    options = ()

    def __init__(self, flaw: str) -> None:
        self.name = flaw

    def validate(self, options):
        return {} if self.name == "lenient" else {key: "unknown key" for key in options}

    def check(self, reactor_, host, port, options, timeout):
        if self.name == "raises":
            raise RuntimeError("bug in the probe")
        if self.name == "errbacks":
            return fail(ConnectionResetError(104, "Connection reset by peer"))
        if self.name == "junk":
            return succeed("fine, probably")
        if self.name == "hangs":
            return Deferred()
        if self.name == "blocks":
            time.sleep(0.2)
        if self.name == "leaks":
            reactor.callLater(60, lambda: None)
        return succeed(ProbeResult(Status.CRITICAL, 0.0, "refused"))
