"""What unicast peers cost: datagrams sent and received per node, multicast against [cluster] peers.

Real twistd nodes in network namespaces (rais.netcluster; heartbeat 0.5 s,
dead_after 3), 4, 8 and 16 hosts, each size twice: with the multicast group, and
with every host in [cluster] peers (multicast dropped by nftables). Reported per
run, from the nodes' own counters over a quiet 10 s: datagrams the master and
a follower send per second, and what a node receives per second (with multicast,
its own come back to it too). The master sends more than a follower: its
heartbeats, and a sync notice after each table change (latency and load rows
change all the time). The size of a datagram is the same either way (the
observer captures the group's in the multicast runs). It needs root and
nftables (otherwise it says why and stops).
"""

from __future__ import annotations

import statistics
import tempfile
import time

from rais.localcluster import converged, wait_for
from rais.netcluster import NetCluster, NetNode, unavailable

SIZES = (4, 8, 16)
INTERVAL, DEAD_AFTER = 0.5, 3
QUIET = 10.0


def sent(node: NetNode) -> int:
    return int(node.status()["traffic"]["sent"])


def received(node: NetNode) -> int:
    return int(node.status()["traffic"]["received"])


def run(size: int, unicast: bool) -> dict[str, float]:
    roles = ["master"] + ["active"] * (size - 2) + ["standby"]
    with tempfile.TemporaryDirectory(prefix="rais-bench-unicast-") as base, \
            NetCluster(base, roles, INTERVAL, DEAD_AFTER, unicast=unicast) as cluster:
        cluster.start_all()
        cluster.wait_ready()
        if not wait_for(lambda: converged(cluster.nodes), 60):
            raise RuntimeError(f"{size} hosts did not converge")
        time.sleep(2 * INTERVAL * DEAD_AFTER)  # past the first syncs and catalogues
        master, follower = cluster.nodes[0], cluster.nodes[1]
        sizes = [] if unicast else [len(c.data) for c in cluster.capture(2.0)]  # the same either way
        start = time.monotonic()
        before = (sent(master), sent(follower), [received(n) for n in cluster.nodes])
        time.sleep(QUIET)
        took = time.monotonic() - start
        after = (sent(master), sent(follower), [received(n) for n in cluster.nodes])
        return {
            "master": (after[0] - before[0]) / took,
            "follower": (after[1] - before[1]) / took,
            "received": statistics.mean(a - b for a, b in zip(after[2], before[2], strict=True)) / took,
            "bytes": statistics.mean(sizes) if sizes else 0.0,
        }


def main() -> None:
    reason = unavailable()
    if reason:
        print(f"skipped: network namespaces: {reason}")
        return
    print(f"heartbeat {INTERVAL} s; datagrams per second over {QUIET:.0f} quiet seconds")
    print("| hosts | transport | master sends/s | follower sends/s | a node receives/s | bytes each |")
    print("|---|---|---|---|---|---|")
    for size in SIZES:
        multicast = run(size, False)
        for name, figures in (("multicast", multicast), ("unicast", run(size, True))):
            print(f"| {size} | {name} | {figures['master']:.1f} | {figures['follower']:.1f} | "
                  f"{figures['received']:.1f} | {multicast['bytes']:.0f} |", flush=True)
