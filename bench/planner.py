"""Decision time of the master's reconcile step at 10, 100 and 1,000 hosts with five services each.

Times exactly what the master runs (rais.reconcile.reconcile, the same step
`rais plan` runs): on steady tables (every tick: nothing to do), after one
host went down (its services placed elsewhere), and after one service
failed on one host (released there, placed elsewhere); plus the time to
index a snapshot for the planner (View), done once per committed generation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import attrs

from bench.cluster import MASTER, SERVICES, SIZES, boot_epoch, host, host_rows
from rais.dryrun import Failure, suppose
from rais.planner import View
from rais.reconcile import Books, Situation, reconcile
from rais.settings import Timing
from rais.states import ServiceState
from rais.tables import Tables
from rais.wire.rows import Row, ServiceRow

TIMING = Timing(interval=1.0, dead_after=3)
NOW = 1_700_000_000.0


def _per_call(f: Callable[[Any], object], inputs: list[Any]) -> float:
    """Seconds of CPU per call of ``f`` on each of ``inputs``."""
    start = time.process_time()
    for item in inputs:
        f(item)
    return (time.process_time() - start) / len(inputs)


def spread_rows(n: int, rng: random.Random) -> list[Row]:
    """Every host declares svc0..svc4 and serves one of them: each service runs on a fifth of the hosts."""
    rows = []
    for i in range(1, n + 1):
        for row in host_rows(i, rng):
            if isinstance(row, ServiceRow):
                serves = row.name == f"svc{i % SERVICES}"
                row = attrs.evolve(row, running=serves, assigned=serves,
                                   state=ServiceState.RUNNING if serves else ServiceState.STOPPED,
                                   epoch=boot_epoch(i) if serves else 0)  # established in its host's boot
            rows.append(row)
    return rows


def main() -> None:
    print(f"{'hosts':>6} {'rows':>6} | {'index ms':>9} {'steady ms':>10} {'host down ms':>13} {'service ms':>11}")
    for n in SIZES:
        rng = random.Random(n)
        tables = Tables.of(65537, 1, spread_rows(n, rng))
        rounds = max(5, 3000 // n)
        index = _per_call(View, [tables] * rounds)
        steady = Situation(View(tables), Books(announced=True), MASTER, TIMING, NOW)  # mid-term
        assert not reconcile(steady).decisions
        quiet = _per_call(reconcile, [steady] * rounds)
        # The failure is written into the tables outside the timing, as the master's upkeep does.
        downs = [suppose(steady, Failure(host(2 + r % (n - 1)))) for r in range(rounds)]
        down = _per_call(reconcile, downs)
        assert all(reconcile(s).orders for s in downs[:3])  # a copy really moves
        fails = [suppose(steady, Failure(host(2 + r % (n - 1)), f"svc{(2 + r % (n - 1)) % SERVICES}"))
                 for r in range(rounds)]
        one = _per_call(reconcile, fails)
        print(f"{n:>6} {len(tables.rows):>6} | {index * 1000:>9.2f} {quiet * 1000:>10.2f} {down * 1000:>13.2f} "
              f"{one * 1000:>11.2f}")
    print("index: the planner's view of a snapshot (once per generation); steady: one reconcile with nothing")
    print("to do (every tick); host down: the reconcile after a host died (its copy placed elsewhere);")
    print("service: after one service failed on a host (released there and placed elsewhere).")
    print("Each host declares 5 services and serves one; every host scored for each placement.")
