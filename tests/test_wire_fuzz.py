"""Hostile input: whatever arrives, the decoders raise WireError and nothing else."""

import hashlib
import hmac
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rais.ids import ClusterId, HostClusterId
from rais.keys import Key, Keyring
from rais.wire import (
    Heartbeat,
    Load,
    ReplayGuard,
    WireError,
    decode_message,
    encode_message,
    open_datagram,
    seal,
)
from tests.strategies import messages

CLUSTER = ClusterId.parse("1.2")
SENDER = HostClusterId.of(CLUSTER, 7)
RING = Keyring((Key(1, bytes(range(32))),))
HB = Heartbeat(role="standby", priority=9, generation=77, address="198.51.100.3:7000", load=Load(999, 12345, 2**63))
DATAGRAM = seal(RING, SENDER, 3, 4, 5, HB)
BODY = encode_message(HB)
_OUTER = 2 + (DATAGRAM[1] & 0x7F if DATAGRAM[1] & 0x80 else 0)  # past the outer SEQUENCE's T and L
HEADER = DATAGRAM[_OUTER : _OUTER + 2 + DATAGRAM[_OUTER + 1]]  # the header TLV (short-form length)


def length_offsets(der: bytes, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of every TLV's first length octet (short or long form)."""
    end = len(der) if end is None else end
    offsets = []
    while start < end:
        offsets.append(start + 1)
        first = der[start + 1]
        extra = first & 0x7F if first & 0x80 else 0
        length = int.from_bytes(der[start + 2 : start + 2 + extra]) if extra else first
        content = start + 2 + extra
        if der[start] & 0x20:  # constructed: its contents are TLVs too
            offsets += length_offsets(der, content, content + length)
        start = content + length
    return offsets


DATAGRAM_LENGTHS = length_offsets(DATAGRAM)
BODY_LENGTHS = length_offsets(BODY)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutations(original: bytes, length_octets: list[int]) -> st.SearchStrategy[bytes]:
    def flip(draw):
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)

    def truncate(draw):
        return original[: draw(st.integers(0, len(original) - 1))]

    def insert(draw):
        at = draw(st.integers(0, len(original)))
        return original[:at] + draw(st.binary(min_size=1, max_size=8)) + original[at:]

    def tamper_length(draw):
        # The length octet of some TLV, at any depth, set to anything.
        data = bytearray(original)
        data[draw(st.sampled_from(length_octets))] = draw(st.integers(0, 255))
        return bytes(data)

    return st.sampled_from([flip, truncate, insert, tamper_length]).flatmap(lambda f: st.composite(f)())


def opens_or_wire_error(data: bytes) -> None:
    try:
        got = open_datagram(data, RING, CLUSTER, ReplayGuard())
    except WireError:
        return
    # DER is unique and the tag covers the rest: only the untouched datagram opens.
    assert data == DATAGRAM and got.message == HB


@FUZZ
@given(st.binary(max_size=1500))
def test_random_bytes(data):
    opens_or_wire_error(data)


@FUZZ
@given(st.binary(max_size=200).map(lambda tail: DATAGRAM[:4] + tail))
def test_random_bytes_behind_real_prefix(data):
    opens_or_wire_error(data)


@FUZZ
@given(mutations(DATAGRAM, DATAGRAM_LENGTHS))
def test_mutated_datagrams(data):
    opens_or_wire_error(data)


def decodes_canonically_or_wire_error(data: bytes) -> None:
    # A mutated body may still be a valid heartbeat (a changed digit); if so it is canonical.
    try:
        hb = decode_message(data)
    except WireError:
        return
    assert encode_message(hb) == data


@FUZZ
@given(st.binary(max_size=300) | st.binary(max_size=120).map(lambda tail: BODY[:2] + tail))
def test_decode_message_random(data):
    decodes_canonically_or_wire_error(data)


@FUZZ
@given(mutations(BODY, BODY_LENGTHS))
def test_decode_message_mutated(data):
    decodes_canonically_or_wire_error(data)


def encode_length(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else b"\x82" + n.to_bytes(2, "big")


def signed(body: bytes) -> bytes:
    """A correctly signed datagram around an arbitrary body, to reach the message decoder."""
    inner = HEADER + b"\x81" + encode_length(len(body)) + body
    inner += b"\x82\x20" + hmac.digest(RING.signing.secret, inner, hashlib.sha256)
    return b"\x30" + encode_length(len(inner)) + inner


def as_header(header: bytes) -> bytes:
    """An unsigned datagram with an arbitrary header TLV, to reach the header decoder."""
    inner = header + b"\x81\x00" + b"\x82\x20" + bytes(32)
    return b"\x30" + encode_length(len(inner)) + inner


def nested(depth: int, identifier: int) -> bytes:
    value = b""
    for _ in range(depth):
        value = bytes([identifier]) + encode_length(len(value)) + value
    return value


HOSTILE = [
    nested(300, 0xA0),  # deep context-constructed nesting
    nested(300, 0x30),  # deep SEQUENCEs
    b"\xa0\x80" * 600,  # deep indefinite lengths
    b"\x3f" + b"\xff" * 1000 + b"\x01\x00",  # a huge multi-octet tag number
    b"\xa0\x84\xff\xff\xff\xff",  # a 4 GiB length
    b"\xa0\xfe" + b"\xff" * 126,  # a 126-octet length
    b"\xa0\x10\x80\x01\x00\x81\x01\x01\x82\x01\x02\x83\x82\xff\xff",  # address overruns
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies_rejected_quickly(body):
    start = time.perf_counter()
    with pytest.raises(WireError):
        decode_message(body)
    with pytest.raises(WireError) as info:
        open_datagram(signed(body[:1300]), RING, CLUSTER, ReplayGuard())
    assert info.value.reason == "malformed"
    for data in (body, as_header(body[:1300])):
        with pytest.raises(WireError) as info:
            open_datagram(data, RING, CLUSTER, ReplayGuard())
        assert info.value.reason == "malformed"
    assert time.perf_counter() - start < 0.5


def test_helpers_build_valid_datagrams():
    assert signed(BODY) == DATAGRAM
    with pytest.raises(WireError) as info:
        open_datagram(as_header(HEADER), RING, CLUSTER, ReplayGuard())
    assert info.value.reason == "bad-tag"  # so the hostile headers above did reach the decoder


@FUZZ
@given(st.data())
def test_every_message_kind_survives_mutation(data):
    original = encode_message(data.draw(messages))
    mutated = data.draw(mutations(original, length_offsets(original)))
    try:
        decode_message(mutated)
    except WireError:
        pass
