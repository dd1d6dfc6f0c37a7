"""What a node is told when it starts: who it is, and how fast the cluster runs.

Plain records, built from the config by the daemon and directly by the
simulator and the tests; every part of the node reads them.
"""

from __future__ import annotations

import attrs

from rais.ids import HostClusterId
from rais.states import Role

# Load figures are averaged over about this many seconds (rais.load): placement acts on sustained
# load (a host must stay over a limit for balance_after), and a sample per 0.2 s heartbeat is mostly
# noise. What a start or stop does to them shows in full only after a while (rais.costs).
SMOOTHING = 5.0


@attrs.frozen(kw_only=True)
class Identity:
    id: HostClusterId
    configured: Role  # the role the config (or --role) asks for
    priority: int = 100
    address: str
    preempt: bool = False


@attrs.frozen(kw_only=True)
class Timing:
    interval: float  # seconds between heartbeats
    dead_after: int  # intervals of silence before a host is down
    quorum: bool = False
    balance_after: float = 30.0  # seconds over max_cpu before a copy is moved off a host
    move_hold: float = 120.0  # seconds between two load moves of one service
    # Seconds a starting cluster listens before its master places services (the config's default
    # is 10; none here, so a simulation whose hosts start together acts at once).
    settle: float = 0.0
    # Free standbys the master keeps (rais.pool); none here, so simulations place by score alone.
    min_spares: int = 0

    @property
    def dead(self) -> float:
        return self.interval * self.dead_after
