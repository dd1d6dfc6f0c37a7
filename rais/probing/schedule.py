"""The master's probe schedule and the rise/fall rule, as plain objects.

Pure: no reactor. The master's node (rais.node) keeps a ProbeSchedule and
a Health per service; the reactor shell asks it for due checks every POLL
seconds and runs them (rais.probing.runner). Every service gets its own
phase within its interval (a hash of its host and name), so a thousand
services probed every 5 s make a steady 200 probes a second, not a burst
every 5 s. ``take`` hands out the checks that are due, never more than the
concurrency allows; the shell runs them and reports back with ``done``. A
service changes state only after ``rise`` successes or ``fall`` failures
in a row (keepalived's and HAProxy's rule), so one lost probe never moves
anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import attrs

from rais.ids import HostClusterId
from rais.states import ANSWERING, Result
from rais.wire.rows import ServiceRow

# How often the schedule is looked at: phases are spread over each interval,
# so this is the granularity of the spreading.
POLL = 0.1


@attrs.frozen
class ProbeDefaults:
    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    concurrency: int = 32


@attrs.frozen
class Settings:
    interval: float
    timeout: float
    rise: int
    fall: int

    @classmethod
    def of(cls, row: ServiceRow, defaults: ProbeDefaults) -> Settings:
        c = row.checks
        return cls(
            c.interval_ms / 1000 if c.interval_ms else defaults.interval,
            c.timeout_ms / 1000 if c.timeout_ms else defaults.timeout,
            c.rise or defaults.rise,
            c.fall or defaults.fall,
        )


Key = tuple[HostClusterId, str]


@attrs.frozen
class ProbeOrder:
    """One check for the shell to run."""

    key: Key
    probe: str
    address: str
    port: int | None
    options: dict
    timeout: float
    interval: float


def phase(key: Key, interval: float) -> float:
    digest = hashlib.sha256(f"{key[0].value}/{key[1]}".encode()).digest()
    return int.from_bytes(digest[:8]) / 2**64 * interval


class ProbeSchedule:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._next: dict[Key, float] = {}
        self._running: set[Key] = set()

    def take(self, now: float, services: Iterable[tuple[Key, float]]) -> list[Key]:
        """The checks to start now; ``services`` are every (key, interval) to probe."""
        due = []
        alive = set()
        for key, interval in services:
            alive.add(key)
            at = self._next.get(key)
            if at is None:
                # First sight: start at this service's phase within the next interval.
                at = self._next[key] = now - now % interval + phase(key, interval)
                if at < now:
                    at = self._next[key] = at + interval
            if at <= now and key not in self._running:
                due.append((at, key, interval))
        for gone in self._next.keys() - alive:
            del self._next[gone]  # no longer declared: forget it
        due.sort(key=lambda d: d[0])  # the most overdue first
        started = []
        for at, key, interval in due[: max(0, self.concurrency - len(self._running))]:
            self._running.add(key)
            # Keep the phase: skip whole intervals missed while busy, never burst to catch up.
            missed = int((now - at) // interval) + 1
            self._next[key] = at + missed * interval
            started.append(key)
        return started

    def done(self, key: Key) -> None:
        self._running.discard(key)

    @property
    def tracked(self) -> frozenset[Key]:
        """The keys with a next check scheduled: every service seen in the last ``take``."""
        return frozenset(self._next)

    @property
    def running(self) -> int:
        return len(self._running)


@attrs.define
class Health:
    """Consecutive results of one service, and the state they add up to."""

    up: bool | None = None  # None: not enough results yet
    successes: int = 0
    failures: int = 0

    def record(self, result: str, rise: int, fall: int) -> bool | None:
        """Count a probe result; the new state if it changes now, else None."""
        if result in ANSWERING:
            self.successes, self.failures = self.successes + 1, 0
            if self.up is not True and self.successes >= rise:
                self.up = True
                return True
        elif result == Result.CRITICAL:  # "unknown" (the check itself broke) moves nothing either way
            self.successes, self.failures = 0, self.failures + 1
            if self.up is not False and self.failures >= fall:
                self.up = False
                return False
        return None


def options_of(row: ServiceRow) -> dict:
    return json.loads(row.options) if row.options else {}
