"""Table sync: the master answers what hosts lack; hosts assemble and apply it.

Pure: no reactor, no sockets, times passed in. The master (``SyncServer``)
turns a ``SyncRequest`` into the chunks of a transfer: the rows changed
since the host's generation when its ledger still knows that generation and
digest, the whole tables otherwise. Chunk bodies are the rows' cached DER
spliced together, so a transfer costs the master copying bytes. Recent
transfers are kept so a host asking again for lost chunks gets exactly the
ones it lacks. A host (``SyncClient``) collects the chunks of one transfer,
applies them all at once, checks the digest, and asks again for whatever
is still missing.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from rais.ids import HostClusterId
from rais.tables import Delta, Ledger, Tables
from rais.wire import MAX_DATAGRAM, RowKey, SyncChunk, SyncRequest, Transfer, WireError
from rais.wire.der import read_tlv
from rais.wire.messages import DIGEST, MAX_MISSING, MAX_REMOVED
from rais.wire.rows import Row, decode_row

# Bytes of rows and removed keys per chunk: the datagram limit less the
# envelope (about 90 bytes) and the chunk's own fields (about 80).
CHUNK_BUDGET = MAX_DATAGRAM - 250
KEPT_TRANSFERS = 8
NO_DIGEST = bytes(DIGEST)


def split_rows(data: bytes) -> list[Row]:
    """Decode DER TableRow values laid back to back; WireError if any is malformed."""
    rows = []
    pos = 0
    while pos < len(data):
        _ident, _start, stop = read_tlv(data, pos, len(data))
        rows.append(decode_row(data[pos:stop]))  # checks the identifier is a TableRow alternative
        pos = stop
    return rows


def chunk_transfer(transfer: Transfer, digest: bytes, delta: Delta) -> list[SyncChunk]:
    """Split a transfer into chunks that each fit in one datagram."""
    pieces: list[tuple[bytes, tuple[RowKey, ...]]] = []
    rows: list[bytes] = []
    removed: list[RowKey] = []
    size = 0

    def flush() -> None:
        nonlocal rows, removed, size
        pieces.append((b"".join(rows), tuple(removed)))
        rows, removed, size = [], [], 0

    for row in delta.upserts:
        if rows and size + len(row.der) > CHUNK_BUDGET:
            flush()
        rows.append(row.der)
        size += len(row.der)
    for key in delta.removes:
        cost = 16 + len(key.name.encode())
        if size + cost > CHUNK_BUDGET or len(removed) == MAX_REMOVED:
            flush()
        removed.append(key)
        size += cost
    if rows or removed or not pieces:
        flush()
    count = len(pieces)
    return [
        SyncChunk(transfer, digest, index, count, data, keys)
        for index, (data, keys) in enumerate(pieces)
    ]


class SyncServer:
    """The master's side: answers sync requests from its ledger."""

    def __init__(self, resend_after: float) -> None:
        self.resend_after = resend_after
        self._kept: OrderedDict[Transfer, list[SyncChunk]] = OrderedDict()
        self._sent_at: dict[Transfer, float] = {}

    def push(self, ledger: Ledger, now: float) -> list[SyncChunk]:
        """The last commit as a delta, multicast at once: hosts that were current
        apply it without asking, so a generation costs no requests unless one is lost."""
        tables = ledger.current
        before = tables.generation - 1
        delta = ledger.delta_since(before, ledger.digest_at(before))
        if delta is None:
            return []
        transfer = Transfer(tables.term, False, before, tables.generation)
        return self._send(transfer, tables.digest, delta, now)

    def _send(self, transfer: Transfer, digest: bytes, delta: Delta | None, now: float) -> list[SyncChunk]:
        """The chunks of ``transfer``: kept ones, or made from ``delta`` (which only a kept one may lack)."""
        chunks = self._kept.get(transfer)
        if chunks is None:
            assert delta is not None
            chunks = chunk_transfer(transfer, digest, delta)
            self._kept[transfer] = chunks
            while len(self._kept) > KEPT_TRANSFERS:
                old, _ = self._kept.popitem(last=False)
                self._sent_at.pop(old, None)
        self._sent_at[transfer] = now
        return chunks

    def answer(self, ledger: Ledger, request: SyncRequest, now: float) -> list[SyncChunk]:
        tables = ledger.current
        if request.transfer is not None and request.missing:
            kept = self._kept.get(request.transfer)
            if kept is not None:
                return [kept[i] for i in sorted(set(request.missing)) if i < len(kept)]
        have = (request.have_term, request.have_generation)
        if have == tables.version and request.have_digest == tables.digest:
            return []
        delta = ledger.delta_since(request.have_generation, request.have_digest)
        snapshot = delta is None or len(delta.upserts) + len(delta.removes) >= len(tables.rows)
        transfer = Transfer(
            tables.term, snapshot, 0 if snapshot else request.have_generation, tables.generation
        )
        # Several hosts behind by the same amount ask at once; one multicast serves them all.
        if now - self._sent_at.get(transfer, -1e18) < self.resend_after:
            return []
        if snapshot and transfer not in self._kept:
            delta = Delta(tuple(tables.sorted_rows()), ())
        return self._send(transfer, tables.digest, delta, now)


@attrs.define
class _Assembly:
    transfer: Transfer
    digest: bytes
    count: int
    chunks: dict[int, SyncChunk]
    progress_at: float

    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.count) if i not in self.chunks)[:MAX_MISSING]


@attrs.frozen
class Target:
    """Where the master's tables are, as its notices and heartbeats say."""

    master: HostClusterId
    term: int
    generation: int
    digest: bytes


class SyncClient:
    """A host's side: knows where the master is, asks for what it lacks, applies transfers."""

    def __init__(self, tables: Tables, retry_after: float, patience: float = 0.0) -> None:
        self.tables = tables
        self.retry_after = retry_after
        # How long to wait after falling behind before asking: the master pushes each
        # generation anyway, and hosts waiting different times do not all ask at once.
        self.patience = patience
        self._behind_since: float | None = None
        self.target: Target | None = None
        self._assembly: _Assembly | None = None
        self._asked_at = -1e18
        self._force_snapshot = False
        self.corrupt = 0  # transfers whose result did not match their digest

    def behind(self) -> bool:
        t = self.target
        return t is not None and (
            (t.term, t.generation) != self.tables.version or t.digest != self.tables.digest
        )

    def follow(self, target: Target | None) -> None:
        if target != self.target:
            self.target = target
            if target is None or (
                self._assembly is not None and self._assembly.transfer.tables_term != target.term
            ):
                self._assembly = None

    def request(self, now: float) -> SyncRequest | None:
        """A request to send now, if behind and not already waiting on one."""
        if not self.behind():
            self._behind_since = None
            return None
        if self._behind_since is None:
            self._behind_since = now
        if now - self._behind_since < self.patience or now - self._asked_at < self.retry_after:
            return None
        assembly = self._assembly
        if assembly is not None and now - assembly.progress_at < self.retry_after:
            return None  # chunks are still arriving
        self._asked_at = now
        tables = self.tables
        have_digest = NO_DIGEST if self._force_snapshot else tables.digest
        transfer: Transfer | None = None
        missing: tuple[int, ...] = ()
        if assembly is not None and assembly.chunks:
            transfer, missing = assembly.transfer, assembly.missing()
        assert self.target is not None  # behind() above needs one
        return SyncRequest(
            self.target.master, tables.term, tables.generation, have_digest, transfer, missing
        )

    def receive(self, chunk: SyncChunk, now: float) -> Tables | None:
        """Take one chunk; the new tables when it completes a transfer that applied."""
        transfer = chunk.transfer
        version = (transfer.tables_term, transfer.to_generation)
        # The master's tables win even where ours look newer: ours may come from a
        # master that lost (a partition, a restart), and the cluster follows this one.
        if (version == self.tables.version and chunk.digest == self.tables.digest) and not (
            transfer.snapshot and self._force_snapshot
        ):
            return None  # we have it already
        t = self.target
        ahead = t is not None and (t.term, t.generation) < self.tables.version
        if version < self.tables.version and not ahead:
            return None  # a late or resent chunk of an older transfer: never go back
        if not transfer.snapshot and (
            self._force_snapshot or transfer.from_generation != self.tables.generation
        ):
            return None  # a delta for somebody else, or for a base we no longer trust
        assembly = self._assembly
        if assembly is None or assembly.transfer != transfer:
            if assembly is not None and _newer(assembly.transfer, transfer):
                return None  # keep assembling the newer one
            assembly = self._assembly = _Assembly(transfer, chunk.digest, chunk.count, {}, now)
        if chunk.count != assembly.count or chunk.index >= assembly.count:
            return None
        if chunk.index not in assembly.chunks:
            assembly.chunks[chunk.index] = chunk
            assembly.progress_at = now
        if len(assembly.chunks) < assembly.count:
            return None
        self._assembly = None
        return self._apply(assembly)

    def _apply(self, assembly: _Assembly) -> Tables | None:
        transfer = assembly.transfer
        try:
            upserts = [row for c in assembly.chunks.values() for row in split_rows(c.rows)]
        except WireError:
            upserts = None
        removes = [key for c in assembly.chunks.values() for key in c.removed]
        if upserts is not None:
            base = Tables.empty() if transfer.snapshot else self.tables
            result = base.changed(upserts, removes, transfer.tables_term, transfer.to_generation)
            if result.digest == assembly.digest:
                self.tables = result
                self._force_snapshot = False
                self._asked_at = -1e18  # ask again at once if still behind
                return result
        # Our base differed from the master's (a fork, or a damaged replica): start afresh.
        self.corrupt += 1
        self._force_snapshot = True
        self._asked_at = -1e18
        return None

    def replace(self, tables: Tables) -> None:
        """Use these tables (a node that becomes master keeps its replica)."""
        self.tables = tables
        self._assembly = None


def _newer(a: Transfer, b: Transfer) -> bool:
    return (a.tables_term, a.to_generation) > (b.tables_term, b.to_generation)
