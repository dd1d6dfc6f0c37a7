"""Operators' commands through a follower (rais.commands), with real twistd nodes in network
namespaces: carried out exactly once at 30% loss on every link, and a captured command sent again
after the master restarted (and became master again, in a new term) does nothing."""

import sys
import time

import pytest

from bench.loss import DEAD_AFTER, INTERVAL, ROLES
from rais.ids import ClusterId
from rais.keys import load_keyring
from rais.localcluster import converged, wait_for
from rais.wire import Command, ReplayGuard, WireError, open_datagram

pytestmark = pytest.mark.integration


def ask(cluster, via, *words):
    """`rais WORDS` run in ``via``'s namespace against its control endpoint; the process."""
    return cluster.spawn(via, [sys.executable, "-m", "rais.cli", *words, "--control",
                               f"{via.address}:{via.control_port}"])


def operated(node):
    return [e["text"] for e in node.status()["events"] if e["kind"] == "operator"]


def drained(node, host):
    return {r["host"]: r["drained"] for r in node.status()["tables"]["servers"]}[host]


def commands(cluster, captured):
    keyring, cluster_id = load_keyring(cluster.key_path), ClusterId.parse("1.2")
    found = []
    for c in captured:
        try:
            if isinstance(open_datagram(c.data, keyring, cluster_id, ReplayGuard()).message, Command):
                found.append(c.data)
        except WireError:
            pass  # not ours to read
    return found


def test_a_command_through_a_follower_is_done_once_at_loss_and_a_replay_after_a_restart_does_nothing(net_cluster):
    cluster = net_cluster(ROLES, INTERVAL, DEAD_AFTER, extras={1: "preempt = true\n"})
    cluster.start_all()
    cluster.wait_ready()
    master, follower, spare = cluster.nodes[0], cluster.nodes[2], cluster.nodes[3]
    assert wait_for(lambda: converged(cluster.nodes), 20), [n.status() for n in cluster.nodes]

    cluster.loss(30)
    asked = time.monotonic()
    drain = ask(cluster, follower, "drain", "1.2.0.4")
    captured = commands(cluster, cluster.capture(3.0))  # as someone on the network would (the observer loses none)
    assert drain.wait(15) == 0 and captured
    took = time.monotonic() - asked
    cluster.no_loss()
    assert wait_for(lambda: drained(master, "1.2.0.4") and converged(cluster.nodes), 10)
    done = operated(master)
    assert len(done) == 1 and done[0].startswith("operator's drain 1.2.0.4 (through 1.2.0.3): draining"), done
    assert ask(cluster, follower, "undrain", "1.2.0.4").wait(10) == 0
    assert wait_for(lambda: not drained(master, "1.2.0.4") and converged(cluster.nodes), 10)
    assert len(operated(master)) == 2

    cluster.restart(master)  # a new boot; it preempts, master again in a new term
    assert wait_for(lambda: converged(cluster.nodes) and master.status()["master"] == "1.2.0.1"
                    and master.status()["role"] == "master", 20), [n.status()["master"] for n in cluster.nodes]
    dropped = dict(master.status()["traffic"]["dropped"])
    cluster.inject(captured)
    time.sleep(2)
    after = master.status()["traffic"]["dropped"]
    print(f"\n  a drain through a follower at 30% loss: answered within {took:.2f} s (3 s of capture); "
          f"{len(captured)} captured drain command(s) sent again after the restart: dropped by the "
          f"envelope {({k: v - dropped.get(k, 0) for k, v in after.items() if v != dropped.get(k, 0)})}, "
          f"the rest ignored by the node")
    assert operated(master) == [] and not any(drained(n, "1.2.0.4") for n in cluster.nodes)  # not drained again
    assert all(not operated(n) for n in (follower, spare))  # no other node acted on it either
