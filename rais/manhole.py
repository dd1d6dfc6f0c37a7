"""The telnet manhole: a Python prompt inside the running node, for operators (README, "Manhole").

Built as twisted.conch.manhole_tap builds one: telnet, a login checked by a
portal (rais.passwords' checker), then a Manhole whose namespace holds the
node and helpers; the plain one, as the coloured one redraws the whole line
at every key, which makes a telnet session hard to read back. Whatever is
typed runs on the reactor thread: a line that blocks stops the node, so the
helpers return Deferreds for slow work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from twisted.conch import manhole, telnet
from twisted.conch.insults import insults
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, ServerFactory
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from rais import dryrun, planner
from rais.config import parse_hostport
from rais.daemon import NodeService
from rais.interfaces import ProbeResult
from rais.passwords import PasswdFileChecker
from rais.probing.runner import run_probe
from rais.status import situation

Namespace = dict[str, Any]


class Text(str):
    """Text the prompt shows as it reads, not as a quoted repr with \\n in it."""

    def __repr__(self) -> str:
        return str(self)


def namespace(service: NodeService, reactor: Any) -> Namespace:
    """What an operator finds at the prompt (the node service must have started)."""
    node, registry = service.node, service.registry
    assert node is not None and registry is not None  # started before the manhole, in rais.tap

    def plan(fail: str | None = None) -> Text:
        """What `rais plan [--fail HOST[:SERVICE]]` would say, from this node's status now."""
        doc = json.loads(json.dumps(service.status()))  # exactly what `rais plan --control` reads
        failure = dryrun.parse_failure(fail) if fail is not None else None
        now = situation(doc)
        return Text(dryrun.changes_text(now, dryrun.plan(now, failure), failure))

    def probe(name: str, target: str, timeout: float = 10.0, **options: Any) -> Deferred[ProbeResult]:
        """Run probe ``name`` once against ``target`` ("HOST:PORT"), as `rais probe` does."""
        chosen = registry.lookup(name)
        host, port = parse_hostport(target)
        problems = chosen.validate(options)
        if problems:
            raise ValueError("; ".join(f"{key}: {why}" for key, why in sorted(problems.items())))
        return run_probe(reactor, chosen, host, port, options, timeout)

    return {
        "node": node,
        "tables": node.tables,
        "service": service,
        "planner": planner,
        "probes": registry,
        "reactor": reactor,
        "plan": plan,
        "probe": probe,
    }


class _Manhole(manhole.Manhole):
    """A manhole whose ``tables`` is the node's current tables at every line, not those at login."""

    def __init__(self, names: Namespace, service: NodeService) -> None:
        super().__init__(names)
        self.service = service

    def lineReceived(self, line: bytes) -> None:
        assert self.service.node is not None and self.namespace is not None
        self.namespace["tables"] = self.service.node.tables
        super().lineReceived(line)


class _Bootstrap(telnet.TelnetBootstrapProtocol):
    """The telnet session of a logged-in user, asking the client for a line mode without TRAPSIG.

    Twisted asks for TRAPSIG, and a client that honours it (Debian's telnet does) sends Ctrl-D,
    Ctrl-\\ and Ctrl-Z as the telnet commands EOF, ABORT and SUSP, which twisted.conch.telnet
    cannot parse (twisted#5381: "Stumped", and the session is dropped), and Ctrl-C as IP, which it
    ignores. Without it the client sends them as the plain keys the manhole handles, as over ssh:
    Ctrl-D ends the session on an empty line, Ctrl-C abandons the line.
    """

    def enableRemote(self, opt: bytes) -> bool:
        if opt == telnet.LINEMODE:
            transport = cast(telnet.TelnetTransport, self.transport)  # what a bootstrap always runs in
            transport.requestNegotiation(telnet.LINEMODE, telnet.MODE + b"\0")  # no EDIT, no TRAPSIG
            return True
        return super().enableRemote(opt)


@implementer(IRealm)
class _Realm:
    """A logged-in telnet user gets a terminal running the manhole."""

    def __init__(self, make: Callable[[], Namespace], service: NodeService) -> None:
        self.make = make
        self.service = service

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Callable[[], None]]:
        if telnet.ITelnetProtocol not in interfaces:
            raise NotImplementedError("the manhole speaks telnet only")
        shell = _Bootstrap(insults.ServerProtocol, _Manhole, self.make(), self.service)
        return telnet.ITelnetProtocol, shell, lambda: None


def manhole_factory(service: NodeService, reactor: Any, passwd: str) -> Factory:
    """The telnet server of the manhole, logging users in by the password file ``passwd``."""
    pool = reactor.getThreadPool()
    checker = PasswdFileChecker(passwd, lambda f, *args: deferToThreadPool(reactor, pool, f, *args))
    portal = Portal(_Realm(lambda: namespace(service, reactor), service), [checker])
    factory = ServerFactory()
    factory.protocol = lambda: telnet.TelnetTransport(telnet.AuthenticatingTelnetProtocol, portal)
    return factory
