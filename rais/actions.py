"""Start, stop and refresh actions: the operator's own commands, run when the master assigns,
releases or asks a holder to announce a service again (and stop, when a host fences itself).

No shell unless the service says ``shell = true``; each command runs in its
own session with the service's ``timeout``, after which its whole process
group is killed; its output is logged. Success is exit status 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from rais.config import ServiceConfig
from rais.process import Ended, exit_code, run_in_session
from rais.wire.schema import clip

log = Logger()


def run_action(reactor: Any, services: Mapping[str, ServiceConfig], action: str,
               service: str) -> Deferred[tuple[bool, str]]:
    """Run ``start``, ``stop`` or ``refresh`` of ``service``; fires with (ok, detail), never errbacks."""
    config = services.get(service)
    command = None if config is None else {"start": config.start, "stop": config.stop,
                                            "refresh": config.refresh}[action]
    if config is None or command is None:  # the node answers such orders itself; this is for a config that changed
        return succeed((False, f"no {action} action for {service}"))
    d = run_in_session(reactor, command.argv)
    timer = reactor.callLater(config.timeout, d.cancel)

    def ended(result: Ended | Failure) -> tuple[bool, str]:
        if timer.active():
            timer.cancel()
        if isinstance(result, Failure):
            return False, f"{action} of {service} timed out after {config.timeout:g}s (process group killed)"
        reason, out, err = result
        code = exit_code(reason)
        text = (out + err).decode("utf-8", "replace").strip()
        log.info("{action} {service}: exit {code}: {output}", action=action, service=service,
                 code=code, output=text[-2000:])
        last = text.rsplit("\n", 1)[-1] if text else ""
        if code == 0:
            done = {"start": "started", "stop": "stopped", "refresh": "refreshed"}[action]
            return True, clip(f"{done} {service}" + (f": {last}" if last else ""), 200)
        how = f"exit status {code}" if code is not None else "killed by a signal"
        return False, clip(f"{action} of {service} failed ({how})" + (f": {last}" if last else ""), 200)

    return d.addBoth(ended)


class Notifier:
    """Runs the operator's notify command once per event, in order, one at a time."""

    def __init__(self, reactor: Any, argv: tuple[str, ...], timeout: float = 10.0) -> None:
        self.reactor = reactor
        self.argv = argv
        self.timeout = timeout
        self._queue: list[list[str]] = []
        self._busy = False

    def __call__(self, *event: str) -> None:
        self._queue.append(list(event))
        if not self._busy:
            self._next()

    def _next(self) -> None:
        if not self._queue:
            self._busy = False
            return
        self._busy = True
        event = self._queue.pop(0)
        d = run_in_session(self.reactor, [*self.argv, *event])
        timer = self.reactor.callLater(self.timeout, d.cancel)

        def ended(result: Ended | Failure) -> None:
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure) or exit_code(result[0]) != 0:
                log.warn("notify {event} did not succeed", event=" ".join(event))

        d.addBoth(ended)
        d.addBoth(lambda _: self._next())
