"""The cluster protocol, many real Node objects over a simulated network (rais.sim)."""

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rais.election import term_owner
from rais.sim import CLUSTER, Simulation
from rais.states import base_role
from rais.wire.rows import PolicyRow

ROLES = ["master", "active", "active", "standby"]
POLICY = (PolicyRow("web", 2, 850, 50_000),)
DEAD = 3.0  # dead_after x interval, simulated seconds


def hid(n):
    from rais.ids import HostClusterId

    return HostClusterId.of(CLUSTER, n)


def started(roles=ROLES, **kw):
    sim = Simulation(roles, policies=POLICY, services=3, **kw)
    sim.run_until(sim.converged, 20)
    sim.run(3)  # loads, latencies and catalogues settle
    sim.run_until(sim.converged, 10)
    return sim


def master_of(sim):
    (master,) = sim.masters()
    return master


def tables_without_servers(node):
    doc = node.tables.to_json()
    doc.pop("servers")
    return doc


def test_bootstrap_elects_the_configured_master_and_replicates_the_tables():
    sim = started()
    master = master_of(sim)
    assert master.id == hid(1) and master.node.term != 0
    tables = master.node.tables.to_json()
    # web from the config; the services running everywhere keep the copies they have.
    assert {p["name"]: p["replicas"] for p in tables["policy"]} == {"web": 2, "svc0": 4, "svc2": 4}
    assert len(tables["services"]) == 4 * 3 and len(tables["servers"]) == 4
    assert {r["status"] for r in tables["servers"]} == {"up"}
    assert len(tables["latency"]) == 3  # the master's round trips to the others
    assert len(tables["cpu"]) == 4 and len(tables["network"]) == 4
    assert all(500 <= r["rtt_us"] <= 5000 for r in tables["latency"])  # the simulated delays, there and back
    for host in sim.alive():
        assert host.saved.version == master.node.tables.version  # everyone wrote it to disk


def test_failover_prefers_the_standby_then_an_active_and_a_restarted_master_does_not_preempt():
    sim = started()
    old = master_of(sim)
    before = tables_without_servers(old.node)
    sim.kill(old.id)
    took = sim.run_until(lambda: sim.converged() and master_of(sim).id != old.id, 20)
    new = master_of(sim)
    assert new.id == hid(4)  # the standby
    assert took <= DEAD + 1.0 + 1.0  # last beat up to one interval before the kill
    sim.run(3)  # the new master settles, then reconciles the services
    sim.run_until(sim.converged, 10)
    after = tables_without_servers(new.node)
    assert after["policy"] == before["policy"]
    # Intact, but for the dead master's services: no longer assigned there (nowhere to move them:
    # every other host already serves them).
    others = [r for r in before["services"] if r["host"] != str(old.id)]
    assert [r for r in after["services"] if r["host"] != str(old.id)] == others
    assert not any(r["assigned"] for r in after["services"] if r["host"] == str(old.id))
    servers = {r["host"]: r for r in new.node.tables.to_json()["servers"]}
    assert servers[str(old.id)]["status"] == "down" and servers[str(new.id)]["role"] == "master"

    sim.kill(new.id)
    sim.run_until(lambda: sim.converged() and master_of(sim).id not in (old.id, new.id), 20)
    assert master_of(sim).node.identity.configured == "active"
    assert master_of(sim).id == hid(2)  # equal priority: the lower host id

    third = master_of(sim)
    back = sim.restart(old.id)
    sim.run_until(lambda: sim.converged() and back.node.tables.version == third.node.tables.version, 20)
    sim.run(10)
    # Not the master it was configured to be: a host like any other, active as it serves again.
    serves = any(r.assigned for r in back.node.tables.table("services") if r.host == back.id)
    assert master_of(sim) is third and back.node.role == ("active" if serves else "standby")


def test_preempt_takes_mastership_back():
    sim = started()
    old = master_of(sim)
    sim.kill(old.id)
    sim.run_until(lambda: sim.converged() and master_of(sim).id != old.id, 20)
    sim.restart(old.id, preempt=True)
    sim.run_until(lambda: sim.converged() and master_of(sim).id == old.id, 20)
    assert old.id == hid(1)


def test_a_frozen_master_that_resumes_undoes_nothing():
    sim = started()
    old = master_of(sim)
    sim.freeze(old.id)
    sim.run_until(lambda: len(sim.masters()) == 1 and master_of(sim).id != old.id, 20)
    new = master_of(sim)
    sim.run(2)
    version = new.node.tables.version
    sim.freeze(old.id, False)
    sim.run_until(sim.converged, 20)
    assert master_of(sim) is new and old.node.role == "standby"
    assert new.node.tables.version >= version and new.node.term > old.node.tables.term - 1
    # Nobody ever followed the stale term after the new one began.
    assert all(h.node.term == new.node.term for h in sim.alive())


def test_without_quorum_each_side_of_a_partition_has_a_master_and_the_newest_term_wins():
    sim = started(["master", "standby", "active", "active", "standby"])
    sim.faults.groups = [{hid(1), hid(2)}, {hid(3), hid(4), hid(5)}]
    sim.run(DEAD + 5)
    assert len(sim.masters()) == 2
    sim.faults.groups = None
    sim.run_until(sim.converged, 20)
    terms = [b.term for b in sim.became]
    assert master_of(sim).node.term == max(terms)


def test_with_quorum_the_minority_side_has_no_master():
    sim = started(["master", "standby", "active", "active", "standby"], quorum=True)
    sim.faults.groups = [{hid(1), hid(2)}, {hid(3), hid(4), hid(5)}]
    sim.run(DEAD * 3 + 5)
    masters = sim.masters()
    assert [m.id for m in masters] == [hid(5)]  # the majority side's standby
    sim.faults.groups = None
    sim.run_until(sim.converged, 30)
    assert master_of(sim).id == hid(5)


def test_quorum_master_steps_down_when_it_loses_its_majority():
    sim = started(["master", "standby", "active"], quorum=True)
    master = master_of(sim)
    sim.faults.groups = [{master.id}, {hid(2), hid(3)}]
    sim.run(DEAD + 3)
    assert master.node.role != "master"
    assert [m.id for m in sim.masters()] == [hid(2)]


def test_tables_converge_despite_random_loss_and_duplicates():
    sim = started(["master", "standby"] + ["active"] * 6, seed=3)
    sim.faults.loss, sim.faults.duplicate = 0.3, 0.1
    sim.run(30)
    sim.faults.loss = sim.faults.duplicate = 0.0
    sim.run_until(sim.converged, 20)


def test_a_late_joiner_catches_up():
    sim = started()
    late = sim.add(hid(9), "active")
    sim.run_until(lambda: sim.converged() and len(master_of(sim).node.tables.table("servers")) == 5, 20)
    assert late.node.tables.digest == master_of(sim).node.tables.digest


def test_a_whole_cluster_restart_resumes_its_tables():
    sim = started()
    master = master_of(sim)
    version = master.node.tables.version
    policy = master.node.tables.to_json()["policy"]
    for host in list(sim.hosts.values()):
        host.stop()
    sim.run(10)
    for host_id in list(sim.hosts):
        sim.restart(host_id)
    sim.run_until(sim.converged, 30)
    new = master_of(sim)
    assert new.node.tables.version > version
    assert new.node.tables.to_json()["policy"] == policy
    assert len(new.node.tables.table("services")) == 12


@settings(max_examples=25, deadline=None)
@given(
    roles=st.lists(st.sampled_from(["active", "standby"]), min_size=2, max_size=6),
    priorities=st.lists(st.integers(0, 3), min_size=6, max_size=6),
    seed=st.integers(0, 1000),
)
def test_the_successor_is_the_best_live_host(roles, priorities, seed):
    sim = Simulation(["master"] + roles, seed=seed)
    for host, priority in zip(sim.hosts.values(), priorities, strict=False):
        host.node.identity = attrs.evolve(host.node.identity, priority=priority)
    sim.run_until(sim.converged, 30)
    sim.run(2)
    old = master_of(sim)
    sim.kill(old.id)
    # The master may die between a commit and its sync: the newest replica comes first.
    versions = {h.id: h.node.tables.version for h in sim.alive()}
    newest = max(versions.values())
    sim.run_until(lambda: sim.converged() and master_of(sim).id != old.id, 30)
    new = master_of(sim).node
    live = [h.node for h in sim.alive() if versions[h.id] == newest]
    standbys = [n for n in live if n.identity.configured in ("standby", "master")]
    pool = standbys or live
    best = min(pool, key=lambda n: (-n.identity.priority, n.id))
    assert new.id == best.id


class ClusterUnderFaults(RuleBasedStateMachine):
    """Random kills, restarts, freezes, partitions and loss; then the network heals."""

    quorum = False

    def __init__(self):
        super().__init__()
        self.sim = Simulation(["master", "standby", "active", "active", "standby"], seed=7, services=2,
                              policies=POLICY, quorum=self.quorum)
        self.sim.run(5)

    @rule(n=st.integers(1, 5))
    def kill(self, n):
        if sum(h.alive for h in self.sim.hosts.values()) > 2:
            self.sim.kill(hid(n))

    @rule(n=st.integers(1, 5))
    def restart(self, n):
        self.sim.restart(hid(n))

    @rule(n=st.integers(1, 5), frozen=st.booleans())
    def freeze(self, n, frozen):
        self.sim.freeze(hid(n), frozen)

    @rule(split=st.sets(st.integers(1, 5), min_size=1, max_size=4))
    def partition(self, split):
        side = {hid(n) for n in split}
        self.sim.faults.groups = [side, {hid(n) for n in range(1, 6)} - side]

    @rule()
    def heal(self):
        self.sim.faults.groups = None

    @rule(loss=st.sampled_from([0.0, 0.1, 0.4]), dup=st.sampled_from([0.0, 0.2]))
    def lossy(self, loss, dup):
        self.sim.faults.loss, self.sim.faults.duplicate = loss, dup

    @rule(seconds=st.floats(0.5, 8))
    def wait(self, seconds):
        self.sim.run(seconds)

    @invariant()
    def one_master_per_term(self):
        terms = {}
        for became in self.sim.became:
            assert term_owner(became.term) == became.host.host
            assert terms.setdefault(became.term, became.host) == became.host
        live_terms = [h.node.term for h in self.sim.alive() if h.node.role == "master"]
        assert len(live_terms) == len(set(live_terms))

    @invariant()
    def roles_match_what_hosts_serve(self):
        for host in self.sim.hosts.values():
            roles_match_what_hosts_serve(host.node.tables)

    def teardown(self):
        sim = self.sim
        sim.faults.groups = None
        sim.faults.loss = sim.faults.duplicate = 0.0
        for host in list(sim.hosts.values()):
            host.frozen = False
            if not host.alive:  # in quorum mode a dead majority rightly means no master
                sim.restart(host.id)
        sim.run_until(sim.converged, 40)
        for host in sim.alive():
            roles_match_what_hosts_serve(host.node.tables)


def roles_match_what_hosts_serve(tables):
    """In every generation of the tables, on every host: the master that wrote them is master,
    a host serving something active, a host serving nothing a standby (rais.pool)."""
    if tables.term == 0:
        return  # no master wrote these
    writer = term_owner(tables.term)
    serving = {r.host for r in tables.table("services") if r.assigned}
    for row in tables.table("servers"):
        if row.host.host == writer:
            assert row.role == "master", row
        elif row.catalogue == bytes(8):
            assert row.role == base_role(row.configured), row
        else:
            assert row.role == ("active" if row.host in serving else "standby"), (row, serving)


class QuorumClusterUnderFaults(ClusterUnderFaults):
    quorum = True


FAULT_SETTINGS = settings(
    max_examples=20, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestClusterUnderFaults = ClusterUnderFaults.TestCase
TestClusterUnderFaults.settings = FAULT_SETTINGS
TestQuorumClusterUnderFaults = QuorumClusterUnderFaults.TestCase
TestQuorumClusterUnderFaults.settings = FAULT_SETTINGS


@pytest.mark.parametrize("quorum", [False, True])
def test_quorum_and_plain_modes_both_recover_after_random_faults(quorum):
    sim = started(["master", "standby", "active", "active", "standby"], quorum=quorum, seed=11)
    sim.faults.loss = 0.2
    for step in range(6):
        sim.faults.groups = [{hid(1), hid(step % 5 + 1)}, set(map(hid, range(1, 6))) - {hid(1), hid(step % 5 + 1)}]
        sim.run(4)
    sim.faults.groups, sim.faults.loss = None, 0.0
    sim.run_until(sim.converged, 40)


@pytest.mark.parametrize("split", [[{1, 2}, {3, 4}], [{1}, {2, 3, 4}]])
def test_a_quorum_partition_does_not_push_the_term_up(split):
    from rais.election import term_counter

    sim = Simulation(["master", "active", "active", "standby"], seed=1, interval=0.2, dead_after=3, quorum=True)
    sim.run_until(sim.converged, 30)
    before = max(term_counter(h.node.election.seen) for h in sim.alive())
    sim.faults.groups = [{hid(n) for n in side} for side in split]
    sim.run(10)
    # A side that cannot hear a majority does not stand (pre-vote); at most one new term.
    assert max(term_counter(h.node.election.seen) for h in sim.alive()) - before <= 1
    sim.faults.groups = None
    sim.run_until(sim.converged, 30)


@pytest.mark.parametrize("late", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("seed", range(4))
def test_on_a_fresh_cluster_a_configured_master_starting_a_moment_late_still_leads(late, seed):
    sim = Simulation(["standby", "active"], seed=seed, interval=0.2, dead_after=3)
    sim.run(late)  # up to dead_after intervals and a half after the others
    sim.add(hid(3), "master")
    sim.run_until(sim.converged, 20)
    assert master_of(sim).id == hid(3)
