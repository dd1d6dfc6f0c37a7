"""What a node decides, and the one way it is carried out.

A Node is pure: each input (a datagram, a heartbeat due, a tick, a probe's or
an action's result) returns a list of outputs, the records below. ``Driver``
feeds a node its inputs, hands every output to an ``IEffects`` (send,
persist, run an action, run a probe, notify, log) and feeds results back.
The daemon (rais.daemon) and the simulator (rais.sim) each provide an
IEffects and share the rest: there is one dispatch, and every input goes
through one guarded step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from twisted.logger import Logger
from twisted.python.failure import Failure

from rais.commands import Answered, OperatorCommand
from rais.election import term_text
from rais.ids import HostClusterId
from rais.interfaces import IEffects

if TYPE_CHECKING:
    from rais.node import Node
    from rais.probing.schedule import ProbeOrder
    from rais.reconcile import Decision
    from rais.tables import Tables
    from rais.wire import Datagram, Load

# Membership is re-checked this many times per heartbeat interval, so a silent
# host is marked down within a fraction of an interval of its deadline.
TICKS_PER_INTERVAL = 4


@attrs.frozen
class Send:
    """Multicast a message, sealed with the node's id, boot epoch and current term."""

    message: Any


@attrs.frozen
class Persist:
    """Keep this replica of the tables on disk."""

    tables: Tables


@attrs.frozen
class RunProbe:
    """Run one check for the master of ``term``; the result goes to ``Node.probe_done``."""

    order: ProbeOrder
    term: int


@attrs.frozen
class Notify:
    """Run the operator's notify command with these arguments."""

    words: tuple[str, ...]


class Event:
    """Something worth telling operators; ``text`` is a twisted.logger format over ``fields()``."""

    level: ClassVar[str] = "info"
    text: ClassVar[str]
    __attrs_attrs__: ClassVar[tuple[attrs.Attribute, ...]]  # every event is an attrs record

    def log_level(self) -> str:
        return self.level

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {name: str(value) if hasattr(value, "cluster") else value  # host ids as written
                                  for name, value in attrs.asdict(self, recurse=False).items()}
        if "term" in fields:
            fields["term_text"] = term_text(fields["term"])
        return fields


@attrs.frozen
class RunAction(Event):
    """Run a service's start, stop or refresh command; its result goes to ``Node.action_done``."""

    text = "{action} {service} (order {order} of term {term_text})"

    action: str  # "start", "stop" or "refresh"
    service: str
    term: int
    order: int


@attrs.frozen
class Fenced(Event):
    """Cut off from the majority in quorum mode: this host stops its exclusive services itself."""

    level = "warn"
    text = "fencing: stopping {services}: {why}"

    services: str
    why: str


@attrs.frozen
class RoleChanged(Event):
    text = "role {old} -> {new} in term {term_text}: {reason}"

    old: str
    new: str
    term: int
    reason: str


@attrs.frozen
class TablesChanged(Event):
    """The master committed a generation (``how`` = committed), or a replica applied one."""

    level = "debug"
    text = "tables {how}: generation {generation} of term {term_text}"

    how: str
    generation: int
    term: int


@attrs.frozen
class Decided(Event):
    """A decision of the master about a service. A degraded service is decided again every
    tick: a decision repeating the last one is logged at debug level only."""

    text = "{service}: {explanation}"

    decision: Decision
    repeated: bool = False

    def log_level(self) -> str:
        return "debug" if self.repeated else "info"

    def fields(self) -> dict[str, Any]:
        d = self.decision
        return {"service": d.service, "action": d.action, "explanation": d.explanation,
                "host": str(d.host) if d.host else None}


@attrs.frozen
class PoolChanged(Event):
    """The pool of spares or the cluster's state changed (rais.pool); ``words`` are what the
    master's notify command hears: ``spare-active HOST SERVICES``, ``spares-missing FREE MIN``,
    ``degraded WHY``, ``no-spare-left FREE``, ``optimal FREE``."""

    text = "pool: {said}"

    words: tuple[str, ...]

    @property
    def said(self) -> str:
        return " ".join(self.words)

    @property
    def host(self) -> HostClusterId | None:
        return HostClusterId.parse(self.words[1]) if self.words[0] == "spare-active" else None

    def log_level(self) -> str:
        return "info" if self.words[0] in ("spare-active", "optimal") else "warn"

    def fields(self) -> dict[str, Any]:
        return {"words": list(self.words), "said": self.said}


@attrs.frozen
class Operated(Event):
    """The master carried out (or refused) an operator's command, asked through ``by``."""

    text = "operator's {command} (through {by}): {answer}"

    by: HostClusterId
    command: str
    ok: bool
    answer: str


@attrs.frozen
class DuplicateId(Event):
    """Another live process signs with this host's id: a configuration error, loud on both."""

    level = "error"
    text = ("another process uses this host's id {id} (from {source}, boot epoch {boot_epoch}): "
            "neither may be master while both run")

    id: HostClusterId
    source: str
    boot_epoch: int


class Driver:
    """Feeds one node its inputs and carries out its outputs through one IEffects.

    A bug in the node costs the one input it failed on, logged: an exception
    escaping into a timer would stop that timer for good.
    """

    log = Logger()

    def __init__(self, node: Node, effects: IEffects, clock: Any, strict: bool = False) -> None:
        self.node = node
        self.effects = effects
        self.clock = clock  # anything with seconds(): the reactor, or the simulator's clock
        self.strict = strict  # raise a node's error (the simulator: a bug must fail its test)

    def received(self, datagram: Datagram, source: str) -> bool:
        """An authenticated datagram; False if the node failed on it."""
        return self._step(f"a datagram from {source}", self.node.receive, datagram, source)

    def beat(self, load: Load | None) -> None:
        """Time to send a heartbeat; ``load`` is this host's, sampled just now."""
        self._step("a heartbeat", self.node.beat, load)

    def tick(self) -> None:
        # Reconciling is its own step after the tick's commit, so a status document taken
        # between the two shows exactly what the reconcile decides from (see rais plan).
        if self._step("a tick", self.node.tick):
            self._step("reconciling", self.node.reconcile)

    def operate(self, request: int, command: OperatorCommand) -> bool:
        """An operator's command through this node; its answer comes to ``IEffects.answered``.
        False if the node failed on it (there will be no answer)."""
        return self._step("an operator's command", self.node.operate, request, command)

    def poll_probes(self) -> None:
        self._step("the probe schedule", self.node.probes_due)

    def _step(self, what: str, step: Callable[..., list[Any]], *args: Any) -> bool:
        try:
            outputs = step(self.clock.seconds(), *args)
        except Exception:
            if self.strict:
                raise
            self.log.failure("node failed on {what}", what=what)
            return False
        self._carry_out(outputs)
        return True

    def _carry_out(self, outputs: list[Any]) -> None:
        effects = self.effects
        for out in outputs:
            if isinstance(out, Send):
                effects.send(out.message, self.node.term)
            elif isinstance(out, Persist):
                effects.persist(out.tables)
            elif isinstance(out, RunAction):
                effects.log(out)
                self._run(out)
            elif isinstance(out, RunProbe):
                self._probe(out)
            elif isinstance(out, Notify):
                effects.notify(out.words)
            elif isinstance(out, Answered):
                effects.answered(out)
            else:
                effects.log(out)

    def _run(self, action: RunAction) -> None:
        d = self.effects.run(action)
        d.addCallback(lambda result: self._step("an action's result", self.node.action_done, action, *result))
        d.addErrback(self._lost, "action", action)

    def _probe(self, probe: RunProbe) -> None:
        d = self.effects.probe(probe.order)
        d.addCallback(lambda result: self._step("a probe's result", self.node.probe_done, probe, result))
        d.addErrback(self._lost, "probe", probe)

    def _lost(self, failure: Failure, kind: str, what: Any) -> None:
        self.log.failure("{kind} {what} failed", failure, kind=kind, what=what)

