"""The standbys as a pool of hot spares (rais.pool): roles, spares, the cluster's state, and how
the planner and the master use them."""

import attrs

from rais.planner import Spares, View, place
from rais.pool import NO_CATALOGUE, REST, held_role, news, pool_of
from rais.sim import Simulation
from rais.tables import Tables
from rais.wire import ServiceDecl
from rais.wire.rows import PolicyRow
from tests.test_planner import COLD, RUNNING, hid, host

NOW = 1_000.0
FAILED_JUST_NOW = (False, "failed", "critical", True)


def server(rows):
    return rows[0]


def tables(*hosts, policies=()):
    return View(Tables.of(65537, 1, [r for h in hosts for r in h] + list(policies)))


def known(rows, role=None):
    """A host whose catalogue the master has, playing ``role`` (as configured if None)."""
    first = attrs.evolve(rows[0], catalogue=b"\x01" * 8, role=role or rows[0].role)
    return [first, *rows[1:]]


def test_a_host_is_active_while_it_serves_and_a_standby_while_it_does_not_whatever_its_config():
    serving = {hid(2)}
    assert held_role(server(host(1)), serving, hid(1)) == "master"
    assert held_role(server(known(host(2, role="standby"))), serving, hid(1)) == "active"
    assert held_role(server(known(host(3, role="active"))), serving, hid(1)) == "standby"
    # Until its catalogue is in, as configured (else a starting cluster's actives would flap).
    assert held_role(server(host(4, role="active")), serving, hid(1)) == "active"
    assert server(host(4)).catalogue == NO_CATALOGUE


def test_the_pool_counts_free_standbys_and_the_state_is_optimal_degraded_or_no_spare_left():
    web = PolicyRow("web", 1, None, None)
    base = [known(host(1, role="master")), known(host(2, web=RUNNING)),
            known(host(3, role="standby", web=COLD)), known(host(4, role="standby", web=COLD))]
    pool = pool_of(tables(*base, policies=[web]), NOW, 1)
    assert (pool.state, pool.free, pool.in_use, pool.missing) == ("optimal", (hid(3), hid(4)), (), False)

    # A standby took web over: in use, one spare left; the host web failed on rests a while.
    took = [base[0], known(host(2, role="standby", web=FAILED_JUST_NOW)),
            known(host(3, role="standby", web=RUNNING), role="active"), base[3]]
    took[1][-1] = attrs.evolve(took[1][-1], changed_ms=int(NOW * 1000))
    pool = pool_of(tables(*took, policies=[web]), NOW + 1, 1)
    assert (pool.state, pool.free, pool.in_use, pool.resting) == ("optimal", (hid(4),), (hid(3),), (hid(2),))
    assert pool.until == NOW + REST
    assert pool_of(tables(*took, policies=[web]), NOW + REST, 1).free == (hid(2), hid(4))  # rested

    # Nobody took it yet: degraded; and with the last spare gone, no spare left (when any are asked for).
    lost = [base[0], known(host(2, role="active", web=(True, "failed", "critical", True))), base[2],
            known(host(4, role="active"))]
    pool = pool_of(tables(*lost, policies=[web]), NOW, 1)
    assert (pool.state, pool.short) == ("degraded", ("web: 0 of 1 copies",))
    gone = [base[0], known(host(2, status="down", web=(True, "running", "ok", True))), base[2]]
    assert pool_of(tables(*gone, policies=[web]), NOW, 0).short == ("web: 0 of 1 copies",)
    none_left = [base[0], base[1], known(host(3, role="active")), known(host(4, role="active"))]
    assert pool_of(tables(*none_left, policies=[web]), NOW, 1).state == "no spare left"
    assert pool_of(tables(*none_left, policies=[web]), NOW, 0).state == "optimal"  # none asked for

    # A standby a policy prefers, waiting for its service to fail back, is kept for it.
    prefers = attrs.evolve(web, prefer=hid(4))
    assert pool_of(tables(*base, policies=[prefers]), NOW, 1).free == (hid(3),)


def test_what_the_operators_alerting_hears_when_the_pool_changes():
    web = PolicyRow("web", 1, None, None)
    optimal = pool_of(tables(known(host(1, role="master")), known(host(2, web=RUNNING)),
                             known(host(3, role="standby")), policies=[web]), NOW, 1)
    used_up = pool_of(tables(known(host(1, role="master")), known(host(2, web=RUNNING)),
                             known(host(3, role="active")), policies=[web]), NOW, 1)
    degraded = pool_of(tables(known(host(1, role="master")), known(host(2, web=COLD)),
                              known(host(3, role="active")), policies=[web]), NOW, 1)
    assert news(optimal, optimal) == []
    assert news(optimal, used_up) == [("no-spare-left", "0"), ("spares-missing", "0", "1")]
    assert news(used_up, degraded) == [("degraded", "web: 0 of 1 copies")]
    assert news(degraded, optimal) == [("optimal", "1")]


def test_spare_policies_and_min_spares_decide_between_a_free_standby_and_an_active_with_room():
    v = tables(known(host(1, role="master")), known(host(2, web=RUNNING, db=COLD)),
               known(host(3, role="standby", db=COLD)), known(host(4, role="standby", db=COLD)))
    both = Spares({hid(3), hid(4)}, keep=1)
    assert place(v, "db", spares=both).host == hid(3)  # spare=prefer, and spares to spare
    one = tables(known(host(1, role="master")), known(host(2, web=RUNNING, db=COLD)),
                 known(host(3, role="standby", db=COLD)))
    assert place(one, "db", spares=Spares({hid(3)}, keep=0)).host == hid(3)
    chosen = place(one, "db", spares=Spares({hid(3)}, keep=1))  # down to min_spares: the active with room
    assert chosen.host == hid(2)
    first_line = chosen.explanation.split("\n")[0]
    assert first_line.endswith("; an active with room, keeping the spares (1 free, min_spares 1)")
    last = tables(known(host(1, role="master")), known(host(2, web=RUNNING, db=COLD)),
                  known(host(3, role="standby", db=COLD)), policies=[PolicyRow("db", 1, None, None, spare="last")])
    assert place(last, "db", spares=Spares({hid(3)}, keep=0)).host == hid(2)
    busy = tables(known(host(1, role="master")), known(host(2, cpu=0.95, web=RUNNING, db=COLD)),
                  known(host(3, role="standby", db=COLD)),
                  policies=[PolicyRow("db", 1, 900, None, spare="last")])
    chosen = place(busy, "db", spares=Spares({hid(3)}, keep=0))
    assert chosen.host == hid(3) and "; no active qualifies: takes spare 1.2.0.3 (0 left, min_spares 0)" in (
        chosen.explanation)
    avoid = tables(known(host(1, role="master")), known(host(2, web=RUNNING, db=COLD)),
                   known(host(3, role="standby", db=COLD)), policies=[PolicyRow("db", 1, None, None, spare="avoid")])
    assert place(avoid, "db", spares=Spares({hid(3)}, keep=0)).host == hid(2)  # by score: the role part


def pool_cluster():
    """Two actives serving a and b; two standbys, 4 able to take a, 5 either; min_spares 1."""
    a, b = ServiceDecl("a", "tcp", 80, True, True, True, "{}"), ServiceDecl("b", "tcp", 81, True, True, True, "{}")
    cold_a, cold_b = attrs.evolve(a, running=False), attrs.evolve(b, running=False)
    sim = Simulation(["master", "active", "active", "standby", "standby"], min_spares=1,
                     services={2: (a,), 3: (b,), 4: (cold_a,), 5: (cold_a, cold_b)},
                     policies=(PolicyRow("a", 1, None, None), PolicyRow("b", 1, None, None)))
    sim.probe_answer = lambda order: "ok" if order.key in sim.running else "critical"
    sim.running = {(hid(2), "a"), (hid(3), "b")}
    result = sim.action_result

    def act(host, action, service):
        (sim.running.add if action == "start" else sim.running.discard)((host, service))
        return result(host, action, service)
    sim.action_result = act
    sim.run_until(sim.converged, 30)
    sim.run(5)
    return sim


def roles(sim):
    return {r.host.host: r.role for r in sim.masters()[0].node.tables.table("servers")}


def test_a_standby_that_takes_a_service_becomes_active_the_pool_empties_and_the_alerts_fire():
    sim = pool_cluster()
    master = sim.masters()[0]
    assert roles(sim) == {1: "master", 2: "active", 3: "active", 4: "standby", 5: "standby"}
    assert master.node.status(sim.clock.seconds())["pool"]["state"] == "optimal"
    sim.kill(hid(2))
    sim.run_until(lambda: roles(sim)[4] == "active", 20)
    sim.run(3)
    assert roles(sim) == {1: "master", 2: "standby", 3: "active", 4: "active", 5: "standby"}
    assert ("spare-active", "1.2.0.4", "a") in master.notified
    assert sim.hosts[hid(4)].node.role == "active"  # as its own node says it, in its heartbeats too
    assert ("role", "standby", "active") == sim.hosts[hid(4)].notified[-1][:3]

    sim.kill(hid(3))  # b can go nowhere but the last spare (an active with room would go first)
    sim.run_until(lambda: roles(sim)[5] == "active", 20)
    sim.run(3)
    pool = master.node.status(sim.clock.seconds())["pool"]
    assert (pool["state"], pool["free"], pool["missing"]) == ("no spare left", [], True)
    (took_b,) = [text for at, text in master.node.mastership.decisions["b"] if "-> 1.2.0.5" in text]
    assert "; no active qualifies: takes spare 1.2.0.5 (0 left, min_spares 1)" in took_b.split("\n")[0]
    told = [w for w in master.notified if w[0] in ("spare-active", "spares-missing", "no-spare-left", "optimal",
                                                   "degraded")]
    assert told[-3:] == [("spare-active", "1.2.0.5", "b"), ("no-spare-left", "0"), ("spares-missing", "0", "1")]

    sim.restart(hid(2))  # back: a standby again, and the pool is whole
    sim.run_until(lambda: master.node.status(sim.clock.seconds())["pool"]["state"] == "optimal", 20)
    assert roles(sim)[2] == "standby" and master.notified[-1] == ("optimal", "1")


def test_a_free_standby_takes_over_as_master_before_a_serving_one():
    sim = pool_cluster()
    sim.kill(hid(2))
    sim.run_until(lambda: roles(sim)[4] == "active", 20)
    sim.run(3)
    sim.kill(hid(1))
    sim.run_until(lambda: sim.converged() and sim.masters()[0].id not in (hid(1),), 20)
    assert sim.masters()[0].id == hid(5)  # free, where 4 serves a
