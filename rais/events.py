"""The recent events a node logged, kept for operators: `events` in the status document.

``EventLog`` keeps the last few hundred events worth telling (roles, hosts up
or down, the master's decisions, fencing, duplicate ids, actions run, operators' commands) as
``Happened`` records: when, what kind, which host, and one line of text. Every
node keeps its own: a follower's tell what it saw, the master's also what it
decided. ``seq`` counts from 1 in each boot, so `rais events --follow` prints
each event once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from twisted.logger import formatEvent

from rais.effects import Decided, DuplicateId, Event, Fenced, Operated, PoolChanged, RoleChanged, RunAction
from rais.ids import HostClusterId
from rais.membership import Transition

KEPT = 200


def _logged(event: Event) -> str:
    return formatEvent({"log_format": event.text, **event.fields()})


# The kinds kept: their name, the host each concerns (None: this node) and its text, as logged
# unless said. Table changes are left out: a busy master commits many a minute, and the tables
# themselves are in the document.
KINDS: dict[type[Event], tuple[str, Callable[[Any], HostClusterId | None], Callable[[Any], str]]] = {
    Transition: ("host", lambda e: e.id, _logged),
    RoleChanged: ("role", lambda e: None, _logged),
    Decided: ("decided", lambda e: e.decision.host, lambda e: e.decision.explanation),  # names the service
    Fenced: ("fenced", lambda e: None, _logged),
    DuplicateId: ("duplicate-id", lambda e: e.id, _logged),
    RunAction: ("action", lambda e: None, _logged),
    Operated: ("operator", lambda e: e.by, _logged),
    PoolChanged: ("pool", lambda e: e.host, _logged),
}


@attrs.frozen
class Happened:
    seq: int
    at: float  # Unix time
    kind: str
    host: str
    text: str

    def json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class EventLog:
    """The last ``size`` events of one node, oldest first."""

    def __init__(self, me: HostClusterId, clock: Any, size: int = KEPT) -> None:
        self.me = me
        self.clock = clock  # anything with seconds(): the reactor
        self._kept: deque[Happened] = deque(maxlen=size)
        self._seq = 0

    def record(self, event: Event) -> None:
        """Keep ``event`` if it is of a kind operators follow and not a repeat logged at debug level."""
        known = KINDS.get(type(event))
        if known is None or event.log_level() == "debug":
            return
        kind, concerns, text = known
        self._seq += 1
        # The first line: a placement's explanation goes on with every candidate's score.
        self._kept.append(Happened(self._seq, self.clock.seconds(), kind, str(concerns(event) or self.me),
                                   text(event).split("\n", 1)[0]))

    def json(self) -> list[dict[str, Any]]:
        return [h.json() for h in self._kept]
