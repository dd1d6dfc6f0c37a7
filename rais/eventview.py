"""`rais events`: a node's recent events (``events`` in its status document), as lines.

Read by a person (time, kind, text) or, with --json, one JSON object a line for
a script. ``follow`` polls the node and prints only what is new: events carry a
``seq`` counting from 1 in each boot of the node, so a node restarted (another
boot epoch) is followed from its first event again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

import attrs

POLL = 1.0  # seconds between two looks at the node when following


def person_line(event: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["at"]))
    return f"{when}  {event['kind']:<12}  {event['text']}"


def json_line(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


@attrs.define
class Seen:
    """How far the events of one boot of one node have been printed."""

    node: tuple[Any, Any] = (None, None)  # (self, boot_epoch)
    seq: int = 0

    def new(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of ``doc`` not returned before, oldest first."""
        node = (doc.get("self"), doc.get("boot_epoch"))
        if node != self.node:
            self.node, self.seq = node, 0
        fresh = [e for e in doc.get("events", []) if e["seq"] > self.seq]
        if fresh:
            self.seq = fresh[-1]["seq"]
        return fresh


def follow(fetch: Callable[[], dict[str, Any]], seen: Seen, line: Callable[[dict[str, Any]], str],
           out: TextIO, err: TextIO, interval: float = POLL) -> None:
    """Print new events as they happen, until interrupted (KeyboardInterrupt). A node that
    stops answering is said once, and followed again when it answers."""
    lost = False
    while True:
        time.sleep(interval)
        try:
            doc = fetch()
        except (OSError, ValueError) as e:
            if not lost:
                print(f"rais events: cannot ask the node: {getattr(e, 'reason', None) or e}; still trying",
                      file=err, flush=True)
            lost = True
            continue
        if lost:
            print("rais events: the node answers again", file=err, flush=True)
            lost = False
        for event in seen.new(doc):
            print(line(event), file=out)
        out.flush()
