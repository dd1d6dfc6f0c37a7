"""`rais plan`: what the master will do next, from a status document, if something fails.

Pure. The situation comes from a status document (rais.status.situation:
the committed tables, the master's memory of orders and put-aside hosts, its
timing, and the time the document was made); a supposed failure is written
into the tables the way the master would see it (a host down in the servers
table, a service failed in the services table); then rais.reconcile runs
exactly as on the master.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from rais.ids import HostClusterId
from rais.planner import View
from rais.reconcile import Changes, Situation, reconcile
from rais.states import HostStatus, Result, ServiceState
from rais.status import host_id, order_json, shown
from rais.tables import row_as, row_json
from rais.wire import RowKey
from rais.wire.rows import Row, ServiceRow

_SERVICE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # a service name as the config allows it


@attrs.frozen
class Failure:
    """A supposed failure: ``host`` goes down, or only ``service`` fails there."""

    host: HostClusterId
    service: str | None = None

    def __str__(self) -> str:
        return f"{self.service} fails on {self.host}" if self.service else f"{self.host} goes down"


def parse_failure(text: str) -> Failure:
    """``HOST`` or ``HOST:SERVICE``; ValueError saying what is wrong."""
    if len(text) > 100:
        raise ValueError(f"expected HOST or HOST:SERVICE, got {shown(text)}")
    host_text, colon, service = text.partition(":")
    host = host_id(host_text)
    if colon and not _SERVICE.fullmatch(service):
        raise ValueError(f"{shown(text)}: after the host comes one service name (1 to 64 of A-Z a-z 0-9 _ . -)")
    return Failure(host, service or None)


def suppose(situation: Situation, failure: Failure) -> Situation:
    """The situation as the master would see it once ``failure`` has happened; ValueError if the
    failure names a host or service the tables do not have."""
    view = situation.view
    tables = view.tables
    host = failure.host
    server = view.servers.get(host)
    if server is None:
        clusters = {h.cluster for h in view.servers}
        if clusters and host.cluster not in clusters:
            raise ValueError(f"{host} is in cluster {host.cluster}; these tables are of cluster "
                             f"{', '.join(sorted(map(str, clusters)))}")
        known = ", ".join(str(h) for h in sorted(view.servers)) or "none"
        raise ValueError(f"{host} is not in the servers table (hosts: {known})")
    changed: Row
    if failure.service is None:
        changed = attrs.evolve(server, status=HostStatus.DOWN)
    else:
        declared = view.services(failure.service)
        if not declared:
            raise ValueError(f"no host declares {failure.service}")
        row = row_as(ServiceRow, tables.get(RowKey("services", host.value, failure.service)))
        if row is None:
            on = ", ".join(str(r.host) for r in declared)
            raise ValueError(f"{host} does not declare {failure.service} (declared on {on})")
        changed = attrs.evolve(row, state=ServiceState.FAILED, result=Result.CRITICAL)
    changed_tables = tables.changed([changed], [], tables.term, tables.generation)
    return attrs.evolve(situation, view=View(changed_tables))


def plan(situation: Situation, failure: Failure | None) -> Changes:
    """What the master would decide next, once ``failure`` (if any) has happened; ValueError as
    :func:`suppose`."""
    return reconcile(suppose(situation, failure) if failure else situation)  # exactly the master's step


def changes_json(situation: Situation, changes: Changes, failure: Failure | None) -> dict[str, Any]:
    return {
        "event": str(failure) if failure else None,
        "at": situation.now,
        "generation": situation.view.tables.generation,
        "decisions": [{
            "action": d.action, "service": d.service, "host": str(d.host) if d.host else None,
            "explanation": d.explanation, "order": order_json(d.order) if d.order else None,
            "scores": [{"host": str(s.host), "score": s.total, "parts": dict(s.parts), "ruled_out": s.reason or None}
                       for s in d.scores],
        } for d in changes.decisions],
        "rows": [{"table": row.key.table, **row_json(row)} for row in changes.rows],
        "resend": [order_json(order) for order in changes.resend],
    }


def changes_text(situation: Situation, changes: Changes, failure: Failure | None) -> str:
    generation = situation.view.tables.generation
    if failure is None:
        lines = [f"next, on the tables at generation {generation}, the master would:"]
    else:
        lines = [f"if {failure} (tables at generation {generation}), the master would:"]
    lines += [f"{d.action}: {d.explanation}" for d in changes.decisions]
    lines += [f"say again: {o.action} {o.service} to {o.host} (order {o.order})" for o in changes.resend]
    if len(lines) == 1:
        lines.append(f"nothing: {failure.host} serves no service" if failure and failure.service is None
                     else "nothing")
    return "\n".join(lines) + "\n"
