"""Real twistd processes multicasting on loopback."""

import json
import signal
import subprocess
import sys
import time

import pytest

from rais.localcluster import LocalCluster

pytestmark = pytest.mark.integration

INTERVAL, DEAD_AFTER = 0.2, 3
SLACK = 1.0  # scheduling and polling delay on a loaded 2-core machine


def statuses(cluster, node):
    return {h["id"]: h["status"] for h in node.status()["hosts"]}


def wait_for(predicate, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(str(tmp_path), ["master", "active", "standby"], INTERVAL, DEAD_AFTER)
    c.start_all()
    try:
        c.wait_ready()
        yield c
    finally:
        c.stop_all()


def rais_status_json(node):
    out = subprocess.run(
        [sys.executable, "-m", "rais.cli", "status", "--control", f"127.0.0.1:{node.control_port}",
         "--json"], capture_output=True, text=True, timeout=30, check=True,
    )
    return json.loads(out.stdout)


def test_three_nodes_see_each_other_and_notice_a_kill(cluster):
    ids = {n.host_id: f"1.2.0.{n.host_id}" for n in cluster.nodes}

    def all_up():
        return all(
            statuses(cluster, n) == {ids[o.host_id]: "up" for o in cluster.nodes if o is not n}
            for n in cluster.nodes
        )

    assert wait_for(all_up, 10), [n.status() for n in cluster.nodes]

    # What an operator sees, through the real command.
    doc = rais_status_json(cluster.nodes[1])
    assert doc["self"] == "1.2.0.2" and doc["cluster"] == "1.2" and doc["role"] == "active"
    assert doc["master"] == "1.2.0.1" and doc["term"] == 0 and doc["generation"] == 0
    for host in doc["hosts"]:
        assert set(host) >= {"id", "address", "role", "status", "last_heard"}
        assert host["address"] == "127.0.0.1" and host["last_heard"] < 1.0
    assert doc["traffic"]["dropped"] == {}

    victim, survivors = cluster.nodes[2], cluster.nodes[:2]
    cluster.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    limit = DEAD_AFTER * INTERVAL + SLACK
    assert wait_for(lambda: all(statuses(cluster, n)[ids[3]] == "down" for n in survivors), limit), (
        [n.status() for n in survivors])
    elapsed = time.monotonic() - killed
    # Not down before its time either: its last beat left at most one interval before the kill.
    assert elapsed >= (DEAD_AFTER - 1) * INTERVAL * 0.9
    for n in survivors:
        assert statuses(cluster, n) == {ids[o.host_id]: "up" for o in survivors if o is not n} | {
            ids[3]: "down"}


def test_restarted_node_is_seen_again_with_a_new_boot_epoch(cluster):
    node = cluster.nodes[1]
    observer = cluster.nodes[0]

    def epoch():
        return {h["id"]: h for h in observer.status()["hosts"]}.get("1.2.0.2", {}).get("boot_epoch")

    assert wait_for(lambda: epoch() is not None, 10)
    first = epoch()
    cluster.kill(node, signal.SIGKILL)
    cluster.start(node)
    cluster.wait_ready()
    assert wait_for(lambda: (epoch() or 0) > first and statuses(cluster, observer)["1.2.0.2"] == "up", 10)
    # Nothing the restarted node sent looked like a replay to its peers.
    assert observer.status()["traffic"]["dropped"] == {}


def test_another_cluster_key_is_dropped_and_counted(tmp_path, cluster):
    # A second cluster on the same group and port, with its own key.
    other_base = tmp_path / "other"
    other_base.mkdir()
    other = LocalCluster(str(other_base), ["active"], INTERVAL, DEAD_AFTER)
    for n in other.nodes:
        text = open(n.config_path).read()
        text = text.replace(f'group = "{other.group}"', f'group = "{cluster.group}"')
        text = text.replace(f"port = {other.port}", f"port = {cluster.port}")
        text = text.replace("host_id = 1", "host_id = 9")
        open(n.config_path, "w").write(text)
    other.start_all()
    try:
        other.wait_ready()
        observer = cluster.nodes[0]
        assert wait_for(lambda: observer.status()["traffic"]["dropped"].get("bad-tag", 0) >= 3, 10)
        assert "1.2.0.9" not in statuses(cluster, observer)
        assert "1.2.0.1" not in statuses(other, other.nodes[0])
    finally:
        other.stop_all()


def test_sigterm_stops_a_node_cleanly(cluster):
    node = cluster.nodes[0]
    node.process.terminate()
    # twistd stops the reactor, then re-raises the signal so the exit status tells why.
    assert node.process.wait(timeout=10) == -signal.SIGTERM
    log = open(node.log_path).read()
    assert "Main loop terminated." in log
    assert "Traceback" not in log and "Unhandled" not in log
