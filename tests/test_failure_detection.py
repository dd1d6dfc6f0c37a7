"""Failure detection under packet loss, in the simulator: never fooled, still fast.

The targets of the failure-detection issue, at heartbeat 0.2 s and dead_after 3: over 120 s at 30%
loss on every link, no host is called down, no new term starts and no order is given; a real master
death is agreed by every survivor within dead_after heartbeats plus one.
"""

import pytest

from rais.effects import RunAction
from rais.membership import Transition
from rais.probing.schedule import ProbeDefaults
from rais.sim import Simulation
from rais.states import HostStatus
from rais.wire import Order, ServiceDecl

INTERVAL, DEAD_AFTER = 0.2, 3
WEB = ServiceDecl("web", "tcp", 80, True, True, True, "{}")


def cluster(seed):
    sim = Simulation(["master", "active", "active", "standby"], seed=seed, interval=INTERVAL,
                     dead_after=DEAD_AFTER, services={2: (WEB,), 3: (WEB,)},
                     probing=ProbeDefaults(interval=1.0, timeout=0.5))
    sim.probe_answer = lambda order: "ok"
    sim.run_until(sim.converged, 30)
    sim.run(3)
    return sim


def watch(sim):
    """Every down, every order given and every action run, from now on."""
    seen = {"down": [], "orders": [], "actions": []}
    for host in sim.hosts.values():
        log, send = host.log, host.send

        def logged(event, log=log):
            if isinstance(event, Transition) and event.new == HostStatus.DOWN:
                seen["down"].append(event)
            if isinstance(event, RunAction):
                seen["actions"].append(event)
            log(event)

        def sent(message, term, send=send):
            if isinstance(message, Order):
                seen["orders"].append(message)
            send(message, term)

        host.log, host.send = logged, sent
    return seen


@pytest.mark.parametrize("seed", [1, 2])
def test_thirty_percent_loss_on_every_link_fools_nobody_for_two_minutes(seed):
    sim = cluster(seed)
    terms = len(sim.became)
    seen = watch(sim)
    sim.faults.loss = 0.3
    sim.run(120)
    assert seen == {"down": [], "orders": [], "actions": []}
    assert len(sim.became) == terms  # no new term
    sim.faults.loss = 0.0
    sim.run_until(sim.converged, 10)


@pytest.mark.parametrize("seed", range(8))
def test_a_master_death_is_agreed_within_dead_after_heartbeats_plus_one(seed):
    sim = cluster(seed)
    old = sim.masters()[0]
    sim.kill(old.id)

    def agreed():
        masters = [h for h in sim.alive() if h.node.role == "master"]
        return len(masters) == 1 and all(h.node.master_id == masters[0].id for h in sim.alive())

    took = sim.run_until(agreed, 10, step=0.005)
    assert took <= (DEAD_AFTER + 1) * INTERVAL
