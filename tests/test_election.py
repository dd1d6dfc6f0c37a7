import pytest
from hypothesis import given
from hypothesis import strategies as st

from rais.election import (
    Ballot,
    Candidate,
    majority,
    make_term,
    next_term,
    outranks,
    succession,
    term_counter,
    term_owner,
    term_text,
)
from rais.ids import HostClusterId

U64 = 2**64 - 1
hosts = st.integers(1, 0xFFFF).map(lambda h: HostClusterId(0x0102_0000 | h))


def hid(h):
    return HostClusterId(0x0102_0000 | h)


@given(st.integers(0, 2**47 - 1), hosts)
def test_a_term_holds_its_counter_and_owner(counter, host):
    term = make_term(counter, host)
    assert term_counter(term) == counter
    assert term_owner(term) == host.host
    assert 0 <= term <= U64


@given(st.integers(0, 2**63), hosts)
def test_next_term_is_newer_than_any_seen_and_owned_by_the_host(seen, host):
    term = next_term(seen, host)
    assert term > seen
    assert term_owner(term) == host.host
    assert term_counter(term) == term_counter(seen) + 1


def test_two_hosts_never_start_the_same_term():
    a, b = hid(1), hid(2)
    assert next_term(0, a) != next_term(0, b)
    assert next_term(next_term(0, a), b) > next_term(0, a)


def test_term_text():
    assert term_text(0) == "0"
    assert term_text(make_term(3, hid(7))) == "3/7"


def cand(h, role="active", configured=None, priority=100, version=(1, 1)):
    return Candidate(hid(h), role, configured or role, priority, version)


def order(pool):
    return [c.id.host for c in succession(pool)]


def test_the_newest_replica_comes_first():
    pool = [cand(1, "standby", priority=255, version=(1, 9)),
            cand(2, "active", priority=0, version=(2, 1)),
            cand(3, "standby", version=(1, 10))]
    assert order(pool)[0] == 2


def test_standby_before_active_then_priority_then_lower_id():
    pool = [cand(5, "active", priority=200), cand(4, "standby", priority=10),
            cand(3, "standby", priority=50), cand(2, "standby", priority=50),
            cand(1, "active", priority=100)]
    assert order(pool) == [2, 3, 4, 5, 1]


def test_a_configured_master_waiting_as_standby_counts_as_a_standby_once_there_was_a_master():
    pool = [cand(1, "standby", "master", priority=10), cand(2, "standby", priority=20),
            cand(3, "active", priority=255)]
    assert order(pool) == [2, 1, 3]


def test_configured_masters_first_when_no_master_ever_wrote_the_tables():
    pool = [cand(1, "standby", priority=200, version=(0, 0)),
            cand(2, "standby", "master", priority=10, version=(0, 0)),
            cand(3, "active", priority=255, version=(0, 0)),
            cand(4, "standby", "master", priority=20, version=(0, 0))]
    assert order(pool) == [4, 2, 1, 3]


def test_older_replicas_come_last_whatever_their_rank():
    pool = [cand(1, "standby", "master", priority=255, version=(1, 1)),
            cand(2, "active", priority=0, version=(1, 2)),
            cand(3, "active", priority=1, version=(1, 2))]
    assert order(pool) == [3, 2, 1]


def test_bootstrap_is_judged_on_the_newest_replica():
    # A replica from term 1 exists: configured masters no longer jump the queue.
    pool = [cand(1, "standby", "master", priority=255, version=(0, 0)),
            cand(2, "standby", priority=1, version=(1, 1))]
    assert order(pool) == [2, 1]


@given(st.lists(st.builds(
    Candidate, hosts, st.sampled_from(["active", "standby"]),
    st.sampled_from(["active", "standby", "master"]), st.integers(0, 255),
    st.tuples(st.integers(0, 2), st.integers(0, 3))), unique_by=lambda c: c.id))
def test_succession_is_a_total_order_of_the_pool(pool):
    ranked = succession(pool)
    assert sorted(ranked, key=lambda c: c.id) == sorted(pool, key=lambda c: c.id)
    assert succession(reversed(pool)) == ranked
    if ranked:
        assert ranked[0].version == max(c.version for c in pool)


def test_an_empty_pool_has_no_succession():
    assert succession([]) == []


def test_outranks_needs_a_configured_master_of_higher_rank():
    master = cand(9, "master", "standby", priority=50)
    assert outranks(cand(1, "standby", "master", priority=0), master)
    assert not outranks(cand(1, "standby", "standby", priority=255), master)
    configured_master = cand(9, "master", "master", priority=50)
    assert outranks(cand(1, "standby", "master", priority=60), configured_master)
    assert not outranks(cand(1, "standby", "master", priority=40), configured_master)
    assert outranks(cand(1, "standby", "master", priority=50), configured_master)  # lower id
    assert not outranks(cand(10, "standby", "master", priority=50), configured_master)
    me = cand(1, "standby", "master")
    assert not outranks(me, me)


@pytest.mark.parametrize("known,needed", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_majority(known, needed):
    assert majority(known) == needed
    assert 2 * majority(known) > known


A, B, C = hid(1), hid(2), hid(3)


def test_a_ballot_grants_one_candidate_per_term():
    ballot = Ballot()
    assert ballot.grant(10, A)
    assert not ballot.grant(10, B)
    assert ballot.grant(10, A)  # the same request, repeated
    assert (ballot.term, ballot.candidate) == (10, A)


def test_a_ballot_never_goes_back_to_an_older_term():
    ballot = Ballot()
    assert ballot.grant(10, A)
    assert not ballot.grant(9, B)
    assert not ballot.grant(9, A)
    assert ballot.grant(11, B)
    assert not ballot.grant(10, A)
    assert not ballot.grant(11, A)
    assert (ballot.term, ballot.candidate) == (11, B)


def test_a_fresh_ballot_grants_any_term_above_zero():
    assert not Ballot().grant(0, A)
    assert Ballot().grant(1, A)


@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from([A, B, C])), max_size=30))
def test_a_ballot_never_promises_one_term_to_two_candidates(requests):
    ballot = Ballot()
    granted = {}
    highest = 0
    for term, candidate in requests:
        if ballot.grant(term, candidate):
            assert granted.setdefault(term, candidate) == candidate
            assert term >= highest
            highest = term
        else:
            assert term < highest or granted.get(term) not in (None, candidate)
