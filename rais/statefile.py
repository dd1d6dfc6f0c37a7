"""A node's replica of the tables on disk, in state_dir, written atomically.

The file is one DER ``TablesFile`` (see rais.asn): the version, the digest,
and the rows' own DER back to back, so saving splices cached bytes. A file
that does not decode, or whose rows do not add up to its digest, is moved
aside and the node starts with empty tables (it gets the master's anyway).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from rais.atomicfile import replace_file
from rais.sync import split_rows
from rais.tables import Tables
from rais.wire import DIGEST, WireError
from rais.wire.schema import Octets, Record, UInt, asn1_sequence, decode_record, encode_record, wire

TABLES_FILE = "tables.der"


@asn1_sequence
@attrs.frozen
class TablesFile(Record):
    tables_term: int = wire(UInt())
    generation: int = wire(UInt())
    digest: bytes = wire(Octets(DIGEST, DIGEST))
    rows: bytes = wire(Octets(0, 1 << 40))
    check: bytes = wire(Octets(32, 32))  # SHA-256 of the fields above, so the version is covered too


def _check(term: int, generation: int, digest: bytes, rows: bytes) -> bytes:
    return hashlib.sha256(b"%d:%d:" % (term, generation) + digest + rows).digest()


class StateFileError(Exception):
    """The saved tables are unreadable or inconsistent."""


def encode_tables(tables: Tables) -> bytes:
    rows = b"".join(row.der for row in tables.sorted_rows())
    check = _check(tables.term, tables.generation, tables.digest, rows)
    return encode_record(TablesFile(tables.term, tables.generation, tables.digest, rows, check))


def decode_tables(data: bytes) -> Tables:
    try:
        saved = decode_record(TablesFile, data)
        if saved.check != _check(saved.tables_term, saved.generation, saved.digest, saved.rows):
            raise StateFileError("checksum does not match")
        tables = Tables.of(saved.tables_term, saved.generation, split_rows(saved.rows))
    except WireError as e:
        raise StateFileError(str(e)) from None
    if tables.digest != saved.digest:
        raise StateFileError("rows do not match the saved digest")
    return tables


def save_tables(state_dir: str, data: bytes) -> None:
    """Write encoded tables so that a crash leaves the old file or the new one, never half."""
    replace_file(os.path.join(state_dir, TABLES_FILE), data)


def load_tables(state_dir: str) -> Tables | None:
    """The saved tables, None if there are none; StateFileError if they are damaged."""
    path = os.path.join(state_dir, TABLES_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return decode_tables(data)
    except StateFileError:
        os.replace(path, f"{path}.damaged")
        raise


def _encode_and_save(state_dir: str, tables: Tables) -> None:
    save_tables(state_dir, encode_tables(tables))


class TableSaver:
    """Saves the newest tables off the reactor thread, one write at a time.

    Tables that change while a write is under way are saved right after it;
    versions in between are skipped, as only the newest matters.
    """

    def __init__(self, state_dir: str, run_in_thread: Callable[..., Deferred], log: Logger) -> None:
        self.state_dir = state_dir
        self._run = run_in_thread  # (f, *args) -> Deferred, e.g. deferToThreadPool for a reactor
        self._log = log
        self._pending: Tables | None = None
        self._writing = False
        self._waiters: list[Deferred] = []
        self.saved: Tables | None = None

    def save(self, tables: Tables) -> None:
        self._pending = tables
        if not self._writing:
            self._next()

    def _next(self) -> None:
        tables, self._pending = self._pending, None
        if tables is None:
            self._writing = False
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)
            return
        self._writing = True
        # Encoding too happens in the thread: tables are immutable, and a thousand hosts' rows
        # and their checksum are not work for the reactor.
        d = self._run(_encode_and_save, self.state_dir, tables)
        d.addCallbacks(
            lambda _: setattr(self, "saved", tables),
            lambda f: self._log.failure("cannot save the tables in {dir}", f, dir=self.state_dir),
        )
        d.addBoth(lambda _: self._next())

    def flush(self) -> Deferred:
        """Fires once everything asked for is on disk (for a clean stop)."""
        if not self._writing:
            return succeed(None)
        d: Deferred = Deferred()
        self._waiters.append(d)
        return d
