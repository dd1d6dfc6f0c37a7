"""Terms, succession and votes.

Pure. A term is a 64-bit number whose low 16 bits are the host id of the
node that started it and whose high bits count up: two nodes can never start
the same term, so there is at most one master per term by construction, and
every order carries its term as a fencing token.

Who may take over when the master is gone: hosts with the newest replica of
the tables first (so nothing committed is lost); among them the free spares
(hosts serving nothing, configured standbys before configured actives), then
the hosts serving (again configured standbys first), then higher priority,
then lower host id. On a cluster that never
had a master, the hosts configured as master come first. Each node works out
its own place in that order and waits one heartbeat interval per place
before it claims, so the best candidate normally wins without a contest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import attrs

from rais.ids import HostClusterId
from rais.settings import Timing

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
    spare = c.configured in ("standby", "master")  # what the operator set aside for taking over
    if bootstrap and c.configured == "master":
        kind = 0
    elif c.role == "standby":
        kind = 1 if spare else 2  # free: it serves nothing (rais.pool)
    else:
        kind = 3 if spare else 4  # serving: taking over the master's work too would load it
    return (kind, -c.priority, c.id)


def succession(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates best first: newest replica, then free before serving, spare before active,
    priority, id."""
    pool = list(candidates)
    if not pool:
        return []
    newest = max(c.version for c in pool)
    bootstrap = newest[0] == 0  # no master ever wrote these tables
    return sorted(pool, key=lambda c: (c.version != newest, *_rank(c, bootstrap)))


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


def backoff(me: HostClusterId, failed: int, interval: float) -> float:
    """Extra seconds to wait after ``failed`` candidacies in a row: doubling, at most 16 intervals,
    times a factor of 0.5..1.5 drawn from the host id (pure: the same inputs, the same wait)."""
    spread = int.from_bytes(hashlib.sha256(f"{me.value}/{failed}".encode()).digest()[:4]) / 2**32
    return interval * min(2**failed, 16) * (0.5 + spread)


@attrs.define
class Candidacy:
    term: int
    votes: set[HostClusterId]
    started: float


class Election:
    """One node's part in elections: the newest term it knows, the master it follows, its
    candidacy and its vote.

    Pure state and rules; the node says what it heard and what time it is, and
    asks whom to follow, whether to claim, and how to vote. A node listens for
    ``dead_after`` intervals after it starts and after any freeze (a SIGSTOP, a
    VM pause) before it claims or writes anything: a newer master may exist.
    """

    def __init__(self, me: HostClusterId, timing: Timing, now: float) -> None:
        self.me = me
        self.timing = timing
        self.term = 0  # the newest master term followed; a master's own
        self.master: HostClusterId | None = None  # of ``term``
        self.master_since: float | None = None
        self.seen = 0  # the newest term in any header, vote request or claim heard
        self.candidacy: Candidacy | None = None
        self.ballot = Ballot()
        self._lost_at: float | None = now  # since when no live master is known
        self._failed = 0  # candidacies in a row that won no majority
        self.quiet_until = now + timing.dead  # listening, claiming and writing nothing, until then
        self._last_tick = now

    def listening(self, now: float) -> bool:
        return now < self.quiet_until

    def saw(self, term: int) -> None:
        self.seen = max(self.seen, term)

    def is_master(self, sender: HostClusterId, term: int) -> bool:
        """The fencing rule: tables and orders come only from the master of the newest term."""
        return sender == self.master and term == self.term

    def follow(self, now: float, master: HostClusterId, term: int) -> None:
        """Follow ``master`` of ``term`` (ourselves, once elected)."""
        self.term, self.master, self.master_since = term, master, now
        self.candidacy = None
        self._failed = 0
        self._lost_at = None

    def lost(self, now: float) -> None:
        """Our own mastership ended without a newer master to follow (quorum lost)."""
        self.master = None
        self._lost_at = now

    def time_passes(self, now: float) -> None:
        if now - self._last_tick > self.timing.dead:
            # We were frozen: what we know is stale, so listen again.
            self.quiet_until = now + self.timing.dead
        self._last_tick = now

    def master_alive(self) -> None:
        self._lost_at = None

    def due(self, now: float, position: Callable[[], tuple[int | None, float]]) -> bool:
        """With no live master: whether our place in the succession says claim now.

        ``position()`` (worked out only when needed) is our place, 0 first, and the time before
        which a better candidate may still be listening (it began when we first heard it). Each
        node waits for that, then one interval per place, so the best candidate normally wins
        unopposed: a configured master that starts a moment after the others still leads.
        """
        if self._lost_at is None:
            self._lost_at = now
        if self.candidacy is not None and now - self.candidacy.started > self.timing.dead:
            # No majority in time: wait our turn again, and a while more each time, by a share of
            # our own, so two candidates that split the votes do not meet again (Raft's back-off).
            self.candidacy = None
            self._failed += 1
            self._lost_at = now + backoff(self.me, self._failed, self.timing.interval)
        if self.candidacy is not None or self.listening(now):
            return False
        spot, ready = position()
        # A place's intervals count from when the better candidates are ready too: once they are,
        # the best of them claims first, not whoever ticks first.
        return spot is not None and now - max(self._lost_at, self.quiet_until, ready) >= spot * self.timing.interval

    def next_term(self, tables_term: int) -> int:
        return next_term(max(self.seen, tables_term), self.me)

    def stand(self, now: float, term: int) -> None:
        """Become a candidate for ``term`` (quorum mode), voting for ourselves."""
        self.seen = term
        self.candidacy = Candidacy(term, set(), now)
        self.ballot.grant(term, self.me)

    def vote(self, candidate: HostClusterId, request_term: int, request_version: tuple[int, int],
             my_version: tuple[int, int], blocked: bool) -> bool:
        """Whether to vote for ``candidate``; ``blocked``: a live master (or our own mastership)
        keeps our vote from it."""
        if request_term <= self.term or request_version < my_version or blocked:
            return False
        if not self.ballot.grant(request_term, candidate):
            return False
        self.candidacy = None  # a newer candidate at least as up to date: let it win
        return True

    def count(self, voter: HostClusterId, candidate: HostClusterId, term: int, granted: bool,
              known: int) -> int | None:
        """Count a vote; the term won, if this vote makes a majority of ``known`` hosts."""
        candidacy = self.candidacy
        if candidacy is None or candidate != self.me or term != candidacy.term or not granted:
            return None
        candidacy.votes.add(voter)
        return candidacy.term if len(candidacy.votes) >= majority(known) else None
