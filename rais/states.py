"""The words the cluster speaks in: roles, host statuses, service states, probe results, orders.

Each is a ``StrEnum``, so a member is also its plain string: it compares equal
to ``"master"``, is written as ``"master"`` in JSON, and the wire's ENUMERATED
kinds take their names, in this order, from these classes (reordering members
changes the wire format; tests check it against rais.asn).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"
    MASTER = "master"


def base_role(configured: Role | str) -> Role:
    """The role a node plays when it is not the master: a configured master waits as a standby."""
    return Role.STANDBY if configured == Role.MASTER else Role(configured)


class Spare(StrEnum):
    """What a service's policy says about the pool of spares (rais.pool) when it needs a host."""

    PREFER = "prefer"  # a free standby before an active that has room
    AVOID = "avoid"  # an active that has room before a standby, by score
    LAST = "last"  # a standby only when no active qualifies


class HostStatus(StrEnum):
    UP = "up"
    SUSPECT = "suspect"  # a heartbeat is overdue
    DOWN = "down"  # silent for dead_after intervals


class ServiceState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    UNKNOWN = "unknown"  # started, and its probe has not yet risen


class Result(StrEnum):
    """A probe's last verdict as the services table keeps it (``none``: not probed yet)."""

    NONE = "none"
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


ANSWERING = (Result.OK, Result.WARNING)  # the service answers; a warning is worth a look, not a move


class OrderAction(StrEnum):
    ASSIGN = "assign"  # run the start action
    RELEASE = "release"  # run the stop action
    REFRESH = "refresh"  # announce it again where it runs (its refresh action, or else its start)
