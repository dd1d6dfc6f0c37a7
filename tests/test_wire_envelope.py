"""Sealing and opening datagrams: authentication, replay, every rejection reason."""

import hashlib
import hmac
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import encoder
from pyasn1.type import constraint, namedtype, univ

from rais.ids import ClusterId, HostClusterId
from rais.keys import Key, Keyring
from rais.wire import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    Datagram,
    Heartbeat,
    Load,
    ReplayGuard,
    Vote,
    WireError,
    encode_message,
    envelope,
    open_datagram,
    seal,
)
from rais.wire.envelope import TAG_SIZE, Header
from rais.wire.messages import MAX_BODY
from rais.wire.schema import context
from tests.strategies import U64, heartbeats

CLUSTER = ClusterId.parse("1.2")
SENDER = HostClusterId.of(CLUSTER, 7)
KEY1 = Key(1, bytes(range(32)))
KEY2 = Key(2, bytes(range(32, 64)))
RING = Keyring((KEY1,))
# Small enough for short-form DER lengths, so framing tests can edit bytes by offset.
SMALL = Vote(5, HostClusterId.parse("1.2.0.7"), True)
HB = Heartbeat(role="active", priority=100, generation=5, address="192.0.2.7:7000", load=Load(250, 1000, 2000))



class EnvelopeAsn1(univ.Sequence):
    """The Envelope of rais.asn in pyasn1, around the Header record's own pyasn1 twin."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("header", Header.__asn1__().subtype(implicitTag=context(0))),
        namedtype.NamedType("body", univ.OctetString().subtype(
            subtypeSpec=constraint.ValueSizeConstraint(0, MAX_BODY), implicitTag=context(1))),
        namedtype.NamedType("tag", univ.OctetString().subtype(
            subtypeSpec=constraint.ValueSizeConstraint(TAG_SIZE, TAG_SIZE), implicitTag=context(2))),
    )


def build(
    *,
    version: int = PROTOCOL_VERSION,
    key_id: int = 1,
    sender: int = SENDER.value,
    boot_epoch: int = 1,
    sequence: int = 1,
    term: int = 0,
    body: bytes | None = None,
    secret: bytes = KEY1.secret,
) -> bytes:
    """A datagram made with the pyasn1 Envelope class, free to break the rules seal() keeps."""
    env = EnvelopeAsn1()
    header = env.getComponentByPosition(0)
    for position, value in enumerate((version, key_id, sender, boot_epoch, sequence, term)):
        header.setComponentByPosition(position, value)
    env.setComponentByPosition(1, encode_message(HB) if body is None else body)
    signed = encoder.encode(header) + encoder.encode(env.getComponentByPosition(1))
    env.setComponentByPosition(2, hmac.digest(secret, signed, hashlib.sha256))
    return encoder.encode(env)


def reason(data: bytes, ring: Keyring = RING, guard: ReplayGuard | None = None) -> str:
    with pytest.raises(WireError) as info:
        open_datagram(data, ring, CLUSTER, guard or ReplayGuard())
    return info.value.reason


@settings(max_examples=150, deadline=None)
@given(
    host=st.integers(1, 0xFFFF),
    boot_epoch=st.integers(0, U64),
    sequence=st.integers(0, U64),
    term=st.integers(0, U64),
    hb=heartbeats,
)
def test_seal_open_round_trip(host, boot_epoch, sequence, term, hb):
    sender = HostClusterId.of(CLUSTER, host)
    data = seal(RING, sender, boot_epoch, sequence, term, hb)
    assert len(data) <= MAX_DATAGRAM
    got = open_datagram(data, RING, CLUSTER, ReplayGuard())
    assert got == Datagram(1, sender, boot_epoch, sequence, term, hb)


def test_pyasn1_envelope_matches_seal():
    assert build(boot_epoch=3, sequence=9, term=4) == seal(RING, SENDER, 3, 9, 4, HB)


def test_forged_tag():
    data = seal(RING, SENDER, 1, 1, 0, HB)
    assert reason(data[:-32] + os.urandom(32)) == "bad-tag"


def test_every_bit_flip_rejected():
    data = seal(RING, SENDER, 1, 1, 0, HB)
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(WireError):
            open_datagram(bytes(flipped), RING, CLUSTER, ReplayGuard())


def test_tampered_header_and_body():
    data = seal(RING, SENDER, 1, 1, 0, HB)
    term_at = data.index(b"\x85\x01\x00") + 2  # the term's value octet
    address_at = data.index(b"192.0.2.7")
    for at in (term_at, address_at):
        tampered = bytearray(data)
        tampered[at] ^= 0x01
        assert reason(bytes(tampered)) == "bad-tag"


def test_wrong_key_same_id():
    data = seal(Keyring((Key(1, bytes(32)),)), SENDER, 1, 1, 0, HB)
    assert reason(data) == "bad-tag"


def test_unknown_key_id():
    data = seal(Keyring((KEY2,)), SENDER, 1, 1, 0, HB)
    assert reason(data) == "unknown-key"


def test_other_cluster():
    stranger = HostClusterId.parse("1.3.0.7")
    assert reason(seal(RING, stranger, 1, 1, 0, HB)) == "other-cluster"


def test_replay():
    guard = ReplayGuard()
    data = seal(RING, SENDER, 1, 5, 0, HB)
    open_datagram(data, RING, CLUSTER, guard)
    assert reason(data, guard=guard) == "replay"
    assert open_datagram(seal(RING, SENDER, 1, 6, 0, HB), RING, CLUSTER, guard).sequence == 6


def test_reordered_datagrams_are_accepted_once_within_the_window():
    guard = ReplayGuard()
    guard.check(SENDER, 1, 100)
    guard.check(SENDER, 1, 98)  # overtaken on the way: still new
    for seq in (98, 100):
        with pytest.raises(WireError) as info:
            guard.check(SENDER, 1, seq)
        assert info.value.reason == "replay"
    guard.check(SENDER, 1, 100 - envelope.REPLAY_WINDOW + 1)
    with pytest.raises(WireError):
        guard.check(SENDER, 1, 100 - envelope.REPLAY_WINDOW)  # too old to tell
    guard.check(SENDER, 1, 1000)  # a jump slides the window
    with pytest.raises(WireError):
        guard.check(SENDER, 1, 99)


@given(st.lists(st.integers(0, 200), max_size=300))
def test_the_window_accepts_each_sequence_at_most_once(sequences):
    guard = ReplayGuard()
    accepted = []
    for seq in sequences:
        try:
            guard.check(SENDER, 1, seq)
        except WireError:
            continue
        accepted.append(seq)
    assert len(accepted) == len(set(accepted))
    if sequences:
        assert max(sequences) in accepted


def test_epochs():
    guard = ReplayGuard()
    open_datagram(seal(RING, SENDER, 10, 50, 0, HB), RING, CLUSTER, guard)
    # A reboot: a newer epoch is accepted even with a lower sequence.
    assert open_datagram(seal(RING, SENDER, 11, 1, 0, HB), RING, CLUSTER, guard).boot_epoch == 11
    assert reason(seal(RING, SENDER, 10, 51, 0, HB), guard=guard) == "stale-epoch"


def test_guard_is_per_sender():
    guard = ReplayGuard()
    other = HostClusterId.of(CLUSTER, 8)
    guard.check(SENDER, 5, 5)
    guard.check(other, 1, 1)
    guard.check(other, 1, 2)
    with pytest.raises(WireError) as info:
        guard.check(SENDER, 5, 5)
    assert info.value.reason == "replay"
    with pytest.raises(WireError) as info:
        guard.check(SENDER, 4, 100)
    assert info.value.reason == "stale-epoch"
    guard.check(SENDER, 5, 6)


def test_oversized():
    assert reason(b"\x30" + bytes(MAX_DATAGRAM)) == "oversized"


def test_seal_refuses_oversized(monkeypatch):
    monkeypatch.setattr(envelope, "MAX_DATAGRAM", 60)
    with pytest.raises(ValueError):
        seal(RING, SENDER, 1, 1, 0, HB)


def test_wrong_version():
    assert reason(build(version=PROTOCOL_VERSION + 1)) == "version"
    assert reason(build(version=PROTOCOL_VERSION - 1)) == "version"  # a node of the version before
    assert reason(build(version=0)) == "version"


def test_malformed_after_authentication():
    # Well signed, but the body is not a Message: the sender is counted, then dropped.
    guard = ReplayGuard()
    assert reason(build(body=b"\x05\x00"), guard=guard) == "malformed"
    assert reason(build(body=b""), guard=guard) == "replay"


def test_invalid_sender_is_malformed():
    assert reason(build(sender=CLUSTER.value << 16)) == "malformed"  # host 0


def test_key_rotation():
    receiver = Keyring((KEY2, KEY1))
    guard = ReplayGuard()
    old = open_datagram(seal(Keyring((KEY1,)), SENDER, 1, 1, 0, HB), receiver, CLUSTER, guard)
    new = open_datagram(seal(Keyring((KEY2, KEY1)), SENDER, 1, 2, 0, HB), receiver, CLUSTER, guard)
    assert (old.key_id, new.key_id) == (1, 2)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d + b"\x00",  # trailing byte
        lambda d: d[:-1],  # truncated
        lambda d: b"\x30\x81" + d[1:],  # non-minimal outer length
        lambda d: b"\x30\x80" + d[2:] + b"\x00\x00",  # indefinite length
        lambda d: b"\x31" + d[1:],  # SET, not SEQUENCE
        lambda d: d[:2] + b"\xa0\x81" + d[3:],  # non-minimal header length
        lambda d: d[:-34] + b"\x82\x1f" + d[-32:-1],  # short tag
    ],
)
def test_framing_rejected(mangle):
    data = seal(RING, SENDER, 1, 1, 0, SMALL)
    assert reason(mangle(data)) == "malformed"


def test_non_canonical_header_rejected():
    data = seal(RING, SENDER, 1, 1, 0, SMALL)
    # The version as 0x0003: a valid BER integer, but not DER.
    assert data[4:7] == b"\x80\x01\x03"
    bad = b"\x30" + bytes([data[1] + 1]) + b"\xa0" + bytes([data[3] + 1]) + b"\x80\x02\x00\x03" + data[7:]
    assert reason(bad) == "malformed"


def test_header_missing_field_rejected():
    data = seal(RING, SENDER, 1, 1, 0, SMALL)
    term = b"\x85\x01\x00"
    assert data[4 + data[3] - 3 : 4 + data[3]] == term  # the header's last field
    bad = b"\x30" + bytes([data[1] - 3]) + b"\xa0" + bytes([data[3] - 3]) + data[4:].replace(term, b"", 1)
    assert reason(bad) == "malformed"


@pytest.mark.parametrize(
    "args",
    [
        (RING, SENDER.value, 1, 1, 0, HB),
        (RING, SENDER, -1, 1, 0, HB),
        (RING, SENDER, 1, U64 + 1, 0, HB),
        (RING, SENDER, 1, 1, True, HB),
        (Keyring((Key(70000, KEY1.secret),)), SENDER, 1, 1, 0, HB),
        (RING, SENDER, 1, 1, 0, Load(0, 0, 0)),
    ],
)
def test_seal_refuses_bad_fields(args):
    with pytest.raises(ValueError):
        seal(*args)
