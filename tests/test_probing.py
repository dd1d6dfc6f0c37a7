"""The master's probe schedule, the rise/fall rule, and probing in a simulated cluster."""

from collections import Counter

import pytest

from rais.ids import ClusterId, HostClusterId
from rais.probing.schedule import Health, ProbeSchedule, phase
from rais.sim import Simulation

CLUSTER = ClusterId.parse("1.2")


def key(host, name="web"):
    return (HostClusterId.of(CLUSTER, host), name)


def test_phases_spread_a_thousand_services_evenly_over_the_interval():
    interval = 5.0
    buckets = Counter(int(phase(key(h, f"s{s}"), interval) / 0.5) for h in range(1, 201) for s in range(5))
    assert set(buckets) == set(range(10))
    assert max(buckets.values()) < 2 * 100  # 100 per half second on average


def test_each_service_is_due_once_per_interval_at_its_own_phase():
    schedule = ProbeSchedule(concurrency=1000)
    services = [(key(h), 2.0) for h in range(1, 51)]
    started = Counter()
    now = 100.0
    while now < 110.0:
        for k in schedule.take(now, services):
            started[k] += 1
            schedule.done(k)
        now += 0.05
    assert set(started.values()) <= {4, 5, 6}  # 10 s at one every 2 s, give or take the edges
    assert sum(started.values()) in range(240, 261)


def test_concurrency_is_bounded_and_missed_rounds_are_skipped_not_burst():
    schedule = ProbeSchedule(concurrency=3)
    services = [(key(h), 1.0) for h in range(1, 11)]
    first = []
    now = 0.0
    while len(first) < 3:
        first += schedule.take(now, services)
        now += 0.01
    assert schedule.running == 3
    assert schedule.take(now + 5, services) == []  # full: nothing more starts
    for k in first:
        schedule.done(k)
    again = schedule.take(now + 5, services)
    assert len(again) == 3  # not one per missed round
    assert len(set(again)) == 3


def test_a_service_no_longer_declared_is_forgotten():
    schedule = ProbeSchedule(concurrency=10)
    schedule.take(0.0, [(key(1), 1.0), (key(2), 1.0)])
    schedule.take(0.0, [(key(1), 1.0)])
    assert schedule.tracked == {key(1)}


@pytest.mark.parametrize("results,rise,fall,states", [
    (["ok", "ok"], 2, 3, [None, True]),
    (["critical"] * 3, 2, 3, [None, None, False]),
    (["ok", "ok", "critical", "ok", "critical", "critical", "critical"], 2, 3,
     [None, True, None, None, None, None, False]),
    (["ok", "unknown", "ok"], 2, 3, [None, None, True]),  # a broken check moves nothing
    (["warning"], 1, 1, [True]),  # a warning still answers
])
def test_rise_and_fall(results, rise, fall, states):
    health = Health()
    assert [health.record(r, rise, fall) for r in results] == states


def test_the_master_probes_and_every_host_sees_the_result():
    sim = Simulation(["master", "active", "standby"], services=2)
    sim.run_until(sim.converged, 30)
    sim.run(3)
    master = sim.masters()[0].node
    target = key(2, "svc0")

    def answer(verdict):
        def check(order):
            assert order.address == sim.hosts[order.key[0]].node.identity.address
            return verdict if order.key == target else "ok"

        sim.probe_answer = check
        sim.run(20)

    answer("ok")
    sim.run_until(sim.converged, 10)
    row = {(r.host, r.name): r for r in master.tables.table("services")}[target]
    assert (row.state, row.result, row.latency_us) == ("running", "ok", 2000)  # the simulated check's time
    answer("critical")
    sim.run_until(sim.converged, 10)
    for host in sim.alive():
        row = {(r.host, r.name): r for r in host.node.tables.table("services")}[target]
        assert (row.state, row.result, row.detail) == ("failed", "critical", "critical detail")
    svc1 = {(r.host, r.name): r for r in master.tables.table("services")}[key(2, "svc1")]
    assert svc1.state == "stopped" and svc1.result == "ok"  # declared, not running: probed, not failed
