"""Running a command in its own session, so that on timeout its whole process group dies.

Used by the exec probe and by the start/stop actions. The command runs under
``setsid``, so it leads a new process group; cancelling the Deferred (as a
timeout does) kills that group, children included.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

OUTPUT_LIMIT = 8192  # bytes of each stream kept
SETSID = shutil.which("setsid") or "/usr/bin/setsid"

Ended = tuple[Failure, bytes, bytes]  # why it ended, its output, its error output


class _Run(ProcessProtocol):
    def __init__(self) -> None:
        self.done: Deferred[Ended] = Deferred(self._kill)
        self.group = 0
        self._out = bytearray()
        self._err = bytearray()

    def connectionMade(self) -> None:
        assert self.transport is not None  # makeConnection sets it first
        self.group = self.transport.pid  # setsid made it the leader of its own group
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self._out += data[: OUTPUT_LIMIT - len(self._out)]

    def errReceived(self, data: bytes) -> None:
        self._err += data[: OUTPUT_LIMIT - len(self._err)]

    def processEnded(self, reason: Failure) -> None:
        if not self.done.called:
            self.done.callback((reason, bytes(self._out), bytes(self._err)))

    def _kill(self, _: Deferred[Any]) -> None:
        try:
            os.killpg(self.group, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the whole group has already gone
        # A child that escaped the group may still hold our pipes: stop reading them.
        assert self.transport is not None  # spawnProcess connected it before returning ``done``
        self.transport.loseConnection()


def run_in_session(reactor: Any, argv: Sequence[str]) -> Deferred[Ended]:
    """Start ``argv``; the Deferred fires when it ends, and cancelling it kills its group."""
    run = _Run()
    reactor.spawnProcess(run, SETSID, [SETSID, *argv], env=None, usePTY=False)
    return run.done


def exit_code(reason: Failure) -> int | None:
    """The exit status, 0 for a clean end, None if a signal killed it."""
    return reason.value.exitCode if isinstance(reason.value, ProcessTerminated) else 0
