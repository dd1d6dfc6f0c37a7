"""Learning what a service costs, from the steps its starts and stops make in its host's load."""

import json
import math

import attrs
import pytest

from rais.costs import REACHED, SETTLE, WINDOW, Cost, CostLearner, a_step, learn
from rais.ids import ClusterId, HostClusterId
from rais.load import SMOOTHING
from rais.states import OrderAction
from rais.wire import Load
from rais.wire.rows import CostRow, PolicyRow, ServiceRow

CLUSTER = ClusterId.parse("1.2")
A, B = HostClusterId.of(CLUSTER, 1), HostClusterId.of(CLUSTER, 2)


def smoothed(base, steps, t):
    """A host's heartbeat figure at ``t``: ``base`` permille, plus each (at, permille) step as a
    host's load sampler smooths it (rais.load)."""
    return round(base + sum(d * (1 - math.exp(-(t - at) / SMOOTHING)) for at, d in steps if t >= at))


class Host:
    """One host's figures, fed to a learner every second; costs kept as the tables would."""

    def __init__(self, learner, base=200):
        self.learner, self.base, self.steps, self.costs, self.t = learner, base, [], {}, 0.0

    def run(self, until, others=None):
        while self.t < until:
            self.t += 1.0
            figures = {A: Load(smoothed(self.base, self.steps, self.t), 1000, 1000), **(others or {})}
            for row in self.learner.heard(self.t, figures, self.costs.get):
                self.costs[row.name] = row

    def change(self, service, permille, started=True):
        self.steps.append((self.t, permille))
        self.learner.step(self.t, A, service, started)


def test_a_start_teaches_its_step_in_the_smoothed_figure():
    host = Host(CostLearner())
    host.run(30)
    host.change("web", 100)
    host.run(30 + SETTLE - 1)
    assert host.costs == {}  # not settled yet
    host.run(30 + SETTLE)
    assert host.costs == {"web": CostRow("web", 100, 0, 1)}  # the step, not the REACHED share of it


def test_a_stop_teaches_it_too_and_costs_average_over_steps():
    host = Host(CostLearner(), base=500)
    host.run(30)
    host.change("web", -80, started=False)
    host.run(60)
    host.change("web", 120)
    host.run(90)
    assert host.costs["web"] == CostRow("web", 100, 0, 2)
    assert Cost.of(host.costs["web"]).text() == "cpu 0.10, 0.0 Mbit/s (2 steps)"


def test_two_changes_on_one_host_within_the_window_teach_nothing():
    host = Host(CostLearner())
    host.run(30)
    host.change("web", 100)
    host.run(35)
    host.change("db", 300)  # web's window sees both
    host.run(100)
    assert host.costs == {}  # nor db's: web's step was still settling when it came


def test_a_change_of_its_own_spoils_only_that_host():
    learner = CostLearner()
    host = Host(learner)
    host.run(30, {B: Load(100, 0, 0)})
    host.change("web", 100)
    learner.step(host.t, B, "db", started=True)
    learner.disturbed(host.t + 3, B)  # db failed there
    host.run(60, {B: Load(400, 0, 0)})
    assert set(host.costs) == {"web"}


def test_a_failure_or_a_host_out_of_view_closes_the_window():
    learner = CostLearner()
    host = Host(learner)
    host.run(30)
    host.change("web", 100)
    learner.disturbed(host.t + 2, A)
    host.run(60)
    host.change("web", 100)
    learner.heard(host.t + 1, {}, host.costs.get)  # A is down, or suspect
    host.run(100)
    assert host.costs == {}


def test_network_steps_are_learned_beside_cpu():
    learner = CostLearner()
    learner.heard(0.0, {A: Load(100, 1000, 1000)}, lambda name: None)
    learner.step(1.0, A, "web", started=True)
    rows = learner.heard(1.0 + SETTLE, {A: Load(100 + round(60 * REACHED), 1000 + round(250_000 * REACHED),
                                                  1000)}, lambda name: None)
    assert rows == [CostRow("web", 60, 250_000, 1)]
    assert Cost.of(rows[0]).text() == "cpu 0.06, 2.0 Mbit/s (1 step)"


def test_the_estimate_is_a_running_mean_then_an_exponential_average_never_negative():
    row = None
    for step in (100, 300):
        row = learn(row, "web", step, 0)
    assert row == CostRow("web", 200, 0, 2)
    for _ in range(WINDOW * 4):
        row = learn(row, "web", 40, 0)
    # Kept in whole permille, it comes within WINDOW / 2 of the steps, and stays there.
    assert row.cpu_permille == pytest.approx(40, abs=WINDOW / 2) and row.samples == 2 + WINDOW * 4
    assert learn(None, "web", -30, -5000) == CostRow("web", 0, 0, 1)  # noise, a load that fell meanwhile


@pytest.mark.parametrize("action,running,state,step", [
    (OrderAction.ASSIGN, False, "stopped", True),
    (OrderAction.ASSIGN, True, "running", False),  # it ran already: the start changed nothing
    (OrderAction.RELEASE, True, "running", True),
    (OrderAction.RELEASE, True, "failed", False),  # its probe had failed: little of it ran
    (OrderAction.REFRESH, True, "running", False),
])
def test_which_orders_make_a_step(action, running, state, step):
    row = ServiceRow(host=A, name="web", probe="tcp", port=80, running=running, assigned=True, can_start=True,
                     can_stop=True, state=state, result="ok", latency_us=None, detail="", options="{}", changed_ms=0)
    assert a_step(action, row) is step
    assert not a_step(action, None)
    assert Cost.of(None) == Cost() and attrs.evolve(Cost(0.25, 5), samples=3) + Cost(0.5, 5) == Cost(0.75, 10)


COSTS = {"a": 350, "b": 300, "c": 300}  # permille of a host, as the simulated hosts load


def busy_cluster():
    """A master, host 2 running a, b and c, and three idle actives that could run any of them, each
    host's load its own base plus what it runs, smoothed as rais.load smooths it."""
    from rais.commands import OperatorCommand
    from rais.probing.schedule import ProbeDefaults
    from rais.sim import Simulation
    from rais.wire import ServiceDecl

    def decls(running):
        return tuple(ServiceDecl(name, "tcp", 80, running, True, True, "{}") for name in COSTS)

    sim = Simulation(["master", "active", "active", "active", "active"],
                     services={2: decls(True), 3: decls(False), 4: decls(False), 5: decls(False)},
                     policies=[PolicyRow(name, 1, 800, None) for name in COSTS], balance_after=1e6,
                     probing=ProbeDefaults(interval=1.0, timeout=0.5, rise=1, fall=2))
    base = {1: 50, 2: 0, 3: 250, 4: 300, 5: 400}
    smooth = {}

    def runs(number):
        host = sim.hosts[HostClusterId.of(CLUSTER, number)]
        return {d.name for d in host.node.host.services if d.running} if host.alive else set()

    def load_of(hid):
        now, instant = sim.clock.seconds(), base[hid.host] + sum(COSTS[s] for s in runs(hid.host))
        at, value = smooth.get(hid.host, (now, instant))
        value += (1 - math.exp(-(now - at) / SMOOTHING)) * (instant - value)
        smooth[hid.host] = (now, value)
        return Load(round(value), 0, 0)

    sim.load_of = load_of
    sim.probe_answer = lambda order: "ok" if order.key[1] in runs(order.key[0].host) else "critical"

    def move(service, number):
        master = sim.masters()[0]
        master.driver.operate(1, OperatorCommand("move", service, HostClusterId.of(CLUSTER, number)))

    return sim, runs, move


def test_the_master_learns_costs_from_moves_and_a_host_death_then_overloads_no_host():
    sim, runs, move = busy_cluster()
    sim.run(40)
    assert runs(2) == set(COSTS)
    master = sim.masters()[0].node
    # Each service moved to host 3 and back, one at a time: a start and a stop each way.
    for service in COSTS:
        for there in (3, 2):
            move(service, there)
            sim.run(2 * SETTLE + 5)
            assert service in runs(there)
    learned = {r.name: r for r in master.tables.table("costs")}
    assert set(learned) == set(COSTS)
    for name, row in learned.items():
        assert row.samples == 4
        assert row.cpu_permille == pytest.approx(COSTS[name], abs=25)
    # Every node has them, and says so.
    from rais.statusview import render_status
    follower = sim.hosts[HostClusterId.of(CLUSTER, 5)].node
    assert "costs learned: a cpu 0." in render_status(follower.status(sim.clock.seconds()))

    # `rais plan --fail 1.2.0.2` on a saved document: each on a host of its own, costs told.
    from rais import dryrun, status
    doc = json.loads(json.dumps(master.status(sim.clock.seconds())))
    planned = dryrun.plan(status.situation(doc), dryrun.parse_failure("1.2.0.2"))
    assigns = [d for d in planned.decisions if d.action == "assign"]
    assert sorted(d.service for d in assigns) == sorted(COSTS) and len({d.host for d in assigns}) == 3
    assert all("learned cost cpu 0.3" in d.explanation for d in assigns)
    assert "just placed" in dryrun.changes_text(status.situation(doc), planned, dryrun.parse_failure("1.2.0.2"))

    sim.kill(HostClusterId.of(CLUSTER, 2))  # a, b and c (0.95 of a host) need a host each at once
    sim.run(30)
    placed = {number: runs(number) for number in (3, 4, 5)}
    assert set().union(*placed.values()) == set(COSTS)
    for number, services in placed.items():
        load = sim.load_of(HostClusterId.of(CLUSTER, number)).cpu_permille
        assert load <= 800 + 10, (number, services, load)  # within max_cpu (and its rounding)
    texts = [t for kept in sim.masters()[0].node.mastership.decisions.values() for _, t in kept]
    assert any("learned cost cpu" in t for t in texts)
