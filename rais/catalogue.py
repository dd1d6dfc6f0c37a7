"""Service catalogues: what each host declares in its [services.*], carried to the master.

Pure. A host sends its catalogue when the master asks (the master asks when
a heartbeat's catalogue digest differs from the one in the tables); the
master turns it into the host's rows of the services table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import attrs

from rais.config import ServiceConfig
from rais.ids import HostClusterId
from rais.states import Result, ServiceState
from rais.wire import Catalogue, RowKey, ServiceDecl
from rais.wire.messages import CATALOGUE, Checks
from rais.wire.rows import ServiceRow

MAX_OPTIONS = 512  # characters of canonical JSON, the SIZE of ServiceDecl.options
MAX_PER_CHUNK = 64
CHUNK_BUDGET = 1000  # bytes of declarations per datagram, well under the limit


def options_json(options: Mapping[str, object]) -> str:
    # ASCII only, so the SIZE in characters is also the size in bytes.
    return json.dumps(dict(options), sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def declarations(services: Mapping[str, ServiceConfig]) -> tuple[ServiceDecl, ...]:
    """This host's declarations; ValueError naming the service whose options are too long."""
    decls = []
    for name in sorted(services):
        s = services[name]
        options = options_json(s.options)
        if len(options) > MAX_OPTIONS:
            raise ValueError(
                f"services.{name}: probe options take {len(options)} characters as JSON, "
                f"at most {MAX_OPTIONS}"
            )
        checks = Checks(_ms(s.probe_interval), _ms(s.probe_timeout), s.rise or 0, s.fall or 0)
        decls.append(ServiceDecl(
            name, s.probe, s.port or 0, s.running, s.start is not None, s.stop is not None, options, checks,
            s.address or "", s.exclusive, s.refresh is not None,
        ))
    return tuple(decls)


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, round(seconds * 1000))


def digest_of(decls: Iterable[ServiceDecl]) -> bytes:
    text = json.dumps([attrs.astuple(d) for d in decls], separators=(",", ":"))  # nested too
    return hashlib.sha256(text.encode()).digest()[:CATALOGUE]


def _size(decl: ServiceDecl) -> int:
    return len(decl.name) + len(decl.probe) + len(decl.options) + 32


def catalogue_messages(decls: tuple[ServiceDecl, ...]) -> list[Catalogue]:
    digest = digest_of(decls)
    pieces: list[list[ServiceDecl]] = [[]]
    size = 0
    for decl in decls:
        if pieces[-1] and (size + _size(decl) > CHUNK_BUDGET or len(pieces[-1]) == MAX_PER_CHUNK):
            pieces.append([])
            size = 0
        pieces[-1].append(decl)
        size += _size(decl)
    return [Catalogue(digest, i, len(pieces), tuple(p)) for i, p in enumerate(pieces)]


class CatalogueAssembler:
    """The master's side: collects each host's catalogue chunks."""

    def __init__(self) -> None:
        self._parts: dict[HostClusterId, tuple[bytes, int, dict[int, Catalogue]]] = {}

    def receive(self, host: HostClusterId, chunk: Catalogue) -> tuple[bytes, tuple[ServiceDecl, ...]] | None:
        if chunk.index >= chunk.count:
            return None  # malformed: it would count towards a chunk that is still missing
        digest, count, parts = self._parts.get(host, (None, 0, {}))
        if digest != chunk.digest or count != chunk.count:
            parts = {}
        parts[chunk.index] = chunk
        self._parts[host] = (chunk.digest, chunk.count, parts)
        if len(parts) < chunk.count:
            return None
        del self._parts[host]
        decls = tuple(d for i in range(chunk.count) for d in parts[i].services)
        if digest_of(decls) != chunk.digest:
            return None  # chunks of two catalogues mixed: ask again
        return chunk.digest, decls


def service_rows(
    host: HostClusterId, decls: tuple[ServiceDecl, ...], existing: Iterable[ServiceRow], now_ms: int, boot_epoch: int
) -> tuple[list[ServiceRow], list[RowKey]]:
    """The host's service rows for a new catalogue, keeping what probes learned (and where copies
    were established); ``boot_epoch`` is the host's now."""
    old = {row.name: row for row in existing}
    rows = []
    for d in decls:
        before = old.pop(d.name, None)
        state = ServiceState.RUNNING if d.running else ServiceState.STOPPED
        if before is None:
            # A service declared running is taken as assigned, and established, where it runs.
            rows.append(ServiceRow(
                host=host, name=d.name, probe=d.probe, port=d.port, running=d.running, assigned=d.running,
                can_start=d.can_start, can_stop=d.can_stop, state=state, result=Result.NONE, latency_us=None,
                detail="", options=d.options, changed_ms=now_ms, checks=d.checks, address=d.address,
                exclusive=d.exclusive, can_refresh=d.can_refresh, epoch=boot_epoch if d.running else 0,
            ))
        else:
            rows.append(attrs.evolve(
                before, probe=d.probe, port=d.port, running=d.running, can_start=d.can_start,
                can_stop=d.can_stop, options=d.options, checks=d.checks, address=d.address,
                exclusive=d.exclusive, can_refresh=d.can_refresh,
                state=state if before.state in (ServiceState.RUNNING, ServiceState.STOPPED) else before.state,
                # A failure keeps its time (a host rests from it, rais.pool), whatever the host says now.
                changed_ms=now_ms if d.running != before.running and before.state != ServiceState.FAILED
                else before.changed_ms,
            ))
    return rows, [row.key for row in old.values()]
