"""smtp: banner 220, EHLO 250, optionally STARTTLS and EHLO again, QUIT."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from rais.checks import boolean, text
from rais.interfaces import IProbe, Option, Status
from rais.probing.base import BaseProbe, ProbeFailed, Verdict, describe, exception, short, tcp_endpoint, tls_creator


class _Dialogue(LineOnlyReceiver):
    """Says each command once its expected reply is in; any other reply ends it CRITICAL."""

    delimiter = b"\n"  # and a trailing \r is stripped: some servers send bare newlines
    MAX_LENGTH = 4096
    transport: ITLSTransport | None  # a TCP connection, made by tcp_endpoint

    def __init__(self, values: dict[str, Any], server_name: str) -> None:
        self.done: Deferred[Verdict] = Deferred(lambda _: self._connection().abortConnection())
        self._values = values
        self._server_name = server_name
        self._step = "banner"
        self._expected = 220
        self._reply: list[str] = []
        self._banner = ""
        self._secured = False

    def lineReceived(self, raw: bytes) -> None:
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        code = line[:3]
        if not (code.isdigit() and line[3:4] in ("", " ", "-")):
            return self._finish(ProbeFailed(Status.CRITICAL, f"{self._step}: not an SMTP reply: {line!r}"))
        self._reply.append(line[4:])
        if line[3:4] == "-":
            return None  # more lines of this reply follow
        reply, self._reply = " ".join(self._reply), []
        if int(code) != self._expected:
            return self._finish(ProbeFailed(Status.CRITICAL, f"{self._step}: {code} {reply}"))
        self._next(reply)

    def _next(self, reply: str) -> None:
        if self._step == "banner":
            self._banner = f"220 {reply}"
            wanted = self._values["banner"]
            if wanted is not None and wanted not in reply:
                return self._finish(ProbeFailed(Status.CRITICAL, f"banner lacks {wanted!r}: {self._banner}"))
            self._say("EHLO", 250, f"EHLO {self._values['helo']}")
        elif self._step == "EHLO" and self._values["starttls"] and not self._secured:
            self._say("STARTTLS", 220, "STARTTLS")
        elif self._step == "STARTTLS":
            self._connection().startTLS(tls_creator(self._server_name, self._values["verify"]))
            self._secured = True
            self._say("EHLO", 250, f"EHLO {self._values['helo']}")
        elif self._step == "EHLO":
            self._say("QUIT", 221, "QUIT")
        else:
            tls = ", STARTTLS" if self._values["starttls"] else ""
            self._finish((Status.OK, f"{self._banner}{tls}"))

    def _say(self, step: str, expected: int, command: str) -> None:
        self._step, self._expected = step, expected
        self.sendLine(command.encode("ascii", "replace") + b"\r")

    def _finish(self, outcome: Verdict | ProbeFailed) -> None:
        # Abort, not close: nothing is left to say, and a TLS close would
        # wait a round trip for the server's close_notify.
        self._connection().abortConnection()
        if not self.done.called:
            if isinstance(outcome, ProbeFailed):
                self.done.errback(outcome)
            else:
                self.done.callback(outcome)

    def _connection(self) -> ITLSTransport:
        # Lines, the connection's loss and the cancelling of ``done`` all come once tcp_endpoint has connected it.
        assert self.transport is not None
        return self.transport

    def lineLengthExceeded(self, line: bytes) -> None:
        self._finish(ProbeFailed(Status.CRITICAL, f"{self._step}: reply line over {self.MAX_LENGTH} bytes"))

    def connectionLost(self, reason: Failure | None = None) -> None:
        why = f"{describe(exception(reason))}" if reason is not None else "connection lost"
        self._finish(ProbeFailed(Status.CRITICAL, short(f"{self._step}: {why}")))


@implementer(IProbe)
class SmtpProbe(BaseProbe):
    name = "smtp"
    description = "SMTP dialogue: banner 220, EHLO 250, optional STARTTLS, QUIT 221"
    default_port = 25
    options = (
        Option("helo", "name sent with EHLO", text(), "localhost"),
        Option("banner", "text the 220 banner must contain", text(), None),
        Option("starttls", "upgrade to TLS with STARTTLS and greet again", boolean, False),
        Option("verify", "with starttls: check the certificate and its name", boolean, True),
        Option("server_name", "with starttls: TLS server name; default the target address", text(), None),
    )

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        dialogue = _Dialogue(values, values["server_name"] or host)
        connecting = tcp_endpoint(reactor, host, port).connect(Factory.forProtocol(lambda: dialogue))
        return connecting.addCallback(lambda _: dialogue.done)


smtp = SmtpProbe()
