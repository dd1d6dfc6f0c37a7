"""Boot epochs: a number that grows with every start of a node.

Receivers drop datagrams from an older epoch than the newest they have seen
from a sender, so a restarted node must never reuse or go below an earlier
epoch, even if the wall clock stepped back. The last epoch is kept in
state_dir and the next one is above both it and the clock.
"""

from __future__ import annotations

import os

from rais.atomicfile import replace_file

EPOCH_FILE = "boot_epoch"


def next_boot_epoch(state_dir: str, now: float) -> int:
    """Return a new epoch (microseconds since 1970, or last + 1) and persist it."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, EPOCH_FILE)
    try:
        with open(path, encoding="ascii") as f:
            last = int(f.read().strip() or 0)
    except FileNotFoundError:
        last = 0
    except ValueError:
        last = 0  # a torn or edited file: the clock still gives a sane epoch
    epoch = max(int(now * 1_000_000), last + 1)
    # Durable before the node uses it: an epoch seen again after a crash would let its datagrams
    # be replayed.
    replace_file(path, f"{epoch}\n".encode("ascii"))
    return epoch
