"""Unicast peers ([cluster] peers), with real twistd nodes in network namespaces where no
multicast datagram reaches any node (nftables drops 224.0.0.0/4 at each): election, sync, a
service moved by an operator, a failover when the VIP's holder is cut off, and the master's
death, all as with multicast. The VIP is moved by etc/actions/rais-vip (as rais.netcluster's
vip_take does); nginx on every host answers on it, and a client fetches it every 10 ms."""

import sys
import time

import pytest

from bench.loss import DEAD_AFTER, INTERVAL
from rais.localcluster import converged, wait_for
from rais.netcluster import Client, HolderWatch
from tests.test_netns_service import (
    FAILOVER,
    MOVED,
    POLICY,
    _tools,  # noqa: F401 (an autouse fixture: arping and nginx)
    declare,
    runs_web,
    serving,
    wait_value,
    web,
)

pytestmark = pytest.mark.integration

ROLES = ["master", "active", "active", "standby"]


def move(cluster, via, service, host):
    """`rais move` through ``via``'s control endpoint, in its namespace; its exit code."""
    return cluster.spawn(via, [sys.executable, "-m", "rais.cli", "move", service, host, "--control",
                               f"{via.address}:{via.control_port}"]).wait(15)


def test_unicast_peers_elect_sync_move_and_fail_over_with_multicast_blocked(net_cluster):
    cluster = net_cluster(ROLES, INTERVAL, DEAD_AFTER, extra=POLICY, unicast=True)
    nodes = cluster.nodes
    master, holder, other, spare = nodes
    for node in nodes:
        cluster.serve(node)
    for node in nodes[1:]:
        declare(node, web(cluster, node is holder))
    cluster.take_vip(holder)
    with HolderWatch(cluster) as watch, Client(cluster) as client:
        cluster.start_all()
        cluster.wait_ready()
        # Election and sync: one master followed by all, the same tables everywhere.
        assert wait_for(lambda: converged(nodes) and serving(nodes, watch, client) == 2, 25), [
            (n.status()["master"], n.status()["traffic"]) for n in nodes]
        doc = master.status()
        assert doc["master"] == "1.2.0.1" and doc["traffic"]["peers"] == [n.address + ":5150" for n in nodes[1:]]
        assert not doc["traffic"]["dropped"].get("not-a-peer")
        # Nothing went to the group: the observer, which multicast would reach, hears none of it.
        assert cluster.capture(1.0) == []

        # An operator's move, through a follower.
        assert move(cluster, spare, "web", "1.2.0.3") == 0
        assert wait_for(lambda: serving(nodes, watch, client) == 3, MOVED), watch.holding()

        # The holder cut off: the master moves web (and the VIP) elsewhere.
        cluster.link_down(other)
        cut = time.monotonic()
        # The host it moved to, read once: a later look may catch the tables mid-sync.
        serves = wait_value(lambda: (moved_to := runs_web([master, holder, spare])) in (2, 4)
                            and client.last() is not None and client.last().answer == f"host {moved_to}"
                            and moved_to, MOVED + FAILOVER)
        assert serves, (watch.holding(), client.last())
        outage = client.longest(cut, time.monotonic())

        # The master killed: a survivor takes over (by succession, the one not serving web), tables intact.
        generation = master.status()["generation"]
        cluster.kill(master)
        successor = {2: "1.2.0.4", 4: "1.2.0.2"}[serves]
        assert wait_for(lambda: converged([holder, spare]) and spare.status()["master"] == successor,
                        FAILOVER + 5), [n.status()["master"] for n in (holder, spare)]
        taken_over = spare.status()["generation"]
        assert taken_over >= generation and runs_web([holder, spare]) == serves
    print(f"\n  unicast, multicast dropped: moved by hand, then the holder cut off: web to host {serves}, longest "
          f"outage {outage:.2f} s; master killed: {successor} took over at generation {taken_over} (was {generation})")
