"""The interfaces: the probe plugin contract (what a probe is, declares and returns), IEffects, and
ILoadSource (where a node's load figures come from).

A probe is an object providing :class:`IProbe` in a module of the ``probes``
package (or of a folder listed in ``[probes] paths``); ``rais.probing.discover`` finds
it with ``twisted.plugin``. Because ``IProbe`` extends ``IPlugin``, declaring
``@implementer(IProbe)`` on its class is all the plugin system needs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from twisted.plugin import IPlugin
from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from rais.effects import RunAction
    from rais.probing.schedule import ProbeOrder
    from rais.tables import Tables


class Status(enum.IntEnum):
    """A probe's verdict; the values are the Nagios plugin exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@attrs.frozen
class ProbeResult:
    """One check of one target: verdict, seconds it took, one short line of why."""

    status: Status
    latency: float
    detail: str


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


# The default of an option the service must set.
REQUIRED: Any = _Required()


@attrs.frozen
class Option:
    """One option a probe takes (a key of ``[services.NAME]``).

    ``check`` turns the TOML value into the value the probe uses, or raises
    ``ValueError`` whose message says what is wrong, as the config's own
    keys do (``PATH: services.web.path: must not be empty``). ``default`` is
    a TOML value too (checked like a given one), None for an option that
    may be left out (the probe then sees None), or REQUIRED.
    """

    name: str
    description: str
    check: Callable[[Any], Any]
    default: Any = None


class IProbe(IPlugin):
    """A kind of health check, run by the master against one service of one host."""

    name = Attribute("Short unique name used as `probe = NAME` in a [services.NAME] table.")
    description = Attribute("One line saying what the probe checks.")
    default_port = Attribute("Port probed when the service sets none, or None if one is required.")
    options = Attribute("tuple of Option: every option the probe takes, for validation and docs.")

    def validate(options: Mapping[str, Any]) -> dict[str, str]:
        """Check a service's probe options (a mapping of TOML values).

        Return a dict of option name -> what is wrong, empty when the
        options are good; unknown option names are problems too.
        """

    def check(reactor: Any, host: str, port: int, options: Mapping[str, Any],
              timeout: float) -> Deferred[ProbeResult]:
        """Check ``host``:``port`` once with validated ``options``.

        Return a Deferred that fires with a :class:`ProbeResult` within
        ``timeout`` seconds and never fails: a failure of the target is a
        CRITICAL result, a failure of the probe itself UNKNOWN. It must not
        block ``reactor`` (the only reactor it may use) and must leave no
        timer, socket or process behind once it has fired.
        """


class IEffects(Interface):
    """What a node's decisions need done in the world (see rais.effects.Driver).

    The daemon provides one that seals and multicasts, saves to disk and runs
    commands; the simulator one that does all of it in memory.
    """

    def send(message: Any, term: int) -> None:
        """Seal ``message`` with this node's id, boot epoch and ``term``, and multicast it."""

    def persist(tables: Tables) -> None:
        """Keep this replica of the tables (a rais.tables.Tables) on disk."""

    def run(action: RunAction) -> Deferred[tuple[bool, str]]:
        """Start a rais.effects.RunAction; return a Deferred that fires with (ok, detail), never fails."""

    def probe(order: ProbeOrder) -> Deferred[ProbeResult]:
        """Start one check (a ProbeOrder); return a Deferred that fires with a ProbeResult, never fails."""

    def notify(words: tuple[str, ...]) -> None:
        """Run the operator's notify command with ``words`` as its arguments."""

    def log(event: Any) -> None:
        """Tell operators about a rais.effects.Event."""

    def answered(answer: Any) -> None:
        """The answer (a rais.commands.Answered) to an operator's command asked through this node."""


@attrs.frozen
class LoadFigures:
    """One reading of a load source: the CPU busy share of what this node may use (0..1), and network
    bytes/s in and out; None for a figure the source does not measure, or could not now (the host's
    figure stands in for it)."""

    cpu: float | None = None
    rx: float | None = None
    tx: float | None = None


class ILoadSource(Interface):
    """Where a node's load figures come from (rais.load)."""

    name = Attribute("What it reads, for the log: 'cgroup /sys/fs/cgroup/rais', 'command cat /run/load'.")
    smoothed = Attribute("True if its figures are averaged over rais.settings.SMOOTHING seconds before a heartbeat "
                         "carries them (a raw measurement), False if they are carried as given.")

    def read(now: float) -> LoadFigures:
        """The figures now, once a heartbeat, on the reactor: it must not block."""

    def stop() -> None:
        """Let go of whatever it holds (a command running), for good: the node is stopping."""
