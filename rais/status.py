"""The status document: what a node shows operators, and what `rais plan` reads back.

Pure. ``document`` builds it from the node's parts (README, "Status
document", lists every field). A master's document also carries what it
remembers between reconciles (``reconcile``: orders in flight, hosts put
aside, load timers) and its ``timing``, so ``situation`` can rebuild from a
saved document exactly what the master's next reconcile decides from.

Reading is strict and every problem is one line naming where it is
(``tables.services[3] (1.2.0.2 web): state: ...``), because the document may
be a file an operator edited or a truncated download.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from rais.election import term_text
from rais.ids import HostClusterId, IdError
from rais.membership import Peer
from rais.planner import View
from rais.reconcile import Books, Exclusion, Pending, Situation
from rais.settings import Timing
from rais.tables import Tables, row_as
from rais.wire import Order, RowKey
from rais.wire.messages import MAX_NAME, TABLES
from rais.wire.rows import ROWS, LatencyRow
from rais.wire.schema import Flag, HostId, Kind, Octets, Record, Struct, Text, UInt, shown

if TYPE_CHECKING:
    from rais.node import Node

R = TypeVar("R", bound=Record)


def document(node: Node, now: float) -> dict[str, Any]:
    """The status document served as status.json (see README)."""
    master = node.master(now)
    tables = node.tables
    doc = {
        "at": now,
        "self": str(node.id),
        "cluster": str(node.id.cluster),
        "role": node.role,
        "configured_role": node.identity.configured,
        "priority": node.identity.priority,
        "address": node.identity.address,
        "term": node.term,
        "term_text": term_text(node.term),
        "master": str(master) if master else None,
        "master_since": node.election.master_since if master else None,
        "quorum": node.timing.quorum,
        "timing": attrs.asdict(node.timing),
        "generation": tables.generation,
        "tables_term": tables.term,
        "digest": tables.digest.hex(),
        "behind": node.mastership is None and node.replica.behind(),
        "boot_epoch": node.boot_epoch,
        # Another process heard using this host's id lately (a configuration error), or None.
        "duplicate_id": (None if node.twin is None or now >= node.twin.until else
                         {"source": node.twin.source, "boot_epoch": node.twin.boot_epoch}),
        "uptime": round(now - node.started, 3),
        "hosts": [_peer(node, peer, now) for peer in node.membership.peers()],
        "tables": tables.to_json(),
        # The pool of spares and the cluster's state, as these tables say (rais.pool).
        "pool": node.pool(now).json(),
        "decisions": {},
    }
    mastership = node.mastership
    if mastership is not None:
        doc["decisions"] = {name: [{"at": at, "text": text} for at, text in kept]
                            for name, kept in sorted(mastership.decisions.items())}
        doc["reconcile"] = {"acts_from": node.acts_from(), **books_json(mastership.books)}
    return doc


def _peer(node: Node, peer: Peer, now: float) -> dict[str, Any]:
    load = peer.load
    latency = row_as(LatencyRow, node.tables.get(RowKey("latency", peer.id.value, "")))
    return {
        "id": str(peer.id),
        "address": peer.address,
        "source": peer.source,
        "role": peer.role,
        "configured_role": peer.beat.configured,
        "priority": peer.priority,
        "term": peer.term,
        "generation": peer.beat.generation,
        "status": node.membership.status(peer, now),
        "last_heard": round(now - peer.last_heard, 3),
        "boot_epoch": peer.boot_epoch,
        "cpu": load.cpu_permille / 1000 if load else None,
        "net_rx_bps": load.net_rx_bps if load else None,
        "net_tx_bps": load.net_tx_bps if load else None,
        "latency_ms": latency.rtt_us / 1000 if latency else None,
    }


def books_json(books: Books) -> dict[str, Any]:
    return {
        "next_order": books.next_order,
        "orders": [{**order_json(p.order), "sent_at": p.sent_at, "deadline": p.deadline}
                   for _, p in sorted(books.orders.items())],
        "excluded": [{"host": str(host), "service": name, "why": e.why, "until": e.until}
                     for (host, name), e in sorted(books.excluded.items())],
        "released_at": [{"host": str(host), "service": name, "at": at}
                        for (host, name), at in sorted(books.released_at.items())],
        "over_since": [{"host": str(host), "service": name, "since": since}
                       for (host, name), since in sorted(books.over_since.items())],
        "leaving": {name: str(host) for name, host in sorted(books.leaving.items())},
        "announced": books.announced,
        "refresh": sorted(books.refresh),
        "moves": {name: str(host) for name, host in sorted(books.moves.items())},
        "back_since": [{"host": str(host), "service": name, "since": since}
                       for (host, name), since in sorted(books.back_since.items())],
        "cleanup": [{"host": str(host), "service": name} for host, name in sorted(books.cleanup)],
    }


def order_json(order: Order) -> dict[str, Any]:
    return {"order": order.order, "action": order.action, "host": str(order.host), "service": order.service,
            "epoch": order.epoch}


# --- reading a document back ---


class DocumentError(ValueError):
    """A status document that cannot be used; the message says where and why, on one line."""


MAX_WHY = 200  # characters of the reason a host is put aside (the master's are a few words)
_KEY_FIELDS = ("host", "name")  # what a row's key is made of (see Row.key)


def json_type(value: Any) -> str:
    """The kind of a JSON value, as an error names it."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "true or false", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, for json.load's object_pairs_hook: json.load keeps the last of two equal keys
    without a word, and an edited document may have one twice."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise DocumentError(f"{shown(key)} twice in one object")
        data[key] = value
    return data


def host_id(value: Any) -> HostClusterId:
    """A host-cluster id written as "1.2.0.7"; ValueError quoting what was given instead."""
    expected = f'expected a host-cluster id like "1.2.0.7", got {shown(value)}'
    if not isinstance(value, str) or len(value) > 15:
        raise ValueError(expected)
    try:
        return HostClusterId.parse(value)
    except IdError as e:
        # After the format, the id's own check names it by number: keep only the reason.
        _, colon, why = str(e).rpartition(": ")
        raise ValueError(f"{expected} ({why})" if colon else expected) from None


def situation(doc: Any, now: float | None = None) -> Situation:
    """What the master of ``doc`` decides from; ``now`` defaults to when the document was made."""
    top = _object(doc, "the document")
    tables = read_tables(top)
    master = _get(top, "master", _host_or_none)
    timing = _get(top, "timing", _timing)
    books = _get(top, "reconcile", _books, default=Books())
    at = _get(top, "at", _time) if now is None else now
    return Situation(View(tables), books, master, timing, at)


def read_tables(top: Mapping[str, Any]) -> Tables:
    """The tables of a status document, every row checked, no row twice."""
    by_table = {record.table: record for _tag, record in ROWS.alternatives.values()}
    raw = _get(top, "tables", _object)
    for name in raw:
        if name not in TABLES:
            raise DocumentError(f"tables: unknown table {shown(name)} (the tables are {', '.join(TABLES)})")
    rows: dict[RowKey, Any] = {}
    first: dict[RowKey, str] = {}
    for name in TABLES:
        record = by_table[name]
        for index, item in enumerate(_get(raw, name, _list, where="tables", default=[])):
            place = f"tables.{name}[{index}]"
            where = place + _label(record, item)
            row = _row(record, item, where)
            if row.key in first:
                raise DocumentError(f"{where}: a second row with this key; the first is {first[row.key]}")
            first[row.key] = place
            rows[row.key] = row
    term = _get(top, "tables_term", _count, default=0)
    generation = _get(top, "generation", _count, default=0)
    return Tables.of(term, generation, rows.values())


def _label(record: type[Record], item: Any) -> str:
    """`` (1.2.0.2 web)``: the row's key, by which an operator finds it, if its key fields read."""
    if not isinstance(item, dict):
        return ""
    parts = []
    for name, kind, _optional in record.__wire_components__:
        if name in _KEY_FIELDS:
            try:
                parts.append(_named(str(_value(kind, item.get(name)))))
            except ValueError:
                return ""
    return f" ({' '.join(parts)})"


def _named(name: str) -> str:
    """A name as a message shows it: as it is, or quoted if it could break the line or be misread."""
    return name if name.isprintable() and " " not in name else shown(name)


def _row(record: type[R], item: Any, where: str, beside: tuple[str, ...] = ()) -> R:
    """A record from a JSON object of its fields (and of the fields ``beside`` it, left to the caller)."""
    data = _object(item, where)
    components = record.__wire_components__
    _known(data, [*(name for name, _kind, _optional in components), *beside], where)
    fields = {}
    for name, kind, optional in components:
        if name not in data:
            if optional:
                continue
            raise DocumentError(f"{where}: {name}: missing")
        value = data[name]
        if isinstance(kind, Struct):
            value = _row(kind.record, value, f"{where}: {name}")
        elif value is not None or not optional:
            try:
                value = _value(kind, value)
            except ValueError as e:
                raise DocumentError(f"{where}: {name}: {e}") from None
        fields[name] = value
    try:
        return record(**fields)
    except ValueError as e:  # a record's own check across fields names the field itself
        raise DocumentError(f"{where}: {e}") from None


def _value(kind: Kind, value: Any) -> Any:
    """A JSON value read as a field of the wire's ``kind``, checked by the wire's own check;
    ValueError saying what was expected. Ids and bytes are written as text in JSON."""
    if isinstance(kind, HostId):
        return host_id(value)
    if isinstance(kind, Octets):
        size = kind.low if kind.low == kind.high else f"{kind.low} to {kind.high}"
        expected = ValueError(f"expected {size} bytes in hexadecimal, got {shown(value)}")
        if not isinstance(value, str) or len(value) > 3 * kind.high:  # bytes.fromhex allows a space between
            raise expected
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise expected from None
    kind.check(value)
    return value


def _field(kind: Kind) -> Callable[[Any, str], Any]:
    """A reader for ``_get`` of a value the wire carries as ``kind``."""
    def read(value: Any, where: str) -> Any:
        try:
            return _value(kind, value)
        except ValueError as e:
            raise DocumentError(f"{where}: {e}") from None
    return read


_BOOKS_FIELDS = ("acts_from", "next_order", "orders", "excluded", "released_at", "over_since", "leaving",
                 "announced", "refresh", "moves", "back_since", "cleanup")
_PENDING_FIELDS = ("sent_at", "deadline")  # beside an order's own


def _books(value: Any, where: str) -> Books:
    data = _object(value, where)
    _known(data, _BOOKS_FIELDS, where)
    orders: dict[int, Pending] = {}
    first: dict[int, str] = {}
    for index, item in enumerate(_get(data, "orders", _list, where=where, default=[])):
        at = f"{where}.orders[{index}]"
        entry = _object(item, at)
        order = _row(Order, {k: v for k, v in entry.items() if k not in _PENDING_FIELDS}, at, _PENDING_FIELDS)
        number = order.order
        if number in first:
            raise DocumentError(f"{at}.order: a second order {number}; the first is {first[number]}")
        first[number] = at
        orders[number] = Pending(order, _get(entry, "sent_at", _time, where=at),
                                 _get(entry, "deadline", _time, where=at))
    # Orders are numbered from next_order on: one in flight at or above it would be given twice.
    above = max(orders, default=0) + 1
    next_order = _get(data, "next_order", _count, where=where, default=above)
    if next_order < above:
        raise DocumentError(f"{where}.next_order: expected at least {above}, above every order in flight, "
                            f"got {next_order}")
    return Books(
        orders=orders,
        next_order=next_order,
        excluded=_copies(data, "excluded", where, ("why", "until"), lambda e, at: Exclusion(
            _get(e, "why", _why, where=at), _get(e, "until", _time, where=at))),
        released_at=_copies(data, "released_at", where, ("at",), lambda e, at: _get(e, "at", _time, where=at)),
        over_since=_copies(data, "over_since", where, ("since",),
                           lambda e, at: _get(e, "since", _time, where=at)),
        leaving=_services_to_hosts(data, "leaving", where),
        announced=_get(data, "announced", _flag, where=where, default=True),
        refresh=frozenset(_name(name, f"{where}.refresh[{i}]")
                          for i, name in enumerate(_get(data, "refresh", _list, where=where, default=[]))),
        moves=_services_to_hosts(data, "moves", where),
        back_since=_copies(data, "back_since", where, ("since",), lambda e, at: _get(e, "since", _time, where=at)),
        cleanup=frozenset(_copies(data, "cleanup", where, (), lambda e, at: True)),
    )


def _copies(data: Mapping[str, Any], key: str, where: str, fields: tuple[str, ...],
            value: Callable[[Any, str], Any]) -> dict[Any, Any]:
    """A list of entries about one service on one host, keyed by (host, service)."""
    out = {}
    for index, item in enumerate(_get(data, key, _list, where=where, default=[])):
        at = f"{where}.{key}[{index}]"
        entry = _object(item, at)
        _known(entry, ("host", "service", *fields), at)
        copy = (_get(entry, "host", _host, where=at), _get(entry, "service", _name, where=at))
        if copy in out:
            raise DocumentError(f"{at}: a second entry for {copy[0]} {_named(copy[1])}")
        out[copy] = value(entry, at)
    return out


def _services_to_hosts(data: Mapping[str, Any], key: str, where: str) -> dict[str, HostClusterId]:
    """An object of service names to host ids, such as the operator's moves."""
    return {_name(name, f"{where}.{key}"): _host(host, f"{where}.{key}.{_named(name)}")
            for name, host in _get(data, key, _object, where=where, default={}).items()}


def _timing(value: Any, where: str) -> Timing:
    data = _object(value, where)
    _known(data, [f.name for f in attrs.fields(Timing)], where)
    return Timing(
        interval=_get(data, "interval", _positive, where=where),
        dead_after=_get(data, "dead_after", _count, where=where),
        quorum=_get(data, "quorum", _flag, where=where, default=False),
        balance_after=_get(data, "balance_after", _time, where=where, default=30.0),
        move_hold=_get(data, "move_hold", _time, where=where, default=120.0),
        settle=_get(data, "settle", _time, where=where, default=0.0),
        min_spares=_get(data, "min_spares", _count, where=where, default=0),
    )


_MISSING = object()


def _get(data: Mapping[str, Any], key: str, read: Callable[[Any, str], Any], *, where: str = "",
         default: Any = _MISSING) -> Any:
    """``data[key]`` read by ``read``; ``default`` if it is absent (an error if there is none)."""
    at = f"{where}.{key}" if where else key
    if key not in data:
        if default is _MISSING:
            raise DocumentError(f"{at}: missing")
        return default
    return read(data[key], at)


def _known(data: Mapping[str, Any], fields: Collection[str], where: str) -> None:
    for key in data:
        if key not in fields:
            raise DocumentError(f"{where}: unknown field {shown(key)}")


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise DocumentError(f"{where}: expected a JSON object, got {json_type(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DocumentError(f"{where}: expected a JSON array, got {json_type(value)}")
    return value


def _host_or_none(value: Any, where: str) -> HostClusterId | None:
    return None if value is None else _host(value, where)


def _host(value: Any, where: str) -> HostClusterId:
    try:
        return host_id(value)
    except ValueError as e:
        raise DocumentError(f"{where}: {e}") from None


def _number(value: Any, where: str) -> float:
    try:
        number = float(value) if type(value) in (int, float) else math.nan
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise DocumentError(f"{where}: expected a number, got {shown(value)}")
    return number


def _time(value: Any, where: str) -> float:
    seconds = _number(value, where)
    if seconds < 0:
        raise DocumentError(f"{where}: expected seconds, at least 0, got {shown(value)}")
    return seconds


def _positive(value: Any, where: str) -> float:
    seconds = _number(value, where)
    if seconds <= 0:
        raise DocumentError(f"{where}: expected seconds over 0, got {shown(value)}")
    return seconds


# Readers of values the wire carries, with the wire's own checks.
_count = _field(UInt())
_flag = _field(Flag())
_name = _field(Text(MAX_NAME, 1))
_why = _field(Text(MAX_WHY))
