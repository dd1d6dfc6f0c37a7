"""Message records, their pyasn1 classes, and the Message CHOICE registry.

The ASN.1 module ``rais.asn`` (shipped beside this file) is the schema; the
pyasn1 classes here mirror it. The module uses AUTOMATIC TAGS, so every
SEQUENCE component and CHOICE alternative carries an implicit context tag
[0], [1], ... in order.

To add a message: define an attrs record with ``to_asn1``/``from_asn1``, its
pyasn1 class, and decorate the record with ``@message(name, tag, asn1_class)``;
then add the same alternative to ``Message`` in ``rais.asn``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, constraint, namedtype, namedval, tag, univ

SCHEMA_FILE = "rais.asn"
U64_MAX = 2**64 - 1
MAX_BODY = 1400  # the SIZE of Envelope.body
MAX_ADDRESS = 255  # characters, as UTF8String SIZE counts them

ROLES = ("active", "standby", "master")

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

    # Defined here rather than in envelope.py because decode_message raises it
    # and envelope.py imports this module; envelope.py re-exports it.

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown wire error reason {reason!r}")
        super().__init__(detail or reason)
        self.reason = reason


def schema_text() -> str:
    """The ASN.1 module text, read from the installed package."""
    return importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8")


def context(number: int) -> tag.Tag:
    """Implicit context tag [number]; pyasn1 keeps the base type's constructed bit."""
    return tag.Tag(tag.tagClassContext, tag.tagFormatSimple, number)


def ranged(number: int, low: int, high: int) -> univ.Integer:
    return univ.Integer().subtype(
        subtypeSpec=constraint.ValueRangeConstraint(low, high), implicitTag=context(number)
    )


# --- pyasn1 classes, mirroring rais.asn ---


class RoleAsn1(univ.Enumerated):
    namedValues = namedval.NamedValues(*((name, i) for i, name in enumerate(ROLES)))
    subtypeSpec = univ.Enumerated.subtypeSpec + constraint.SingleValueConstraint(*range(len(ROLES)))


class LoadAsn1(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("cpuPermille", ranged(0, 0, 1000)),
        namedtype.NamedType("netRxBytesPerSec", ranged(1, 0, U64_MAX)),
        namedtype.NamedType("netTxBytesPerSec", ranged(2, 0, U64_MAX)),
    )


class HeartbeatAsn1(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("role", RoleAsn1().subtype(implicitTag=context(0))),
        namedtype.NamedType("priority", ranged(1, 0, 255)),
        namedtype.NamedType("generation", ranged(2, 0, U64_MAX)),
        namedtype.NamedType(
            "address",
            char.UTF8String().subtype(
                subtypeSpec=constraint.ValueSizeConstraint(0, MAX_ADDRESS), implicitTag=context(3)
            ),
        ),
        namedtype.OptionalNamedType("load", LoadAsn1().subtype(implicitTag=context(4))),
    )


# --- the registry ---


@attrs.frozen
class MessageKind:
    """One alternative of the Message CHOICE."""

    name: str  # the alternative's name in rais.asn
    tag: int  # its context tag number (its position, under AUTOMATIC TAGS)
    record: type
    asn1: type


REGISTRY: dict[str, MessageKind] = {}
_BY_RECORD: dict[type, MessageKind] = {}

R = TypeVar("R", bound=type)


def message(name: str, tag_number: int, asn1: type) -> Callable[[R], R]:
    """Register a record class as the Message alternative ``name`` [tag_number].

    The record must provide ``to_asn1(self, out)``, filling ``out`` (an empty
    instance of ``asn1``), and a classmethod ``from_asn1(cls, value)``.
    """

    def register(record: R) -> R:
        if name in REGISTRY or any(k.tag == tag_number for k in REGISTRY.values()):
            raise ValueError(f"message {name!r} [{tag_number}] registered twice")
        if issubclass(asn1, univ.Choice):
            raise TypeError("a CHOICE alternative would need an explicit tag")
        kind = MessageKind(name, tag_number, record, asn1)
        REGISTRY[name] = kind
        _BY_RECORD[record] = kind
        return record

    return register


# --- records ---


def _uint(limit: int) -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        # type() not isinstance(): bool is an int but never a valid field.
        if type(value) is not int or not 0 <= value <= limit:
            raise ValueError(f"{attribute.name} {value!r} must be an integer 0..{limit}")

    return check


def _check_role(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
    if value not in ROLES:
        raise ValueError(f"role {value!r} must be one of {ROLES}")


def _check_address(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not str or len(value) > MAX_ADDRESS:
        raise ValueError(f"address must be a string of at most {MAX_ADDRESS} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("address is not encodable as UTF-8 (lone surrogate)") from None


@attrs.frozen
class Load:
    cpu_permille: int = attrs.field(validator=_uint(1000))
    net_rx_bps: int = attrs.field(validator=_uint(U64_MAX))
    net_tx_bps: int = attrs.field(validator=_uint(U64_MAX))


def _check_load(_instance: Any, _attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and type(value) is not Load:
        raise ValueError(f"load {value!r} must be a Load or None")


@message("heartbeat", 0, HeartbeatAsn1)
@attrs.frozen
class Heartbeat:
    """Sent by every node, periodically: who it is and how it is doing."""

    role: str = attrs.field(validator=_check_role)
    priority: int = attrs.field(validator=_uint(255))
    generation: int = attrs.field(validator=_uint(U64_MAX))
    address: str = attrs.field(validator=_check_address)
    load: Load | None = attrs.field(default=None, validator=_check_load)

    def to_asn1(self, out: HeartbeatAsn1) -> None:
        # By position: pyasn1's by-name lookups are measurably slower.
        out.setComponentByPosition(0, ROLES.index(self.role))
        out.setComponentByPosition(1, self.priority)
        out.setComponentByPosition(2, self.generation)
        out.setComponentByPosition(3, self.address)
        if self.load is not None:
            load = out.getComponentByPosition(4)
            load.setComponentByPosition(0, self.load.cpu_permille)
            load.setComponentByPosition(1, self.load.net_rx_bps)
            load.setComponentByPosition(2, self.load.net_tx_bps)

    @classmethod
    def from_asn1(cls, value: HeartbeatAsn1) -> Heartbeat:
        load = value.getComponentByPosition(4, default=None, instantiate=False)
        return cls(
            role=ROLES[int(value.getComponentByPosition(0))],
            priority=int(value.getComponentByPosition(1)),
            generation=int(value.getComponentByPosition(2)),
            address=str(value.getComponentByPosition(3)),
            load=None
            if load is None
            else Load(
                int(load.getComponentByPosition(0)),
                int(load.getComponentByPosition(1)),
                int(load.getComponentByPosition(2)),
            ),
        )


# --- the CHOICE, built from the registry (so it must come after every record) ---


class MessageAsn1(univ.Choice):
    componentType = namedtype.NamedTypes(
        *(
            namedtype.NamedType(k.name, k.asn1().subtype(implicitTag=context(k.tag)))
            for k in sorted(REGISTRY.values(), key=lambda k: k.tag)
        )
    )


_MESSAGE_SPEC = MessageAsn1()


def encode_message(msg: Any) -> bytes:
    """DER of the Message CHOICE holding ``msg``; ValueError if it cannot be encoded."""
    kind = _BY_RECORD.get(type(msg))
    if kind is None:
        raise ValueError(f"{type(msg).__name__} is not a registered message")
    choice = MessageAsn1()
    try:
        msg.to_asn1(choice.getComponentByName(kind.name))
        return der_encoder.encode(choice)
    except PyAsn1Error as e:
        raise ValueError(f"cannot encode {kind.name}: {e}") from None


def decode_message(data: bytes) -> Any:
    """The record in a DER Message; WireError("malformed") on anything wrong."""
    if len(data) > MAX_BODY:
        raise WireError("malformed", f"message of {len(data)} bytes is over {MAX_BODY}")
    try:
        value, rest = der_decoder.decode(data, asn1Spec=_MESSAGE_SPEC)
        kind = REGISTRY[value.getName()]
        record = kind.record.from_asn1(value.getComponent())
        # DER is canonical: any other encoding of the same value is malformed.
        canonical = not rest and der_encoder.encode(value) == data
    except Exception as e:  # pyasn1 raises many types on hostile input, none may escape
        raise WireError("malformed", f"undecodable message ({type(e).__name__})") from None
    if not canonical:
        raise WireError("malformed", "message is not canonical DER")
    return record
