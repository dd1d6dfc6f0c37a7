"""Real twistd processes multicasting on loopback."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rais.localcluster import LocalCluster, agreed, converged, declared, free_port, wait_for
from tests.test_metrics import promtool_check

pytestmark = pytest.mark.integration

INTERVAL, DEAD_AFTER = 0.2, 3
DEAD = INTERVAL * DEAD_AFTER
SLACK = 1.0  # scheduling and polling delay on a loaded 2-core machine
ROLES = ["master", "active", "active", "standby"]
SERVICES = """
[services.web]
probe = "tcp"
port = 8080
running = true

[services.db]
probe = "tcp"
port = 5432

[policy.web]
replicas = 2
max_cpu = 0.9
max_latency_ms = 50
"""


def hid(n):
    return f"1.2.0.{n}"


def statuses(node):
    return {h["id"]: h["status"] for h in node.status()["hosts"]}


def complete(nodes):
    """Converged, and the master has every host's catalogue in the services table."""
    return converged(nodes) and len(nodes[0].status()["tables"]["services"]) == 2 * len(ROLES)


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(str(tmp_path), ROLES, INTERVAL, DEAD_AFTER, extra=SERVICES)
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


def test_nodes_see_each_other_elect_the_master_and_notice_a_kill(cluster):
    nodes = cluster.nodes
    ids = [hid(n.host_id) for n in nodes]

    def all_up():
        return all(statuses(n) == {i: "up" for i in ids if i != hid(n.host_id)} for n in nodes)

    assert wait_for(all_up, 10), [n.status() for n in nodes]
    assert wait_for(lambda: complete(nodes), 10), [n.status() for n in nodes]

    # What an operator sees, through the real command.
    doc = rais_status_json(nodes[1])
    # Its role is what it serves (rais.pool): web runs on every host at first, and two copies go.
    serves = any(r["assigned"] for r in doc["tables"]["services"] if r["host"] == "1.2.0.2")
    assert doc["self"] == "1.2.0.2" and doc["cluster"] == "1.2" and doc["role"] == ("active" if serves else "standby")
    assert doc["master"] == "1.2.0.1" and doc["term"] > 0 and doc["generation"] > 0
    assert doc["master_since"] > 0
    for host in doc["hosts"]:
        assert set(host) >= {"id", "address", "role", "status", "last_heard"}
        assert host["address"] == "127.0.0.1" and host["last_heard"] < 1.0
    tables = doc["tables"]
    assert set(tables) == {"services", "latency", "cpu", "network", "servers", "policy", "costs"}
    assert sorted((s["host"], s["name"]) for s in tables["services"]) == sorted(
        (i, name) for i in ids for name in ("db", "web"))
    assert [p["name"] for p in tables["policy"]] == ["web"]
    assert doc["traffic"]["dropped"] == {}

    victim, survivors = nodes[2], [n for n in nodes if n is not nodes[2]]
    cluster.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    limit = DEAD + SLACK
    assert wait_for(lambda: all(statuses(n)[hid(3)] == "down" for n in survivors), limit), (
        [n.status() for n in survivors])
    # Not down before its time either: its last beat left at most one interval before the kill.
    assert time.monotonic() - killed >= (DEAD_AFTER - 1) * INTERVAL * 0.9
    servers = {r["host"]: r for r in nodes[0].status()["tables"]["servers"]}
    assert wait_for(lambda: {r["host"]: r for r in nodes[0].status()["tables"]["servers"]}[hid(3)]["status"]
                    == "down", 2), servers


def successor(doc, alive):
    """Who takes over from the master whose document this is, among ``alive``, all of equal
    priority and as up to date: the free spares (serving nothing) first, configured standbys
    before configured actives, then the lower id (README, "Succession")."""
    servers = {r["host"]: r for r in doc["tables"]["servers"]}
    ids = [hid(n.host_id) for n in alive]
    return min(ids, key=lambda h: (servers[h]["role"] != "standby", servers[h]["configured"] == "active", h))


def test_failover_standby_then_active_and_the_old_master_rejoins_without_preempting(cluster):
    nodes = cluster.nodes
    assert wait_for(lambda: complete(nodes), 15), [n.status() for n in nodes]
    old = nodes[0]
    assert agreed(nodes)[0] == hid(1)
    time.sleep(1)  # loads and latencies in the tables
    before = old.status()
    first = successor(before, nodes[1:])
    cluster.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    rest = nodes[1:]
    assert wait_for(lambda: (agreed(rest) or (None,))[0] == first, DEAD + INTERVAL + 1.0), (
        [n.status() for n in rest])
    took = time.monotonic() - killed
    assert took <= DEAD + INTERVAL + 1.0  # dead_after intervals, plus one second
    assert wait_for(lambda: converged(rest), 5)
    new_master = next(n for n in rest if hid(n.host_id) == first)
    after = new_master.status()
    assert after["term"] > before["term"] and after["generation"] > before["generation"]
    assert after["tables"]["policy"] == before["tables"]["policy"]
    # The services are intact, but for the dead master's: no longer assigned there.
    def elsewhere(doc):
        return [r for r in declared(doc) if r["host"] != hid(1)]

    assert elsewhere(after) == elsewhere(before)
    assert wait_for(lambda: not any(r["assigned"] for r in new_master.status()["tables"]["services"]
                                    if r["host"] == hid(1)), 3)
    for table in ("cpu", "network", "servers"):  # every host still there (figures move on)
        assert {r["host"] for r in after["tables"][table]} == {r["host"] for r in before["tables"][table]}
    # Round trips are the master's own: the new one drops the row the old one kept for it.
    assert {r["host"] for r in after["tables"]["latency"]} >= {hid(n.host_id) for n in rest} - {first}
    servers = {r["host"]: r for r in after["tables"]["servers"]}
    assert servers[hid(1)]["status"] == "down" and servers[first]["role"] == "master"

    rest = [n for n in rest if n is not new_master]
    second = successor(new_master.status(), rest)
    cluster.kill(new_master, signal.SIGKILL)
    assert wait_for(lambda: (agreed(rest) or (None,))[0] == second, DEAD + INTERVAL + 2.0), (
        [n.status() for n in rest])
    assert wait_for(lambda: converged(rest), 5)
    term = rest[0].status()["term"]

    cluster.start(old)
    cluster.wait_ready()
    live = [old, *rest]
    assert wait_for(lambda: converged(live), 10), [n.status() for n in live]
    time.sleep(DEAD * 2)
    assert agreed(live) == (second, term)
    back = old.status()  # not master again: active if it serves something, else a spare
    serves = any(r["assigned"] for r in back["tables"]["services"] if r["host"] == hid(1))
    assert back["role"] == ("active" if serves else "standby")


def test_a_frozen_master_resumes_as_a_follower_and_undoes_nothing(cluster):
    nodes = cluster.nodes
    assert wait_for(lambda: complete(nodes), 15), [n.status() for n in nodes]
    old = nodes[0]
    old.process.send_signal(signal.SIGSTOP)
    try:
        rest = nodes[1:]
        assert wait_for(lambda: (agreed(rest) or (None,))[0] == hid(4), DEAD + INTERVAL + 2.0)
        assert wait_for(lambda: converged(rest), 5)
        new = nodes[3].status()
    finally:
        old.process.send_signal(signal.SIGCONT)
    assert wait_for(lambda: converged(nodes), 10), [n.status() for n in nodes]
    after = nodes[0].status()
    # No longer master: active if it serves something, else a spare (rais.pool).
    serves = any(r["assigned"] for r in after["tables"]["services"] if r["host"] == hid(1))
    assert after["role"] == ("active" if serves else "standby"), after["tables"]
    assert after["master"] == hid(4) and after["term"] == new["term"]
    assert nodes[3].status()["generation"] >= new["generation"]
    servers = {r["host"]: r for r in nodes[3].status()["tables"]["servers"]}
    assert servers[hid(4)]["role"] == "master"


def test_a_whole_cluster_stopped_and_started_resumes_its_tables(cluster):
    nodes = cluster.nodes
    assert wait_for(lambda: complete(nodes), 15)
    before = nodes[0].status()
    cluster.stop_all()
    for node in nodes:
        cluster.start(node)
    cluster.wait_ready()
    assert wait_for(lambda: converged(nodes), 15), [n.status() for n in nodes]
    after = nodes[0].status()
    assert after["generation"] > before["generation"] and after["term"] > before["term"]
    assert after["tables"]["policy"] == before["tables"]["policy"]
    assert declared(after) == declared(before)


def test_restarted_node_is_seen_again_with_a_new_boot_epoch(cluster):
    node = cluster.nodes[1]
    observer = cluster.nodes[0]

    def epoch():
        return {h["id"]: h for h in observer.status()["hosts"]}.get(hid(2), {}).get("boot_epoch")

    assert wait_for(lambda: epoch() is not None, 10)
    first = epoch()
    cluster.kill(node, signal.SIGKILL)
    cluster.start(node)
    cluster.wait_ready()
    assert wait_for(lambda: (epoch() or 0) > first and statuses(observer)[hid(2)] == "up", 10)
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
        assert hid(9) not in statuses(observer)
        assert hid(1) not in statuses(other.nodes[0])
    finally:
        other.stop_all()
    # A node listens on the group only: what a host set up with [cluster] peers sends it by unicast is
    # not heard at all (rather than heard one way), while the same bytes to the group are (and dropped).
    def malformed():
        return [n.status()["traffic"]["dropped"].get("malformed", 0) for n in cluster.nodes]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        before = malformed()
        for _ in range(3):
            s.sendto(b"not DER", ("127.0.0.1", cluster.port))
        time.sleep(1)
        assert malformed() == before
        s.sendto(b"not DER", (cluster.group, cluster.port))
        assert wait_for(lambda: malformed() == [n + 1 for n in before], 5)


def test_sigterm_stops_a_node_cleanly_and_saves_its_tables(cluster):
    node = cluster.nodes[1]
    assert wait_for(lambda: converged(cluster.nodes), 15), [n.status() for n in cluster.nodes]
    node.process.terminate()
    # twistd stops the reactor, then re-raises the signal so the exit status tells why.
    code = node.process.wait(timeout=10)
    log = open(node.log_path).read()
    assert code == -signal.SIGTERM, log[-3000:]
    assert "Main loop terminated." in log, log[-3000:]
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    saved = os.path.join(node.folder, "state", "tables.der")
    assert os.path.getsize(saved) > 100


def test_the_master_probes_a_real_server_with_rise_and_fall(tmp_path):
    from rais.localcluster import free_port

    port = free_port()
    web = f"""
[services.web]
probe = "http"
port = {port}
path = "/"
running = true
probe_interval = 0.3
probe_timeout = 0.5
rise = 1
fall = 2
"""
    cluster = LocalCluster(str(tmp_path), ["master", "active"], INTERVAL, DEAD_AFTER, extras={2: web})
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cluster.start_all()
    try:
        cluster.wait_ready()
        observer = cluster.nodes[1]  # a replica: what it shows came through the sync

        def web_row():
            rows = [r for r in observer.status()["tables"]["services"] if r["name"] == "web"]
            return rows[0] if rows else {}

        assert wait_for(lambda: web_row().get("result") == "ok" and web_row()["state"] == "running", 15), web_row()
        assert 0 < web_row()["latency_us"] < 500_000
        assert "200" in web_row()["detail"]
        server.kill()
        server.wait()
        failed_at = time.monotonic()
        assert wait_for(lambda: web_row().get("state") == "failed", 10), web_row()
        # Two failed probes 0.3 s apart, each refused at once, plus the sync: well under two seconds.
        assert time.monotonic() - failed_at < 2.0
        assert web_row()["result"] == "critical"
        server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: web_row().get("state") == "running", 15), web_row()
    finally:
        server.kill()
        server.wait()
        cluster.stop_all()


def test_a_drop_in_probe_is_used_by_the_master(tmp_path):
    from tests.test_probe_registry import drop_in

    folder = tmp_path / "probes.d"
    drop_in(folder, "dropin_echo")  # a new module; nothing else changes
    common = f'\n[probes]\npaths = ["{folder}"]\n'
    service = '\n[services.echo]\nprobe = "dropin_echo"\nrunning = true\nsay = "drop-in here"\nprobe_interval = 0.3\n'
    cluster = LocalCluster(str(tmp_path), ["master", "active"], INTERVAL, DEAD_AFTER, extra=common,
                           extras={2: service})
    cluster.start_all()
    try:
        cluster.wait_ready()

        def echo_row():
            rows = [r for r in cluster.nodes[1].status()["tables"]["services"] if r["name"] == "echo"]
            return rows[0] if rows else {}

        assert wait_for(lambda: echo_row().get("result") == "ok", 15), echo_row()
        assert echo_row()["state"] == "running" and echo_row()["detail"] == "drop-in here from 127.0.0.1:7"
    finally:
        cluster.stop_all()


def test_a_service_moves_to_the_next_host_whose_start_works_and_is_not_served_twice(tmp_path):
    from bench.failover import confirmed_on, serve, web_cluster, web_rows
    from rais.localcluster import kill_server, stop_servers

    cluster, ports = web_cluster(str(tmp_path))
    cluster.start_all()
    try:
        cluster.wait_ready()
        assert wait_for(lambda: confirmed_on(cluster, hid(2)), 20), web_rows(cluster.nodes[0])
        kill_server(cluster.nodes[1], "web")  # the web server on host 2 dies
        assert wait_for(lambda: confirmed_on(cluster, hid(3)), 15), web_rows(cluster.nodes[0])
        master = cluster.nodes[0].status()
        # The last few decisions, and the events (a longer memory: the move may take more steps).
        said = " | ".join([d["text"] for d in master["decisions"]["web"]] + [e["text"] for e in master["events"]])
        assert "did not start on 1.2.0.4: start of web failed (exit status 1): port in use" in said, said
        rows = web_rows(cluster.nodes[0])
        assert [h for h, r in rows.items() if r["assigned"]] == [hid(3)]
        # Each node's notify command heard its events, in order.
        with open(os.path.join(cluster.nodes[3].folder, "notify.log")) as f:
            assert "assign web failed start of web failed (exit status 1): port in use" in f.read()
        with open(os.path.join(cluster.nodes[2].folder, "notify.log")) as f:  # and, serving, it is active
            assert f.read().splitlines()[-2:] == ["assign web ok started web", "role standby active 1/1 it serves web"]

        # Host 2 dies and comes back with its web server started again: it must be released.
        cluster.kill(cluster.nodes[1], signal.SIGKILL)
        subprocess.run(["/bin/sh", "-c", serve(ports[2])], cwd=cluster.nodes[1].folder, check=True)
        cluster.start(cluster.nodes[1])
        cluster.wait_ready()
        pidfile = os.path.join(cluster.nodes[1].folder, "web.pid")
        assert wait_for(lambda: not os.path.exists(pidfile), 15)  # its stop action ran
        assert wait_for(lambda: web_rows(cluster.nodes[0])[hid(2)]["running"] is False, 10)
        assert [h for h, r in web_rows(cluster.nodes[0]).items() if r["assigned"]] == [hid(3)]
    finally:
        cluster.stop_all()
        stop_servers(cluster, ["web"])


def test_rais_move_moves_a_service_where_the_operator_says_and_refuses_what_cannot_be(tmp_path):
    from bench.failover import confirmed_on, web_cluster, web_rows
    from rais.localcluster import stop_servers

    cluster, _ports = web_cluster(str(tmp_path))
    cluster.start_all()
    master, other = cluster.nodes[0], cluster.nodes[2]

    def rais_move(node, *words):
        return subprocess.run([sys.executable, "-m", "rais.cli", "move", *words, "--control",
                               f"{node.address}:{node.control_port}"], capture_output=True, text=True, timeout=30)

    try:
        cluster.wait_ready()
        assert wait_for(lambda: confirmed_on(cluster, hid(2)), 20), web_rows(master)
        done = rais_move(master, "web", hid(3))
        assert (done.returncode, done.stdout) == (0, "moving web to 1.2.0.3\n"), done.stderr
        assert wait_for(lambda: confirmed_on(cluster, hid(3)) and not web_rows(master)[hid(2)]["assigned"], 15), (
            web_rows(master))
        # Released there: unassigned in the master's tables as it orders the stop, which runs a moment later.
        assert wait_for(lambda: not os.path.exists(os.path.join(cluster.nodes[1].folder, "web.pid")), 5)
        def said():
            return [d["text"] for d in master.status()["decisions"]["web"]]

        # Released once the new copy's probe says it runs; the move is done the step after.
        assert wait_for(lambda: said()[-1] == "web: moved to 1.2.0.3, as the operator asked", 5), said()
        for node, words, why in (
                (master, ("web", "1.2.0.9"), "1.2.0.9 is not in the cluster's tables"),
                (master, ("web", "1.2.0.3"), "web is assigned to 1.2.0.3 already"),
                (master, ("web", "1.2.0"), "host-cluster id '1.2.0' must be 4 dotted octets"),
                (other, ("web", "1.2.0.3"), "web is assigned to 1.2.0.3 already")):  # through a follower
            refused = rais_move(node, *words)
            assert (refused.returncode, refused.stdout, refused.stderr) == (2, "", f"rais move: {why}\n")
    finally:
        cluster.stop_all()
        stop_servers(cluster, ["web"])


def test_rais_drain_through_a_follower_moves_web_off_a_host_in_every_nodes_tables_and_policy_set_adds_a_copy(
        tmp_path):
    from bench.failover import confirmed_on, web_cluster, web_rows
    from rais.localcluster import stop_servers

    cluster, _ports = web_cluster(str(tmp_path))
    cluster.start_all()
    master, follower = cluster.nodes[0], cluster.nodes[2]

    def rais(*words):  # asked of a follower, which carries each command to the master
        done = subprocess.run([sys.executable, "-m", "rais.cli", *words, "--control",
                               f"{follower.address}:{follower.control_port}"], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def drained_everywhere(flag):
        return all({r["host"]: r["drained"] for r in n.status()["tables"]["servers"]}.get(hid(2)) is flag
                   for n in cluster.nodes)

    try:
        cluster.wait_ready()
        assert wait_for(lambda: confirmed_on(cluster, hid(2)), 20), web_rows(master)
        said = rais("drain", hid(2))
        assert said.startswith("draining 1.2.0.2: its services move elsewhere"), said
        assert "then the master will:\n  assign: web -> " in said, said
        assert wait_for(lambda: drained_everywhere(True), 10), [n.status()["tables"]["servers"] for n in cluster.nodes]
        assert wait_for(lambda: confirmed_on(cluster, hid(3)) and not web_rows(master)[hid(2)]["assigned"], 30), (
            web_rows(master))
        assert wait_for(lambda: not os.path.exists(os.path.join(cluster.nodes[1].folder, "web.pid")), 10)
        assert rais("undrain", hid(2)).startswith("undraining 1.2.0.2")
        assert wait_for(lambda: drained_everywhere(False), 10)
        assert web_rows(master)[hid(3)]["assigned"]  # nothing moves back
        said = rais("policy", "set", "web", "replicas=2")
        assert said.startswith("policy set live: web: replicas=2 "), said
        assert wait_for(lambda: confirmed_on(cluster, hid(2)) and confirmed_on(cluster, hid(3)), 30), web_rows(master)
        shown = rais("policy", "show", "web")
        assert shown.startswith("web: replicas=2 ") and shown.endswith("(set live)\n"), shown
    finally:
        cluster.stop_all()
        stop_servers(cluster, ["web"])


def metrics(node):
    """GET /metrics from the node's control endpoint: (the text, its samples by name and labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{node.control_port}/metrics", timeout=5) as response:
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = response.read().decode()
    return text, {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_say_what_each_node_sees_and_promtool_accepts_them(cluster):
    nodes = cluster.nodes
    assert wait_for(lambda: complete(nodes), 15), [n.status() for n in nodes]
    # A scrape reads the node as it is then: wait for one where every host is up.
    assert wait_for(lambda: all(metrics(n)[1][("rais_hosts", (("status", "up"),))] == len(ROLES)
                                for n in nodes), 10), [metrics(n)[0] for n in nodes]
    for node in nodes:
        text, samples = metrics(node)
        assert promtool_check(text) == ""
        is_master = node is nodes[0]
        # The configured master leads; the others' roles are what they serve (rais.pool).
        assert samples[("rais_role", (("role", "master" if is_master else node.status()["role"]),))] == 1
        assert sum(v for (name, _), v in samples.items() if name == "rais_role") == 1
        assert samples[("rais_elections_total", ())] == is_master
        assert samples[("rais_term", ())] == node.status()["term"]
        assert samples[("rais_datagrams_received_total", ())] > 0 and samples[("rais_datagrams_sent_total", ())] > 0
        copies = sum(v for (name, _), v in samples.items() if name == "rais_services")
        assert copies == 2 * len(ROLES)  # web and db, declared by every host
    # The master probes each service within its probe interval (5 s) after settling (2 s).
    assert wait_for(lambda: metrics(nodes[0])[1].get(("rais_probe_latency_seconds_count", (("probe", "tcp"),)),
                                                      0) >= len(ROLES), 10), metrics(nodes[0])[0]


def unicast_on_loopback(cluster):
    """[cluster] peers on loopback: each node its own port, every node listed as 127.0.0.1:PORT."""
    ports = [free_port(socket.SOCK_DGRAM) for _ in cluster.nodes]
    peers = ", ".join(f'"127.0.0.1:{port}"' for port in ports)
    for node, port in zip(cluster.nodes, ports, strict=True):
        text = open(node.config_path).read()
        for old, new in ((f'\ngroup = "{cluster.group}"\n', f"\npeers = [{peers}]\n"),
                         (f"\nport = {cluster.port}\n", f"\nport = {port}\n")):
            assert old in text
            text = text.replace(old, new)
        open(node.config_path, "w").write(text)
    return ports


def test_a_unicast_cluster_of_one_host_runs_and_leads_itself(tmp_path):
    """The first host of a cluster with peers, its list naming only itself: it sends to nobody."""
    cluster = LocalCluster(str(tmp_path), ["master"], INTERVAL, DEAD_AFTER)
    unicast_on_loopback(cluster)
    try:
        cluster.start_all()
        cluster.wait_ready()
        assert wait_for(lambda: cluster.nodes[0].status()["master"] == "1.2.0.1", 10), cluster.tail(cluster.nodes[0])
        assert cluster.nodes[0].status()["traffic"] == {"received": 0, "sent": 0, "dropped": {}, "peers": []}
    finally:
        cluster.stop_all()


def test_unicast_peers_on_one_machine_elect_sync_and_fail_over(tmp_path):
    cluster = LocalCluster(str(tmp_path), ["master", "active", "standby"], INTERVAL, DEAD_AFTER)
    ports = unicast_on_loopback(cluster)
    try:
        cluster.start_all()
        cluster.wait_ready()
        assert wait_for(lambda: converged(cluster.nodes), 10)
        docs = [n.status() for n in cluster.nodes]
        assert [d["traffic"]["peers"] for d in docs] == [
            [f"127.0.0.1:{p}" for p in ports if p != own] for own in ports]
        assert all(d["traffic"]["dropped"] == {} and d["master"] == "1.2.0.1" for d in docs)
        cluster.kill(cluster.nodes[0])
        assert wait_for(lambda: (agreed(cluster.nodes[1:]) or (None,))[0] == "1.2.0.3", 4 * DEAD)  # the standby
    finally:
        cluster.stop_all()
