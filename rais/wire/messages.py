"""The messages: one record per alternative of the Message CHOICE in ``rais.asn``.

To add a message: a record here registered with ``@MESSAGES.register(name,
tag)`` and the same alternative in ``Message`` in rais.asn (next free tag);
tests/test_wire_asn1tools.py checks that the two agree.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import attrs

from rais.ids import HostClusterId
from rais.states import OrderAction, Role
from rais.wire.schema import (
    Choice,
    Enum,
    Flag,
    HostId,
    ListOf,
    Octets,
    Record,
    Struct,
    Text,
    UInt,
    asn1_sequence,
    wire,
)

SCHEMA_FILE = "rais.asn"
MAX_BODY = 1400  # the SIZE of Envelope.body
MAX_ADDRESS = 255  # characters, as UTF8String SIZE counts them
MAX_NAME = 64  # service and policy names, as in the config
DIGEST = 16  # bytes of a tables digest
CATALOGUE = 8  # bytes of a service catalogue digest

ROLE = Enum(tuple(Role))
TERM = UInt()
GENERATION = UInt()
U8 = UInt(0, 255)
U16 = UInt(0, 0xFFFF)

MESSAGES: Choice[Record] = Choice("Message", MAX_BODY)

# The tables, in the order of the RowKey.table ENUMERATED.
TABLES = ("services", "latency", "cpu", "network", "servers", "policy", "costs")


def schema_text() -> str:
    """The ASN.1 module text, read from the installed package."""
    return importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8")


def encode_message(msg: Any) -> bytes:
    """DER of the Message CHOICE holding ``msg``; ValueError if it cannot be encoded."""
    return MESSAGES.encode(msg)


def decode_message(data: bytes) -> Any:
    """The record in a DER Message; WireError("malformed") on anything wrong."""
    return MESSAGES.decode(data)


@asn1_sequence
@attrs.frozen
class Load(Record):
    cpu_permille: int = wire(UInt(0, 1000))
    net_rx_bps: int = wire(UInt())
    net_tx_bps: int = wire(UInt())


@asn1_sequence
@attrs.frozen
class Echo(Record):
    """A host's echo of the master's latest heartbeat, for round-trip times."""

    stamp: int = wire(UInt())  # the master's heartbeat stamp, microseconds
    held: int = wire(UInt())  # microseconds between receiving it and sending this


MAX_HEARD = 64  # hosts a heartbeat can speak of: about 13 bytes each


@asn1_sequence
@attrs.frozen
class Heard(Record):
    """A heartbeat's word about another host: how long since its sender last had news of it."""

    host: HostClusterId = wire(HostId())
    age_ms: int = wire(UInt(0, 2**32 - 1))


@MESSAGES.register("heartbeat", 0)
@attrs.frozen(kw_only=True)
class Heartbeat(Record):
    """Sent by every node every heartbeat interval: who it is, how it is, what it holds."""

    role: Role = wire(ROLE)  # the role it plays now
    priority: int = wire(U8)
    generation: int = wire(GENERATION)  # of its replica of the tables
    address: str = wire(Text(MAX_ADDRESS))
    load: Load | None = wire(Struct(Load), optional=True, default=None)
    configured: Role = wire(ROLE, default=Role.ACTIVE)  # the role its config asks for
    tables_term: int = wire(TERM, default=0)  # the term that wrote its replica
    digest: bytes = wire(Octets(DIGEST, DIGEST), default=bytes(DIGEST))
    catalogue: bytes = wire(Octets(CATALOGUE, CATALOGUE), default=bytes(CATALOGUE))
    stamp: int = wire(UInt(), default=0)  # sender's clock, microseconds
    echo: Echo | None = wire(Struct(Echo), optional=True, default=None)
    # Hosts it suspects, and its news of hosts others suspect (see rais.membership).
    heard: tuple[Heard, ...] = wire(ListOf(Struct(Heard), MAX_HEARD), default=())


@MESSAGES.register("syncNotice", 1)
@attrs.frozen
class SyncNotice(Record):
    """The master's tables changed: this is where they are now."""

    tables_term: int = wire(TERM)
    generation: int = wire(GENERATION)
    digest: bytes = wire(Octets(DIGEST, DIGEST))


@asn1_sequence
@attrs.frozen
class Transfer(Record):
    """Names one sync transfer: a delta from a generation, or a whole snapshot."""

    tables_term: int = wire(TERM)
    snapshot: bool = wire(Flag())
    from_generation: int = wire(GENERATION)
    to_generation: int = wire(GENERATION)


MAX_MISSING = 200


@MESSAGES.register("syncRequest", 2)
@attrs.frozen
class SyncRequest(Record):
    """A host behind the master says what it has, and which chunks it still lacks."""

    master: HostClusterId = wire(HostId())
    have_term: int = wire(TERM)
    have_generation: int = wire(GENERATION)
    have_digest: bytes = wire(Octets(DIGEST, DIGEST))
    transfer: Transfer | None = wire(Struct(Transfer), optional=True, default=None)
    missing: tuple[int, ...] = wire(ListOf(U16, MAX_MISSING), default=())


MAX_REMOVED = 64


@asn1_sequence
@attrs.frozen
class RowKey(Record):
    table: str = wire(Enum(TABLES))
    host: int = wire(UInt(0, 2**32 - 1))  # 0 for cluster-wide rows (policy)
    name: str = wire(Text(MAX_NAME))  # "" for per-host rows


@MESSAGES.register("syncChunk", 3)
@attrs.frozen
class SyncChunk(Record):
    """One datagram of a transfer; a host applies a transfer once it has every chunk."""

    transfer: Transfer = wire(Struct(Transfer))
    digest: bytes = wire(Octets(DIGEST, DIGEST))  # of the tables after the transfer
    index: int = wire(U16)
    count: int = wire(UInt(1, 0xFFFF))
    rows: bytes = wire(Octets(0, MAX_BODY))  # DER TableRow values, back to back
    removed: tuple[RowKey, ...] = wire(ListOf(Struct(RowKey), MAX_REMOVED), default=())


@MESSAGES.register("catalogueRequest", 4)
@attrs.frozen
class CatalogueRequest(Record):
    """The master asks a host for the services it declares."""

    host: HostClusterId = wire(HostId())


@asn1_sequence
@attrs.frozen
class Checks(Record):
    """How the master probes one service; 0 means the cluster's default."""

    interval_ms: int = wire(UInt(0, 86_400_000), default=0)
    timeout_ms: int = wire(UInt(0, 3_600_000), default=0)
    rise: int = wire(UInt(0, 100), default=0)
    fall: int = wire(UInt(0, 100), default=0)


@asn1_sequence
@attrs.frozen
class ServiceDecl(Record):
    """One [services.NAME] of a host, as the master needs it."""

    name: str = wire(Text(MAX_NAME, 1))
    probe: str = wire(Text(MAX_NAME))
    port: int = wire(U16)  # 0: none
    running: bool = wire(Flag())
    can_start: bool = wire(Flag())
    can_stop: bool = wire(Flag())
    options: str = wire(Text(512))  # the probe options as canonical JSON
    checks: Checks = wire(Struct(Checks), default=Checks())
    address: str = wire(Text(MAX_ADDRESS), default="")  # what the probe checks; "": the host's address
    exclusive: bool = wire(Flag(), default=False)  # never on two hosts at once (fenced, in quorum mode)
    can_refresh: bool = wire(Flag(), default=False)


@MESSAGES.register("catalogue", 5)
@attrs.frozen
class Catalogue(Record):
    """A host's service declarations, in as many datagrams as they need."""

    digest: bytes = wire(Octets(CATALOGUE, CATALOGUE))
    index: int = wire(U16)
    count: int = wire(UInt(1, 0xFFFF))
    services: tuple[ServiceDecl, ...] = wire(ListOf(Struct(ServiceDecl), 64))


@MESSAGES.register("voteRequest", 6)
@attrs.frozen
class VoteRequest(Record):
    """A candidate asks for votes for a new term (quorum mode)."""

    term: int = wire(TERM)
    tables_term: int = wire(TERM)
    generation: int = wire(GENERATION)
    preempt: bool = wire(Flag())


@MESSAGES.register("vote", 7)
@attrs.frozen
class Vote(Record):
    term: int = wire(TERM)
    candidate: HostClusterId = wire(HostId())
    granted: bool = wire(Flag())



@MESSAGES.register("order", 8)
@attrs.frozen
class Order(Record):
    """The master tells a host to start (assign) or stop (release) a service."""

    order: int = wire(UInt())  # unique within the master's term
    action: OrderAction = wire(Enum(tuple(OrderAction)))
    host: HostClusterId = wire(HostId())
    service: str = wire(Text(MAX_NAME, 1))
    # The host's boot epoch it is meant for: a host takes no order meant for an earlier start of
    # itself, so an order captured and sent again after a restart does nothing.
    epoch: int = wire(UInt())


@MESSAGES.register("orderDone", 9)
@attrs.frozen
class OrderDone(Record):
    """A host says how an order went."""

    order: int = wire(UInt())
    service: str = wire(Text(MAX_NAME, 1))
    ok: bool = wire(Flag())
    detail: str = wire(Text(200, max_bytes=200))


# What an operator's command asks of the master (rais.commands).
VERBS = ("move", "drain", "undrain", "policySet", "policyReset")
MAX_SETTINGS = 32
REPLY_TEXT = 1000  # UTF-8 bytes of answer per reply datagram
MAX_REPLIES = 64  # datagrams an answer may take; longer answers are cut short


@asn1_sequence
@attrs.frozen
class Setting(Record):
    """One KEY=VALUE of `rais policy set`, as the operator wrote it: the master checks it."""

    key: str = wire(Text(MAX_NAME, 1))
    value: str = wire(Text(MAX_ADDRESS))


@MESSAGES.register("command", 10)
@attrs.frozen
class Command(Record):
    """A node asks the master, on an operator's behalf, to move a service, drain a host or change
    a policy. It names the master's boot epoch (and the envelope its term): a command captured and
    sent again after that master restarted, or to a later master, does nothing."""

    master: HostClusterId = wire(HostId())
    epoch: int = wire(UInt())  # the master's boot epoch
    request: int = wire(UInt())  # the asker's number for it, unique within its boot epoch
    verb: str = wire(Enum(VERBS))
    service: str = wire(Text(MAX_NAME))  # "" for drain and undrain
    host: int = wire(UInt(0, 2**32 - 1))  # 0 for the policy verbs
    settings: tuple[Setting, ...] = wire(ListOf(Struct(Setting), MAX_SETTINGS), default=())


@MESSAGES.register("commandReply", 11)
@attrs.frozen
class CommandReply(Record):
    """The master's answer to one command: what will happen, or why it cannot, in ``count`` parts."""

    asker: HostClusterId = wire(HostId())
    request: int = wire(UInt())
    ok: bool = wire(Flag())
    index: int = wire(U16)
    count: int = wire(UInt(1, MAX_REPLIES))
    text: str = wire(Text(REPLY_TEXT, max_bytes=REPLY_TEXT))
