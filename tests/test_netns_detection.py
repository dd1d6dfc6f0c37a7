"""The failure-detection issue's cases, each with real twistd processes on separate network stacks.

Heartbeat 0.2 s, dead_after 3, four hosts (master, active, active, standby), as the issue measured:
random loss that fools nobody; an order captured on the wire and sent again after its host
restarted; two processes with one host id; a quorum cluster split 2|2; a quiet cluster's
generations; a configured master starting last on a fresh cluster. Each prints what it measured
(``pytest -s``).
"""

import os
import re
import threading
import time
import urllib.request

import pytest

from bench.loss import DEAD_AFTER, DOWN, INTERVAL, PAUSED, ROLES, log_lines, sizes, soak
from rais.election import term_counter
from rais.ids import ClusterId
from rais.keys import load_keyring
from rais.localcluster import converged, wait_for
from rais.wire import ReplayGuard, VoteRequest, WireError, open_datagram

pytestmark = pytest.mark.integration

SOAK = float(os.environ.get("RAIS_TEST_SOAK_SECONDS", "30"))  # bench/loss.py soaks 120 s a level
WEB = """
[services.web]
probe = "tcp"
port = 8080
running = true
probe_interval = 0.5
rise = 1
fall = 2
stop = ["sh", "-c", "echo stopped >> stops.log"]
"""


def figure(what, **values):
    print(f"\n  {what}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in values.items()))


def started(net_cluster, roles=ROLES, **kw):
    cluster = net_cluster(roles, INTERVAL, DEAD_AFTER, **kw)
    cluster.start_all()
    cluster.wait_ready()
    assert wait_for(lambda: converged(cluster.nodes), 20), [n.status() for n in cluster.nodes]
    return cluster


def test_thirty_percent_loss_on_every_link_fools_nobody(net_cluster):
    cluster = started(net_cluster, extras={2: WEB})
    cluster.listen(cluster.nodes[1], 8080)
    time.sleep(2)  # web's probe rises
    seen = soak(cluster, 30, SOAK)
    figure(f"30% loss for {SOAK:g} s", **seen)
    # A host whose process the machine did not run for a while (it logs so) is rightly called
    # down: that is the 2 cores, not the loss.
    assert (seen["false downs"] - seen["of a paused host"], seen["new terms"], seen["orders"]) == (0, 0, 0), seen


def test_a_node_not_scheduled_for_a_while_says_so_and_judges_no_peer_on_the_stale_news(net_cluster):
    """SIGSTOP for 1.5 s, as a loaded host or a VM without its CPU: the peers call it down (it sent
    nothing for longer than even their patient path waits, twice 0.6 s), and it, run again, says it
    was not scheduled, counts it, and calls none of them down, though its news of each is 1.5 s old:
    it reads what queued meanwhile first."""
    cluster = started(net_cluster)
    paused = cluster.nodes[2]
    before = sizes(cluster)
    cluster.freeze(paused)
    time.sleep(1.5)
    cluster.thaw(paused)
    assert wait_for(lambda: converged(cluster.nodes), 10)
    time.sleep(1)
    own = log_lines(paused, before[paused.index], sizes(cluster)[paused.index])
    said = [m for line in own if (m := PAUSED.search(line))]
    downs = [line for line in own if DOWN.search(line)]
    by_peers = [line for n in cluster.nodes if n is not paused
                for line in log_lines(n, before[n.index], sizes(cluster)[n.index]) if DOWN.search(line)]
    with urllib.request.urlopen(f"http://{paused.address}:{paused.control_port}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    figure("a node stopped for 1.5 s", said=[float(m[2]) for m in said], downs_by_peers=len(by_peers),
           its_own_downs=len(downs))
    assert len(said) == 1 and 1.3 < float(said[0][2]) < 2.0, own
    assert downs == [], downs
    assert by_peers, "no peer called it down: the pause proves nothing"
    assert "rais_pauses_total 1.0" in metrics, metrics


def test_an_order_sent_again_after_its_host_restarted_runs_nothing(net_cluster):
    cluster = started(net_cluster, extras={2: WEB})
    master, host = cluster.nodes[0], cluster.nodes[1]
    server = cluster.listen(host, 8080)
    stops = os.path.join(host.folder, "stops.log")
    assert wait_for(lambda: any(r["name"] == "web" and r["state"] == "running"
                                for r in master.status()["tables"]["services"]), 10)
    captured = []
    capturing = threading.Thread(target=lambda: captured.extend(cluster.capture(8)))
    capturing.start()
    time.sleep(0.5)
    server.kill()  # web fails on host 2: the master releases it there (nowhere else declares it)
    assert wait_for(lambda: os.path.exists(stops), 8), master.status()["decisions"]
    capturing.join()
    assert open(stops).read() == "stopped\n"
    # As a reboot would: it comes back declaring web stopped, so nothing legitimate stops it again.
    with open(host.config_path) as f:
        config = f.read()
    with open(host.config_path, "w") as f:
        f.write(config.replace("running = true", "running = false"))
    cluster.partition_one_way([master], [host])  # it hears only what the observer sends it
    try:
        cluster.restart(host)
        for _ in range(3):
            cluster.inject(c.data for c in captured)  # the master's heartbeats, then its orders
            time.sleep(0.1)
    finally:
        cluster.heal()
    time.sleep(2)
    figure("order sent again after a restart", datagrams_sent_again=len(captured),
           stops=open(stops).read().count("stopped"))
    assert open(stops).read() == "stopped\n"  # the release ran once, for the start it was meant for


def test_two_processes_with_one_host_id_are_loud_and_neither_leads(net_cluster):
    cluster = net_cluster([*ROLES, "standby"], INTERVAL, DEAD_AFTER, host_ids={5: 1})
    first, *others, twin = cluster.nodes
    for node in [first, *others]:
        cluster.start(node)
    cluster.wait_ready()
    assert wait_for(lambda: converged([first, *others]), 20)
    # Quiet tables (loads and catalogues in): the standby's replica is as new as anyone's, so the
    # succession puts it first once the master steps down.
    generations = []
    assert wait_for(lambda: generations.append(first.status()["generation"]) or generations[-5:].count(
        generations[-1]) == 5, 20, step=0.2)
    cluster.start(twin)  # a copied config, started later on another machine
    cluster.wait_ready()
    leaders: dict[int, set[str]] = {}
    deadline = time.monotonic() + 4 * INTERVAL * DEAD_AFTER
    while time.monotonic() < deadline:
        for doc in (n.status() for n in cluster.nodes):
            if doc["role"] == "master":
                leaders.setdefault(doc["term"], set()).add(doc["address"])
    docs = {n.address: n.status() for n in (first, twin)}
    figure("duplicate host id", terms_led={term_counter(t): sorted(a) for t, a in leaders.items()},
           reported_by=sorted(a for a, d in docs.items() if d["duplicate_id"]))
    assert all(len(addresses) == 1 for addresses in leaders.values())  # never two masters of a term
    assert all(doc["duplicate_id"] for doc in docs.values())  # loud on both
    assert all(doc["role"] != "master" for doc in docs.values())
    # The others agree on one of them; the standby normally, unless its replica was behind when
    # the master stepped down (the newest replica comes first), as on a loaded machine.
    ids = {f"1.2.0.{o.host_id}" for o in others}
    assert wait_for(lambda: converged(others) and others[0].status()["master"] in ids, 10), [
        o.status()["master"] for o in others]


def test_a_quorum_cluster_split_two_and_two_does_not_push_the_term_up(net_cluster):
    cluster = started(net_cluster, settings="quorum = true")
    nodes = cluster.nodes
    keyring, cluster_id = load_keyring(cluster.key_path), ClusterId.parse("1.2")
    cluster.partition([nodes[:2], nodes[2:]])
    try:
        captured = cluster.capture(10)  # the observer hears both sides
    finally:
        cluster.heal()
    asked = set()
    for c in captured:
        try:
            datagram = open_datagram(c.data, keyring, cluster_id, ReplayGuard())
        except WireError:
            continue
        if isinstance(datagram.message, VoteRequest):
            asked.add(datagram.message.term)
    figure("2|2 with quorum for 10 s", terms_stood_for=len(asked))
    assert len(asked) <= 2  # neither side hears a majority: none stands (it made 378 in 10 s)
    assert wait_for(lambda: converged(nodes), 10)


def test_a_quiet_cluster_commits_rarely(net_cluster):
    cluster = started(net_cluster)
    master = cluster.nodes[0]
    time.sleep(6)  # load figures settle
    before = master.status()["generation"]
    for _ in range(20):  # an operator polling every node's status once a second
        time.sleep(1)
        for node in cluster.nodes:
            node.status()
    made = master.status()["generation"] - before
    figure("a quiet cluster", generations_a_minute=made * 3)
    assert made * 3 <= 30  # it made 400-600 a minute here before


@pytest.mark.parametrize("late", [0.3, 0.5])
def test_on_a_fresh_cluster_a_configured_master_started_last_still_leads(net_cluster, late):
    cluster = net_cluster(ROLES, INTERVAL, DEAD_AFTER)
    master, *others = cluster.nodes
    for node in others:
        cluster.start(node)
    time.sleep(late)  # these python processes take about a second to start: the gap is real
    cluster.start(master)
    cluster.wait_ready()
    assert wait_for(lambda: converged(cluster.nodes), 20), [n.status() for n in cluster.nodes]
    leader = master.status()["master"]
    log = open(master.log_path).read()
    figure(f"master started {late:g} s after the others", master=leader,
           claimed=bool(re.search(r"role standby -> master", log)))
    assert leader == "1.2.0.1"
