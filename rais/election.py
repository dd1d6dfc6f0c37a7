"""Terms, succession and votes.

Pure. A term is a 64-bit number whose low 16 bits are the host id of the
node that started it and whose high bits count up: two nodes can never start
the same term, so there is at most one master per term by construction, and
every order carries its term as a fencing token.

Who may take over when the master is gone: hosts with the newest replica of
the tables first (so nothing committed is lost), among them standbys before
actives, then higher priority, then lower host id. On a cluster that never
had a master, the hosts configured as master come first. Each node works out
its own place in that order and waits one heartbeat interval per place
before it claims, so the best candidate normally wins without a contest.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from rais.ids import HostClusterId

HOST_BITS = 16


def make_term(counter: int, host: HostClusterId) -> int:
    return (counter << HOST_BITS) | host.host


def term_counter(term: int) -> int:
    return term >> HOST_BITS


def term_owner(term: int) -> int:
    """The host id (low 16 bits) of the node that started ``term``."""
    return term & ((1 << HOST_BITS) - 1)


def next_term(highest_seen: int, host: HostClusterId) -> int:
    return make_term(term_counter(highest_seen) + 1, host)


def term_text(term: int) -> str:
    return f"{term_counter(term)}/{term_owner(term)}" if term else "0"


@attrs.frozen
class Candidate:
    id: HostClusterId
    role: str  # the role it plays now
    configured: str  # the role its config asks for
    priority: int
    version: tuple[int, int]  # of its replica: (tables term, generation)


def _rank(c: Candidate, bootstrap: bool) -> tuple[int, int, HostClusterId]:
    if bootstrap and c.configured == "master":
        kind = 0
    elif c.role == "standby" or c.configured in ("standby", "master"):
        kind = 1  # a former master rejoins as a standby
    else:
        kind = 2
    return (kind, -c.priority, c.id)


def succession(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates best first: newest replica, then standby before active, priority, id."""
    pool = list(candidates)
    if not pool:
        return []
    newest = max(c.version for c in pool)
    bootstrap = newest[0] == 0  # no master ever wrote these tables
    return sorted(pool, key=lambda c: (c.version != newest, *_rank(c, bootstrap)))


def place(me: HostClusterId, candidates: Iterable[Candidate]) -> int | None:
    """My position in the succession, 0 being first; None if I am not in it."""
    for position, c in enumerate(succession(candidates)):
        if c.id == me:
            return position
    return None


def outranks(a: Candidate, b: Candidate) -> bool:
    """Whether a preempting ``a`` should take over from master ``b``."""
    return a.configured == "master" and _rank(a, True) < _rank(b, True)


def majority(known: int) -> int:
    return known // 2 + 1


@attrs.define
class Ballot:
    """A voter's promise: at most one candidate per term, and never an older term again."""

    term: int = 0
    candidate: HostClusterId | None = None

    def grant(self, term: int, candidate: HostClusterId) -> bool:
        if term > self.term:
            self.term, self.candidate = term, candidate
            return True
        return term == self.term and candidate == self.candidate  # the same request, repeated
