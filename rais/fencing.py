"""Self-fencing: a host cut off from the majority stops its exclusive services by itself.

Pure. In quorum mode only a side with a majority of the cluster's hosts can
have a master, so a host that stops hearing a majority will see its
services started elsewhere: it stops the ones marked ``exclusive`` (a
virtual IP, a writer) before that can happen, so two hosts never hold one.

A host is cut off when, counting itself, fewer than a majority of the hosts
it knows are up or suspect in its own view (the shared judgement of
rais.membership: a peer is down only after dead_after intervals with no news
from anyone), or when every host it hears says it has had no news of it for
dead_after intervals (nobody hears it: the judgement that calls it down).
Its master moves an exclusive copy off a down host only an interval after
that host could have judged the same (rais.reconcile), so the stop comes
first.

A host fences only after it has been part of a majority in this boot: one
starting before the others must not stop what it was asked to run.
"""

from __future__ import annotations

from rais.election import majority
from rais.ids import HostClusterId
from rais.membership import Membership
from rais.states import HostStatus


def cut_off(now: float, me: HostClusterId, membership: Membership, known: int, dead: float) -> str | None:
    """Why this host is cut off from the majority, or None while it is not."""
    live = [p for p in membership.peers() if membership.status(p, now) != HostStatus.DOWN]
    if 1 + len(live) < majority(known):
        return f"it hears {1 + len(live)} of {known} hosts, fewer than a majority"
    # The very judgement its master's membership makes to call it down: nobody it still hears
    # within dead_after has had news of it for that long.
    if live and membership.confirmed(me, now):
        return f"none of the hosts it hears has had news of it for {dead:g}s"
    return None
