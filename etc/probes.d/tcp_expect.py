r"""tcp_expect: send a line to a TCP service and expect a reply that matches a pattern.

A sample drop-in probe, and the one to copy when you write your own. The built-in
tcp probe only connects; this one also asks the service something, the way
HAProxy's `tcp-check send/expect` or Nagios' `check_tcp -s -e` do, without running
a program for every check. For example, Redis answering, and being the master:

    [probes]
    paths = ["/etc/rais/probes.d"]      # this file copied there

    [services.cache]
    probe = "tcp_expect"
    port = 6379
    send = "INFO replication\r\n"      # TOML turns \r\n into CR LF
    expect = "role:master"
    quit = "QUIT\r\n"

or `send = "PING\r\n"` with `expect = '^\+PONG'`; without `send`, the service
speaks first: `expect = '^SSH-2\.0-'`, `expect = '^\* OK'` (IMAP), `'^220 '` (FTP).

Try it by hand: `rais probe tcp_expect 127.0.0.1:6379 -o 'send="PING\r\n"'
-o 'expect=^\+PONG' --config /etc/rais/rais.toml`.

How a probe is found: RAIS imports every module in the folders of `[probes] paths`
(as modules of its `probes` package, so name the file unlike a built-in) and uses
every object in it that provides IProbe. Remember that the *master* runs the checks,
against each host's address: a probe must look at the service over the network,
not at this machine's files or processes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

# Everything a probe needs comes from rais: the option checks (the config's own, so a
# bad option is reported like any bad key), the interface, and the kit in rais.probing.base.
from rais.checks import integer, pattern, text
from rais.interfaces import REQUIRED, IProbe, Option, Status
from rais.probing.base import BaseProbe, ProbeFailed, Verdict, describe, exception, short, tcp_endpoint

# Give up on a reply a little before the probe's timeout: past the timeout BaseProbe
# says only "timed out", and what the service did say is the more useful news.
_OWN_SHARE = 0.9


class _Exchange(Protocol):
    """One connection: send, read until the pattern matches, then close."""

    transport: ITCPTransport | None  # a TCP connection, made by tcp_endpoint

    def __init__(self, reactor: Any, values: dict[str, Any], patience: float) -> None:
        # The canceller runs only if BaseProbe's timeout comes first (say a peer that
        # never reads our quit): it aborts, which closes the socket at once.
        self.done: Deferred[Verdict] = Deferred(lambda _: self._connection().abortConnection())
        self._reactor = reactor
        self._values = values
        self._patience = patience
        self._deadline = reactor.seconds() + patience  # counted from the start, connecting included
        self._reply = bytearray()
        self._outcome: Verdict | ProbeFailed | None = None
        self._timer: IDelayedCall | None = None

    def connectionMade(self) -> None:
        # Use only the reactor passed in, and cancel every timer you start (see _end):
        # the conformance test fails a probe that leaves one behind.
        self._timer = self._reactor.callLater(max(0.0, self._deadline - self._reactor.seconds()), self._give_up)
        if self._values["send"] is not None:
            self._connection().write(self._values["send"].encode())

    def dataReceived(self, data: bytes) -> None:
        if self._outcome is not None:
            return  # decided already, and closing
        limit = self._values["max_bytes"]
        self._reply += data[: limit - len(self._reply)]
        # Replies come in pieces: search all that came so far, every time.
        said = self._said()
        found = self._values["expect"].search(said)
        if found:
            # The detail is the line the match starts on: "+PONG", "role:master".
            start = said.rfind("\n", 0, found.start()) + 1
            self._end((Status.OK, said[start:].split("\n", 1)[0].strip() or found[0]))
        elif len(self._reply) >= limit:
            self._end(ProbeFailed(Status.CRITICAL, self._no_match(" (max_bytes)")))

    def _give_up(self) -> None:
        self._timer = None
        self._end(ProbeFailed(Status.CRITICAL, self._no_match(f" within {self._patience:g} s")))

    def _end(self, outcome: Verdict | ProbeFailed) -> None:
        self._outcome = outcome
        self._stop_timer()
        if not isinstance(outcome, ProbeFailed) and self._values["quit"] is not None:
            self._connection().write(self._values["quit"].encode())  # a polite goodbye, sent before closing
        # Close, and report once the socket is closed (connectionLost), so nothing is left open.
        self._connection().loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._stop_timer()
        outcome = self._outcome
        if outcome is None:  # the service closed (or reset) the connection before a match
            why = describe(exception(reason)) if reason is not None else "connection lost"
            outcome = ProbeFailed(Status.CRITICAL, self._no_match(f", then {why}"))
        if self.done.called:
            return  # cancelled: BaseProbe has reported the timeout already
        if isinstance(outcome, ProbeFailed):
            self.done.errback(outcome)  # BaseProbe turns a ProbeFailed into its status and detail
        else:
            self.done.callback(outcome)

    def _no_match(self, when: str) -> str:
        # One line however the reply looks: repr shows \r\n and binary as escapes.
        heard = f": {self._said()!r}" if self._reply else ""
        return short(f"no match for {self._values['expect'].pattern!r} in {len(self._reply)} bytes{when}{heard}")

    def _said(self) -> str:
        return self._reply.decode("utf-8", "replace")

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _connection(self) -> ITCPTransport:
        # Data, the connection's loss and the cancelling of `done` all come after connectionMade.
        assert self.transport is not None
        return self.transport


@implementer(IProbe)
class TcpExpectProbe(BaseProbe):
    # `probe = "tcp_expect"` in a [services.NAME] table; the name must be unique among probes.
    name = "tcp_expect"
    # One line, shown by `rais probes`.
    description = "sends a line (optional) and expects a reply matching a regular expression"
    # None: every service must say its port (`rais check-config` reports one that does not).
    default_port = None
    # Every key of the service's table other than RAIS's own is an option of its probe. Each is
    # checked when the config is loaded (rais check-config, twistd) and again before each check;
    # unknown keys are refused. The default is a TOML value too; REQUIRED: the service must set it.
    options = (
        Option("send", "text sent once connected (\\r\\n in TOML for CR LF); none: the service speaks first",
               text(), None),
        Option("expect", "regular expression (Python syntax) searched for in the reply; (?m) for ^ and $ at lines",
               pattern, REQUIRED),
        Option("quit", "text sent after a match, before closing (QUIT\\r\\n), so the service logs a clean goodbye",
               text(), None),
        Option("max_bytes", "bytes of reply read while looking for a match", integer(1, 1 << 20), 4096),
    )

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        # BaseProbe calls this with the options checked and defaults filled in. It turns a
        # refused or hung connect into CRITICAL, our ProbeFailed into its status, and a bug
        # here into UNKNOWN (logged), all within the timeout.
        exchange = _Exchange(reactor, values, _OWN_SHARE * timeout)
        connecting = tcp_endpoint(reactor, host, port).connect(Factory.forProtocol(lambda: exchange))
        return connecting.addCallback(lambda _: exchange.done)


# The module-level object RAIS finds: any name will do.
tcp_expect = TcpExpectProbe()
