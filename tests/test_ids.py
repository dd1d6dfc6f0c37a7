import pytest
from hypothesis import given
from hypothesis import strategies as st

from rais.ids import ClusterId, HostClusterId, IdError

clusters = st.integers(1, 0xFFFF)
hosts = st.integers(1, 0xFFFF)


@given(clusters, hosts)
def test_round_trip_text_and_parts(cluster, host):
    hid = HostClusterId.of(ClusterId(cluster), host)
    assert HostClusterId.parse(str(hid)) == hid
    assert hid.cluster == ClusterId(cluster)
    assert hid.host == host
    assert hid.value == (cluster << 16) | host
    assert ClusterId.parse(str(hid.cluster)) == hid.cluster


@given(st.lists(st.tuples(clusters, hosts), min_size=2, max_size=10))
def test_order_and_hash_follow_the_32_bit_value(pairs):
    ids = [HostClusterId.of(ClusterId(c), h) for c, h in pairs]
    assert sorted(ids) == sorted(ids, key=lambda i: i.value)
    assert len(set(ids)) == len({i.value for i in ids})


@pytest.mark.parametrize("text,value", [
    ("0.1.0.1", 0x00010001),
    ("255.255.255.255", 0xFFFFFFFF),
    ("1.2.0.7", 0x01020007),
    ("0.1.255.255", 0x0001FFFF),
    ("255.255.0.1", 0xFFFF0001),
])
def test_edges(text, value):
    assert HostClusterId.parse(text).value == value
    assert str(HostClusterId(value)) == text


@pytest.mark.parametrize("text", [
    "0.0.0.1",      # cluster 0.0
    "1.2.0.0",      # host 0
    "1.2.0", "1.2.0.7.1", "", "1..0.7",
    "1.2.0.256", "1.2.0.-1", "1.2.0.+7", "1.2.0. 7", "1.2.0.07", "1.2.0.x", "1.2.0.٣",
])
def test_invalid_host_cluster_ids(text):
    with pytest.raises(IdError):
        HostClusterId.parse(text)


@pytest.mark.parametrize("text", ["0.0", "1", "1.2.3", "256.0", "1.02", "a.b", ""])
def test_invalid_cluster_ids(text):
    with pytest.raises(IdError):
        ClusterId.parse(text)


@pytest.mark.parametrize("value", [0, -1, 0x10000, True, 1.0, "1"])
def test_cluster_id_range(value):
    with pytest.raises(IdError):
        ClusterId(value)


@pytest.mark.parametrize("value", [0, 0xFFFF, 0x10000, 2**32, -1, True])
def test_host_cluster_id_range(value):
    with pytest.raises(IdError):
        HostClusterId(value)


@pytest.mark.parametrize("host", [0, 0x10000, -1])
def test_host_id_range(host):
    with pytest.raises(IdError):
        HostClusterId.of(ClusterId(1), host)
