"""The master moves services: orders, start and stop actions, verification by probes."""

from rais.ids import ClusterId, HostClusterId
from rais.probing.schedule import ProbeDefaults
from rais.sim import Simulation
from rais.wire import ServiceDecl
from rais.wire.rows import PolicyRow

CLUSTER = ClusterId.parse("1.2")


def hid(n):
    return HostClusterId.of(CLUSTER, n)


def web(running):
    return ServiceDecl("web", "http", 80, running, True, True, "{}")


def cluster(roles=("master", "active", "active", "standby"), serving=2, policies=(), **timing):
    services = {n: (web(n == serving),) for n in range(1, len(roles) + 1)}
    sim = Simulation(list(roles), services=services, policies=policies,
                     probing=ProbeDefaults(interval=0.3, timeout=0.2, rise=1, fall=2), **timing)
    sim.run_until(sim.converged, 30)
    sim.run(3)
    sim.run_until(sim.converged, 10)
    return sim


def rows(sim, name="web"):
    master = sim.masters()[0].node
    return {r.host.host: r for r in master.tables.table("services") if r.name == name}


def probe_round(sim, answer, seconds=3.0):
    """Run the master's probes for a while, answering each with answer(host number)."""
    sim.probe_answer = lambda order: answer(order.key[0].host)
    sim.run(seconds)


def master_status(sim):
    return sim.masters()[0].node.status(sim.clock.seconds())


def test_a_failed_service_is_started_on_the_best_host_and_confirmed_by_its_probe():
    sim = cluster()
    actions = []
    sim.action_result = lambda host, action, service: (actions.append((host.host, action)) or (True, "done"))
    probe_round(sim, lambda h: "ok" if h == 2 else "critical")
    assert rows(sim)[2].state == "running" and rows(sim)[2].assigned
    probe_round(sim, lambda h: "ok" if h == 4 else "critical", seconds=2.0)  # web dies on host 2
    assert sorted(actions) == [(2, "stop"), (4, "start")]  # released there, started on the standby
    assert not rows(sim)[2].assigned
    assert rows(sim)[4].assigned and rows(sim)[4].state in ("unknown", "running")
    probe_round(sim, lambda h: "ok" if h == 4 else "critical")  # the new copy answers
    sim.run_until(sim.converged, 10)
    for host in sim.alive():
        row = {r.host.host: r for r in host.node.tables.table("services")}[4]
        assert (row.state, row.assigned) == ("running", True)
    said = [d["text"] for d in master_status(sim)["decisions"]["web"]]
    assert any(text.startswith("web -> 1.2.0.4 (score") for text in said), said
    assert any("started on 1.2.0.4" in text for text in said), said


def test_a_start_that_fails_moves_on_to_the_next_candidate():
    sim = cluster()
    sim.action_result = lambda host, action, service: (
        (False, "exit status 1: port in use") if (host.host, action) == (4, "start") else (True, "done"))
    probe_round(sim, lambda h: "ok" if h == 2 else "critical")
    # Web dies on host 2; a copy answers wherever it was started.
    probe_round(sim, lambda h: "ok" if h != 2 and rows(sim)[h].assigned else "critical", seconds=3.0)
    assert not rows(sim)[4].assigned
    assert rows(sim)[3].assigned  # the next best: an active (host 3 before host 1, the master)
    (aside,) = [e for e in master_status(sim)["reconcile"]["excluded"] if e["host"] == str(hid(4))]
    assert (aside["service"], aside["why"]) == ("web", "start failed: exit status 1: port in use")


def test_a_dead_host_s_service_moves_and_is_not_served_twice_when_it_returns():
    sim = cluster()
    probe_round(sim, lambda h: "ok" if h == 2 else "critical")
    sim.kill(hid(2))
    probe_round(sim, lambda h: "ok" if rows(sim)[h].assigned else "critical", seconds=5)  # dead_after, the move
    assert rows(sim)[4].assigned and not rows(sim)[2].assigned
    sent = []
    sim.action_result = lambda host, action, service: (sent.append((host.host, action)) or (True, "done"))
    sim.restart(hid(2))  # it comes back declaring web running, as it did before
    sim.run(8)
    assert (2, "stop") in sent  # released: an exclusive service runs once
    assert not rows(sim)[2].assigned and rows(sim)[4].assigned


def test_replicas_are_kept_at_the_policy_count():
    sim = cluster(roles=("master", "active", "active", "standby", "active"),
                  policies=(PolicyRow("web", 2, None, None),))
    probe_round(sim, lambda h: "ok")
    assert sum(r.assigned for r in rows(sim).values()) == 2


def test_a_service_on_a_host_over_max_cpu_for_long_enough_moves_once():
    from rais.wire import Load

    sim = cluster(policies=(PolicyRow("web", 1, 500, None),), balance_after=3.0, move_hold=60.0)
    busy = {2: 100}
    sim.load_of = lambda host: Load(busy.get(host.host, 100), 0, 0)
    probe_round(sim, lambda h: "ok" if rows(sim)[h].assigned else "critical")
    assert [h for h, r in rows(sim).items() if r.assigned] == [2]
    busy[2] = 600  # over max_cpu 0.5, but not for long: nothing moves
    probe_round(sim, lambda h: "ok" if rows(sim)[h].assigned else "critical", seconds=2.0)
    assert [h for h, r in rows(sim).items() if r.assigned] == [2]
    busy[2] = 900
    probe_round(sim, lambda h: "ok" if rows(sim)[h].assigned else "critical", seconds=8.0)
    assert [h for h, r in rows(sim).items() if r.assigned] == [4]  # moved to the idle standby
    # Host 4 gets busy too, at once: within move_hold, web does not move again.
    busy[4] = 900
    probe_round(sim, lambda h: "ok" if rows(sim)[h].assigned else "critical", seconds=8.0)
    assert [h for h, r in rows(sim).items() if r.assigned] == [4]


def record(sim):
    """Every action run, as (time, host number, action, service)."""
    ran = []
    sim.action_result = lambda host, action, service: (
        ran.append((sim.clock.seconds(), host.host, action, service)) or (True, "done"))
    return ran


def test_a_holder_that_restarts_runs_the_start_again_once_for_it_has_kept_nothing():
    sim = cluster()
    ran = record(sim)
    probe_round(sim, lambda h: "ok" if h == 2 else "critical")
    sim.restart(hid(2))
    probe_round(sim, lambda h: "ok" if h == 2 else "critical", seconds=6.0)
    assert [(h, a) for _, h, a, _ in ran] == [(2, "start")]
    assert rows(sim)[2].assigned and rows(sim)[2].epoch == sim.hosts[hid(2)].node.boot_epoch


def test_when_a_partition_heals_the_side_with_more_hosts_keeps_the_service_and_a_newer_term():
    sim = cluster()
    ran = record(sim)
    probe_round(sim, lambda h: "ok" if h == 2 else "critical")
    sim.faults.groups = [{hid(2)}, {hid(1), hid(3), hid(4)}]  # the holder alone elects itself
    probe_round(sim, lambda h: "ok" if h in (2, 4) else "critical", seconds=8.0)
    assert {h.id.host for h in sim.masters()} == {1, 2}
    lone = sim.hosts[hid(2)].node.term
    assert lone > sim.hosts[hid(1)].node.term  # the smaller side's term is the newer
    assert [(h, a) for _, h, a, _ in ran] == [(4, "start")]  # the majority moved web to the standby
    sim.faults.groups = None
    probe_round(sim, lambda h: "ok" if h in (2, 4) else "critical", seconds=8.0)
    sim.run_until(sim.converged, 10)
    (master,) = sim.masters()
    assert master.id == hid(1) and master.node.term > lone
    assert rows(sim)[4].assigned and not rows(sim)[2].assigned
    assert [(h, a) for _, h, a, _ in ran] == [(4, "start"), (2, "stop")]  # the lone copy went


def test_with_quorum_a_cut_off_holder_stops_its_exclusive_service_before_it_starts_elsewhere():
    services = {n: (ServiceDecl("vip", "tcp", 80, n == 2, True, True, "{}", exclusive=True),) for n in range(1, 5)}
    sim = Simulation(["master", "active", "active", "standby"], services=services, quorum=True,
                     probing=ProbeDefaults(interval=0.3, timeout=0.2, rise=1, fall=2))
    sim.run_until(sim.converged, 30)
    ran = record(sim)
    sim.probe_answer = lambda order: "ok" if order.key[0].host in (2, 4) else "critical"
    sim.run(3)
    sim.faults.groups = [{hid(2)}, {hid(1), hid(3), hid(4)}]
    sim.run(8)
    assert [(h, a) for _, h, a, _ in ran] == [(2, "stop"), (4, "start")]
    (fenced, _), (started, _) = [(t, a) for t, _, a, _ in ran]
    assert started - fenced > 0.2  # a margin: the master waited for the fence
    assert ("fence", "vip", "ok", "done") in sim.hosts[hid(2)].notified
    assert not sim.hosts[hid(2)].node.host.runs_exclusive()
