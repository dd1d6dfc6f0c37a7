import pytest

from rais.ids import HostClusterId
from rais.membership import Membership, Transition
from rais.states import HostStatus
from rais.wire import Heartbeat, Load

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
    assert m.tick(1.4) == []
    assert m.tick(1.6) == [Transition(A, UP, SUSPECT)]
    assert m.tick(2.9) == []
    assert m.tick(3.01) == [Transition(A, SUSPECT, DOWN)]
    assert m.tick(100.0) == []
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
