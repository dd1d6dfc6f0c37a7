"""The standbys as a hot-spare pool, as in RAID: the role each host plays, the spares left, and
the cluster's state in mdadm's words.

A host's role follows what it serves: the master writes ``active`` in the servers table for a
host with a copy assigned, and ``standby`` for a host with none (``held_role``), whatever its
config asks for, which the table keeps beside it. A standby that takes over a service becomes
active; a host whose services moved away, or an active left with nothing to serve, rejoins the
pool as a standby.

A *free spare* is a standby that is up, not drained, not resting after a service failed there
(for ``REST`` seconds: a host where something just broke is not a host to count on), and not
waiting for a service its policy prefers there to fail back. The cluster is ``degraded`` when a
service has fewer copies than its policy's replicas (a copy failed, or its host is down, and
nothing took its place yet), ``no spare left`` when no free spare remains of those the operator
set aside (configured standbys) or asked for (``min_spares``), and ``optimal`` otherwise. Pure:
tables and a time in, records out.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from rais.ids import HostClusterId
from rais.planner import View
from rais.states import HostStatus, Role, ServiceState, base_role
from rais.wire.rows import ServerRow

# Seconds a host rests after a service failed there: the master does not put the service back
# there for this long (rais.reconcile), nor count the host as a spare.
REST = 60.0
NO_CATALOGUE = bytes(8)

OPTIMAL, DEGRADED, NO_SPARE = "optimal", "degraded", "no spare left"


def held_role(row: ServerRow, assigned: set[HostClusterId], master: HostClusterId) -> Role:
    """The role ``row``'s host plays, as the master ``master`` writes it; ``assigned``: the hosts
    with a copy assigned. Until a host's catalogue is in, the role its config asks for (else a
    starting cluster's actives would flip to standby and back)."""
    if row.host == master:
        return Role.MASTER
    if row.catalogue == NO_CATALOGUE:
        return base_role(row.configured)
    return Role.ACTIVE if row.host in assigned else Role.STANDBY


@attrs.frozen
class Pool:
    state: str  # OPTIMAL, DEGRADED or NO_SPARE
    free: tuple[HostClusterId, ...]  # the free spares
    in_use: tuple[HostClusterId, ...]  # hosts configured as standbys, serving now
    resting: tuple[HostClusterId, ...]  # after a failure there, until REST has passed
    min_spares: int
    short: tuple[str, ...] = ()  # the services below their replicas: "web: 0 of 1 copies"
    until: float | None = None  # when a resting host rejoins: the pool may change then, tables or not

    @property
    def missing(self) -> bool:
        """Fewer free spares than the operator asked for (mdadm's SparesMissing)."""
        return len(self.free) < self.min_spares

    def json(self) -> dict[str, object]:
        return {"state": self.state, "free": [str(h) for h in self.free], "in_use": [str(h) for h in self.in_use],
                "resting": [str(h) for h in self.resting], "min_spares": self.min_spares,
                "missing": self.missing, "short": list(self.short)}


def _hosts(hosts: Iterable[HostClusterId]) -> tuple[HostClusterId, ...]:
    return tuple(sorted(hosts))


def _resting(view: View, now: float) -> dict[HostClusterId, float]:
    """Hosts (not the master) resting after a failure there, and until when. A failure before the
    host's current boot is forgotten: a host restarted (repaired, say) is a spare at once."""
    failed_at: dict[HostClusterId, float] = {}
    for row in view.tables.table("services"):
        server = view.servers.get(row.host)
        if (row.state == ServiceState.FAILED and server is not None and server.role != Role.MASTER
                and row.changed_ms / 1000 >= server.boot_epoch / 1e6):
            failed_at[row.host] = max(failed_at.get(row.host, 0.0), row.changed_ms / 1000)
    return {h: t + REST for h, t in failed_at.items() if t + REST > now}


def _free(view: View, resting: Iterable[HostClusterId]) -> set[HostClusterId]:
    rest = set(resting)
    assigned = {r.host for r in view.tables.table("services") if r.assigned}
    # A host a policy prefers for a service not there yet is kept for its failback.
    awaited = {p.prefer for p in view.tables.table("policy") if p.prefer is not None and not any(
        r.assigned for r in view.services(p.name) if r.host == p.prefer)}
    return {h for h, s in view.servers.items()
            if s.role == Role.STANDBY and s.status == HostStatus.UP and not s.drained
            and h not in assigned and h not in rest and h not in awaited}


def pool_of(view: View, now: float, min_spares: int) -> Pool:
    """The pool and the cluster's state in the tables ``view`` holds, at ``now``: worked out once
    per snapshot (the master reconciles several times between commits), and again once a resting
    host rejoins."""
    kept = view.memo.get("pool")
    if kept is not None:
        at, pool = kept
        if pool.min_spares == min_spares and at <= now and (pool.until is None or now < pool.until):
            return pool
    pool = _pool_of(view, now, min_spares)
    view.memo["pool"] = (now, pool)
    return pool


def _pool_of(view: View, now: float, min_spares: int) -> Pool:
    resting = _resting(view, now)
    free = _free(view, resting)
    in_use = [h for h, s in view.servers.items() if s.role == Role.ACTIVE and s.configured != Role.ACTIVE]
    short = []
    for policy in view.tables.table("policy"):
        rows = view.services(policy.name)
        if not rows:
            continue  # nobody declares it: nothing to place, nothing degraded
        copies = sum(1 for r in rows if r.assigned and r.state != ServiceState.FAILED
                     and view.status(r.host) not in (None, HostStatus.DOWN))
        if copies < policy.replicas:
            short.append(f"{policy.name}: {copies} of {policy.replicas} copies")
    # No spare left, where the operator set some aside (configured standbys) or asks for some.
    pooled = min_spares > 0 or any(s.configured == Role.STANDBY for s in view.servers.values())
    state = DEGRADED if short else NO_SPARE if not free and pooled else OPTIMAL
    return Pool(state, _hosts(free), _hosts(in_use), _hosts(resting), min_spares, tuple(short),
                min(resting.values()) if resting else None)


def news(old: Pool, new: Pool) -> list[tuple[str, ...]]:
    """What an operator's alerting hears when the pool changes (the notify words): the state
    when it changes (``optimal``, ``degraded REASON``, ``no-spare-left``), and ``spares-missing
    FREE MIN`` when the free spares fall under ``min_spares``."""
    out: list[tuple[str, ...]] = []
    if new.state != old.state:
        if new.state == DEGRADED:
            out.append(("degraded", "; ".join(new.short)))
        else:
            out.append((new.state.replace(" ", "-"), str(len(new.free))))
    if new.missing and not old.missing:
        out.append(("spares-missing", str(len(new.free)), str(new.min_spares)))
    return out
