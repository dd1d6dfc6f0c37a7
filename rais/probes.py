"""Probes at run time: finding the plugins, checking their options, running them.

Three parts, used by three kinds of caller:

- for probe authors: option checks (:func:`text`, :func:`integer`, ...),
  :class:`BaseProbe`, which turns a declared option list into ``validate``
  and a timed, failure-proof ``check``, and connection helpers;
- for the config loader and the CLI: :func:`discover` returns a
  :class:`ProbeRegistry` of every probe found, with every module that failed;
- for the master: :func:`run_probe`, which runs any probe, even a broken
  third-party one, and always fires with a :class:`ProbeResult` in time.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs
from OpenSSL import SSL
from twisted.internet import error
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.logger import ILogObserver, Logger, globalLogPublisher
from twisted.plugin import getCache
from twisted.python.failure import Failure
from twisted.python.modules import getModule
from zope.interface import implementer
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

import probes as _package
from rais.config import _boolean, _choice, _integer, _number, _text
from rais.interfaces import REQUIRED, IProbe, Option, ProbeResult, Status

log = Logger()

# --- option checks ----------------------------------------------------------
# The config file's own checks, so a probe option is worded like any key:
# "PATH: services.web.port: must be 1..65535, got 70000".

text = _text
integer = _integer
number = _number
boolean = _boolean
choice = _choice


def pattern(value: Any) -> re.Pattern[str]:
    """A regular expression (Python syntax), compiled."""

    def parse(source: str) -> re.Pattern[str]:
        try:
            return re.compile(source)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None

    return _text(parse)(value)


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
    if isinstance(e, (error.ConnectError, error.ConnectionClosed)) and type(e).__doc__:
        # Twisted's messages repeat themselves; the class's first doc line says it.
        what = type(e).__doc__.strip().split("\n", 1)[0].rstrip(".")
        return what[0].lower() + what[1:]
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def short(text: str) -> str:
    """The first line of ``text``, trimmed to a status line."""
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= DETAIL_LIMIT else line[: DETAIL_LIMIT - 3] + "..."


def guarded(reactor: Any, timeout: float, name: str,
            attempt: Callable[[], Deferred[Verdict | ProbeResult] | Verdict | ProbeResult]) -> Deferred[ProbeResult]:
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
        if failure.check(ProbeFailed):
            status, detail = failure.value.status, failure.value.detail
        elif failure.check(*_TARGET_ERRORS):
            status, detail = Status.CRITICAL, describe(failure.value)
        else:
            log.failure("Probe {probe} failed with an unexpected error", failure, probe=name)
            status, detail = Status.UNKNOWN, f"probe error: {failure.type.__name__}: {failure.getErrorMessage()}"
        return ProbeResult(status, reactor.seconds() - started, short(detail))

    d = maybeDeferred(attempt)
    d.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
    d.addCallback(settled)
    d.addErrback(failed)
    return d


def run_probe(reactor: Any, probe: IProbe, host: str, port: int | None, options: Mapping[str, Any],
              timeout: float) -> Deferred[ProbeResult]:
    """Check ``host``:``port`` (or the probe's default port) once with any probe.

    The probe's own check should keep its contract; this also holds a
    third-party probe that raises, errbacks, returns junk or hangs to it:
    the Deferred fires with a ProbeResult within ``timeout`` plus a little.
    """
    where = port if port is not None else probe.default_port
    if where is None:
        return succeed(ProbeResult(Status.UNKNOWN, 0.0, f"probe {probe.name} needs a port"))
    return guarded(reactor, timeout + GUARD_SLACK, probe.name,
                   lambda: probe.check(reactor, host, where, options, timeout))


# Lets a probe's own timeout win over the outer guard of run_probe.
GUARD_SLACK = 0.25


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
    """A TCP client endpoint; an address literal skips name resolution (and its thread).

    It keeps the endpoints' own 30 s connect timeout only as a backstop: the
    probe's deadline (see :func:`guarded`) cancels a connect long before.
    """
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port)
    return HostnameEndpoint(reactor, host, port)


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


# --- discovery ------------------------------------------------------------------

# The package's own folders (this source tree or the installed copy, plus
# any `probes` folder elsewhere on sys.path); [probes] paths come after them.
_BUILTIN_PATH = tuple(_package.__path__)


@attrs.frozen
class LoadFailure:
    """A probe module that could not be used, and why."""

    file: str
    reason: str


class UnknownProbe(LookupError):
    pass


@attrs.frozen
class ProbeRegistry:
    """Every probe found, by name, with the file it came from, and every failure."""

    probes: Mapping[str, IProbe]
    sources: Mapping[str, str]
    failures: tuple[LoadFailure, ...]

    def lookup(self, name: str) -> IProbe:
        """The probe called ``name``; UnknownProbe says what exists and what failed to load."""
        try:
            return self.probes[name]
        except KeyError:
            pass
        known = ", ".join(sorted(self.probes)) or "none"
        broken = [f"{f.file}: {f.reason}" for f in self.failures
                  if os.path.splitext(os.path.basename(f.file))[0] == name]
        because = f"; {'; '.join(broken)}" if broken else ""
        raise UnknownProbe(f"unknown probe {name!r} (found: {known}){because}")

    def service_problems(self, name: str, options: Mapping[str, Any],
                         has_port: bool = True) -> list[tuple[str, str]]:
        """A service's probe problems, as (key, what is wrong): ``probe``, ``port`` or an option."""
        try:
            probe = self.lookup(name)
        except UnknownProbe as e:
            return [("probe", str(e))]
        problems = sorted(probe.validate(options).items())
        if not has_port and probe.default_port is None:
            problems.insert(0, ("port", f"missing required key (probe {name} has no default port)"))
        return problems


def discover(paths: Sequence[str] = ()) -> ProbeRegistry:
    """Find every probe in the ``probes`` package and in the folders ``paths``.

    The folders are searched after the built-ins (a module named like an
    earlier one is reported as shadowed, not loaded). A module that fails
    to import, a plugin that fails ``verifyObject(IProbe, ...)`` and a second
    probe of one name are failures; every other probe still loads.
    """
    _package.__path__[:] = [*_BUILTIN_PATH, *(p for p in paths if p not in _BUILTIN_PATH)]
    failures = _shadowed(_package.__path__)
    # In search order, so of two probes with one name the earlier one wins.
    candidates = {m.filePath.path: m.name for m in getModule(_package.__name__).iterModules()}
    files = {module: file for file, module in candidates.items()}
    found: dict[str, IProbe] = {}
    sources: dict[str, str] = {}
    with _logged_failures() as import_errors:
        # getCache is what getPlugins(IProbe, probes) walks; used directly,
        # it also names the module each plugin comes from.
        dropins = sorted(getCache(_package).values(), key=lambda d: _search_key(files.get(d.moduleName, "")))
        for dropin in dropins:
            for plugin in dropin.plugins:
                file = files.get(dropin.moduleName, dropin.moduleName)
                try:
                    probe = IProbe(plugin, None)
                    if probe is not None:
                        verifyObject(IProbe, probe)
                except Invalid as e:
                    failures.append(LoadFailure(file, f"{plugin.name}: does not provide IProbe: {short(str(e))}"))
                    continue
                except Exception as e:  # a module broken since its cache entry was written
                    failures.append(LoadFailure(file, _reason(e)))
                    continue
                if probe is None:
                    continue
                if probe.name in found:
                    failures.append(LoadFailure(
                        file, f"{plugin.name}: probe name {probe.name!r} already taken by {sources[probe.name]}"))
                    continue
                found[probe.name] = probe
                sources[probe.name] = file
    for file, module in candidates.items():
        if module not in sys.modules and not any(f.file == file for f in failures):
            reasons = [_reason(f.value) for f in import_errors if _failure_file(f, candidates) == file]
            failures.append(LoadFailure(file, reasons[0] if reasons else "failed to import"))
    return ProbeRegistry(MappingProxyType(dict(sorted(found.items()))), MappingProxyType(sources),
                         tuple(sorted(failures, key=lambda f: f.file)))


def _search_key(file: str) -> tuple[int, str]:
    folder = os.path.dirname(file)
    where = [n for n, path in enumerate(_package.__path__) if os.path.abspath(path) == folder]
    return (where[0] if where else len(_package.__path__)), file


def _shadowed(folders: Sequence[str]) -> list[LoadFailure]:
    seen: dict[str, str] = {}
    failures = []
    for folder in folders:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            module, ext = os.path.splitext(name)
            if ext != ".py" or module == "__init__":
                continue
            file = os.path.join(folder, name)
            if module in seen:
                failures.append(LoadFailure(file, f"shadowed by {seen[module]}: rename it"))
            else:
                seen[module] = file
    return failures


@contextmanager
def _logged_failures() -> Iterator[list[Failure]]:
    """Collect the failures logged meanwhile: getCache logs import errors and goes on."""
    caught: list[Failure] = []

    @implementer(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        # Legacy log.err events (as getCache's) carry "failure", new ones "log_failure".
        failure = event.get("log_failure") or event.get("failure")
        if isinstance(failure, Failure):
            caught.append(failure)

    globalLogPublisher.addObserver(observe)
    try:
        yield caught
    finally:
        globalLogPublisher.removeObserver(observe)


def _failure_file(failure: Failure, candidates: Mapping[str, str]) -> str | None:
    """Which candidate module file an import failure came from."""
    if isinstance(failure.value, SyntaxError) and failure.value.filename in candidates:
        return failure.value.filename
    # The outermost frame in a candidate file is the module being imported.
    return next((frame[1] for frame in failure.frames if frame[1] in candidates), None)


def _reason(e: BaseException) -> str:
    return short(f"{type(e).__name__}: {e}")
