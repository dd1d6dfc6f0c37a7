"""Self-fencing, pure: when a host counts itself cut off from the majority."""

from rais.fencing import cut_off
from rais.ids import HostClusterId
from rais.membership import Membership
from rais.wire import Heard, Heartbeat

ME = HostClusterId.parse("1.2.0.2")
T0 = 1000.0


def hid(n):
    return HostClusterId.parse(f"1.2.0.{n}")


def beat(heard=()):
    return Heartbeat(role="active", priority=100, generation=0, address="10.0.0.9", heard=heard)


def membership(hosts, at=T0):
    m = Membership(0.2, 3)
    for n in hosts:
        m.heard(at, hid(n), f"10.0.0.{n}:5150", 1, 65537, beat())
    return m


def test_a_host_hearing_a_majority_is_not_cut_off():
    assert cut_off(T0 + 0.1, ME, membership([1, 3]), 4, 0.6) is None  # 3 of 4


def test_a_host_whose_peers_are_all_down_is_cut_off_once_their_silence_is_dead_after_intervals():
    m = membership([1, 3, 4])
    assert cut_off(T0 + 0.5, ME, m, 4, 0.6) is None  # suspect only: not yet
    assert cut_off(T0 + 0.7, ME, m, 4, 0.6) == "it hears 1 of 4 hosts, fewer than a majority"


def test_half_the_cluster_is_not_a_majority():
    m = membership([1, 3, 4])
    # 3 and 4 fall silent, for host 1 too.
    m.heard(T0 + 0.7, hid(1), "10.0.0.1:5150", 1, 65537, beat((Heard(hid(3), 700), Heard(hid(4), 700))))
    assert cut_off(T0 + 0.8, ME, m, 4, 0.6) == "it hears 2 of 4 hosts, fewer than a majority"


def test_a_host_that_nobody_hears_is_cut_off_though_it_hears_everyone():
    m = membership([1, 3, 4])
    silent = (Heard(ME, 650),)
    for n in (1, 3):
        m.heard(T0 + 0.1, hid(n), f"10.0.0.{n}:5150", 1, 65537, beat(silent))
    assert cut_off(T0 + 0.1, ME, m, 4, 0.6) is None  # host 4 has not said it lacks news of it
    m.heard(T0 + 0.1, hid(4), "10.0.0.4:5150", 1, 65537, beat((Heard(ME, 300),)))
    assert cut_off(T0 + 0.1, ME, m, 4, 0.6) is None  # only suspected
    m.heard(T0 + 0.2, hid(4), "10.0.0.4:5150", 1, 65537, beat(silent))
    assert cut_off(T0 + 0.2, ME, m, 4, 0.6) == "none of the hosts it hears has had news of it for 0.6s"


def test_a_witness_silent_for_dead_after_does_not_keep_it_from_fencing_as_it_does_not_keep_it_up():
    """A master calls a host down when every peer it still hears within dead_after says it has had
    no news of it; the host fences on the same judgement, not waiting for a silent peer's word."""
    m = membership([1, 3, 4, 5])
    silent = (Heard(ME, 700),)
    for n in (1, 3, 4):
        m.heard(T0 + 0.75, hid(n), f"10.0.0.{n}:5150", 1, 65537, beat(silent))
    assert m.confirmed(ME, T0 + 0.75)  # how its master judges it: host 5, silent since T0, is no witness
    assert cut_off(T0 + 0.75, ME, m, 5, 0.6) == "none of the hosts it hears has had news of it for 0.6s"
