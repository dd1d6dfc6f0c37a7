"""`rais plan` over a master's status document decides exactly what the master decides.

Random clusters in the simulator (real Node objects) live through random
events: hosts killed and restarted, services that stop answering and come
back, starts that fail, hosts getting busy. Every time any master
reconciles, its status document, taken at that instant and saved as JSON,
is given to the dry run; the dry run must make the same decisions (action,
service, host, explanation, every host's score, the order), write the same
rows into the tables, and number its orders the same.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rais import status
from rais.effects import Decided
from rais.ids import HostClusterId
from rais.node import Node
from rais.probing.schedule import ProbeDefaults
from rais.reconcile import reconcile
from rais.sim import CLUSTER, Simulation
from rais.wire import Load, ServiceDecl
from rais.wire.rows import PolicyRow

NAMES = ("web", "db", "mail")
ANSWERS = ("started", "released", "start-failed")


def hid(n):
    return HostClusterId.of(CLUSTER, n)


@st.composite
def clusters(draw):
    size = draw(st.integers(3, 5))
    roles = ["master"] + [draw(st.sampled_from(["active", "standby"])) for _ in range(size - 1)]
    services = {}
    for n in range(1, size + 1):
        names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
        services[n] = tuple(
            ServiceDecl(name, "tcp", 80, draw(st.booleans()), draw(st.booleans()) or n > 1, True, "{}")
            for name in sorted(names))
    policies = tuple(
        PolicyRow(name, draw(st.integers(1, 2)), draw(st.none() | st.integers(300, 900)), None)
        for name in NAMES if draw(st.booleans()))
    cpu = {n: draw(st.integers(0, 1000)) for n in range(1, size + 1)}
    return roles, services, policies, cpu


events = st.tuples(
    st.sampled_from(["kill", "restart", "break", "break", "break", "mend", "starts-fail", "busy", "wait"]),
    st.integers(1, 5),  # host
    st.sampled_from(NAMES),
    st.floats(0.3, 6.0),  # seconds to run after it
)


SERVICE_COST = 150  # permille


class World:
    """What is true on the simulated hosts: which services answer, and how actions go."""

    def __init__(self, sim, services, cpu):
        self.running = {(hid(n), d.name) for n, decls in services.items() for d in decls if d.running}
        self.broken = set()
        self.failing = set()
        self.cpu = cpu
        sim.action_result = self.act
        sim.probe_answer = self.probe
        # Each service running adds to its host's load, so the master learns costs (rais.costs)
        # and the dry run must count them as it does.
        sim.load_of = lambda host: Load(min(1000, self.cpu.get(host.host, 0) + SERVICE_COST * sum(
            h == host for h, _ in self.running)), 0, 0)

    def act(self, host, action, service):
        if action == "start" and host in self.failing:
            return False, "exit status 1"
        (self.running.add if action == "start" else self.running.discard)((host, service))
        return True, f"{action}ed"

    def probe(self, order):
        ok = order.key in self.running and order.key not in self.broken
        return "ok" if ok else "critical"


def run_events(sim, world, steps):
    for kind, n, name, seconds in steps:
        host = hid(n)
        if host in sim.hosts:
            if kind == "kill" and sum(h.alive for h in sim.hosts.values()) > 2:
                sim.kill(host)
            elif kind == "restart":
                sim.restart(host)
            elif kind == "break":
                world.broken.add((host, name))
            elif kind == "mend":
                world.broken.discard((host, name))
            elif kind == "starts-fail":
                world.failing ^= {host}
            elif kind == "busy":
                world.cpu[n] = 950 if world.cpu.get(n, 0) < 500 else 100
        sim.run(seconds)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=clusters(), steps=st.lists(events, min_size=2, max_size=10), seed=st.integers(0, 10_000))
def test_the_dry_run_decides_what_the_master_decides(cluster, steps, seed):
    roles, services, policies, cpu = cluster
    sim = Simulation(roles, seed=seed, services=services, policies=policies, interval=0.5,
                     probing=ProbeDefaults(interval=0.5, timeout=0.2, rise=1, fall=2),
                     balance_after=2.0, move_hold=5.0)
    world = World(sim, services, cpu)
    compared = []

    def check(node, now, decide):
        if node.mastership is None or now < node.acts_from():
            out = decide(now)
            assert not any(isinstance(o, Decided) for o in out)  # not master, or still settling: nothing
            return out
        # The document exactly as an operator would save it, at the instant the master decides.
        doc = json.loads(json.dumps(node.status(now)))
        assert doc["role"] == "master" and now >= doc["reconcile"]["acts_from"]
        out = decide(now)
        decided = [o.decision for o in out if isinstance(o, Decided)]
        planned = reconcile(status.situation(doc))  # what `rais plan` runs on the document
        mine = len(planned.decisions)
        assert decided[:mine] == list(planned.decisions)
        # After them, only the master's answers to orders it gave itself (run at once, no network).
        assert all(d.host == node.id and d.action in ANSWERS for d in decided[mine:])
        for row in planned.rows:
            assert node.tables.get(row.key) == row
        assert node.status(now)["reconcile"]["next_order"] == planned.books.next_order
        compared.append(len(decided))
        return out

    real = Node.reconcile
    Node.reconcile = lambda node, now: check(node, now, lambda at: real(node, at))
    try:
        sim.run_until(sim.converged, 30)
        run_events(sim, world, steps)
        sim.run(5)
    finally:
        Node.reconcile = real
    assert compared  # the master reconciled, and every time the dry run agreed
