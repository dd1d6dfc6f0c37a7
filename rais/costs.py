"""What a copy of a service costs its host, learned from the steps its starts and stops make.

Pure. The master feeds a ``CostLearner`` each host's load as its heartbeats
say it (``heard``, every tick), and every start or stop it ordered that
completed (``step``). A step opens a window on that host: the figure when
the order completed is the *before*, the figure ``SETTLE`` seconds later the
*after*, and their difference (negated for a stop) is one observation of the
service's cost. The costs table keeps, per service, the running mean of the
observations (an exponential average once there are ``WINDOW`` of them),
never under zero, with how many there were; the planner counts it on the
host a copy is placed on (rais.planner, rais.joint).

Heartbeat figures, not the cpu and network rows: the master rewrites a row
only when it moved past a deadband (rais.mastership), so a row may never
show a 5% service starting. A host smooths its figures over about
``rais.settings.SMOOTHING`` seconds, so a step shows in full only after a while:
after ``SETTLE`` it shows ``REACHED`` of itself, which the observation is
divided by.

Noise: a step is evidence only when nothing else changed on that host from
``SETTLE`` before it to ``SETTLE`` after it: another start or stop there, a
start that failed, a service failing there, the host going out of view. Any
of those closes the host's window without an observation. Load that moves
for reasons of its own (a cron job) cannot be told apart: the average over
several steps is what tames it. A window lives in the master's memory only:
a new master loses the windows open at the failover, never the costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import attrs

from rais.ids import HostClusterId
from rais.settings import SMOOTHING
from rais.states import OrderAction, ServiceState
from rais.wire import Load
from rais.wire.rows import CostRow, ServiceRow

SETTLE = 3 * SMOOTHING  # seconds from a start or stop to reading its effect
REACHED = 1 - math.exp(-SETTLE / SMOOTHING)  # the share of a step a smoothed figure shows by then
WINDOW = 8  # observations averaged evenly; after that, the latest weighs 1/WINDOW


@attrs.frozen
class Cost:
    """A load one copy of a service adds to a host (or several add): a CPU share and bytes/s."""

    cpu: float = 0.0
    net: float = 0.0
    samples: int = 0  # observations it was learned from; 0: not learned (costs nothing, as far as known)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.cpu + other.cpu, self.net + other.net)

    @classmethod
    def of(cls, row: CostRow | None) -> Cost:
        return NOTHING if row is None else cls(row.cpu_permille / 1000, row.net_bps, row.samples)

    def text(self) -> str:
        """``cpu 0.12, 1.5 Mbit/s (5 steps)``: as explanations and `rais status` show it."""
        return (f"cpu {self.cpu:.2f}, {self.net * 8 / 1e6:.1f} Mbit/s "
                f"({self.samples} step{'' if self.samples == 1 else 's'})")


NOTHING = Cost()


@attrs.frozen
class _Window:
    service: str
    sign: int  # +1: a start, -1: a stop
    at: float
    before: Load


class CostLearner:
    """The master's open windows, one per host at most (a second change there spoils both)."""

    def __init__(self) -> None:
        self._figures: dict[HostClusterId, Load] = {}
        self._open: dict[HostClusterId, _Window] = {}
        self._changed: dict[HostClusterId, float] = {}  # the latest change on each host

    def step(self, now: float, host: HostClusterId, service: str, started: bool) -> None:
        """A start (``started``) or a stop of ``service`` completed on ``host``."""
        quiet = now - self._changed.get(host, -math.inf) >= SETTLE
        before = self._figures.get(host)
        self.disturbed(now, host)
        if quiet and before is not None:
            self._open[host] = _Window(service, 1 if started else -1, now, before)

    def disturbed(self, now: float, host: HostClusterId) -> None:
        """Something else changed on ``host``: its window, if open, shows no one step."""
        self._open.pop(host, None)
        self._changed[host] = now

    def heard(self, now: float, figures: Mapping[HostClusterId, Load],
              cost: Callable[[str], CostRow | None]) -> list[CostRow]:
        """The hosts' latest figures (of those up; a host missing from them is out of view); the
        costs the windows that settled teach, over ``cost``, the rows in the tables."""
        for host in set(self._figures) - set(figures):
            self.disturbed(now, host)
        self._figures = dict(figures)
        learned: dict[str, CostRow] = {}
        for host, window in sorted(self._open.items()):
            if now - window.at < SETTLE:
                continue
            del self._open[host]
            before, after = window.before, figures[host]
            cpu = window.sign * (after.cpu_permille - before.cpu_permille) / REACHED
            net = window.sign * (after.net_rx_bps + after.net_tx_bps - before.net_rx_bps - before.net_tx_bps) / REACHED
            name = window.service
            learned[name] = learn(learned.get(name) or cost(name), name, cpu, net)
        return list(learned.values())


def a_step(action: OrderAction, was: ServiceRow | None) -> bool:
    """Whether a start or stop that succeeded made the service's whole load come or go, as the
    committed row (the host's declaration and the probe's state, before the answer) says: a start
    of a copy the host declared running already (starts are idempotent) changes nothing, nor
    does a stop of a copy whose probe had failed."""
    if was is None:
        return False
    if action == OrderAction.ASSIGN:
        return not was.running
    return action == OrderAction.RELEASE and was.state == ServiceState.RUNNING


def learn(old: CostRow | None, name: str, cpu_permille: float, net_bps: float) -> CostRow:
    """The cost with one more observation (a step in permille of CPU and bytes/s): a running mean
    of the first WINDOW, then an exponential average. Observations may be negative (noise, or
    another load that fell meanwhile) and count as they are, so noise averages out; the estimate
    is kept at zero or more."""
    samples = 1 if old is None else old.samples + 1
    weight = 1 / min(samples, WINDOW)
    cpu = 0.0 if old is None else old.cpu_permille
    net = 0.0 if old is None else old.net_bps
    cpu += weight * (cpu_permille - cpu)
    net += weight * (net_bps - net)
    return CostRow(name, min(1000, max(0, round(cpu))), max(0, round(net)), samples)
