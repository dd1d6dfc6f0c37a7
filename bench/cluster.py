"""The cluster protocol at 10, 100 and 1,000 hosts with five services each.

Reports, per cluster size:
- the master's CPU time per sync: a delta (one generation, pushed to every
  host at once) and a full snapshot (for a host that lost track), including
  sealing every datagram;
- bytes on the wire per generation, and for a snapshot;
- a replica's CPU time to apply a snapshot;
- simulated seconds from the master's death to every host following the new
  master with equal tables (heartbeat interval 1 s, dead_after 3), and the
  datagrams lost to reordering on the way. Every host starts from the same
  settled tables, as after a whole-cluster restart.

The simulator (rais.sim) runs the real Node objects. At 1,000 hosts a
simulated run would deliver every heartbeat to every host (a million
deliveries per simulated second); there, an active host's heartbeats reach
only the master and the standbys, which is all the failover needs.
"""

from __future__ import annotations

import random
import time
from typing import Any

from rais.catalogue import service_rows
from rais.ids import ClusterId, HostClusterId
from rais.keys import Key, Keyring
from rais.sim import Simulation
from rais.states import HostStatus, Result, Role, ServiceState
from rais.sync import SyncClient, SyncServer
from rais.tables import Ledger, Tables
from rais.wire import SyncNotice, SyncRequest, seal
from rais.wire.rows import CpuRow, LatencyRow, NetworkRow, Row, ServerRow, ServiceRow

SIZES = (10, 100, 1000)
SERVICES = 5
KEYS = Keyring((Key(1, bytes(32)),))
MASTER = HostClusterId.of(ClusterId.parse("1.2"), 1)


def host(i: int) -> HostClusterId:
    return HostClusterId.of(ClusterId.parse("1.2"), i)


def boot_epoch(i: int) -> int:
    """Host i's boot epoch in these tables."""
    return 1_700_000_000_000_000 + i


def host_rows(i: int, rng: random.Random) -> list[Row]:
    h = host(i)
    boot = boot_epoch(i)
    rows: list[Row] = [
        ServerRow(host=h, role=Role.ACTIVE, configured=Role.ACTIVE, status=HostStatus.UP, priority=100,
                  address=f"10.0.{i >> 8}.{i & 255}", boot_epoch=boot,
                  last_heard_ms=1_700_000_000_000, catalogue=bytes(8)),
        CpuRow(h, rng.randrange(1000)),
        NetworkRow(h, rng.randrange(10**7), rng.randrange(10**7)),
        LatencyRow(h, rng.randrange(100, 5000)),
    ]
    for s in range(SERVICES):
        rows.append(ServiceRow(host=h, name=f"svc{s}", probe="http", port=8000 + s, running=s % 2 == 0,
                               assigned=s % 2 == 0, can_start=True, can_stop=True,
                               state=ServiceState.RUNNING if s % 2 == 0 else ServiceState.STOPPED,
                               result=Result.OK,
                               latency_us=rng.randrange(100, 9000),
                               detail="HTTP 200 OK", options='{"path":"/health"}', changed_ms=1_700_000_000_000,
                               epoch=boot if s % 2 == 0 else 0))  # established in this boot, where it runs
    return rows


def sealed(messages: list, sequence: int) -> tuple[int, int]:
    """(bytes, datagrams) once sealed, as the master would send them."""
    total = 0
    for n, message in enumerate(messages):
        total += len(seal(KEYS, MASTER, 1, sequence + n, 65537, message))
    return total, len(messages)


def sync_costs(n: int) -> dict[str, float]:
    rng = random.Random(n)
    rows = [row for i in range(1, n + 1) for row in host_rows(i, rng)]
    ledger = Ledger(Tables.of(65537, 1, rows))
    figures: dict[str, float] = {"rows": len(rows)}

    # A snapshot, from cold caches, sealed: what a host that lost track costs.
    rounds = 3 if n >= 1000 else 10
    start = time.process_time()
    for _ in range(rounds):
        chunks = SyncServer(0.5).answer(ledger, SyncRequest(MASTER, 0, 0, bytes(16)), 0.0)
        full_bytes, full_datagrams = sealed(chunks, 1)
    figures["full_ms"] = (time.process_time() - start) / rounds * 1000
    figures["full_bytes"], figures["full_datagrams"] = full_bytes, full_datagrams

    start = time.process_time()
    for _ in range(rounds):  # a single run is at the mercy of a garbage collection
        client = SyncClient(Tables.empty(), 1.0)
        for chunk in chunks:
            applied = client.receive(chunk, 0.0)
    figures["apply_full_ms"] = (time.process_time() - start) / rounds * 1000
    assert applied is not None and applied.digest == ledger.current.digest

    # Generations as they come in a running cluster: a host's load and status move.
    server = SyncServer(0.5)
    generations = 200
    spent = 0.0
    total_bytes = total_datagrams = 0
    for g in range(generations):
        i = rng.randrange(1, n + 1)
        ledger.stage(CpuRow(host(i), rng.randrange(1000)))
        ledger.stage(NetworkRow(host(i), rng.randrange(10**7), rng.randrange(10**7)))
        start = time.process_time()
        tables = ledger.commit(65537)
        assert tables is not None  # a row changed
        messages = [SyncNotice(tables.term, tables.generation, tables.digest), *server.push(ledger, float(g))]
        size, count = sealed(messages, 1000 + g * 10)
        spent += time.process_time() - start
        total_bytes += size
        total_datagrams += count
    figures["delta_ms"] = spent / generations * 1000
    figures["delta_bytes"] = total_bytes / generations
    figures["delta_datagrams"] = total_datagrams / generations
    return figures


def settled_tables(sim: Simulation) -> Tables:
    """The tables a master of this simulation ends up with once every catalogue and load is in.

    Every host starts from them (as after a whole-cluster restart), so the
    run measures the failover rather than a thousand hosts bootstrapping in
    one process.
    """
    rows: list[Row] = []
    for h in sim.hosts.values():
        node = h.node
        rows.append(ServerRow(host=h.id, role=node.role, configured=node.identity.configured, status=HostStatus.UP,
                              priority=node.identity.priority,
                              address=node.identity.address, boot_epoch=node.boot_epoch, last_heard_ms=0,
                              catalogue=node.host.catalogue))
        load = sim.load_of(h.id)
        rows += [CpuRow(h.id, load.cpu_permille), NetworkRow(h.id, load.net_rx_bps, load.net_tx_bps)]
        rows += service_rows(h.id, node.host.services, (), 0, node.boot_epoch)[0]
    return Tables.of(65537, 1, rows)


def failover(n: int, seed: int = 1) -> dict[str, Any]:
    roles = ["master", "standby", "standby"] + ["active"] * (n - 3)
    sim = Simulation(roles, seed=seed, services=SERVICES)
    tables = settled_tables(sim)
    for h in sim.hosts.values():
        h.node.replica.replace(tables)
    if n >= 1000:
        actives = {h for h, host in sim.hosts.items() if host.node.identity.configured == "active"}
        sim.faults.heartbeat_reaches = lambda s, r: s not in actives or r not in actives
    start = time.process_time()
    sim.run_until(sim.converged, 60)
    sim.run(3)  # latencies settle
    sim.run_until(sim.converged, 60)
    old = sim.masters()[0]
    dropped = sum(h.dropped for h in sim.hosts.values())
    sim.kill(old.id)
    took = sim.run_until(lambda: sim.converged() and sim.masters()[0].id != old.id, 60, step=0.01)
    return {
        "converge_s": took,
        "new_master": str(sim.masters()[0].id),
        "reordered_drops": sum(h.dropped for h in sim.hosts.values()) - dropped,
        "sim_cpu_s": time.process_time() - start,
    }


def main() -> None:
    print(f"{'hosts':>6} {'rows':>6} | {'delta ms':>8} {'B/gen':>6} {'dgrams':>6} | "
          f"{'full ms':>8} {'full kB':>8} {'dgrams':>6} {'apply ms':>8} | {'failover s':>10} {'new master':>11}")
    for n in SIZES:
        s = sync_costs(n)
        f = failover(n)
        print(f"{n:>6} {int(s['rows']):>6} | {s['delta_ms']:>8.3f} {s['delta_bytes']:>6.0f} "
              f"{s['delta_datagrams']:>6.1f} | {s['full_ms']:>8.1f} {s['full_bytes'] / 1000:>8.1f} "
              f"{int(s['full_datagrams']):>6} {s['apply_full_ms']:>8.1f} | {f['converge_s']:>10.2f} "
              f"{f['new_master']:>11}", flush=True)
    print("delta: one generation (a host's cpu and network rows) as notice + pushed chunks, sealed;")
    print("full: a snapshot for a host that lost track, cold cache, sealed; apply: a replica decoding it;")
    print("failover: simulated seconds from SIGKILL of the master to all hosts agreeing on the new master")
    print("  and its tables (interval 1 s, dead_after 3: detection alone takes 2 to 3 s).")
