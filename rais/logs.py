"""How a node's log is written: which events reach it, and as text or JSON lines.

twistd picks the log file (``--logfile PATH``; ``-``, or none with ``-n``:
stdout; rotated at 1 MB) and writes text. ``--log-level`` (rais.tap) keeps
the events below it out of the log: at the default, info, nothing that
happens per check, per heartbeat or per table generation. ``--log-format
json`` gives twistd one JSON object per line instead, with every field of
each event, for a log shipper.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.logger import ILogObserver, LogLevel, jsonFileLogObserver
from twisted.python.logfile import LogFile

LEVELS = tuple(level.name for level in LogLevel.iterconstants())
FORMATS = ("text", "json")


def level(name: str) -> LogLevel:
    """A level by its name (debug, info, warn, error, critical): ValueError otherwise."""
    if name not in LEVELS:
        raise ValueError(f"--log-level: expected one of {', '.join(LEVELS)}, got {name!r}")
    return LogLevel.levelWithName(name)


def log_file(twistd_options: Any) -> IO[str]:
    """The file twistd's own text log would go to, from its ``--logfile`` and ``--nodaemon``."""
    name = twistd_options.get("logfile") or ""
    if name == "-" or (not name and twistd_options.get("nodaemon")):
        return sys.stdout
    return LogFile.fromFullPath(name or "twistd.log")


def json_observer(out: IO[str]) -> ILogObserver:
    """One JSON object per line: without the record separator (RFC 7464) twisted.logger puts
    before each, so every line is a document ``json.loads`` reads."""
    return jsonFileLogObserver(out, recordSeparator="")
