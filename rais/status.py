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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from rais.election import term_text
from rais.ids import HostClusterId, IdError
from rais.membership import Peer
from rais.planner import View
from rais.reconcile import Books, Exclusion, Pending, Situation
from rais.settings import Timing
from rais.states import OrderAction
from rais.tables import Tables
from rais.wire import Order, RowKey
from rais.wire.messages import TABLES
from rais.wire.rows import ROWS
from rais.wire.schema import HostId, Octets, Struct

if TYPE_CHECKING:
    from rais.node import Node


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
        "uptime": round(now - node.started, 3),
        "hosts": [_peer(node, peer, now) for peer in node.membership.peers()],
        "tables": tables.to_json(),
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
    latency = node.tables.get(RowKey("latency", peer.id.value, ""))
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
        "moved_at": dict(sorted(books.moved_at.items())),
    }


def order_json(order: Order) -> dict[str, Any]:
    return {"order": order.order, "action": order.action, "host": str(order.host), "service": order.service}


# --- reading a document back ---


class DocumentError(ValueError):
    """A status document that cannot be used; the message says where and why, on one line."""


SHOWN = 60  # characters of a bad value quoted in an error


def shown(value: Any) -> str:
    """A value as an error quotes it: its repr, cut short (a field may be megabytes)."""
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text)} characters)"


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
    rows = {}
    for name in raw:
        if name not in TABLES:
            raise DocumentError(f"tables: unknown table {shown(name)} (the tables are {', '.join(TABLES)})")
    for name in TABLES:
        for index, item in enumerate(_get(raw, name, _list, where="tables", default=[])):
            where = f"tables.{name}[{index}]"
            row = _row(by_table[name], item, where)
            if row.key in rows:
                raise DocumentError(f"{where}: a second row for {_key_text(row.key)}")
            rows[row.key] = row
    term = _get(top, "tables_term", _count, default=0)
    generation = _get(top, "generation", _count, default=0)
    return Tables.of(term, generation, rows.values())


def _key_text(key: RowKey) -> str:
    host = str(HostClusterId(key.host)) if key.host else ""
    return " ".join(part for part in (host, key.name) if part)


def _row(record: type, item: Any, where: str) -> Any:
    data = _object(item, where)
    fields = {}
    known = {name for name, _kind, _optional in record.__wire_components__}
    for key in data:
        if key not in known:
            raise DocumentError(f"{where}: unknown field {shown(key)}")
    for name, kind, optional in record.__wire_components__:
        if name not in data:
            if optional:
                continue
            raise DocumentError(f"{where}: {name}: missing")
        value = data[name]
        try:
            if value is not None and isinstance(kind, HostId):
                value = _host_id(value)
            elif value is not None and isinstance(kind, Octets):
                value = _hex(value)
            elif value is not None and isinstance(kind, Struct):
                value = _row(kind.record, value, f"{where}.{name}")
        except ValueError as e:
            raise DocumentError(f"{where}: {name}: {e}") from None
        fields[name] = value
    try:
        return record(**fields)
    except ValueError as e:  # the wire's own check names the field: "state: 'x' must be one of ..."
        field, _, problem = str(e).partition(": ")
        raise DocumentError(f"{where}: {field}: {_clipped(problem)}") from None
    except TypeError as e:
        raise DocumentError(f"{where}: {_clipped(str(e))}") from None


def _clipped(text: str) -> str:
    return text if len(text) <= 2 * SHOWN else f"{text[:2 * SHOWN]}..."


def _books(value: Any, where: str) -> Books:
    data = _object(value, where)
    orders = {}
    for index, item in enumerate(_get(data, "orders", _list, where=where, default=[])):
        at = f"{where}.orders[{index}]"
        entry = _object(item, at)
        order = Order(
            _get(entry, "order", _count, where=at), _get(entry, "action", _action, where=at),
            _get(entry, "host", _host, where=at), _get(entry, "service", _name, where=at))
        orders[order.order] = Pending(order, _get(entry, "sent_at", _time, where=at),
                                      _get(entry, "deadline", _time, where=at))
    return Books(
        orders=orders,
        next_order=_get(data, "next_order", _count, where=where, default=max(orders, default=0) + 1),
        excluded=_copies(data, "excluded", where, lambda e, at: Exclusion(
            _get(e, "why", _text, where=at), _get(e, "until", _time, where=at))),
        released_at=_copies(data, "released_at", where, lambda e, at: _get(e, "at", _time, where=at)),
        over_since=_copies(data, "over_since", where, lambda e, at: _get(e, "since", _time, where=at)),
        moved_at={_name(k, f"{where}.moved_at"): _time(v, f"{where}.moved_at.{k}")
                  for k, v in _get(data, "moved_at", _object, where=where, default={}).items()},
    )


def _copies(data: Mapping[str, Any], key: str, where: str, value: Callable[[Any, str], Any]) -> dict[Any, Any]:
    """A list of entries about one service on one host, keyed by (host, service)."""
    out = {}
    for index, item in enumerate(_get(data, key, _list, where=where, default=[])):
        at = f"{where}.{key}[{index}]"
        entry = _object(item, at)
        copy = (_get(entry, "host", _host, where=at), _get(entry, "service", _name, where=at))
        if copy in out:
            raise DocumentError(f"{at}: a second entry for {copy[0]} {copy[1]}")
        out[copy] = value(entry, at)
    return out


def _timing(value: Any, where: str) -> Timing:
    data = _object(value, where)
    fields = {f.name for f in attrs.fields(Timing)}
    for key in data:
        if key not in fields:
            raise DocumentError(f"{where}: unknown field {shown(key)}")
    try:
        return Timing(
            interval=_get(data, "interval", _positive, where=where),
            dead_after=_get(data, "dead_after", _count, where=where),
            quorum=_get(data, "quorum", _flag, where=where, default=False),
            balance_after=_get(data, "balance_after", _time, where=where, default=30.0),
            move_hold=_get(data, "move_hold", _time, where=where, default=120.0),
        )
    except TypeError as e:
        raise DocumentError(f"{where}: {e}") from None


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


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise DocumentError(f"{where}: expected a JSON object, got {_json_type(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DocumentError(f"{where}: expected a JSON array, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "true or false", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _host_id(value: Any) -> HostClusterId:
    if not isinstance(value, str) or len(value) > 15:
        raise ValueError(f"expected a host-cluster id like \"1.2.0.7\", got {shown(value)}")
    try:
        return HostClusterId.parse(value)
    except IdError as e:
        raise ValueError(str(e)) from None


def _host_or_none(value: Any, where: str) -> HostClusterId | None:
    return None if value is None else _host(value, where)


def _host(value: Any, where: str) -> HostClusterId:
    try:
        return _host_id(value)
    except ValueError as e:
        raise DocumentError(f"{where}: {e}") from None


def _hex(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) > 128:
        raise ValueError(f"expected hexadecimal digits, got {shown(value)}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"expected hexadecimal digits, got {shown(value)}") from None


def _number(value: Any, where: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise DocumentError(f"{where}: expected a number, got {shown(value)}")
    return float(value)


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


def _count(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise DocumentError(f"{where}: expected a whole number, at least 0, got {shown(value)}")
    return value


def _flag(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise DocumentError(f"{where}: expected true or false, got {shown(value)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DocumentError(f"{where}: expected a string, got {shown(value)}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise DocumentError(f"{where}: expected a service name, got {shown(value)}")
    return value


def _action(value: Any, where: str) -> OrderAction:
    try:
        return OrderAction(value)
    except ValueError:
        raise DocumentError(f"{where}: expected one of {', '.join(OrderAction)}, got {shown(value)}") from None
