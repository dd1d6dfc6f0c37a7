"""The operator's commands (`rais move`, `rais drain`, `rais undrain`, `rais policy set|reset`),
carried from whichever node the operator asks to the master.

The node asks with a ``Command`` datagram, sealed with the cluster key like every other, that
names the master, the master's boot epoch and (in its envelope) the master's term, and a request
number of its own. It sends it again every ``resend`` seconds until the master answers, and gives
up after ``patience``. The master carries out each request once (``Answers``, kept for its term)
and answers every copy with the same ``CommandReply`` datagrams, so a lost answer or a lost
command costs a resend, never a second move.

Why a command is harmless if captured and sent again: within the master's boot the envelope's
replay guard drops the copy, and a resend of a request already carried out is answered from
``Answers``; another master, a later term, or the same master after a restart (a new boot epoch)
ignores it. Pure: no reactor, no sockets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from rais.ids import HostClusterId
from rais.wire import Command, CommandReply, Setting
from rais.wire.messages import MAX_REPLIES, REPLY_TEXT

if TYPE_CHECKING:
    from rais.mastership import Mastership

# Requests whose answers a master keeps: far more than operators send in an asker's patience.
KEPT_ANSWERS = 256
CUT_SHORT = "\n… (cut short: see the master's log)"


@attrs.frozen
class OperatorCommand:
    """One operator's command, as the control endpoint read it and the master carries it out."""

    verb: str  # one of rais.wire.messages.VERBS
    service: str = ""
    host: HostClusterId | None = None
    settings: tuple[tuple[str, str], ...] = ()

    def carry_out(self, mastership: Mastership, now: float) -> str:
        """What will happen; ValueError saying why it cannot be."""
        verb, service, host = self.verb, self.service, self.host
        if verb == "move" and host is not None:
            return mastership.move(now, service, host)
        if verb in ("drain", "undrain") and host is not None:
            return mastership.drain(now, host, verb == "drain")
        if verb == "policySet":
            return mastership.set_policy(now, service, dict(self.settings))
        if verb == "policyReset":
            return mastership.reset_policy(now, service)
        raise ValueError(f"{verb}: no such command, or no host named")

    def message(self, master: HostClusterId, epoch: int, request: int) -> Command:
        return Command(master, epoch, request, self.verb, self.service,
                       self.host.value if self.host is not None else 0,
                       tuple(Setting(key, value) for key, value in self.settings))

    @classmethod
    def read(cls, command: Command) -> OperatorCommand:
        """The command a datagram carries; ValueError if its host is not a host id."""
        host = HostClusterId(command.host) if command.host else None
        return cls(command.verb, command.service, host, tuple((s.key, s.value) for s in command.settings))

    def __str__(self) -> str:
        words = [self.verb, self.service, str(self.host) if self.host else ""]
        words += [f"{key}={value}" for key, value in self.settings]
        return " ".join(w for w in words if w)


@attrs.frozen
class Answered:
    """An output: the answer to the operator's request ``request`` to this node."""

    request: int
    ok: bool
    text: str


def replies(asker: HostClusterId, request: int, ok: bool, text: str) -> tuple[CommandReply, ...]:
    """``text`` in as many datagrams as it takes, split between characters."""
    data = text.encode("utf-8")
    if len(data) > REPLY_TEXT * MAX_REPLIES:
        data = data[: REPLY_TEXT * MAX_REPLIES - len(CUT_SHORT.encode())] + CUT_SHORT.encode()
    parts: list[str] = []
    while data or not parts:
        cut = min(REPLY_TEXT, len(data))
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # not inside a character
            cut -= 1
        parts.append(data[:cut].decode("utf-8", "ignore"))
        data = data[cut:]
    return tuple(CommandReply(asker, request, ok, i, len(parts), part) for i, part in enumerate(parts))


class Answers:
    """The master's side, for one term: each request carried out once, its answer kept for resends."""

    def __init__(self, limit: int = KEPT_ANSWERS) -> None:
        self._limit = limit
        self._kept: OrderedDict[tuple[HostClusterId, int, int], tuple[CommandReply, ...]] = OrderedDict()

    def answer(self, asker: HostClusterId, asker_epoch: int, request: int,
               carry_out: Callable[[], tuple[bool, str]]) -> tuple[tuple[CommandReply, ...], bool]:
        """The replies to send, and whether the command was carried out just now (not a resend)."""
        key = (asker, asker_epoch, request)
        kept = self._kept.get(key)
        if kept is not None:
            return kept, False
        kept = self._kept[key] = replies(asker, request, *carry_out())
        while len(self._kept) > self._limit:
            self._kept.popitem(last=False)
        return kept, True


@attrs.frozen
class _Pending:
    command: Command
    term: int
    asked: float
    sent: float
    parts: tuple[tuple[int, str], ...] = ()  # (index, text) of the replies heard so far


class Asker:
    """A node's requests to the master on an operator's behalf, until each is answered or given up."""

    def __init__(self, me: HostClusterId, resend: float, patience: float) -> None:
        self.me = me
        self.resend = resend
        self.patience = patience
        self._pending: dict[int, _Pending] = {}

    def ask(self, now: float, request: int, command: OperatorCommand, master: HostClusterId,
            master_epoch: int, term: int) -> Command:
        message = command.message(master, master_epoch, request)
        self._pending[request] = _Pending(message, term, now, now)
        return message

    def due(self, now: float) -> tuple[list[Command], list[Answered]]:
        """The commands to send again, and the requests given up (the master may or may not have
        carried them out: only its answer would say)."""
        again: list[Command] = []
        given_up: list[Answered] = []
        for request, p in list(self._pending.items()):
            if now - p.asked >= self.patience:
                del self._pending[request]
                given_up.append(Answered(request, False, (
                    f"no answer from the master {p.command.master} in {self.patience:g}s; it may or may not "
                    "have done it: see `rais status` and `rais events`")))
            elif now - p.sent >= self.resend:
                self._pending[request] = attrs.evolve(p, sent=now)
                again.append(p.command)
        return again, given_up

    def replied(self, sender: HostClusterId, term: int, reply: CommandReply) -> Answered | None:
        """One reply datagram: the whole answer once every part is in; None until then, or if it
        answers nothing of ours (another asker's, an old request's, another master's)."""
        p = self._pending.get(reply.request)
        if (reply.asker != self.me or p is None or sender != p.command.master or term != p.term
                or any(index == reply.index for index, _ in p.parts)):
            return None
        parts = tuple(sorted((*p.parts, (reply.index, reply.text))))
        if len(parts) < reply.count:
            self._pending[reply.request] = attrs.evolve(p, parts=parts)
            return None
        del self._pending[reply.request]
        return Answered(reply.request, reply.ok, "".join(text for _, text in parts))
