"""Decision time of the planner at 10, 100 and 1,000 hosts with five services each.

For each size: the time to index a tables snapshot (View) and to decide
where every service of one failed host goes (host_down), as the master
would when a host dies, and the time for one failed service.
"""

from __future__ import annotations

import random
import time

from bench.cluster import SIZES, host, host_rows
from rais.planner import View, host_down, service_failed
from rais.tables import Tables


def main() -> None:
    print(f"{'hosts':>6} {'rows':>6} | {'index ms':>9} {'host down ms':>13} {'service ms':>11}")
    for n in SIZES:
        rng = random.Random(n)
        tables = Tables.of(65537, 1, [row for i in range(1, n + 1) for row in host_rows(i, rng)])
        rounds = max(3, 3000 // n)
        start = time.process_time()
        for _ in range(rounds):
            view = View(tables)
        index = (time.process_time() - start) / rounds
        start = time.process_time()
        for r in range(rounds):
            decisions = host_down(view, host(1 + r % n))
        down = (time.process_time() - start) / rounds
        assert decisions and all(d.action in ("assign", "degraded") for d in decisions)
        start = time.process_time()
        for r in range(rounds):
            service_failed(view, host(1 + r % n), "svc0")
        one = (time.process_time() - start) / rounds
        print(f"{n:>6} {len(tables.rows):>6} | {index * 1000:>9.2f} {down * 1000:>13.2f} {one * 1000:>11.2f}")
    print("index: building the planner's view of a snapshot; host down: placing the 5 services of one host;")
    print("service: releasing one failed service and placing it elsewhere (scores for every declaring host).")
