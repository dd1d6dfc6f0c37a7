"""Message and row records, their DER encoding and the CHOICE registries."""

import attrs
import pytest
from hypothesis import given

from rais.ids import HostClusterId
from rais.wire import (
    MESSAGES,
    REASONS,
    Heartbeat,
    Load,
    SyncChunk,
    Transfer,
    Vote,
    WireError,
    decode_message,
    encode_message,
)
from rais.wire.rows import ROWS, CpuRow, decode_row
from rais.wire.schema import Choice
from tests.strategies import U64, messages, rows

HOST = HostClusterId.parse("1.2.0.7")


def tlv(identifier: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes((identifier, len(content))) + content


def vote_der(term=b"\x05", candidate=b"\x01\x02\x00\x07", granted=b"\xff", extra=b"") -> bytes:
    """A hand-built Message holding a vote ([7]), to say things records cannot."""
    return tlv(0xA7, tlv(0x80, term) + tlv(0x81, candidate) + tlv(0x82, granted) + extra)


@given(messages)
def test_message_round_trip(message):
    assert decode_message(encode_message(message)) == message


@given(rows)
def test_row_round_trip_and_cached_bytes(row):
    assert decode_row(row.der) == row
    assert row.der is row.der  # encoded once
    assert row.hash == attrs.evolve(row).hash


def test_known_encoding():
    vote = Vote(5, HOST, True)
    assert encode_message(vote) == vote_der()
    assert decode_message(vote_der()) == vote


def test_load_encoding():
    hb = Heartbeat(role="master", priority=0, generation=0, address="", load=Load(1000, 0, 1))
    der = encode_message(hb)
    # [0] heartbeat { [0] role 2, [1] 0, [2] 0, [3] "", [4] load { [0] 1000, [1] 0, [2] 1 }, ... }
    fields = "8001028101008201008300a40a800203e8810100820101"
    assert der.startswith(bytes.fromhex("a0") + der[1:2] + bytes.fromhex(fields))
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
        {"digest": b"short"},
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
    hb = Heartbeat(role="standby", priority=7, generation=8, address="\U0001f600" * 255)
    assert decode_message(encode_message(hb)) == hb


def test_lists_have_limits():
    with pytest.raises(ValueError):
        SyncChunk(Transfer(1, False, 0, 1), bytes(16), 0, 1, b"", removed=tuple([None] * 65))


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x00",
        vote_der()[:-1],
        vote_der() + b"\x00",
        vote_der(granted=b"\x01"),  # DER booleans are 0x00 or 0xff
        vote_der(candidate=b"\x00"),  # host-cluster id 0
        vote_der(candidate=b"\x01\x02\x00\x00"),  # host id 0
        vote_der(term=b"\xff"),  # negative
        vote_der(term=b"\x00\x01"),  # non-minimal integer
        vote_der(term=b"\x01" + b"\x00" * 8),  # 2**64
        vote_der(extra=tlv(0x85, b"\x00")),  # unknown component
        tlv(0xBF, b""),  # unknown alternative
        b"\xa7\x81" + vote_der()[1:],  # non-minimal length
        b"\xa7\x80" + vote_der()[2:] + b"\x00\x00",  # indefinite length
        bytes(1401),
    ],
)
def test_decode_rejects(der):
    with pytest.raises(WireError) as info:
        decode_message(der)
    assert info.value.reason == "malformed"


def test_row_decode_rejects_a_message():
    with pytest.raises(WireError):
        decode_row(vote_der())


def test_encode_refuses_unregistered():
    with pytest.raises(ValueError):
        encode_message(Load(0, 0, 0))
    with pytest.raises(ValueError):
        encode_message(CpuRow(HOST, 1))


def test_registry():
    assert MESSAGES.alternatives["heartbeat"] == (0, Heartbeat)
    assert ROWS.alternatives["cpu"] == (2, CpuRow)
    choice = Choice("Test", 100)
    choice.register("a", 0)(attrs.frozen(type("A", (), {})))
    with pytest.raises(ValueError):
        choice.register("a", 1)(attrs.frozen(type("B", (), {})))
    with pytest.raises(ValueError):
        choice.register("b", 0)(attrs.frozen(type("C", (), {})))


def test_wire_error():
    e = WireError("replay", "seq 3")
    assert (e.reason, str(e)) == ("replay", "seq 3")
    assert str(WireError("bad-tag")) == "bad-tag"
    assert len(set(REASONS)) == 8
    with pytest.raises(ValueError):
        WireError("nope")
