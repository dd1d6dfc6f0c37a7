"""Place together what fails together: the copies one reconcile step must place, jointly.

Pure. When a host dies, every service it ran needs a copy elsewhere in the
same step. Placed one at a time, each on the best host for it alone, several
can land on one host (the best for all of them), pushing it over a
policy's max_cpu. ``place_jointly`` counts each copy's learned cost
(rais.costs) on the host it is placed on, and searches for an assignment on
which every copy fits (no host goes over the max_cpu or max_net_mbps of the
policies of the copies placed there): depth first, the costliest copies
first (they have the fewest hosts to go to), each copy's hosts in the
planner's order, so the first assignment found is the planner's own choice
wherever that choice leaves room for the rest. A branch ends as soon as a
copy fits nowhere, or the copies left cost more than the room left on every
host. The search is bounded (``WORK`` host scorings); past that, or when no
assignment fits everything, the copies are placed one at a time in the
order they were asked for, each on the best host it fits on, else the best
that qualifies (rais.planner.place_copies), as before joint placement.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import attrs

from rais.ids import HostClusterId
from rais.planner import (
    NONE_ADDED,
    Added,
    Placement,
    Ranking,
    Score,
    Spares,
    View,
    candidates,
    explain,
    limits,
    misfit,
    place_copies,
)
from rais.states import HostStatus

WORK = 20_000  # host scorings the search may make before the copies are placed one at a time
# Copies one step searches for jointly, at most: past that (a host that ran hundreds of services),
# the search's depth alone would be too much, and they are placed one at a time.
MAX_JOINT = 64


@attrs.frozen
class Wanted:
    """Copies of one service the step must place, with what rais.planner.place needs to know."""

    service: str
    count: int
    exclude: Mapping[HostClusterId, str] = attrs.field(factory=dict)
    origin: HostClusterId | None = None  # the host it leaves
    prefer: HostClusterId | None = None


class _TooBig(Exception):
    """The search ran out of work."""


def place_jointly(view: View, wanted: Sequence[Wanted], master: HostClusterId | None = None,
                  spares: Spares | None = None, added: Mapping[HostClusterId, Added] | None = None,
                  work: int = WORK) -> list[Placement]:
    """Placements for every copy ``wanted`` asks for, in the order to give them, each counting
    the costs placed before it; ``added``, what the step put on hosts before. At most one
    degraded placement per service, for the copies no host qualifies for."""
    units = sorted((w for w in wanted for _ in range(w.count)), key=lambda w: -view.cost(w.service).cpu)
    start = dict(added or {})
    path = None
    # With no learned cost among them, a copy takes no room from the others: nothing to search.
    if 1 < len(units) <= MAX_JOINT and any(view.cost(w.service).samples for w in units):
        try:
            path = _Search(view, units, master, work).run(0, start, {w.service: {} for w in wanted}, frozenset(),
                                                          spares)
        except _TooBig:
            pass
    if path is None:
        return _one_at_a_time(view, wanted, master, spares, start)
    jointly = sum(1 for _, best, _ in path if best is not None) > 1
    placements = []
    for ranking, best, before in path:
        passed = []
        if jointly and best is not None:
            # Hosts it would have fitted on, before the one it takes: the search kept them for others.
            passed = [s.host for s in ranking.order[:ranking.order.index(best)]
                      if misfit(view, ranking.service, s.host, before.get(s.host, NONE_ADDED)) is None]
        placements.append(explain(view, ranking, best, before, passed))
    return placements


def _one_at_a_time(view: View, wanted: Sequence[Wanted], master: HostClusterId | None, spares: Spares | None,
                   added: dict[HostClusterId, Added]) -> list[Placement]:
    placements: list[Placement] = []
    for w in wanted:
        done = place_copies(view, w.service, w.count, w.exclude, w.origin, master, w.prefer, spares, added)
        placements += done
        for p in done:
            if spares is not None and p.host is not None:
                spares = spares.taken(p.host)
    return placements


# A copy's candidates, the host it takes (None: none qualifies), and what the step added before it.
_Placed = tuple[Ranking, Score | None, Mapping[HostClusterId, Added]]


class _Search:
    def __init__(self, view: View, units: list[Wanted], master: HostClusterId | None, work: int) -> None:
        self.view, self.units, self.master, self.work = view, units, master, work
        # Lower bounds for the pruning: what the copies from each position on cost, and the hosts
        # that could take any of them.
        costs = [view.cost(w.service).cpu for w in units]
        self.rest = [*itertools.accumulate(reversed(costs), initial=0.0)][::-1]
        # Only the hosts that could take one of them count as room for them.
        self.hosts = sorted({r.host for w in units for r in view.services(w.service)
                             if view.status(r.host) == HostStatus.UP})
        self.ceiling = max((limits(view.policy(w.service))[0] for w in units), default=math.inf)

    def run(self, k: int, added: dict[HostClusterId, Added], taken: dict[str, dict[HostClusterId, str]],
            degraded: frozenset[str], spares: Spares | None) -> list[_Placed] | None:
        """The steps for copies ``k`` onwards, given the hosts taken so far (per service) and the
        services no host qualifies for; None when they cannot all fit."""
        if k == len(self.units):
            return []
        if self.rest[k] > self._room(added) + 1e-9:
            return None
        unit = self.units[k]
        if unit.service in degraded:  # an earlier copy found no host: nor will this one
            return self.run(k + 1, added, taken, degraded, spares)
        chosen = taken[unit.service]
        ranking = candidates(self.view, unit.service, {**unit.exclude, **chosen}, unit.origin, self.master,
                             unit.prefer, spares, added)
        self.work -= len(ranking.scores)
        if self.work < 0:
            raise _TooBig
        if not ranking.order:  # no host qualifies: degraded, whatever the others do
            rest = self.run(k + 1, added, taken, degraded | {unit.service}, spares)
            return None if rest is None else [(ranking, None, added), *rest]
        cost, policy = self.view.cost(unit.service), self.view.policy(unit.service)
        for score in ranking.order:
            host = score.host
            if misfit(self.view, unit.service, host, added.get(host, NONE_ADDED)) is not None:
                continue
            rest = self.run(k + 1, {**added, host: added.get(host, NONE_ADDED).plus(cost, policy)},
                            {**taken, unit.service: {**chosen, host: "chosen for another copy"}}, degraded,
                            None if spares is None else spares.taken(host))
            if rest is not None:
                return [(ranking, score, added), *rest]
        return None

    def _room(self, added: Mapping[HostClusterId, Added]) -> float:
        """The most CPU the hosts could still take within the highest limit of the copies."""
        view = self.view
        return sum(max(0.0, min(self.ceiling, added.get(h, NONE_ADDED).max_cpu) - (view.cpu(h) or 0.0)
                       - added.get(h, NONE_ADDED).cost.cpu) for h in self.hosts)

