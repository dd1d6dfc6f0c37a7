"""Table rows: one record per alternative of the TableRow CHOICE in ``rais.asn``.

A row is encoded once: its DER (``der``) and its digest contribution
(``hash``) are computed on first use and kept, so a sync or a save splices
the same bytes however many times they are sent.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import ClassVar

import attrs

from rais.ids import HostClusterId
from rais.states import HostStatus, Result, Role, ServiceState, Spare
from rais.wire.messages import (
    DIGEST,
    MAX_ADDRESS,
    MAX_BODY,
    MAX_NAME,
    ROLE,
    U8,
    U16,
    Checks,
    RowKey,
)
from rais.wire.schema import Choice, Enum, Flag, HostId, Octets, Record, Struct, Text, UInt, asn1_sequence, wire

ROWS: Choice[Row] = Choice("TableRow", MAX_BODY)

MAX_DETAIL = 200  # bytes of UTF-8 (and so at most as many characters)


class Row(Record):
    """What every row record provides; ``key`` names its place in the tables."""

    table: ClassVar[str]

    @property
    def key(self) -> RowKey:
        raise NotImplementedError

    @cached_property
    def der(self) -> bytes:
        return ROWS.encode(self)

    @cached_property
    def hash(self) -> int:
        return int.from_bytes(hashlib.sha256(self.der).digest()[:DIGEST])


def decode_row(data: bytes) -> Row:
    row = ROWS.decode(data)
    # The codec is strict, so these bytes are the row's one DER encoding: keep them.
    row.__dict__["der"] = bytes(data)
    return row


class HostRow(Row):
    """A row of a per-host table, keyed by its host."""

    host: HostClusterId

    @property
    def key(self) -> RowKey:
        return RowKey(self.table, self.host.value, "")  # ServiceRow adds its name


@ROWS.register("service", 0)
@attrs.frozen(cache_hash=True, kw_only=True)
class ServiceRow(HostRow):
    table = "services"
    host: HostClusterId = wire(HostId())
    name: str = wire(Text(MAX_NAME, 1))
    probe: str = wire(Text(MAX_NAME, max_bytes=MAX_NAME))
    port: int = wire(U16)  # 0: none
    running: bool = wire(Flag())  # the host declares it running now
    assigned: bool = wire(Flag())  # the cluster wants it served here
    can_start: bool = wire(Flag())
    can_stop: bool = wire(Flag())
    state: ServiceState = wire(Enum(tuple(ServiceState)))
    result: Result = wire(Enum(tuple(Result)))  # the last probe's verdict
    latency_us: int | None = wire(UInt(), optional=True)
    detail: str = wire(Text(MAX_DETAIL, max_bytes=MAX_DETAIL))  # see schema.clip
    options: str = wire(Text(512, max_bytes=512))  # probe options, canonical JSON
    changed_ms: int = wire(UInt())  # master's wall clock when the state last changed
    checks: Checks = wire(Struct(Checks), default=Checks())  # the host's own probe settings, 0 = cluster default
    address: str = wire(Text(MAX_ADDRESS), default="")  # what the probe checks; "": the host's address
    exclusive: bool = wire(Flag(), default=False)  # never on two hosts at once (fenced, in quorum mode)
    can_refresh: bool = wire(Flag(), default=False)
    # The host's boot epoch when this copy was established there (started by an order, or found
    # running when first declared); 0: never. A host that restarted since has not kept it.
    epoch: int = wire(UInt(), default=0)
    # Master's wall clock when a copy was last started here to take load off a busy host; 0: never.
    # A later master honours the service's move_hold from it.
    moved_ms: int = wire(UInt(), default=0)

    @property
    def key(self) -> RowKey:
        return RowKey(self.table, self.host.value, self.name)


@ROWS.register("latency", 1)
@attrs.frozen(cache_hash=True)
class LatencyRow(HostRow):
    table = "latency"
    host: HostClusterId = wire(HostId())
    rtt_us: int = wire(UInt())  # the master's smoothed round trip to the host


@ROWS.register("cpu", 2)
@attrs.frozen(cache_hash=True)
class CpuRow(HostRow):
    table = "cpu"
    host: HostClusterId = wire(HostId())
    cpu_permille: int = wire(UInt(0, 1000))


@ROWS.register("network", 3)
@attrs.frozen(cache_hash=True)
class NetworkRow(HostRow):
    table = "network"
    host: HostClusterId = wire(HostId())
    rx_bps: int = wire(UInt())
    tx_bps: int = wire(UInt())


@ROWS.register("server", 4)
@attrs.frozen(cache_hash=True, kw_only=True)
class ServerRow(HostRow):
    table = "servers"
    host: HostClusterId = wire(HostId())
    role: Role = wire(ROLE)
    configured: Role = wire(ROLE)
    status: HostStatus = wire(Enum(tuple(HostStatus)))
    priority: int = wire(U8)
    address: str = wire(Text(MAX_ADDRESS))
    boot_epoch: int = wire(UInt())
    last_heard_ms: int = wire(UInt())  # master's wall clock; refreshed, not live
    catalogue: bytes = wire(Octets(8, 8))  # digest of the services it declared
    drained: bool = wire(Flag(), default=False)  # the operator's `rais drain`: nothing runs or is placed here


@asn1_sequence
@attrs.frozen
class Weights(Record):
    """The planner's weights for one service, in thousandths; absent: the default."""

    overlap: int | None = wire(UInt(0, 1_000_000), optional=True, default=None)
    latency: int | None = wire(UInt(0, 1_000_000), optional=True, default=None)
    cpu: int | None = wire(UInt(0, 1_000_000), optional=True, default=None)
    network: int | None = wire(UInt(0, 1_000_000), optional=True, default=None)
    role: int | None = wire(UInt(0, 1_000_000), optional=True, default=None)
    stickiness: int | None = wire(UInt(0, 1_000_000), optional=True, default=None)


@ROWS.register("policy", 5)
@attrs.frozen(cache_hash=True)
class PolicyRow(Row):
    table = "policy"
    name: str = wire(Text(MAX_NAME, 1))
    replicas: int = wire(UInt(1, 1000))
    max_cpu_permille: int | None = wire(UInt(1, 1000), optional=True)
    max_latency_us: int | None = wire(UInt(), optional=True)
    max_net_bps: int | None = wire(UInt(), optional=True, default=None)  # bytes/s, in and out
    weights: Weights = wire(Struct(Weights), default=Weights())
    prefer: HostClusterId | None = wire(HostId(), optional=True, default=None)  # placed there when it qualifies
    failback_ms: int = wire(UInt(), default=60_000)  # back to prefer once it has qualified this long
    live: bool = wire(Flag(), default=False)  # set by `rais policy set`: a new master keeps it over its config's
    spare: Spare = wire(Enum(tuple(Spare)), default=Spare.PREFER)  # may it take a spare (rais.pool)

    @property
    def key(self) -> RowKey:
        return RowKey(self.table, 0, self.name)


@ROWS.register("cost", 6)
@attrs.frozen(cache_hash=True)
class CostRow(Row):
    """What one copy of a service adds to its host's load, learned from the steps its starts and
    stops made in the host's figures (rais.costs). A table of its own, not a policy field: the
    policy is the operator's (a new master writes its config's over it), this is the cluster's
    experience, which every later master and `rais plan` must find as it was."""

    table = "costs"
    name: str = wire(Text(MAX_NAME, 1))
    cpu_permille: int = wire(UInt(0, 1000))
    net_bps: int = wire(UInt())  # bytes/s, in and out
    samples: int = wire(UInt())

    @property
    def key(self) -> RowKey:
        return RowKey(self.table, 0, self.name)
