"""A host's side of orders: what it declares, and the master's orders taken once, run once.

Pure. An order is known by (term, order number): one that is running is not
started again, and one that was answered is answered again from memory,
never run again (the master repeats an order until it hears the answer, and
datagrams get lost). An order names the boot epoch of the host it is meant
for: after a restart, an order for the earlier start (a late duplicate, or
one captured and sent again) is not taken. A start or stop that succeeds changes what this host
declares as running, and so its catalogue digest, which tells the master to
fetch the new catalogue.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from rais.catalogue import catalogue_messages, digest_of
from rais.effects import RunAction
from rais.states import OrderAction
from rais.wire import Catalogue, Order, OrderDone, ServiceDecl
from rais.wire.rows import MAX_DETAIL
from rais.wire.schema import clip

KEPT_ORDERS = 256  # answers remembered, to answer repeats without running them again
FENCE = 0  # the order number of a stop this host runs on its own word (orders count from 1)

OrderId = tuple[int, int]  # (term, order number)
ACTIONS = {OrderAction.ASSIGN: "start", OrderAction.RELEASE: "stop", OrderAction.REFRESH: "refresh"}


class HostOrders:
    def __init__(self, services: tuple[ServiceDecl, ...], boot_epoch: int) -> None:
        self.services = services
        self.catalogue = digest_of(services)
        self.boot_epoch = boot_epoch
        self._running: dict[OrderId, str] = {}
        self._answered: OrderedDict[OrderId, OrderDone] = OrderedDict()
        self._forgotten: OrderId = (0, 0)  # the newest order whose answer no longer fits in memory
        self._fencing: set[str] = set()  # exclusive services being stopped on this host's own word

    def catalogue_messages(self) -> list[Catalogue]:
        return catalogue_messages(self.services)

    def take(self, term: int, order: Order) -> RunAction | OrderDone | None:
        """An order for this host: the action to run, an answer at once, or None (it is running)."""
        key = (term, order.order)
        if key in self._answered:
            return self._answered[key]  # our answer was lost: say it again
        if key in self._running or order.epoch != self.boot_epoch or key <= self._forgotten:
            # Running; or meant for an earlier start of this host (sent again after a restart);
            # or answered so long ago that the answer is forgotten: never run twice.
            return None
        decl = next((d for d in self.services if d.name == order.service), None)
        if decl is None:
            return self._answer(key, order.service, False, "not declared here")
        action = ACTIONS[order.action]
        if not {"start": decl.can_start, "stop": decl.can_stop, "refresh": decl.can_refresh}[action]:
            # Nothing to run: it stays as it is (the planner assigns such a service only
            # where it already answers).
            return self._answer(key, order.service, True, f"no {action} action: left as it is")
        self._running[key] = action
        return RunAction(action, order.service, term, order.order)

    def fence(self) -> list[RunAction]:
        """Stop every exclusive service running here, on this host's own word (order 0 of term 0:
        no master asked, none is answered)."""
        stops = []
        for decl in self.services:
            if decl.exclusive and decl.running and decl.can_stop and decl.name not in self._fencing:
                self._fencing.add(decl.name)
                stops.append(RunAction("stop", decl.name, 0, FENCE))
        return stops

    def runs_exclusive(self) -> bool:
        return any(d.exclusive and d.running for d in self.services)

    def finished(self, action: RunAction, ok: bool, detail: str) -> OrderDone | None:
        """The action ran: note what runs here now, and the answer for the master (None for a
        fence, which answers nobody)."""
        if action.order == FENCE:
            self._fencing.discard(action.service)
            if ok:
                self._declare(action.service, False)
            return None
        key = (action.term, action.order)
        ran = self._running.pop(key, None)
        if ok and ran in ("start", "stop"):
            self._declare(action.service, ran == "start")
        return self._answer(key, action.service, ok, detail)

    def _declare(self, service: str, running: bool) -> None:
        self.services = tuple(attrs.evolve(d, running=running) if d.name == service else d for d in self.services)
        self.catalogue = digest_of(self.services)

    def _answer(self, key: OrderId, service: str, ok: bool, detail: str) -> OrderDone:
        done = OrderDone(key[1], service, ok, clip(detail, MAX_DETAIL))
        self._answered[key] = done
        while len(self._answered) > KEPT_ORDERS:
            forgotten, _ = self._answered.popitem(last=False)
            self._forgotten = max(self._forgotten, forgotten)
        return done
