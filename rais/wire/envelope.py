"""Sealing and opening datagrams: the authenticated Envelope around a Message.

A datagram is one DER Envelope ``{header, body, tag}``; ``tag`` is
HMAC-SHA256 over the header TLV and body TLV bytes exactly as sent. Opening
checks the cheap things first and decodes the body only once the tag and the
replay guard have accepted it, so unauthenticated input never reaches the
message decoder.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import attrs

from rais.ids import ClusterId, HostClusterId, IdError
from rais.keys import Keyring
from rais.wire import der
from rais.wire.messages import MAX_BODY, decode_message, encode_message
from rais.wire.schema import REASONS, U64_MAX, Record, UInt, WireError, asn1_sequence, wire

__all__ = [
    "MAX_DATAGRAM",
    "PROTOCOL_VERSION",
    "REASONS",
    "Datagram",
    "ReplayGuard",
    "WireError",
    "open_datagram",
    "seal",
]

# 2: heartbeats carry `heard` and orders their host's boot epoch. A node drops (and counts, as
# `version`) the datagrams of a node of another version: upgrade a cluster's nodes together.
PROTOCOL_VERSION = 3
MAX_DATAGRAM = 1400  # bytes: fits an Ethernet MTU with IP/UDP headers, so no fragments
TAG_SIZE = 32  # full HMAC-SHA256, untruncated

# Identifier octets of the Envelope and its components (AUTOMATIC TAGS).
_SEQUENCE = 0x30
_HEADER = 0xA0  # [0] constructed
_BODY = 0x81  # [1] primitive
_TAG = 0x82  # [2] primitive


@asn1_sequence
@attrs.frozen
class Header(Record):
    """The Envelope's header, coded by rais.wire.der; ``Header.__asn1__()`` is its pyasn1 twin."""

    version: int = wire(UInt(0, 255))
    key_id: int = wire(UInt(0, 0xFFFF))
    sender: int = wire(UInt(1, 2**32 - 1))  # checked as a HostClusterId after decoding
    boot_epoch: int = wire(UInt())
    sequence: int = wire(UInt())
    term: int = wire(UInt())


# How far back a sequence number may be and still arrive once: datagrams
# overtaken on the way (a heartbeat passed by a sync chunk) are not lost.
REPLAY_WINDOW = 64


class ReplayGuard:
    """Per sender, the newest boot epoch and a sliding window of sequence numbers seen.

    Pure, no clock. Within the newest epoch, a sequence number is accepted once
    if it is newer than the highest seen, or up to REPLAY_WINDOW behind it and
    not seen yet (as IPsec's anti-replay window does).
    """

    def __init__(self, own: HostClusterId | None = None) -> None:
        self.own = own
        # sender -> (boot epoch, highest sequence, bitmap: bit i set = highest - i seen)
        self._seen: dict[HostClusterId, tuple[int, int, int]] = {}

    def check(self, sender: HostClusterId, boot_epoch: int, sequence: int) -> None:
        """Record (boot_epoch, sequence) for sender, or raise replay/stale-epoch."""
        if sender == self.own:
            # Our own copies looped back, or another process using our id, whatever its epoch:
            # the node must hear that one to say so (rais.node), so no window drops it here.
            return
        seen = self._seen.get(sender)
        if seen is None or boot_epoch > seen[0]:
            # A first datagram, or a reboot: its sequence numbers start afresh.
            self._seen[sender] = (boot_epoch, sequence, 1)
            return
        epoch, highest, bitmap = seen
        if boot_epoch < epoch:
            raise WireError("stale-epoch", f"{sender} epoch {boot_epoch} is older than {epoch}")
        if sequence > highest:
            bitmap = ((bitmap << (sequence - highest)) | 1) & ((1 << REPLAY_WINDOW) - 1)
            self._seen[sender] = (epoch, sequence, bitmap)
            return
        offset = highest - sequence
        if offset >= REPLAY_WINDOW or bitmap >> offset & 1:
            raise WireError("replay", f"{sender} sequence {sequence} seen, or too old (highest {highest})")
        self._seen[sender] = (epoch, highest, bitmap | 1 << offset)


@attrs.frozen
class Datagram:
    key_id: int
    sender: HostClusterId
    boot_epoch: int
    sequence: int
    term: int
    message: Any


def seal(
    keyring: Keyring, sender: HostClusterId, boot_epoch: int, sequence: int, term: int, message: Any
) -> bytes:
    """One datagram carrying ``message``, signed with the keyring's signing key.

    Raises ValueError for out-of-range fields or a result over MAX_DATAGRAM.
    """
    if type(sender) is not HostClusterId:
        raise ValueError(f"sender {sender!r} must be a HostClusterId")
    for name, value in (("boot_epoch", boot_epoch), ("sequence", sequence), ("term", term)):
        if type(value) is not int or not 0 <= value <= U64_MAX:
            raise ValueError(f"{name} {value!r} must be an integer 0..{U64_MAX}")
    key = keyring.signing
    header = Header(PROTOCOL_VERSION, key.id, sender.value, boot_epoch, sequence, term)
    header_der = der.tlv(_HEADER, der.encode_fields(header))
    body = encode_message(message)
    if len(body) > MAX_BODY:
        raise ValueError(f"message of {len(body)} bytes is over {MAX_BODY}")
    signed = header_der + der.tlv(_BODY, body)
    tag = hmac.digest(key.secret, signed, hashlib.sha256)
    datagram = der.tlv(_SEQUENCE, signed + der.tlv(_TAG, tag))
    if len(datagram) > MAX_DATAGRAM:
        raise ValueError(f"datagram of {len(datagram)} bytes is over {MAX_DATAGRAM}")
    return datagram


def _read_tlv(data: bytes, pos: int, end: int, identifier: int) -> tuple[int, int]:
    """(start, end) of the contents of the strict-DER TLV at ``pos``, which must be ``identifier``."""
    ident, start, stop = der.read_tlv(data, pos, end)
    if ident != identifier:
        raise WireError("malformed", f"expected identifier 0x{identifier:02x} at offset {pos}")
    return start, stop


def _decode_header(data: bytes, start: int, stop: int) -> Header:
    try:
        return der.decode_fields(Header, data, start, stop)
    except ValueError as e:  # an out-of-range field
        raise WireError("malformed", f"bad header: {e}") from None


def open_datagram(data: bytes, keyring: Keyring, cluster: ClusterId, guard: ReplayGuard) -> Datagram:
    """Authenticate and decode one datagram; raises only WireError."""
    if len(data) > MAX_DATAGRAM:
        raise WireError("oversized", f"{len(data)} bytes")
    start, end = _read_tlv(data, 0, len(data), _SEQUENCE)
    if end != len(data):
        raise WireError("malformed", f"{len(data) - end} trailing bytes")
    header_start, header_end = _read_tlv(data, start, end, _HEADER)
    body_start, body_end = _read_tlv(data, header_end, end, _BODY)
    tag_start, tag_end = _read_tlv(data, body_end, end, _TAG)
    if tag_end != end or tag_end - tag_start != TAG_SIZE:
        raise WireError("malformed", "bad tag length or trailing components")

    header = _decode_header(data, header_start, header_end)
    version, key_id, sender_value = header.version, header.key_id, header.sender
    boot_epoch, sequence, term = header.boot_epoch, header.sequence, header.term
    if version != PROTOCOL_VERSION:
        raise WireError("version", f"protocol version {version}, expected {PROTOCOL_VERSION}")
    try:
        sender = HostClusterId(sender_value)
    except IdError as e:
        raise WireError("malformed", str(e)) from None
    if sender.cluster != cluster:
        raise WireError("other-cluster", f"sender {sender} is not in cluster {cluster}")
    key = keyring.find(key_id)
    if key is None:
        raise WireError("unknown-key", f"key id {key_id}")
    expected = hmac.digest(key.secret, data[start:body_end], hashlib.sha256)
    if not hmac.compare_digest(expected, data[tag_start:tag_end]):
        raise WireError("bad-tag", f"from {sender} with key id {key_id}")
    guard.check(sender, boot_epoch, sequence)
    message = decode_message(data[body_start:body_end])
    return Datagram(key_id, sender, boot_epoch, sequence, term, message)
