import attrs
import pytest

from rais.ids import HostClusterId
from rais.membership import PATIENCE, Membership, Transition
from rais.states import HostStatus
from rais.wire import Heard, Heartbeat, Load

UP, SUSPECT, DOWN = HostStatus.UP, HostStatus.SUSPECT, HostStatus.DOWN
A = HostClusterId.parse("1.2.0.1")
B = HostClusterId.parse("1.2.0.2")
BEAT = Heartbeat(role="active", priority=100, generation=0, address="10.0.0.1", load=Load(250, 1000, 2000))


def hear(m, now, who=A, epoch=1, beat=BEAT):
    return m.heard(now, who, "10.0.0.1:5150", epoch, 0, beat)


def test_first_heartbeat_makes_a_host_up():
    m = Membership(1.0, 3)
    assert hear(m, 0.0) == Transition(A, None, UP)
    assert hear(m, 1.0) is None
    peer = m.get(A)
    assert (peer.role, peer.priority, peer.address, peer.load) == ("active", 100, "10.0.0.1", BEAT.load)


def test_silence_makes_a_host_suspect_then_down_then_a_beat_brings_it_back():
    m = Membership(1.0, 3)
    hear(m, 0.0)
    assert m.tick(1.4) == ([], False)
    assert m.tick(1.6) == ([Transition(A, UP, SUSPECT)], False)
    assert m.tick(2.9) == ([], False)
    assert m.tick(3.01) == ([Transition(A, SUSPECT, DOWN)], True)
    assert m.tick(100.0) == ([], False)
    assert m.status(m.get(A), 100.0) == DOWN
    assert hear(m, 101.0) == Transition(A, DOWN, UP)


def test_a_new_boot_epoch_is_a_restart_and_an_older_one_is_ignored():
    m = Membership(1.0, 3)
    hear(m, 0.0, epoch=5)
    assert hear(m, 0.5, epoch=6) == Transition(A, UP, UP, restarted=True)
    assert m.get(A).first_heard == 0.5
    assert hear(m, 0.6, epoch=5) is None
    assert m.get(A).boot_epoch == 6


def test_peers_are_listed_in_id_order():
    m = Membership(1.0, 3)
    hear(m, 0.0, who=B)
    hear(m, 0.0, who=A)
    assert [p.id for p in m.peers()] == [A, B]


@pytest.mark.parametrize("interval,dead_after", [(0, 3), (1.0, 1)])
def test_bad_timing_is_refused(interval, dead_after):
    with pytest.raises(ValueError):
        Membership(interval, dead_after)


C = HostClusterId.parse("1.2.0.3")


def says(*heard):
    """A heartbeat carrying news: (host, age in seconds) pairs."""
    return attrs.evolve(BEAT, heard=tuple(Heard(host, round(age * 1000)) for host, age in heard))


def test_news_from_another_host_keeps_a_host_up_that_we_no_longer_hear():
    m = Membership(1.0, 3)
    hear(m, 0.0, who=A)
    hear(m, 0.0, who=B)
    hear(m, 2.5, who=B, beat=says((A, 0.2)))  # B heard A 0.2 s ago
    assert m.status(m.get(A), 3.5) == UP
    assert m.last_news(m.get(A)) == pytest.approx(2.3)


def test_a_host_is_down_at_dead_after_only_when_every_live_witness_says_so_too():
    m = Membership(1.0, 3)
    for who in (A, B, C):
        hear(m, 0.0, who=who)
    hear(m, 3.0, who=B, beat=says((A, 3.0)))  # B: no news of A for dead_after either
    hear(m, 3.0, who=C, beat=says((A, 2.9)))  # C had news of A at 0.1: not dead_after yet
    assert m.status(m.get(A), 3.15) == SUSPECT
    hear(m, 3.2, who=C, beat=says((A, 3.1)))
    assert m.status(m.get(A), 3.2) == DOWN


def test_without_every_witness_s_word_a_silent_host_is_down_only_after_patience():
    m = Membership(1.0, 3)
    for who in (A, B):
        hear(m, 0.0, who=who)
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        hear(m, t, who=B)  # B says nothing of A: it may still hear it, or not have heard of the question
    assert m.status(m.get(A), 5.5) == SUSPECT
    assert m.status(m.get(A), PATIENCE * 3 + 0.01) == DOWN


def test_gossip_names_the_hosts_we_suspect_and_vouches_for_those_others_suspect():
    m = Membership(1.0, 3)
    hear(m, 0.0, who=A)
    hear(m, 1.0, who=C)
    assert m.gossip(1.0) == ()  # nothing suspected yet
    hear(m, 2.0, who=B, beat=says((C, 2.5)))  # B suspects C; we heard C one second ago
    assert m.gossip(2.0) == (Heard(A, 2000), Heard(C, 1000))


def test_the_tick_that_finds_a_host_silent_for_dead_after_asks_to_say_so_once():
    m = Membership(1.0, 3)
    hear(m, 0.0, who=A)
    hear(m, 0.0, who=B)
    assert m.tick(2.9)[1] is False
    assert m.tick(3.1)[1] is True  # B waits for our word before it calls A down
    assert m.tick(3.3)[1] is False
