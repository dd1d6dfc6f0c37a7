"""The standbys as a pool of hot spares (rais.pool), with real twistd processes and real web servers on
loopback: a spare takes a failed service and becomes active, the last spare is used, the master's
successor is a host serving nothing, and a failed host comes back as a spare."""

import os
import subprocess
import sys

import pytest

from rais.demo import serving
from rais.localcluster import (
    ROLE_ONLY_POLICY,
    LocalCluster,
    background_service,
    background_start,
    free_port,
    kill_server,
    stop_servers,
    wait_for,
)
from tests.test_integration import hid

pytestmark = pytest.mark.integration

ROLES = ["master", "active", "active", "standby", "standby"]
INTERVAL, DEAD_AFTER = 0.2, 3
CAN_SERVE = {"a": (2, 4, 5), "b": (3, 5)}  # a runs on 2 at first, b on 3; only 5 can take b
NOTIFY = r'''notify = ["/bin/sh", "-c", "echo \"$*\" >> notify.log", "notify"]'''


def start(name, port):
    return background_start(name, f"{sys.executable} -m http.server {port} --bind 127.0.0.1")


def notified(node):
    try:
        with open(os.path.join(node.folder, "notify.log")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def pool(node):
    return node.status()["pool"]


def test_a_spare_takes_a_failed_service_the_last_is_used_and_a_failed_host_returns_as_a_spare(tmp_path):
    ports = {(host, name): free_port() for name, hosts in CAN_SERVE.items() for host in hosts}
    policies = "".join(ROLE_ONLY_POLICY.format(name=name) for name in CAN_SERVE)
    extras = {1: policies}
    for host in range(2, 6):
        extras[host] = NOTIFY + policies + "".join(
            background_service(name, "http", ports[host, name], hosts[0] == host, start(name, ports[host, name]))
            for name, hosts in CAN_SERVE.items() if host in hosts)
    extras[1] = NOTIFY + extras[1]
    cluster = LocalCluster(str(tmp_path), ROLES, INTERVAL, DEAD_AFTER, extras=extras, settings="min_spares = 1")
    master, first, second, spare, last = cluster.nodes
    for node, name in ((first, "a"), (second, "b")):  # as an operator would have it: each active serves one
        subprocess.run(["/bin/sh", "-c", start(name, ports[node.host_id, name])], cwd=node.folder, check=True)
    cluster.start_all()
    try:
        cluster.wait_ready()
        assert wait_for(lambda: serving(master, "a") == hid(2) and serving(master, "b") == hid(3), 20)
        assert wait_for(lambda: pool(master)["free"] == [hid(4), hid(5)], 10), pool(master)
        assert pool(master)["state"] == "optimal"

        # An active's service dies: a spare takes it and becomes active; one spare is left.
        kill_server(first, "a")
        assert wait_for(lambda: serving(master, "a") == hid(4), 15), master.status()["tables"]["services"]
        assert wait_for(lambda: spare.status()["role"] == "active", 5)
        assert spare.status()["configured_role"] == "standby"
        said = pool(master)
        assert (said["state"], said["free"], said["in_use"], said["resting"]) == (
            "optimal", [hid(5)], [hid(4)], [hid(2)]), said
        assert wait_for(lambda: "spare-active 1.2.0.4 a" in notified(master), 5), notified(master)
        assert "role standby active" in " | ".join(notified(spare))

        # The other active dies: b can only go to the last spare, which it takes, saying why.
        cluster.kill(second)
        kill_server(second, "b")
        assert wait_for(lambda: serving(master, "b") == hid(5), 15), master.status()["tables"]["services"]
        assert wait_for(lambda: pool(master)["state"] == "no spare left", 5), pool(master)
        assert wait_for(lambda: {"no-spare-left 0", "spares-missing 0 1"} <= set(notified(master)), 5), (
            notified(master))
        placed = [d["text"] for d in master.status()["decisions"]["b"] if "-> 1.2.0.5" in d["text"]]
        assert "; no active qualifies: takes spare 1.2.0.5 (0 left, min_spares 1)" in placed[-1], placed

        # The master dies: no configured standby is free, so the host serving nothing (2, whose web
        # server died: a standby again) takes over before those serving (4 and 5).
        cluster.kill(master)
        rest = [first, spare, last]
        assert wait_for(lambda: all(n.status()["master"] == hid(2) for n in rest), 10), [
            (n.status()["master"], n.status()["role"]) for n in rest]

        # The failed host comes back, its b server not running: a spare again, and the cluster optimal.
        with open(second.config_path) as f:
            config = f.read()
        with open(second.config_path, "w") as f:
            f.write(config.replace("running = true", "running = false"))
        cluster.start(second)
        assert wait_for(lambda: pool(first)["state"] == "optimal" and pool(first)["free"] == [hid(3)], 15), (
            pool(first))
        # Its own node learns it with the next sync (it started from its saved tables, serving b).
        assert wait_for(lambda: second.status()["role"] == "standby", 5), second.status()["tables"]["servers"]
        assert second.status()["configured_role"] == "active"
        assert wait_for(lambda: notified(first)[-1:] == ["optimal 1"], 5), notified(first)
    finally:
        cluster.stop_all()
        stop_servers(cluster, CAN_SERVE)
