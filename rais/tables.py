"""The cluster tables as immutable snapshots, and the master's ledger of changes.

Pure: no reactor, no sockets. ``Tables`` is one version of the five tables
(services, latency, cpu, network, servers), the policy and the services' learned costs: rows keyed by
``RowKey``, the term of the master that wrote them, a generation that grows
by one per commit, and a digest (the sum of the rows' hashes, so it updates
in O(changes)). The ``Ledger`` is the master's: it stages changes, commits
them as new generations, and remembers which rows each recent generation
touched, so a host that is behind gets a delta instead of the whole tables.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal, TypeVar, overload

import attrs

from rais.wire import DIGEST, RowKey
from rais.wire.messages import TABLES
from rais.wire.rows import CostRow, CpuRow, LatencyRow, NetworkRow, PolicyRow, Row, ServerRow, ServiceRow

_MOD = 1 << (8 * DIGEST)

Version = tuple[int, int]  # (tables term, generation): the newer term wins, then generation

# Figures from heartbeats and echoes: a restarted host has them again within seconds, so a
# change to these alone is not worth a disk write (see ``kept``).
SOFT_TABLES = frozenset({"cpu", "network", "latency"})


@attrs.frozen
class Tables:
    term: int
    generation: int
    rows: Mapping[RowKey, Row] = attrs.field(repr=False)
    digest_value: int = 0
    kept: int = 0  # the digest of the rows outside SOFT_TABLES: what a state file must keep

    @classmethod
    def empty(cls) -> Tables:
        return cls(0, 0, MappingProxyType({}))

    @classmethod
    def of(cls, term: int, generation: int, rows: Iterable[Row]) -> Tables:
        table = {row.key: row for row in rows}
        return cls(term, generation, MappingProxyType(table), sum(r.hash for r in table.values()) % _MOD,
                   sum(r.hash for r in table.values() if r.key.table not in SOFT_TABLES) % _MOD)

    @property
    def version(self) -> Version:
        return (self.term, self.generation)

    @property
    def digest(self) -> bytes:
        return self.digest_value.to_bytes(DIGEST)

    def get(self, key: RowKey) -> Row | None:
        return self.rows.get(key)

    # Each table holds one kind of row (its ``table``), so a literal name tells which.
    @overload
    def table(self, name: Literal["services"]) -> tuple[ServiceRow, ...]: ...
    @overload
    def table(self, name: Literal["latency"]) -> tuple[LatencyRow, ...]: ...
    @overload
    def table(self, name: Literal["cpu"]) -> tuple[CpuRow, ...]: ...
    @overload
    def table(self, name: Literal["network"]) -> tuple[NetworkRow, ...]: ...
    @overload
    def table(self, name: Literal["servers"]) -> tuple[ServerRow, ...]: ...
    @overload
    def table(self, name: Literal["policy"]) -> tuple[PolicyRow, ...]: ...
    @overload
    def table(self, name: Literal["costs"]) -> tuple[CostRow, ...]: ...
    @overload
    def table(self, name: str) -> tuple[Row, ...]: ...

    def table(self, name: str) -> tuple[Row, ...]:
        """One table's rows in key order; indexed once per snapshot, which never changes."""
        return self._tables.get(name, ())

    @cached_property
    def _tables(self) -> dict[str, tuple[Row, ...]]:
        by_table: dict[str, list[Row]] = {}
        for row in sorted(self.rows.values(), key=_order):
            by_table.setdefault(row.key.table, []).append(row)
        return {name: tuple(rows) for name, rows in by_table.items()}

    def changed(
        self, upserts: Iterable[Row], removes: Iterable[RowKey], term: int, generation: int
    ) -> Tables:
        """A new version with ``upserts`` written over and ``removes`` taken out."""
        rows = dict(self.rows)
        digest, kept = self.digest_value, self.kept
        for key in removes:
            old = rows.pop(key, None)
            if old is not None:
                digest -= old.hash
                kept -= 0 if key.table in SOFT_TABLES else old.hash
        for row in upserts:
            hard = row.key.table not in SOFT_TABLES
            old = rows.get(row.key)
            if old is not None:
                digest -= old.hash
                kept -= old.hash if hard else 0
            rows[row.key] = row
            digest += row.hash
            kept += row.hash if hard else 0
        return Tables(term, generation, MappingProxyType(rows), digest % _MOD, kept % _MOD)

    def sorted_rows(self) -> Iterator[Row]:
        return (row for name in TABLES for row in self.table(name))

    def to_json(self) -> dict[str, Any]:
        """The tables as JSON-ready data, built once per snapshot (status is polled often);
        the row lists are shared, so do not modify them."""
        return dict(self._json)

    @cached_property
    def _json(self) -> dict[str, Any]:
        return {name: [row_json(r) for r in self.table(name)] for name in TABLES}


R = TypeVar("R", bound=Row)


def row_as(kind: type[R], row: Row | None) -> R | None:
    """``row``, found under a key of ``kind``'s table, typed as the ``kind`` it is."""
    assert row is None or isinstance(row, kind)  # keys are made from the rows themselves
    return row


def _order(row: Row) -> tuple[str, int, str]:
    key = row.key
    return (key.table, key.host, key.name)


def row_json(row: Row) -> dict[str, Any]:
    out = {}
    for field in attrs.fields(type(row)):
        value = getattr(row, field.name)
        if isinstance(value, bytes):
            value = value.hex()
        elif hasattr(value, "cluster"):  # a HostClusterId
            value = str(value)
        elif attrs.has(type(value)):  # a nested record, such as a service's checks
            value = attrs.asdict(value)
        out[field.name] = value
    return out


@attrs.frozen
class Delta:
    upserts: tuple[Row, ...]
    removes: tuple[RowKey, ...]


class Ledger:
    """The master's tables: staged changes, commits, and recent history for deltas."""

    def __init__(self, tables: Tables, history: int = 1024) -> None:
        self.current = tables
        self._staged: dict[RowKey, Row | None] = {}
        # Generation -> digest, for the base and every commit kept; a host's
        # (generation, digest) must match one of them for a delta to be valid.
        self._digests: dict[int, bytes] = {tables.generation: tables.digest}
        self._changes: deque[tuple[int, frozenset[RowKey]]] = deque()
        self._history = history

    def stage(self, row: Row) -> None:
        self._staged[row.key] = row

    def stage_remove(self, key: RowKey) -> None:
        self._staged[key] = None

    def view(self, key: RowKey) -> Row | None:
        """The row as it will be after the next commit."""
        if key in self._staged:
            return self._staged[key]
        return self.current.get(key)

    def table(self, name: str) -> list[Row]:
        """The table as it will be after the next commit."""
        staged = {k: r for k, r in self._staged.items() if k.table == name}
        rows = [staged.pop(r.key, r) for r in self.current.table(name)]
        return [r for r in rows + list(staged.values()) if r is not None]

    def touches(self, names: tuple[str, ...]) -> bool:
        """Whether anything staged is in one of these tables."""
        return any(k.table in names for k in self._staged)

    def commit(self, term: int) -> Tables | None:
        """Make the staged changes a new generation; None if they change nothing."""
        current = self.current
        upserts = [r for k, r in self._staged.items() if r is not None and current.get(k) != r]
        removes = [k for k, r in self._staged.items() if r is None and k in current.rows]
        self._staged.clear()
        if not upserts and not removes and term == current.term:
            return None
        generation = current.generation + 1
        self.current = current.changed(upserts, removes, term, generation)
        self._digests[generation] = self.current.digest
        self._changes.append((generation, frozenset([r.key for r in upserts] + removes)))
        while len(self._changes) > self._history:
            old, _ = self._changes.popleft()
            self._digests.pop(old - 1, None)
        return self.current

    def digest_at(self, generation: int) -> bytes | None:
        """The digest the tables had at ``generation``, while history still holds it."""
        return self._digests.get(generation)

    def delta_since(self, generation: int, digest: bytes | None) -> Delta | None:
        """What turns the tables at (generation, digest) into the current ones, if still known."""
        if digest is None or self._digests.get(generation) != digest:
            return None
        keys: set[RowKey] = set()
        for gen, changed in self._changes:
            if gen > generation:
                keys |= changed
        rows = self.current.rows
        return Delta(
            tuple(rows[k] for k in keys if k in rows), tuple(k for k in keys if k not in rows)
        )
