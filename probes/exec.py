"""exec: run a check program the Nagios way; exit 0 ok, 1 warning, 2 critical, 3 unknown.

So every Nagios / monitoring-plugins check works unchanged: the detail is
the first line of output (without performance data after "|"), or, with
none, the last line of error output; any other exit status is unknown. ``{host}`` and
``{port}`` in the command stand for the target. The program runs in a new
session (via setsid), so on timeout its whole process group is killed,
children included.
"""

from __future__ import annotations

import shlex
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessTerminated
from twisted.python.failure import Failure
from zope.interface import implementer

from rais.checks import argv, text
from rais.interfaces import IProbe, Option, Status
from rais.probing.base import BaseProbe, ProbeFailed, Verdict, short
from rais.process import exit_code, run_in_session


@implementer(IProbe)
class ExecProbe(BaseProbe):
    name = "exec"
    description = "runs a check program (Nagios plugin conventions), killing its process group on timeout"
    default_port = 0  # a port is only needed when the command says {port}
    options = (
        Option("command", "program and arguments: array, or string split into words (no shell)", argv, None),
        Option("shell_command", "a string run by /bin/sh -c, for pipes and the like", text(), None),
    )

    def cross_check(self, values: dict[str, Any]) -> dict[str, str]:
        given = [key for key in ("command", "shell_command") if values[key] is not None]
        if not given:
            return {"command": "missing required key (or give shell_command)"}
        if len(given) == 2:
            return {"shell_command": "give command or shell_command, not both"}
        return {}

    def attempt(self, reactor: Any, host: str, port: int, values: dict[str, Any],
                timeout: float) -> Deferred[Verdict]:
        target = {"{host}": host, "{port}": str(port)}
        if values["command"] is not None:
            words = [_expand(word, target) for word in values["command"]]
        else:
            quoted = {key: shlex.quote(value) for key, value in target.items()}
            words = ["/bin/sh", "-c", _expand(values["shell_command"], quoted)]
        return run_in_session(reactor, words).addCallback(_judge)


def _expand(word: str, target: dict[str, str]) -> str:
    for key, value in target.items():
        word = word.replace(key, value)
    return word


def _judge(ended: tuple[Failure, bytes, bytes]) -> Verdict:
    reason, out, err = ended
    # Nagios plugins print "TEXT|PERFDATA": the text before the bar is the detail.
    line = short(out.decode("utf-8", "replace")).split("|", 1)[0].strip()
    # Without output, the last line of errors: a crashed script's exception.
    line = line or short(err.decode("utf-8", "replace").strip().rsplit("\n", 1)[-1])
    code = exit_code(reason)
    if code is None:
        assert isinstance(reason.value, ProcessTerminated)  # exit_code's None: ended by a signal
        raise ProbeFailed(Status.UNKNOWN, f"killed by signal {reason.value.signal}: {line}")
    if code not in tuple(Status):
        raise ProbeFailed(Status.UNKNOWN, f"exit status {code}: {line}")
    return Status(code), line or f"exit status {code}"


exec_probe = ExecProbe()
