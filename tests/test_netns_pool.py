"""The pool of spares (rais.pool) across a partition, with real twistd nodes in network namespaces:
the spare cut off leaves no spare (the master says so, through its notify command), elects itself
on its side, and after the heal rejoins as a spare: the cluster is optimal again, one master."""

import os

import pytest

from bench.loss import DEAD_AFTER, INTERVAL
from rais.localcluster import converged, wait_for
from tests.test_netns_service import service

pytestmark = pytest.mark.integration

NOTIFY = 'notify = ["/bin/sh", "-c", "echo \\"$*\\" >> notify.log", "notify"]\n'
DEAD = INTERVAL * DEAD_AFTER


def notified(node):
    path = os.path.join(node.folder, "notify.log")
    return open(path).read().splitlines() if os.path.exists(path) else []


def pool(node):
    return node.status()["pool"]


def test_the_spare_cut_off_is_missed_and_rejoins_the_pool_after_the_heal(net_cluster):
    web = service(True, "true", "true")  # host 2 serves it from the start; nobody else declares it
    cluster = net_cluster(["master", "active", "standby"], INTERVAL, DEAD_AFTER, settings="min_spares = 1\n",
                          extras={1: NOTIFY, 2: NOTIFY + web, 3: NOTIFY})
    master, active, spare = cluster.nodes
    cluster.listen(active, 8080)  # what web's probe connects to
    cluster.start_all()
    cluster.wait_ready()
    assert wait_for(lambda: converged(cluster.nodes) and pool(master)["free"] == ["1.2.0.3"]
                    and pool(master)["state"] == "optimal", 20), pool(master)
    # Past the starting cluster's settle: its first states are no news (README, The pool of spares).
    assert wait_for(lambda: (doc := master.status())["reconcile"]["acts_from"] <= doc["at"], 10)

    cluster.partition([[master, active], [spare]])
    assert wait_for(lambda: pool(master)["state"] == "no spare left", 4 * DEAD + 2), pool(master)
    assert wait_for(lambda: {"no-spare-left 0", "spares-missing 0 1"} <= set(notified(master)), 2), notified(master)
    assert wait_for(lambda: spare.status()["role"] == "master", 4 * DEAD + 2)  # alone, without quorum

    cluster.heal()
    assert wait_for(lambda: converged(cluster.nodes) and master.status()["master"] == "1.2.0.1"
                    and pool(master)["state"] == "optimal", 15), [n.status()["master"] for n in cluster.nodes]
    assert spare.status()["role"] == "standby" and pool(master)["free"] == ["1.2.0.3"]
    assert wait_for(lambda: notified(master)[-1:] == ["optimal 1"], 5), notified(master)
    print(f"\n  the master told: {[w for w in notified(master) if not w.startswith(('role', 'assign'))]}")
