"""The failover planner: where one more copy of a service should go, with the reasons.

Pure: a view of the tables in, placements out, each with a score for every
host considered and a human explanation. It answers two questions for
rais.reconcile, which decides when to ask them: which host should take a
copy (``place``, ``place_copies``) and which copies are the worst to keep
(``surplus``).

Candidates are the hosts that declare the service. Hard limits rule a host
out (not up, drained by the operator, put aside by the master, already serving it or starting a copy, over the policy's
max_cpu, max_latency_ms or max_net_mbps, probe failing with no start
action). The rest are scored, higher is better, as a weighted sum of parts
in 0..1 (see ``DEFAULT_WEIGHTS``); ties go to the lower host id.

A service's learned cost (rais.costs) counts where it is placed: the best
host it fits on (its cost, and what this step already put there, keep the
host within every such policy's limits) is chosen, and the best host that
qualifies only when it fits nowhere. What one step places on a host counts
against that host for the rest of the step (``Added``); rais.joint places the
copies one step loses together.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from rais.costs import NOTHING, Cost
from rais.ids import HostClusterId
from rais.states import ANSWERING, HostStatus, Result, Role, ServiceState, Spare
from rais.tables import Tables
from rais.wire.rows import PolicyRow, ServerRow, ServiceRow

NET_SCALE = 125_000_000  # bytes/s: a saturated gigabit link scores 0
DEFAULT_MAX_LATENCY_MS = 50.0  # what latency is scored against when the policy sets no limit
# The CPU share a host with no cpu row yet is scored as: unknown, not idle. Scoring it 0 busy made
# a host that had not yet sent a heartbeat the master wrote down the best place for every service.
UNKNOWN_CPU = 0.5
# The role part of a score, by the policy's `spare`: a standby (serving nothing) before an active
# (serving something), or the other way round; among the standbys, one configured as a standby
# (the operator's spare) before an idle configured active; the master last. A host's role follows
# what it serves (rais.pool).
IDLE = "idle"  # a standby configured active
RESTING = "resting"  # a standby where a service failed a moment ago (rais.pool): not one to count on
_TAKES_SPARES = MappingProxyType({Role.STANDBY: 1.0, IDLE: 0.75, Role.ACTIVE: 0.5, RESTING: 0.25, Role.MASTER: 0.0})
_SPARES_SPARES = MappingProxyType({Role.ACTIVE: 1.0, IDLE: 0.5, Role.STANDBY: 0.25, RESTING: 0.25, Role.MASTER: 0.0})
ROLE_SCORES = MappingProxyType({Spare.PREFER: _TAKES_SPARES, Spare.AVOID: _SPARES_SPARES, Spare.LAST: _SPARES_SPARES})

# How much each part of a score counts, unless a policy's `weights` says otherwise; documented in
# README ("The planner"). These names are the config's weight keys and the wire's Weights fields.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "overlap": 3.0,  # the service already answers there, or its companions run there
    "latency": 2.0,
    "cpu": 2.0,
    "network": 1.0,
    "role": 1.0,
    "stickiness": 1.0,  # it runs there already (declared running): taking it there costs no start
})
WEIGHT_NAMES = tuple(DEFAULT_WEIGHTS)
DRAINED = "drained by the operator"


def weights_for(policy: PolicyRow | None) -> Mapping[str, float]:
    """The weights a service's policy asks for, part by part, over the defaults."""
    if policy is None:
        return DEFAULT_WEIGHTS
    given = {name: value / 1000 for name, value in attrs.asdict(policy.weights).items() if value is not None}
    return {**DEFAULT_WEIGHTS, **given}


@attrs.frozen
class Score:
    host: HostClusterId
    total: float | None  # None: ruled out
    parts: tuple[tuple[str, float], ...] = ()
    reason: str = ""  # why it was ruled out

    @property
    def eligible(self) -> bool:
        return self.total is not None


@attrs.frozen
class Placement:
    """Where one copy of ``service`` goes (``host``), or None when no host qualifies."""

    service: str
    host: HostClusterId | None
    explanation: str
    scores: tuple[Score, ...] = ()


class View:
    """The parts of the tables the planner reads, indexed once per snapshot."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.servers: dict[HostClusterId, ServerRow] = {r.host: r for r in tables.table("servers")}
        self.by_name: dict[str, list[ServiceRow]] = {}
        self.by_host: dict[HostClusterId, list[ServiceRow]] = {}
        for row in tables.table("services"):
            self.by_name.setdefault(row.name, []).append(row)
            self.by_host.setdefault(row.host, []).append(row)
        # Every candidate of every placement reads these: a dict lookup each, not a RowKey.
        self._policies = {r.name: r for r in tables.table("policy")}
        self._cpu = {r.host: r.cpu_permille / 1000 for r in tables.table("cpu")}
        self._net = {r.host: r.rx_bps + r.tx_bps for r in tables.table("network")}
        self._latency = {r.host: r.rtt_us / 1000 for r in tables.table("latency")}
        # What other modules work out once per snapshot (rais.pool), by name.
        self.memo: dict[str, Any] = {}
        self._costs = {r.name: Cost.of(r) for r in tables.table("costs")}

    def services(self, name: str) -> list[ServiceRow]:
        return self.by_name.get(name, [])

    def policy(self, name: str) -> PolicyRow | None:
        return self._policies.get(name)

    def drained(self, host: HostClusterId) -> bool:
        server = self.servers.get(host)
        return server is not None and server.drained

    def status(self, host: HostClusterId) -> HostStatus | None:
        server = self.servers.get(host)
        return None if server is None else server.status

    def cpu(self, host: HostClusterId) -> float | None:
        return self._cpu.get(host)

    def net(self, host: HostClusterId) -> int | None:
        """Bytes per second, in and out."""
        return self._net.get(host)

    def latency_ms(self, host: HostClusterId) -> float | None:
        return self._latency.get(host)

    def cost(self, name: str) -> Cost:
        """What a copy of the service adds to its host, as learned; nothing if not learned yet."""
        return self._costs.get(name, NOTHING)

    def running_on(self, host: HostClusterId) -> set[str]:
        return {r.name for r in self.by_host.get(host, []) if serves(r)}

    def serving(self, name: str) -> list[ServiceRow]:
        """The rows where the service is assigned and not failed, on hosts that are up."""
        return [r for r in self.services(name) if r.assigned and r.state != ServiceState.FAILED
                and self.status(r.host) == HostStatus.UP]


@attrs.frozen
class Spares:
    """The free spares (rais.pool) a placement may take, and how many the master keeps."""

    free: Collection[HostClusterId]
    keep: int = 0  # min_spares
    resting: Collection[HostClusterId] = ()  # standbys where a service failed a moment ago

    def taken(self, host: HostClusterId) -> Spares:
        return attrs.evolve(self, free=set(self.free) - {host})

    def tier(self, host: HostClusterId, master: HostClusterId | None) -> int:
        """Actives (and hosts a start is on its way to) first, then free spares, then resting
        hosts, the master last: the order when spares are kept for the last."""
        if host == master:
            return 3
        return 1 if host in self.free else 2 if host in self.resting else 0


@attrs.frozen
class Added:
    """What one step has put on a host so far: the learned costs of the copies it placed or started
    there, and the lowest limits of their policies, which the copies after them must keep too."""

    cost: Cost = NOTHING
    max_cpu: float = math.inf
    max_net: float = math.inf

    def plus(self, cost: Cost, policy: PolicyRow | None) -> Added:
        cpu, net = limits(policy)
        return Added(self.cost + cost, min(self.max_cpu, cpu), min(self.max_net, net))


NONE_ADDED = Added()


def limits(policy: PolicyRow | None) -> tuple[float, float]:
    """A policy's max_cpu (a share) and max_net_mbps (bytes/s), infinite where it sets none."""
    if policy is None:
        return math.inf, math.inf
    cpu = math.inf if policy.max_cpu_permille is None else policy.max_cpu_permille / 1000
    return cpu, math.inf if policy.max_net_bps is None else policy.max_net_bps


def misfit(view: View, service: str, host: HostClusterId, added: Added = NONE_ADDED) -> str | None:
    """Why a copy of ``service`` would take ``host`` over a limit, counting its learned cost and
    what this step added there (its own policy's limits and theirs); None if it fits. A figure not
    known yet counts as nothing here: unknown, it rules nothing out."""
    cost = view.cost(service)
    cpu_limit, net_limit = limits(view.policy(service))
    cpu_limit, net_limit = min(cpu_limit, added.max_cpu), min(net_limit, added.max_net)
    cpu = (view.cpu(host) or 0.0) + added.cost.cpu + cost.cpu
    if cpu > cpu_limit + 1e-9:  # figures are in permille: not over by a rounding of floats
        placed = f" + {added.cost.cpu:.2f} just placed" if added.cost.cpu else ""
        return f"cpu {view.cpu(host) or 0.0:.2f}{placed} + {cost.cpu:.2f} for {service} > max_cpu {cpu_limit:.2f}"
    net = (view.net(host) or 0) + added.cost.net + cost.net
    if net > net_limit:
        return f"network {net * 8 / 1e6:.1f} Mbit/s with {service} > max_net_mbps {net_limit * 8 / 1e6:g}"
    return None


def serves(row: ServiceRow) -> bool:
    return row.assigned and row.state == ServiceState.RUNNING


def score_host(view: View, row: ServiceRow, exclude: Mapping[HostClusterId, str],
               origin: HostClusterId | None = None, master: HostClusterId | None = None,
               spares: Spares | None = None, added: Added = NONE_ADDED) -> Score:
    """Rule a candidate out, or score it; ``origin`` is the host the service leaves; ``added``,
    what this step has put on the host already, counts in its figures."""
    host = row.host
    server = view.servers.get(host)
    policy = view.policy(row.name)
    if server is None or server.status != HostStatus.UP:
        return Score(host, None, reason=f"{server.status if server else 'unknown'}")
    if server.drained:
        return Score(host, None, reason=DRAINED)
    if host in exclude:
        return Score(host, None, reason=exclude[host])
    if serves(row):
        return Score(host, None, reason="already serves it")
    if row.assigned:  # started, and its probe has not risen yet: a copy all the same
        return Score(host, None, reason="a copy is starting there")
    cpu, latency, net = view.cpu(host), view.latency_ms(host), view.net(host)
    if cpu is not None:
        cpu += added.cost.cpu
    if net is not None:
        net += round(added.cost.net)
    if policy is not None and policy.max_cpu_permille is not None and cpu is not None \
            and cpu * 1000 > policy.max_cpu_permille:
        return Score(host, None, reason=f"cpu {cpu:.2f} > max_cpu {policy.max_cpu_permille / 1000:.2f}")
    limit_ms = None if policy is None or policy.max_latency_us is None else policy.max_latency_us / 1000
    if limit_ms is not None and latency is not None and latency > limit_ms:
        return Score(host, None, reason=f"latency {latency:.1f} ms > max_latency_ms {limit_ms:g}")
    if policy is not None and policy.max_net_bps is not None and net is not None and net > policy.max_net_bps:
        return Score(host, None, reason=f"network {net * 8 / 1e6:.1f} Mbit/s > max_net_mbps "
                                        f"{policy.max_net_bps * 8 / 1e6:g}")
    if row.result == Result.CRITICAL and not row.can_start:
        return Score(host, None, reason="its probe fails and it has no start action")
    # Services that ran beside it where it comes from, and run here too, go well together.
    companions = view.running_on(origin) - {row.name} if origin is not None else set()
    here = view.running_on(host)
    warm = 1.0 if row.result in ANSWERING else 0.0
    overlap = warm * 0.5 + 0.5 * (len(companions & here) / len(companions) if companions else 0.0)
    role: str = Role.MASTER if host == master else server.role
    if role == Role.STANDBY and spares is not None and host in spares.resting:
        role = RESTING
    elif role == Role.STANDBY and server.configured == Role.ACTIVE:
        role = IDLE
    parts = (
        ("overlap", overlap),
        ("latency", 1.0 - min((latency or 0.0) / (limit_ms or DEFAULT_MAX_LATENCY_MS), 1.0)),
        ("cpu", max(0.0, 1.0 - (UNKNOWN_CPU + added.cost.cpu if cpu is None else cpu))),
        ("network", 1.0 - min((net or 0) / NET_SCALE, 1.0)),
        ("role", ROLE_SCORES[policy.spare if policy is not None else Spare.PREFER].get(role, 0.0)),
        ("stickiness", 1.0 if row.running else 0.0),
    )
    weights = weights_for(policy)
    total = sum(weights[name] * value for name, value in parts)
    return Score(host, round(total, 6), parts)


def rank(scores: Iterable[Score]) -> list[Score]:
    """Eligible first, best first; ties to the lower host id; then the ruled out, by id."""
    return sorted(scores, key=lambda s: (not s.eligible, -(s.total or 0.0), s.host))


@attrs.frozen
class Ranking:
    """The candidates for one more copy of ``service``, every one scored, and the eligible ones in
    the order they are taken (the operator's preferred host, then the tiers of the pool when
    spares are kept for the last, then by score); the first that fits its cost is taken."""

    service: str
    scores: tuple[Score, ...]  # ranked: the eligible best first, then the ruled out
    order: tuple[Score, ...]
    wanted: HostClusterId | None  # the preferred host
    spares: Spares | None
    spared: str | None  # why the spares come last, if they do


def candidates(view: View, service: str, exclude: Mapping[HostClusterId, str] | None = None,
               origin: HostClusterId | None = None, master: HostClusterId | None = None,
               prefer: HostClusterId | None = None, spares: Spares | None = None,
               added: Mapping[HostClusterId, Added] | None = None) -> Ranking:
    """Score every host that declares ``service``, and order those that qualify (see ``place``)."""
    added = added or {}
    scores = rank(score_host(view, row, exclude or {}, origin, master, spares, added.get(row.host, NONE_ADDED))
                  for row in view.services(service))
    eligible = [s for s in scores if s.eligible]
    policy = view.policy(service)
    spared = _spared(policy, spares)
    if spared is not None and spares is not None:
        eligible.sort(key=lambda s: spares.tier(s.host, master))  # stable: by score within a tier
    # The operator's preferred host, whenever it qualifies (a location score, in Pacemaker's words).
    wanted = prefer or (policy.prefer if policy is not None else None)
    eligible.sort(key=lambda s: s.host != wanted)  # stable
    return Ranking(service, tuple(scores), tuple(eligible), wanted, spares, spared)


def place(view: View, service: str, exclude: Mapping[HostClusterId, str] | None = None,
          origin: HostClusterId | None = None, master: HostClusterId | None = None,
          prefer: HostClusterId | None = None, spares: Spares | None = None,
          added: Mapping[HostClusterId, Added] | None = None) -> Placement:
    """Choose the host for one more copy of ``service``; ``exclude`` maps hosts to why not;
    ``prefer`` (or else the policy's) is chosen whenever it qualifies. With ``spares``, a policy's
    `spare = "last"`, or a pool down to ``spares.keep``, puts the actives with room first.
    ``added``: what this step put on hosts already. The first such host its learned cost fits
    on, or the first if it fits on none."""
    ranking = candidates(view, service, exclude, origin, master, prefer, spares, added)
    fitting = (s for s in ranking.order if misfit(view, service, s.host, (added or {}).get(s.host, NONE_ADDED)) is None)
    return explain(view, ranking, next(fitting, ranking.order[0] if ranking.order else None), added)


def explain(view: View, ranking: Ranking, best: Score | None, added: Mapping[HostClusterId, Added] | None = None,
            passed: Collection[HostClusterId] = ()) -> Placement:
    """The placement of a copy on ``best`` (one of the ranking's), or degraded when None, with
    every host's score and why; ``passed``: hosts it would fit on, left for the other copies of
    its step (rais.joint)."""
    service, scores = ranking.service, ranking.scores
    if best is None:
        why = "; ".join(f"{s.host}: {s.reason}" for s in scores) or "no host declares it"
        return Placement(service, None, f"{service}: no host qualifies ({why})", scores)
    assert best.total is not None  # eligible
    added = added or {}
    top = max(ranking.order, key=lambda s: (s.total or 0.0, -s.host.value))
    preferred = ", preferred" if best.host == ranking.wanted and best is not top else ""
    cost = view.cost(service)
    learned = f"; learned cost {cost.text()}" if cost.samples else ""
    lines = [f"{service} -> {best.host} (score {best.total:.2f}{preferred}: {_parts(best)})"
             + _pool_note(best.host, list(ranking.order), ranking.spares, ranking.spared) + learned
             + (f"; placed jointly: {', '.join(map(str, passed))} left for the other copies of this step"
                if passed else "")]
    for s in scores:
        if s is best:
            continue
        if s.total is not None:  # eligible
            diff = best.total - s.total
            versus = f"{diff:.2f} less" if diff >= 0 else f"{-diff:.2f} more, " + (
                "left for the others" if s.host in passed else "not preferred")
            over = misfit(view, service, s.host, added.get(s.host, NONE_ADDED))
            lines.append(f"  {s.host}: score {s.total:.2f}, {versus} ({_parts(s)})" + (f"; {over}" if over else ""))
        else:
            lines.append(f"  {s.host}: {s.reason}")
    return Placement(service, best.host, "\n".join(lines), scores)


def _spared(policy: PolicyRow | None, spares: Spares | None) -> str | None:
    """Why the spares are kept for the last (the actives with room go first), if they are."""
    if spares is None:
        return None
    if policy is not None and policy.spare == Spare.LAST:
        return "spare=last"
    if spares.keep and len(spares.free) <= spares.keep:
        return f"{len(spares.free)} free, min_spares {spares.keep}"
    return None


def _pool_note(host: HostClusterId, eligible: list[Score], spares: Spares | None, spared: str | None) -> str:
    """What the choice does to the pool of spares, for the explanation's first line."""
    if spares is None:
        return ""
    free = spares.free
    if host in free:
        left = f"{len(free) - 1} left, min_spares {spares.keep}"
        return f"; no active qualifies: takes spare {host} ({left})" if spared else f"; takes spare {host} ({left})"
    if spared and any(s.host in free for s in eligible):
        return f"; an active with room, keeping the spares ({spared})"
    return ""


def _parts(score: Score) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in score.parts)


def place_copies(view: View, service: str, count: int, exclude: Mapping[HostClusterId, str] | None = None,
                 origin: HostClusterId | None = None, master: HostClusterId | None = None,
                 prefer: HostClusterId | None = None, spares: Spares | None = None,
                 added: dict[HostClusterId, Added] | None = None) -> list[Placement]:
    """Places for ``count`` more copies on distinct hosts, best first; the last is None-hosted
    (degraded) if the hosts ran out. Each copy placed counts in ``added`` (updated in place)."""
    placements = []
    taken = dict(exclude or {})
    added = {} if added is None else added
    cost, policy = view.cost(service), view.policy(service)
    for _ in range(count):
        placement = place(view, service, taken, origin, master, prefer, spares, added)
        placements.append(placement)
        if placement.host is None:
            break
        taken[placement.host] = "chosen for another copy"
        added[placement.host] = added.get(placement.host, NONE_ADDED).plus(cost, policy)
        if spares is not None:
            spares = spares.taken(placement.host)
    return placements


def surplus(view: View, service: str, want: int, master: HostClusterId | None = None,
            keep: HostClusterId | None = None, drop: HostClusterId | None = None) -> list[Placement]:
    """The copies to release when more than ``want`` serve: ``drop`` first (the busy host a
    copy was moved off for load), then the lowest scores, worst first; never ``keep`` (where a
    service is being moved to, or its preferred host)."""
    serving = view.serving(service)
    if len(serving) <= want:
        return []
    # Scored as if each were a spare: what it would be worth to place the service there now.
    scored = rank(score_host(view, attrs.evolve(r, assigned=False, state=ServiceState.STOPPED), {},
                             None, master) for r in serving)
    scored.sort(key=lambda s: 0 if s.host == keep else 2 if s.host == drop else 1)  # stable
    why = {drop: "the busy host it was moved off"}
    return [Placement(service, s.host, f"{service}: {len(serving)} copies, policy wants {want}; "
                                       f"{s.host} {why.get(s.host, 'scores lowest')}", (s,))
            for s in scored[want:][::-1]]
