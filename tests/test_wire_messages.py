"""Message records, their DER encoding and the registry."""

import attrs
import pytest
from hypothesis import given, settings

from rais.wire import REASONS, REGISTRY, Heartbeat, Load, WireError, decode_message, encode_message
from rais.wire.messages import HeartbeatAsn1, message
from tests.strategies import U64, heartbeats


def tlv(identifier: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes((identifier, len(content))) + content


def heartbeat_der(role=b"\x00", priority=b"\x01", generation=b"\x02", address=b"h:1", extra=b"") -> bytes:
    """A hand-built Message holding a heartbeat, to say things records cannot."""
    return tlv(
        0xA0,
        tlv(0x80, role) + tlv(0x81, priority) + tlv(0x82, generation) + tlv(0x83, address) + extra,
    )


@settings(max_examples=300, deadline=None)
@given(heartbeats)
def test_round_trip(hb):
    assert decode_message(encode_message(hb)) == hb


def test_known_encoding():
    hb = Heartbeat("active", 1, 2, "h:1")
    assert encode_message(hb) == heartbeat_der()
    assert decode_message(heartbeat_der()) == hb


def test_load_encoding():
    hb = Heartbeat("master", 0, 0, "", Load(1000, 0, 1))
    der = encode_message(hb)
    # [0] heartbeat { [0] role 2, ..., [3] "", [4] load { [0] 1000, [1] 0, [2] 1 } }
    assert der.hex() == "a0178001028101008201008300a40a800203e8810100820101"
    assert decode_message(der) == hb


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": "leader"},
        {"priority": 256},
        {"priority": -1},
        {"priority": True},
        {"generation": U64 + 1},
        {"address": "x" * 256},
        {"address": "\udc80"},
        {"address": b"h:1"},
        {"load": (1, 2, 3)},
    ],
)
def test_record_refuses_out_of_range(kwargs):
    fields = {"role": "active", "priority": 1, "generation": 2, "address": "h:1", **kwargs}
    with pytest.raises(ValueError):
        Heartbeat(**fields)


@pytest.mark.parametrize("kwargs", [{"cpu_permille": 1001}, {"net_rx_bps": -1}, {"net_tx_bps": U64 + 1}])
def test_load_refuses_out_of_range(kwargs):
    with pytest.raises(ValueError):
        attrs.evolve(Load(0, 0, 0), **kwargs)


def test_address_limit_counts_characters():
    hb = Heartbeat("standby", 7, 8, "\U0001f600" * 255)
    assert decode_message(encode_message(hb)) == hb


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x00",
        heartbeat_der()[:-1],
        heartbeat_der() + b"\x00",
        heartbeat_der(role=b"\x03"),  # no such role
        heartbeat_der(role=b"\xff"),
        heartbeat_der(priority=b"\x01\x00"),  # 256
        heartbeat_der(priority=b"\xff"),  # -1
        heartbeat_der(priority=b"\x00\x01"),  # non-minimal integer
        heartbeat_der(generation=b"\x01" + b"\x00" * 8),  # 2**64
        heartbeat_der(address=b"\xff\xfe"),  # not UTF-8
        heartbeat_der(extra=tlv(0x85, b"\x00")),  # unknown component
        heartbeat_der(extra=tlv(0xA4, b"")),  # empty load
        tlv(0xA1, b""),  # unknown alternative
        b"\xa0\x81\x0c" + heartbeat_der()[2:],  # non-minimal length
        b"\xa0\x80" + heartbeat_der()[2:] + b"\x00\x00",  # indefinite length
        bytes(1401),
    ],
)
def test_decode_rejects(der):
    with pytest.raises(WireError) as info:
        decode_message(der)
    assert info.value.reason == "malformed"


def test_long_address_in_der_rejected():
    der = b"\xa0\x82\x01\x0e" + b"\x80\x01\x00\x81\x01\x01\x82\x01\x02" + b"\x83\x82\x01\x00" + b"a" * 256
    with pytest.raises(WireError):
        decode_message(der)


def test_encode_refuses_unregistered():
    with pytest.raises(ValueError):
        encode_message(Load(0, 0, 0))


def test_registry():
    kind = REGISTRY["heartbeat"]
    assert (kind.tag, kind.record, kind.asn1) == (0, Heartbeat, HeartbeatAsn1)
    with pytest.raises(ValueError):
        message("heartbeat", 9, HeartbeatAsn1)(type("Other", (), {}))
    with pytest.raises(ValueError):
        message("other", 0, HeartbeatAsn1)(type("Other", (), {}))
    assert set(REGISTRY) == {"heartbeat"}


def test_wire_error():
    e = WireError("replay", "seq 3")
    assert (e.reason, str(e)) == ("replay", "seq 3")
    assert str(WireError("bad-tag")) == "bad-tag"
    assert len(set(REASONS)) == 8
    with pytest.raises(ValueError):
        WireError("nope")
