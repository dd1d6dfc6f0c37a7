"""Noticing that this node was not scheduled for a while: a host too loaded, a VM whose CPU was
taken, a process stopped and continued.

Pure. The node's timer asks to run every ``every`` seconds; a gap much longer than that means the
process did not run, and neither did its heartbeats go out: its peers may have judged it suspect or
down meanwhile, for a reason no network capture will show. So it says so, as Corosync does ("main
process was not scheduled for ... ms"). Only gaps longer than ``threshold`` count, so a busy moment
is not news.
"""

from __future__ import annotations


class PauseWatch:
    """Fed the time at each run of a periodic timer; answers how long the process did not run."""

    def __init__(self, every: float, threshold: float) -> None:
        self.every = every
        self.threshold = threshold
        # Whether this run leaves the node's judgement to the next: just after a pause, the
        # datagrams that queued meanwhile are not read yet. Never twice running: a host late at
        # every run still judges at every other.
        self.wait = False
        self._last: float | None = None

    def ran(self, now: float) -> float | None:
        """The timer ran at ``now``: the seconds the process was not scheduled beyond the timer's
        period, if that is over the threshold; else None."""
        last, self._last = self._last, now
        late = 0.0 if last is None else now - last - self.every
        paused = late > self.threshold
        self.wait = paused and not self.wait
        return late if paused else None
