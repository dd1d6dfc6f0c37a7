"""The kit for writing a probe: BaseProbe, its guard, and connection helpers.

For probe authors (the built-ins in ``probes/`` and drop-ins): subclass
:class:`BaseProbe`, declare options checked with :mod:`rais.checks`, and
write ``attempt``; :func:`guarded` turns whatever the attempt does into a
:class:`ProbeResult` within the timeout. :func:`tcp_endpoint` and
:func:`tls_creator` connect the way every built-in does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

from OpenSSL import SSL
from twisted.internet import error
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from rais.interfaces import REQUIRED, Option, ProbeResult, Status

log = Logger()


def read_options(spec: Sequence[Option], raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Check ``raw`` against ``spec``: (values with defaults filled in, problems by option name)."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for option in spec:
        given = raw.get(option.name, option.default)
        if given is None or given is REQUIRED:
            if given is REQUIRED:
                problems[option.name] = "missing required key"
            values[option.name] = None
            continue
        try:
            values[option.name] = option.check(given)
        except ValueError as e:
            problems[option.name] = str(e)
    taken = ", ".join(option.name for option in spec) or "none"
    for key in raw:
        if all(key != option.name for option in spec):
            problems[key] = f"unknown key (neither a service key nor an option of this probe: {taken})"
    return values, problems


# --- running a check ----------------------------------------------------------

# What a probe's attempt settles on; the latency is measured around it.
Verdict: TypeAlias = tuple[Status, str]

DETAIL_LIMIT = 200  # characters of detail kept: a status line, not a log


class ProbeFailed(Exception):
    """Raised (or errbacked) by an attempt for an expected bad outcome."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# Errors that mean "the target is unwell", not "the probe is broken".
_TARGET_ERRORS = (error.ConnectError, error.ConnectionClosed, OSError, SSL.Error)


def describe(e: BaseException) -> str:
    """A target error in a few words: "connection was refused by other side"."""
    if isinstance(e, SSL.Error):
        reasons = [reason for _, _, reason in e.args[0]] if e.args and isinstance(e.args[0], list) else []
        return "TLS: " + (", ".join(reasons) or str(e))
    if isinstance(e, error.DNSLookupError):
        return str(e).rstrip(".")  # names the host
    doc = type(e).__doc__
    if isinstance(e, (error.ConnectError, error.ConnectionClosed)) and doc:
        # Twisted's messages repeat themselves; the class's first doc line says it.
        what = doc.strip().split("\n", 1)[0].rstrip(".")
        return what[0].lower() + what[1:]
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def exception(failure: Failure) -> BaseException:
    """The exception ``failure`` holds (Twisted types ``Failure.value`` as optional; a built Failure always has one)."""
    assert failure.value is not None
    return failure.value


def short(text: str) -> str:
    """The first line of ``text``, trimmed to a status line."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= DETAIL_LIMIT else line[: DETAIL_LIMIT - 3] + "..."


def guarded(reactor: Any, timeout: float, name: str,
            attempt: Callable[[], Deferred[Verdict] | Deferred[ProbeResult] | Verdict | ProbeResult],
            ) -> Deferred[ProbeResult]:
    """Run ``attempt`` and turn whatever it does into a ProbeResult within ``timeout``.

    A Verdict gets the elapsed time as latency; a ProbeResult is kept as it
    is. Past the timeout the attempt is cancelled (its canceller closes what
    it opened) and the result is CRITICAL; target errors are CRITICAL, any
    other exception UNKNOWN and logged, since it is a bug in the probe.
    """
    started = reactor.seconds()

    def timed_out(result: object, seconds: float) -> Failure:
        # Whatever the cancelled attempt ended with, the news is the timeout.
        return Failure(ProbeFailed(Status.CRITICAL, f"timed out after {seconds:g} s"))

    def settled(result: Any) -> ProbeResult:
        if isinstance(result, ProbeResult):
            return result
        status, detail = result  # a malformed verdict fails here and becomes UNKNOWN below
        return ProbeResult(Status(status), reactor.seconds() - started, short(detail))

    def failed(failure: Failure) -> ProbeResult:
        e = exception(failure)
        if isinstance(e, ProbeFailed):
            status, detail = e.status, e.detail
        elif isinstance(e, _TARGET_ERRORS):
            status, detail = Status.CRITICAL, describe(e)
        else:
            log.failure("Probe {probe} failed with an unexpected error", failure, probe=name)
            status, detail = Status.UNKNOWN, f"probe error: {type(e).__name__}: {failure.getErrorMessage()}"
        return ProbeResult(status, reactor.seconds() - started, short(detail))

    d = maybeDeferred(attempt)
    d.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
    return d.addCallback(settled).addErrback(failed)


class BaseProbe:
    """The usual way to write a probe: declare options, write ``attempt``.

    Subclasses set ``name``, ``description``, ``default_port`` and
    ``options``, may add cross-option rules in ``cross_check``, and
    implement ``attempt``, which returns a Deferred of a Verdict (or raises
    :class:`ProbeFailed`), with a canceller that closes what it opened.
    """

    name: str
    description: str
    default_port: int | None = None
    options: tuple[Option, ...] = ()

    def validate(self, options: Mapping[str, Any]) -> dict[str, str]:
        return self._read(options)[1]

    def check(self, reactor: Any, host: str, port: int, options: Mapping[str, Any],
              timeout: float) -> Deferred[ProbeResult]:
        def attempt() -> Deferred[Verdict]:
            values, problems = self._read(options)
            if problems:
                raise ProbeFailed(Status.UNKNOWN, "bad options: " + "; ".join(
                    f"{key}: {message}" for key, message in problems.items()))
            return self.attempt(reactor, host, port, values, timeout)

        return guarded(reactor, timeout, self.name, attempt)

    def cross_check(self, values: dict[str, Any]) -> dict[str, str]:
        """Problems between options, once each option is good on its own."""
        return {}

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        raise NotImplementedError

    def _read(self, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        values, problems = read_options(self.options, options)
        return values, problems or self.cross_check(values)


# --- connecting -----------------------------------------------------------------


def tcp_endpoint(reactor: Any, host: str, port: int) -> IStreamClientEndpoint:
    """A quiet TCP client endpoint; an address literal skips name resolution (and its thread).

    It keeps the endpoints' own 30 s connect timeout only as a backstop: the
    probe's deadline (see :func:`guarded`) cancels a connect long before.
    """
    if isIPAddress(host):
        return Quiet(TCP4ClientEndpoint(reactor, host, port))
    if isIPv6Address(host):
        return Quiet(TCP6ClientEndpoint(reactor, host, port))
    return Quiet(HostnameEndpoint(reactor, host, port))


@implementer(IStreamClientEndpoint)
class Quiet:
    """Connects through ``endpoint`` with the factory's ``noisy`` off: a probe connects every
    check, and Twisted logs each factory's start and stop ("Starting factory ...") otherwise."""

    def __init__(self, endpoint: IStreamClientEndpoint) -> None:
        self._endpoint = endpoint

    def connect(self, factory: Any) -> Deferred[Any]:
        factory.noisy = False
        return self._endpoint.connect(factory)


@implementer(IOpenSSLClientConnectionCreator)
class _Unverified:
    """TLS that accepts any certificate: for self-signed services checked on purpose."""

    def __init__(self, server_name: str) -> None:
        self._context = CertificateOptions(verify=False).getContext()
        self._server_name = server_name

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if not (isIPAddress(self._server_name) or isIPv6Address(self._server_name)):
            connection.set_tlsext_host_name(self._server_name.encode("idna"))  # SNI
        connection.set_connect_state()
        return connection


def tls_creator(server_name: str, verify: bool) -> IOpenSSLClientConnectionCreator:
    """Client TLS for ``server_name``: the system's trust roots and a name check, or none at all."""
    return optionsForClientTLS(server_name) if verify else _Unverified(server_name)
