"""The fast DER codec for the records of ``rais.wire.schema``.

pyasn1 builds an object tree for every value and takes a few hundred
microseconds per record; a cluster of a thousand hosts decodes a thousand
heartbeats a second on every host, and a replica decodes every row of a
sync. This codec walks the records' own component lists instead: encoding
concatenates TLVs, decoding reads them strictly, so that each value has
exactly one accepted encoding (definite minimal lengths, minimal
non-negative integers, booleans 00/FF, primitive strings, components in
order, nothing trailing). The schema bounds the nesting, so hostile input
cannot recurse. tests/test_wire_asn1tools.py checks it byte for byte
against pyasn1 and asn1tools.
"""

from __future__ import annotations

from typing import Any, TypeVar

from rais.ids import HostClusterId
from rais.wire.schema import Enum, Flag, HostId, Kind, ListOf, Octets, Record, Struct, Text, UInt, WireError

R = TypeVar("R", bound=Record)

# Universal tags, for the items of a SEQUENCE OF (which carry no context tag).
_UNIVERSAL = {UInt: 0x02, HostId: 0x02, Enum: 0x0A, Text: 0x0C, Octets: 0x04, Flag: 0x01, Struct: 0x30}


def _malformed(why: str) -> WireError:
    return WireError("malformed", why)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8)
    return bytes((0x80 | len(octets),)) + octets


def tlv(identifier: int, content: bytes) -> bytes:
    return bytes((identifier,)) + _length(len(content)) + content


def _constructed(kind: Kind) -> bool:
    return isinstance(kind, Struct | ListOf)


def _int(value: int) -> bytes:
    # Non-negative, minimal, with a leading zero bit.
    return value.to_bytes(value.bit_length() // 8 + 1)


def encode_value(kind: Kind, value: Any) -> bytes:
    """The contents octets of ``value`` as ``kind``."""
    if isinstance(kind, UInt):
        return _int(value)
    if isinstance(kind, HostId):
        return _int(value.value)
    if isinstance(kind, Enum):
        return _int(kind.names.index(value))
    if isinstance(kind, Text):
        return value.encode("utf-8")
    if isinstance(kind, Octets):
        return value
    if isinstance(kind, Flag):
        return b"\xff" if value else b"\x00"
    if isinstance(kind, Struct):
        return encode_fields(value)
    if isinstance(kind, ListOf):
        ident = _UNIVERSAL[type(kind.item)]
        return b"".join(tlv(ident, encode_value(kind.item, item)) for item in value)
    raise TypeError(kind)


def encode_fields(record: Record) -> bytes:
    """The contents of a record's SEQUENCE: its components with tags [0], [1], ..."""
    parts = []
    for position, (name, kind, _optional) in enumerate(record.__wire_components__):
        value = getattr(record, name)
        if value is not None:
            parts.append(tlv((0xA0 if _constructed(kind) else 0x80) | position, encode_value(kind, value)))
    return b"".join(parts)


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(identifier, start, stop) of the TLV at ``pos``: low tag numbers, strict lengths."""
    if end - pos < 2:
        raise _malformed("truncated")
    ident = data[pos]
    if ident & 0x1F == 0x1F:
        raise _malformed("high tag number")
    first = data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        width = first & 0x7F
        if width == 0 or width > 3 or end - start < width or data[start] == 0:
            raise _malformed("bad length")  # indefinite, huge, or not minimal
        length = int.from_bytes(data[start : start + width])
        start += width
        if length < 0x80:
            raise _malformed("long form for a short length")
    stop = start + length
    if stop > end:
        raise _malformed("length overruns its container")
    return ident, start, stop


def _uint(data: bytes, start: int, stop: int) -> int:
    if stop == start:
        raise _malformed("empty integer")
    if data[start] & 0x80:
        raise _malformed("negative integer")
    if stop - start > 1 and data[start] == 0 and not data[start + 1] & 0x80:
        raise _malformed("integer not minimal")
    return int.from_bytes(data[start:stop])


def decode_value(kind: Kind, data: bytes, start: int, stop: int) -> Any:
    if isinstance(kind, UInt):
        return _uint(data, start, stop)
    if isinstance(kind, HostId):
        return HostClusterId(_uint(data, start, stop))  # IdError is a ValueError
    if isinstance(kind, Enum):
        index = _uint(data, start, stop)
        if index >= len(kind.names):
            raise _malformed("no such enumerated value")
        return kind.names[index]
    if isinstance(kind, Text):
        return data[start:stop].decode("utf-8")  # strict: a UnicodeDecodeError is a ValueError
    if isinstance(kind, Octets):
        return bytes(data[start:stop])
    if isinstance(kind, Flag):
        if stop - start != 1 or data[start] not in (0, 0xFF):
            raise _malformed("boolean not 00 or FF")
        return data[start] == 0xFF
    if isinstance(kind, Struct):
        return decode_fields(kind.record, data, start, stop)
    if isinstance(kind, ListOf):
        items = []
        ident = _UNIVERSAL[type(kind.item)]
        pos = start
        while pos < stop:
            got, s, e = read_tlv(data, pos, stop)
            if got != ident:
                raise _malformed("unexpected item")
            items.append(decode_value(kind.item, data, s, e))
            pos = e
        return tuple(items)
    raise TypeError(kind)


def decode_fields(record: type[R], data: bytes, start: int, stop: int) -> R:
    """A record from the contents of its SEQUENCE; WireError or ValueError if anything is off."""
    fields = {}
    pos = start
    for position, (name, kind, optional) in enumerate(record.__wire_components__):
        expected = (0xA0 if _constructed(kind) else 0x80) | position
        if pos < stop and data[pos] == expected:
            _ident, s, e = read_tlv(data, pos, stop)
            fields[name] = decode_value(kind, data, s, e)
            pos = e
        elif optional:
            fields[name] = None
        else:
            raise _malformed(f"{record.__name__}.{name} missing")
    if pos != stop:
        raise _malformed(f"unknown component in {record.__name__}")
    return record(**fields)
