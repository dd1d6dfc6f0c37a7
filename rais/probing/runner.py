"""Running checks on the reactor: any probe, even a broken third-party one, always answers in time.

:func:`run_probe` runs one probe once (the CLI's ``rais probe``, the
benchmarks); :class:`ProbeRunner` runs a :class:`ProbeOrder` from the
master's schedule by probe name, for the daemon (rais.daemon). Neither
knows about the node: what is due and what a result means are decided in
rais.probing.schedule and rais.mastership.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from rais.interfaces import IProbe, ProbeResult, Status
from rais.probing.base import exception, guarded, short
from rais.probing.discover import ProbeRegistry, UnknownProbe
from rais.probing.schedule import ProbeOrder

# Lets a probe's own timeout win over the outer guard of run_probe.
GUARD_SLACK = 0.25


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


class ProbeRunner:
    """Runs the master's probe orders with the probes of ``registry``."""

    log = Logger()

    def __init__(self, registry: ProbeRegistry, reactor: Any) -> None:
        self.registry = registry
        self.reactor = reactor

    def run(self, order: ProbeOrder) -> Deferred[ProbeResult]:
        """Check ``order`` once; fires with a ProbeResult, never errbacks."""
        d = maybeDeferred(self._start, order)
        d.addErrback(self._broken, order)
        return d

    def _start(self, order: ProbeOrder) -> Deferred[ProbeResult]:
        try:
            probe = self.registry.lookup(order.probe)
        except UnknownProbe:
            # Another host may have the probe; this one cannot tell how the service is.
            return succeed(ProbeResult(Status.UNKNOWN, 0.0, f"no probe named {order.probe!r} here"))
        return run_probe(self.reactor, probe, order.address, order.port, order.options, order.timeout)

    def _broken(self, failure: Failure, order: ProbeOrder) -> ProbeResult:
        # run_probe should never errback; if it does, that is a bug here or in a
        # probe, and UNKNOWN (which moves nothing) still frees the service's slot.
        self.log.failure("probe {probe} of {key} failed", failure, probe=order.probe, key=order.key)
        return ProbeResult(Status.UNKNOWN, 0.0,
                           short(f"probe error: {type(exception(failure)).__name__}: {failure.getErrorMessage()}"))
