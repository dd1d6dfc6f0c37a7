"""Faults on real network stacks: each node a twistd process in its own network namespace
(rais.netcluster), killed, frozen, partitioned, fed forged, replayed and garbage datagrams, and
restarted. The current node passes every one: they guard the work on failure detection.

Each test prints what it measured (``pytest -s`` shows it).
"""

import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

from bench.loss import DEAD_AFTER, INTERVAL, ROLES, WEB, WEB_PORT
from rais.ids import ClusterId, HostClusterId
from rais.keys import Key, Keyring, load_keyring
from rais.localcluster import agreed, converged, declared, wait_for
from rais.netcluster import alive
from rais.wire import Heartbeat, ReplayGuard, WireError, open_datagram, seal

pytestmark = pytest.mark.integration

DEAD = INTERVAL * DEAD_AFTER
SLACK = 1.0  # scheduling and polling delay on a loaded 2-core machine
FAILOVER = DEAD + INTERVAL + SLACK  # a dead master's silence, one interval of succession, slack
HEALED = 2 * FAILOVER  # after a heal: every host heard again, an election if needed, tables synced
SETTLE = 10.0  # after a restart: the processes start, then as after a heal
# The soak's cluster (heartbeat 0.2 s, dead_after 3; master, active, active, standby): host 2
# serves web (a real TCP listener in its namespace), and here every host also declares db, not
# running. Probed often, so every row has its steady state within a second or two.
DB = """
[services.db]
probe = "tcp"
port = 5432
running = false
probe_interval = 0.5
"""


def hid(n):
    return f"1.2.0.{n}"


def master_of(nodes):
    return (agreed(nodes) or (None,))[0]


def settled(nodes, web=True):
    """Converged, every catalogue in, and every service in its steady state: db stopped, web
    (if served) assigned and running."""
    if not converged(nodes):
        return False
    rows = nodes[0].status()["tables"]["services"]
    steady = {("db", "stopped", False)} | ({("web", "running", True)} if web else set())
    return len(rows) == len(nodes) + web and {(r["name"], r["state"], r["assigned"]) for r in rows} == steady


def masters(nodes):
    """The nodes that say they are master (one round of statuses)."""
    return [n for n in nodes if n.status()["role"] == "master"]


def figure(what, **values):
    print(f"\n  {what}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in values.items()))


@pytest.fixture
def start(net_cluster):
    """Start a settled 4-host cluster; ``settings`` adds [cluster] keys; ``web``: host 2 serves web."""

    def make(settings="", web=True):
        cluster = net_cluster(ROLES, INTERVAL, DEAD_AFTER, settings=settings, extra=DB,
                              extras={2: WEB} if web else {})
        if web:
            cluster.listen(cluster.nodes[1], WEB_PORT)
        cluster.start_all()
        cluster.wait_ready()
        assert wait_for(lambda: settled(cluster.nodes, web), 20), [n.status() for n in cluster.nodes]
        return cluster

    return make


@pytest.fixture
def cluster(start):
    return start()


def test_master_killed_survivors_agree_within_the_bound(cluster):
    nodes, rest = cluster.nodes, cluster.nodes[1:]
    before = nodes[3].status()
    cluster.kill(nodes[0])
    killed = time.monotonic()
    assert wait_for(lambda: master_of(rest) == hid(4), FAILOVER, step=0.02), [n.status() for n in rest]
    took = time.monotonic() - killed
    assert (DEAD_AFTER - 1) * INTERVAL * 0.9 <= took <= FAILOVER  # not before its time either
    assert wait_for(lambda: converged(rest), 5), [n.status() for n in rest]
    after = nodes[3].status()
    assert after["term"] > before["term"] and after["generation"] > before["generation"]
    figure("master killed", agreed_after=took, bound=FAILOVER)


def test_a_frozen_master_is_replaced_and_after_the_thaw_changes_nothing(cluster):
    nodes, old, rest = cluster.nodes, cluster.nodes[0], cluster.nodes[1:]
    cluster.freeze(old)
    frozen = time.monotonic()
    try:
        assert wait_for(lambda: master_of(rest) == hid(4), FAILOVER, step=0.02), [n.status() for n in rest]
        took = time.monotonic() - frozen
        assert wait_for(lambda: converged(rest), 5), [n.status() for n in rest]
        new = nodes[3].status()
    finally:
        cluster.thaw(old)
    thawed = time.monotonic()
    # For a while after the thaw: every survivor follows the new master in its term, the new
    # master's generation only moves forward, and the old master comes to follow it.
    views, generations, stepped = set(), [], None
    while time.monotonic() - thawed < 4 * DEAD:
        docs = [n.status() for n in rest]
        views |= {(d["master"], d["term"]) for d in docs}
        generations.append(docs[2]["generation"])
        doc = old.status()
        if stepped is None and doc["role"] == "standby" and (doc["master"], doc["term"]) == (hid(4), new["term"]):
            stepped = time.monotonic() - thawed
    assert views == {(hid(4), new["term"])}
    assert generations == sorted(generations) and generations[0] >= new["generation"]
    assert stepped is not None, old.status()
    assert wait_for(lambda: converged(nodes), 5), [n.status() for n in nodes]
    assert [n.status()["self"] for n in masters(nodes)] == [hid(4)]
    figure("master frozen", replaced_after=took, old_master_follows_after_thaw=stepped)


# The sides, by node position: 2|2 splits the master and an active from the other two; 3|1
# isolates the master.
SPLITS = {"2|2": ([0, 1], [2, 3]), "3|1": ([1, 2, 3], [0])}


@pytest.mark.parametrize("quorum", [False, True], ids=["no-quorum", "quorum"])
@pytest.mark.parametrize("split", sorted(SPLITS))
def test_partition_then_heal(start, split, quorum):
    cluster = start("quorum = true" if quorum else "")
    nodes = cluster.nodes
    sides = [[nodes[i] for i in side] for side in SPLITS[split]]
    cluster.partition(sides)
    cut = time.monotonic()

    def has_master(side):
        """The old master keeps its side; the other side elects a new one."""
        master = master_of(side)
        return master == hid(1) if nodes[0] in side else master not in (None, hid(1))

    if not quorum:
        for side in sides:
            assert wait_for(lambda side=side: has_master(side), FAILOVER, step=0.02), [n.status() for n in side]
        during = [master_of(side) for side in sides]
    else:
        # Only a side with a majority of the 4 known hosts (3) has a master; a minority never does.
        majority = [side for side in sides if len(side) >= 3]
        minority = [n for side in sides if len(side) < 3 for n in side]
        for side in majority:
            assert wait_for(lambda side=side: has_master(side), FAILOVER, step=0.02), [n.status() for n in side]
        assert wait_for(lambda: not masters(minority), FAILOVER), [n.status() for n in minority]
        held = time.monotonic()
        while time.monotonic() - held < 3 * DEAD:
            assert not masters(minority)
        during = [master_of(side) for side in majority]
    split_for = time.monotonic() - cut
    cluster.heal()
    healed = time.monotonic()
    assert wait_for(lambda: converged(nodes), HEALED), [n.status() for n in nodes]
    took = time.monotonic() - healed
    assert len(masters(nodes)) == 1
    figure(f"partition {split} {'with' if quorum else 'without'} quorum", masters_during=during,
           cut_for=split_for, converged_after_heal=took, bound=HEALED)


@pytest.mark.parametrize("who", [0, 3], ids=["master", "standby"])
@pytest.mark.parametrize("way", ["deaf", "mute"])
def test_one_way_partition_then_heal(cluster, who, way):
    """deaf: the host hears nobody but is heard; mute: nobody hears it, it hears all."""
    nodes = cluster.nodes
    host, others = nodes[who], [n for n in nodes if n is not nodes[who]]
    if way == "deaf":
        cluster.partition_one_way(others, [host])
    else:
        cluster.partition_one_way([host], others)
    seen = {n.host_id: [] for n in nodes}  # each node's (master, term) in turn during the cut
    cut = time.monotonic()
    while time.monotonic() - cut < 4 * DEAD:
        for n in nodes:
            doc = n.status()
            if (view := (doc["master"], doc["term_text"])) not in seen[n.host_id][-1:]:
                seen[n.host_id].append(view)
    cluster.heal()
    healed = time.monotonic()
    # No flapping: a deaf standby or a mute master may be replaced once, never back and forth.
    for views in seen.values():
        leaders = [master for master, _ in views if master is not None]
        assert len({term for _, term in views}) <= 2 and leaders == sorted(set(leaders), key=leaders.index), views
    assert wait_for(lambda: converged(nodes), HEALED), [n.status() for n in nodes]
    took = time.monotonic() - healed
    assert len(masters(nodes)) == 1
    figure(f"one-way, {nodes[who].role} {way}", views_during_cut=seen, converged_after_heal=took,
           bound=HEALED)


def test_forged_replayed_and_garbage_datagrams_during_a_failover(cluster):
    nodes, rest = cluster.nodes, cluster.nodes[1:]
    keyring = load_keyring(cluster.key_path)
    captured = cluster.capture(5 * INTERVAL)
    opened = [open_datagram(c.data, keyring, ClusterId.parse("1.2"), ReplayGuard()) for c in captured]
    master = HostClusterId.parse(hid(1))
    beat = next(d for d in opened if d.sender == master and isinstance(d.message, Heartbeat))
    # The master's own heartbeat in a much newer term, signed with a key the cluster does not have.
    wrong = Keyring((Key(keyring.signing.id, os.urandom(32)),))
    forged = [seal(wrong, master, beat.boot_epoch, beat.sequence + i, beat.term + 2**20, beat.message)
              for i in range(1, 6)]
    replayed = [c.data for c in captured]
    rng = random.Random(7)
    garbage = [rng.randbytes(rng.randrange(1, 600)) for _ in range(5)] + [d[:-7] for d in replayed[:5]]
    for data in garbage:
        with pytest.raises(WireError) as bad:
            open_datagram(data, keyring, ClusterId.parse("1.2"), ReplayGuard())
        assert bad.value.reason == "malformed"

    stop = threading.Event()

    def attack():
        while not stop.wait(0.05):
            cluster.inject(forged + replayed + garbage)

    attacker = threading.Thread(target=attack)
    cluster.kill(nodes[0])
    killed = time.monotonic()
    attacker.start()
    try:
        assert wait_for(lambda: master_of(rest) == hid(4), FAILOVER, step=0.02), [n.status() for n in rest]
        took = time.monotonic() - killed
        time.sleep(0.5)  # the attack goes on a little under the new master
    finally:
        stop.set()
        attacker.join()
    assert wait_for(lambda: converged(rest), 5), [n.status() for n in rest]
    assert all(n.process.poll() is None for n in rest)
    dropped = [n.status()["traffic"]["dropped"] for n in rest]
    for counts in dropped:
        assert counts.get("bad-tag", 0) >= len(forged) and counts.get("replay", 0) >= len(replayed)
        assert counts.get("malformed", 0) >= len(garbage)
    for node in rest:
        with open(node.log_path) as f:
            log = f.read()
        assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    figure("forged, replayed and garbage datagrams during a failover", agreed_after=took, bound=FAILOVER,
           captured=len(captured), dropped_by_host_2=dropped[0])


def test_whole_cluster_restarted_at_once_keeps_its_tables(cluster):
    nodes = cluster.nodes
    before = nodes[0].status()
    cluster.stop_all()
    for node in nodes:
        cluster.start(node)
    started = time.monotonic()
    cluster.wait_ready()
    assert wait_for(lambda: converged(nodes), SETTLE), [n.status() for n in nodes]
    took = time.monotonic() - started
    assert len(masters(nodes)) == 1
    after = next(n for n in nodes if n.status()["role"] == "master").status()
    assert after["term"] > before["term"] and after["generation"] > before["generation"]
    assert after["tables"]["policy"] == before["tables"]["policy"]
    assert wait_for(lambda: declared(nodes[0].status()) == declared(before), SETTLE), (
        declared(nodes[0].status()), declared(before))
    figure("whole cluster restarted at once", converged_after_start=took, master=after["self"])


def test_cluster_restarted_one_by_one_keeps_its_tables(start):
    # Without web: the master unassigns a copy whose host goes down (as a restart does) and does
    # not give it back there for a minute (rais.pool.REST), even to the only host that
    # declares it, with the copy running again. The rest of the tables must come through unchanged.
    cluster = start(web=False)
    nodes = cluster.nodes
    before = nodes[0].status()
    took = []
    for node in nodes:
        cluster.restart(node)
        restarted = time.monotonic()
        assert wait_for(lambda: settled(nodes, web=False), SETTLE), [n.status() for n in nodes]
        took.append(time.monotonic() - restarted)
    assert len(masters(nodes)) == 1
    assert declared(nodes[0].status()) == declared(before)
    figure("cluster restarted one by one", settled_after_each=[round(t, 2) for t in took],
           master=master_of(nodes))


def test_closing_a_cluster_kills_what_its_actions_left_in_the_background(net_cluster):
    """A start action's server outlives its node (it is meant to); the harness must not let it
    outlive the test, bound to a port in a namespace nobody can reach any more."""
    made = net_cluster(["active"])
    namespace = made.nodes[0].namespace
    subprocess.run(["ip", "netns", "exec", namespace, "sh", "-c", "sleep 300 >/dev/null 2>&1 &"], check=True)
    left = [int(pid) for pid in subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                               text=True, check=True).stdout.split()]
    assert left
    made.close()
    assert wait_for(lambda: not any(alive(pid) for pid in left), 5), left


def test_the_harness_faults_reach_the_datagrams(cluster):
    """The harness itself: loss drops datagrams at a receiver, a link down silences a host, the
    observer hears every host. Only heartbeats are relied on, not what a node makes of them."""
    nodes = cluster.nodes

    def sources(seconds=5 * INTERVAL):
        return {c.source.split(":")[0] for c in cluster.capture(seconds)}

    assert sources() == {n.address for n in nodes}
    cluster.loss(100, [nodes[1]])
    time.sleep(INTERVAL)  # what was queued before the rule is read
    before = nodes[1].status()["traffic"]["received"]
    time.sleep(5 * INTERVAL)
    assert nodes[1].status()["traffic"]["received"] == before
    cluster.no_loss()
    assert wait_for(lambda: nodes[1].status()["traffic"]["received"] > before, 2)
    cluster.link_down(nodes[2])
    assert nodes[2].address not in sources()
    assert nodes[2].status()["self"] == hid(3)  # still answering, from inside its namespace
    cluster.link_up(nodes[2])
    assert nodes[2].address in sources()


def test_a_service_the_master_places_on_itself_is_started_once(net_cluster):
    """One decision, one start: the master's own new catalogue (its start changed what it
    declares) must not make the copy it just started look missing."""
    web = WEB + 'running = {running}\nstart = ["sh", "-c", "echo started >> starts.log; {server}"]\n'
    cluster = net_cluster(ROLES, INTERVAL, DEAD_AFTER)
    master, host = cluster.nodes[0], cluster.nodes[1]
    # A real server, which ends by itself: it runs in the master's namespace, outside the node.
    server = f"timeout 30 {sys.executable} -m http.server --bind {master.address} {WEB_PORT} >/dev/null 2>&1 &"
    for node, running in ((master, "false"), (host, "true")):
        with open(node.config_path, "a") as f:
            f.write(web.replace("running = true\n", "").format(running=running, server=server))
    listener = cluster.listen(host, WEB_PORT)
    cluster.start_all()
    cluster.wait_ready()
    assert wait_for(lambda: converged(cluster.nodes) and any(
        r["host"] == hid(2) and r["state"] == "running" for r in master.status()["tables"]["services"]), 20)
    listener.kill()  # web fails on host 2; the master is the only other host declaring it
    starts = os.path.join(master.folder, "starts.log")
    assert wait_for(lambda: any(r["host"] == hid(1) and r["state"] == "running"
                                for r in master.status()["tables"]["services"]), 10), master.status()
    time.sleep(10 * INTERVAL)  # ample time for a second start, if anything ordered one
    figure("placed on the master", starts=open(starts).read().count("started"))
    assert open(starts).read() == "started\n"


def test_rais_plan_from_a_running_master_names_the_host_the_master_then_chooses(net_cluster):
    spare = WEB.replace("running = true", "running = false") + 'start = "true"\n'
    cluster = net_cluster(ROLES, INTERVAL, DEAD_AFTER, extras={2: WEB, 3: spare, 4: spare})
    master, host = cluster.nodes[0], cluster.nodes[1]
    cluster.listen(host, WEB_PORT)
    cluster.start_all()
    cluster.wait_ready()
    assert wait_for(lambda: converged(cluster.nodes) and any(
        r["host"] == hid(2) and r["state"] == "running" for r in master.status()["tables"]["services"]), 20)
    plan = subprocess.run(
        [sys.executable, "-m", "rais.cli", "plan", "--fail", hid(2), "--json",
         "--control", f"{master.address}:{master.control_port}"],
        capture_output=True, text=True, timeout=30, check=True)
    (predicted,) = [d["host"] for d in json.loads(plan.stdout)["decisions"] if d["action"] == "assign"]
    cluster.kill(host)

    def chosen():
        said = [d["text"] for d in master.status()["decisions"].get("web", [])]
        return next((text.split(" ")[2] for text in said if text.startswith("web -> ")), None)

    assert wait_for(chosen, FAILOVER + 2), master.status()["decisions"]
    figure("rais plan, then the failure", predicted=predicted, chosen=chosen())
    assert chosen() == predicted
