"""Runs the checks the master's node asks for, with the probe plugins, on the reactor.

The node decides what is due and what a result means (rais.probing,
rais.node); this only starts each check with ``run_probe``, which always
fires in time with a result, and hands the result back.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from rais.interfaces import ProbeResult, Status
from rais.node import Node
from rais.probes import ProbeRegistry, UnknownProbe, run_probe
from rais.probing import ProbeOrder

# How often the schedule is looked at: phases are spread over each interval,
# so this is the granularity of the spreading.
POLL = 0.1


class Prober:
    log = Logger()

    def __init__(self, node: Node, registry: ProbeRegistry, reactor: Any) -> None:
        self.node = node
        self.registry = registry
        self.reactor = reactor

    def poll(self) -> None:
        """Start the checks that are due; the node service calls this every POLL seconds."""
        try:
            orders = self.node.probe_orders(self.reactor.seconds())
        except Exception:  # a bug costs one poll; escaping would stop the loop for good
            self.log.failure("probe scheduling failed")
            return
        for order in orders:
            self._run(order)

    def _run(self, order: ProbeOrder) -> None:
        try:
            probe = self.registry.lookup(order.probe)
        except UnknownProbe:
            self._finish(order, ProbeResult(Status.UNKNOWN, 0.0, f"no probe named {order.probe!r} here"))
            return
        d = run_probe(self.reactor, probe, order.address, order.port, order.options, order.timeout)
        d.addCallback(lambda result: self._finish(order, result))
        d.addErrback(lambda f: self.log.failure("probe {probe} of {key} failed", f,
                                                probe=order.probe, key=order.key))

    def _finish(self, order: ProbeOrder, result: ProbeResult) -> None:
        self.node.probe_result(self.reactor.seconds(), order.key, result.status.name.lower(),
                               result.latency, result.detail)
