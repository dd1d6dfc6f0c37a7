"""Declarative ASN.1 records: one attrs class per SEQUENCE, its pyasn1 class derived.

A record declares each component with ``wire(KIND)``; ``@asn1_sequence``
gives it the matching pyasn1 Sequence (AUTOMATIC TAGS: component i carries
the implicit context tag [i]) and generic conversion both ways. A ``Choice``
collects records as its alternatives (the Message CHOICE, the TableRow
CHOICE) and does the DER encoding and the strict decoding. So a new message
or row is one record here plus one line in ``rais.asn``, which a test checks.

The daemon encodes and decodes with the fast codec (rais.wire.der) only. The
pyasn1 side is the reference the tests hold that codec to, so pyasn1 is
imported on first use of a ``spec()``, and is a test dependency, not a
runtime one: the daemon never runs its decoder on what arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from rais.ids import HostClusterId

U64_MAX = 2**64 - 1
WIRE = "rais.wire"  # attrs metadata key

# Every way a datagram can be dropped; receivers count drops by these names.
REASONS = (
    "oversized",
    "malformed",
    "version",
    "other-cluster",
    "unknown-key",
    "bad-tag",
    "replay",
    "stale-epoch",
)


class WireError(Exception):
    """A datagram or message was rejected; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown wire error reason {reason!r}")
        super().__init__(detail or reason)
        self.reason = reason


SHOWN = 60  # characters of a bad value an error quotes


def shown(value: Any) -> str:
    """A value as an error quotes it: as JSON writes it (so on one line), cut short (a field may be
    megabytes); anything but a string, a number, a boolean or null by its kind only."""
    if isinstance(value, str):
        text, size = json.dumps(value[:SHOWN + 1]), len(value)  # cut before escaping: six characters at most
    elif value is None or isinstance(value, (bool, int, float)):
        text = json.dumps(value)
        size = len(text)
    else:
        kinds: dict[type, str] = {dict: "an object", list: "an array", tuple: "an array", bytes: "bytes"}
        return kinds.get(type(value), type(value).__name__)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({size} characters)"


def whole(low: int, high: int) -> str:
    """How an error names a range of integers."""
    return f"a whole number {low}..{'2^64-1' if high == U64_MAX else high}"


def context(number: int) -> Any:
    """Implicit context tag [number]; pyasn1 keeps the base type's constructed bit."""
    from pyasn1.type import tag

    return tag.Tag(tag.tagClassContext, tag.tagFormatSimple, number)


# --- kinds: the ASN.1 type of one component ---


class Kind:
    """How one component is typed, checked and converted."""

    def spec(self) -> Any:
        raise NotImplementedError

    def check(self, value: Any) -> None:
        raise NotImplementedError

    def put(self, out: Any, position: int, value: Any) -> None:
        out.setComponentByPosition(position, value)

    def get(self, component: Any) -> Any:
        raise NotImplementedError


@attrs.frozen
class UInt(Kind):
    low: int = 0
    high: int = U64_MAX

    def spec(self) -> Any:
        from pyasn1.type import constraint, univ

        return univ.Integer().subtype(subtypeSpec=constraint.ValueRangeConstraint(self.low, self.high))

    def check(self, value: Any) -> None:
        # type() not isinstance(): bool is an int but never a valid field.
        if type(value) is not int or not self.low <= value <= self.high:
            raise ValueError(f"expected {whole(self.low, self.high)}, got {shown(value)}")

    def get(self, component: Any) -> int:
        return int(component)


@attrs.frozen
class Enum(Kind):
    names: tuple[str, ...]

    def spec(self) -> Any:
        from pyasn1.type import constraint, namedval, univ

        return univ.Enumerated().subtype(
            namedValues=namedval.NamedValues(*((n, i) for i, n in enumerate(self.names))),
            subtypeSpec=constraint.SingleValueConstraint(*range(len(self.names))),
        )

    def check(self, value: Any) -> None:
        if value not in self.names:
            raise ValueError(f"expected one of {', '.join(self.names)}, got {shown(value)}")

    def put(self, out: Any, position: int, value: Any) -> None:
        out.setComponentByPosition(position, self.names.index(value))

    def get(self, component: Any) -> str:
        return self.names[int(component)]


@attrs.frozen
class Text(Kind):
    high: int
    low: int = 0
    # A bound in UTF-8 bytes as well, stricter than the ASN.1 SIZE (which counts
    # characters), for fields that must keep a row within one datagram.
    max_bytes: int | None = None

    def spec(self) -> Any:
        from pyasn1.type import char, constraint

        return char.UTF8String().subtype(subtypeSpec=constraint.ValueSizeConstraint(self.low, self.high))

    def check(self, value: Any) -> None:
        # SIZE of a UTF8String counts characters, not bytes.
        if type(value) is not str or not self.low <= len(value) <= self.high:
            raise ValueError(f"expected a string of {self.low} to {self.high} characters, got {shown(value)}")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("not encodable as UTF-8 (lone surrogate)") from None
        if self.max_bytes is not None and size > self.max_bytes:
            raise ValueError(f"{size} bytes of UTF-8, at most {self.max_bytes}")

    def get(self, component: Any) -> str:
        return str(component)


def clip(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, never inside a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


@attrs.frozen
class Octets(Kind):
    low: int
    high: int

    def spec(self) -> Any:
        from pyasn1.type import constraint, univ

        return univ.OctetString().subtype(subtypeSpec=constraint.ValueSizeConstraint(self.low, self.high))

    def check(self, value: Any) -> None:
        if type(value) is not bytes or not self.low <= len(value) <= self.high:
            size = self.low if self.low == self.high else f"{self.low} to {self.high}"
            raise ValueError(f"expected {size} bytes, got {shown(value)}")

    def get(self, component: Any) -> bytes:
        return bytes(component)


@attrs.frozen
class Flag(Kind):
    def spec(self) -> Any:
        from pyasn1.type import univ

        return univ.Boolean()

    def check(self, value: Any) -> None:
        if type(value) is not bool:
            raise ValueError(f"expected true or false, got {shown(value)}")

    def get(self, component: Any) -> bool:
        return bool(component)


@attrs.frozen
class HostId(Kind):
    """A HostClusterId, INTEGER (1..4294967295) on the wire."""

    def spec(self) -> Any:
        from pyasn1.type import constraint, univ

        return univ.Integer().subtype(subtypeSpec=constraint.ValueRangeConstraint(1, 2**32 - 1))

    def check(self, value: Any) -> None:
        if type(value) is not HostClusterId:
            raise ValueError(f"expected a host-cluster id, got {shown(value)}")

    def put(self, out: Any, position: int, value: HostClusterId) -> None:
        out.setComponentByPosition(position, value.value)

    def get(self, component: Any) -> HostClusterId:
        return HostClusterId(int(component))  # IdError is a ValueError: malformed


@attrs.frozen
class Struct(Kind):
    """A nested SEQUENCE, itself an ``@asn1_sequence`` record."""

    record: type[Record]

    def spec(self) -> Any:
        return self.record.__asn1__()

    def check(self, value: Any) -> None:
        if type(value) is not self.record:
            raise ValueError(f"expected a {self.record.__name__}, got {shown(value)}")

    def put(self, out: Any, position: int, value: Any) -> None:
        to_asn1(value, out.getComponentByPosition(position))

    def get(self, component: Any) -> Any:
        return from_asn1(self.record, component)


@attrs.frozen
class ListOf(Kind):
    """SEQUENCE (SIZE (0..high)) OF item; a tuple in Python."""

    item: Kind
    high: int

    def spec(self) -> Any:
        from pyasn1.type import constraint, univ

        return univ.SequenceOf(
            componentType=self.item.spec(), subtypeSpec=constraint.ValueSizeConstraint(0, self.high)
        )

    def check(self, value: Any) -> None:
        if type(value) is not tuple or len(value) > self.high:
            raise ValueError(f"expected an array of at most {self.high} items, got {shown(value)}")
        for item in value:
            self.item.check(item)

    def put(self, out: Any, position: int, value: tuple) -> None:
        items = out.getComponentByPosition(position)
        items.clear()  # instantiated empty, so an empty tuple still encodes as present
        for index, item in enumerate(value):
            if isinstance(self.item, Struct):
                items.setComponentByPosition(index)
            self.item.put(items, index, item)

    def get(self, component: Any) -> tuple:
        return tuple(self.item.get(c) for c in component)


# --- records ---


def wire(kind: Kind, *, optional: bool = False, default: Any = attrs.NOTHING) -> Any:
    """An attrs field that is one component of the record's SEQUENCE."""

    def validate(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None and optional:
            return
        try:
            kind.check(value)
        except ValueError as e:
            raise ValueError(f"{attribute.name}: {e}") from None

    return attrs.field(default=default, validator=validate, metadata={WIRE: (kind, optional)})


class Record:
    """The base of every record: each is an attrs class with ``wire`` fields, and
    ``asn1_sequence`` (or ``Choice.register``) sets the other two attributes below on it."""

    __slots__ = ()  # slotted records stay without an instance dict
    __attrs_attrs__: ClassVar[tuple[attrs.Attribute, ...]]
    __wire_components__: ClassVar[list[tuple[str, Kind, bool]]]  # (name, kind, optional), in order
    __asn1__: ClassVar[_Sequence]


def _components(record: type[Record]) -> list[tuple[str, Kind, bool]]:
    return [(f.name, *f.metadata[WIRE]) for f in attrs.fields(record) if WIRE in f.metadata]


R = TypeVar("R", bound=Record)


def asn1_sequence(record: type[R]) -> type[R]:
    """Give an attrs record with ``wire`` fields its components and ``__asn1__()``, a new value
    of its pyasn1 SEQUENCE class (built on first use)."""
    record.__wire_components__ = _components(record)
    record.__asn1__ = _Sequence(record)
    return record


class _Sequence:
    """Makes values of a record's pyasn1 SEQUENCE class, building the class on the first call."""

    def __init__(self, record: type[Record]) -> None:
        self.record = record
        self.cls: Any = None

    def __call__(self) -> Any:
        if self.cls is None:
            from pyasn1.type import namedtype, univ

            named = []
            for position, (name, kind, optional) in enumerate(self.record.__wire_components__):
                kind_type = namedtype.OptionalNamedType if optional else namedtype.NamedType
                named.append(kind_type(asn1_name(name), kind.spec().subtype(implicitTag=context(position))))
            self.cls = type(f"{self.record.__name__}Asn1", (univ.Sequence,), {
                "componentType": namedtype.NamedTypes(*named),
            })
        return self.cls()


def asn1_name(name: str) -> str:
    """A record field's name as rais.asn spells its component: ``boot_epoch`` is ``bootEpoch``."""
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def to_asn1(record: Record, out: Any) -> None:
    for position, (name, kind, _optional) in enumerate(record.__wire_components__):
        value = getattr(record, name)
        if value is not None:
            kind.put(out, position, value)


def from_asn1(record: type[R], value: Any) -> R:
    fields = {}
    for position, (name, kind, _optional) in enumerate(record.__wire_components__):
        component = value.getComponentByPosition(position, default=None, instantiate=False)
        fields[name] = None if component is None else kind.get(component)
    return record(**fields)


def encode_record(record: Record) -> bytes:
    """DER of one ``@asn1_sequence`` record on its own (not inside a CHOICE)."""
    return der.tlv(0x30, der.encode_fields(record))


def decode_record(record: type[R], data: bytes) -> R:
    """The record in DER ``data``; WireError("malformed") on anything wrong."""
    try:
        ident, start, stop = der.read_tlv(data, 0, len(data))
        if ident != 0x30 or stop != len(data):
            raise WireError("malformed", f"not one {record.__name__}")
        return der.decode_fields(record, data, start, stop)
    except (ValueError, TypeError) as e:  # WireError passes; a bad value in a field is malformed too
        raise WireError("malformed", f"bad {record.__name__}: {e}") from None


# --- CHOICEs of records ---


A = TypeVar("A", bound=Record)  # what the alternatives of a Choice have in common


class Choice(Generic[A]):
    """An ASN.1 CHOICE whose alternatives are records, in tag order."""

    def __init__(self, name: str, max_size: int) -> None:
        self.name = name
        self.max_size = max_size
        self.alternatives: dict[str, tuple[int, type[A]]] = {}
        self._by_record: dict[type[A], tuple[str, int]] = {}
        self._by_identifier: dict[int, type[A]] = {}
        self._spec: Any = None

    def register(self, name: str, tag_number: int) -> Callable[[type[A]], type[A]]:
        """Make an attrs record the alternative ``name`` [tag_number]."""

        def register(record: type[A]) -> type[A]:
            if name in self.alternatives or any(t == tag_number for t, _ in self.alternatives.values()):
                raise ValueError(f"{self.name} alternative {name!r} [{tag_number}] registered twice")
            asn1_sequence(record)
            self.alternatives[name] = (tag_number, record)
            self._by_record[record] = (name, tag_number)
            self._by_identifier[0xA0 | tag_number] = record
            self._spec = None
            return record

        return register

    def spec(self) -> Any:
        """The pyasn1 CHOICE: the reference the fast codec is tested against."""
        if self._spec is None:
            from pyasn1.type import namedtype, univ

            cls = type(f"{self.name}Asn1", (univ.Choice,), {"componentType": namedtype.NamedTypes(*(
                namedtype.NamedType(name, record.__asn1__().subtype(implicitTag=context(number)))
                for name, (number, record) in sorted(self.alternatives.items(), key=lambda a: a[1][0])
            ))})
            self._spec = cls()
        return self._spec

    def encode_with_pyasn1(self, record: A) -> bytes:
        from pyasn1.codec.der import encoder as der_encoder

        choice = self.spec().clone()
        to_asn1(record, choice.getComponentByName(self._by_record[type(record)][0]))
        return der_encoder.encode(choice)

    def decode_with_pyasn1(self, data: bytes) -> A:
        from pyasn1.codec.der import decoder as der_decoder

        value, rest = der_decoder.decode(data, asn1Spec=self.spec())
        assert not rest
        return from_asn1(self.alternatives[value.getName()][1], value.getComponent())

    def encode(self, record: A) -> bytes:
        """DER of this CHOICE holding ``record``; ValueError if it is not an alternative."""
        found = self._by_record.get(type(record))
        if found is None:
            raise ValueError(f"{type(record).__name__} is not a {self.name} alternative")
        return der.tlv(0xA0 | found[1], der.encode_fields(record))

    def decode(self, data: bytes) -> A:
        """The record in one DER value of this CHOICE; WireError("malformed") on anything wrong."""
        if len(data) > self.max_size:
            raise WireError("malformed", f"{self.name} of {len(data)} bytes is over {self.max_size}")
        try:
            ident, start, stop = der.read_tlv(data, 0, len(data))
            if stop != len(data):
                raise WireError("malformed", f"{len(data) - stop} bytes after the {self.name}")
            record = self._by_identifier.get(ident)
            if record is None:
                raise WireError("malformed", f"no {self.name} alternative 0x{ident:02x}")
            return der.decode_fields(record, data, start, stop)
        except (ValueError, TypeError) as e:  # WireError passes; a bad field value is malformed too
            raise WireError("malformed", f"bad {self.name}: {e}") from None


# Last: the codec reads the kinds defined above.
from rais.wire import der  # noqa: E402
