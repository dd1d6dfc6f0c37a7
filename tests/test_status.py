"""The status document: what it says, and that it reads back into the master's own situation."""

import json

from rais import status
from rais.commands import OperatorCommand
from rais.probing.schedule import ProbeDefaults
from rais.reconcile import Books
from rais.sim import Simulation
from rais.statusview import render_status
from rais.wire import ServiceDecl
from rais.wire.rows import PolicyRow


def settled():
    web = ServiceDecl("web", "tcp", 80, False, True, True, "{}")
    sim = Simulation(["master", "active", "standby"], services={1: (web,), 2: (web,), 3: (web,)},
                     policies=(PolicyRow("web", 1, None, None),),
                     probing=ProbeDefaults(interval=0.5, timeout=0.2, rise=1, fall=1))
    sim.probe_answer = lambda order: "critical"  # web answers nowhere: every start is tried in turn
    sim.action_result = lambda host, action, service: (False, "exit status 1")
    sim.run_until(sim.converged, 30)
    sim.run(4)
    return sim


def test_a_master_s_document_carries_its_memory_and_reads_back_into_its_situation():
    sim = settled()
    master = sim.masters()[0].node
    now = sim.clock.seconds()
    doc = json.loads(json.dumps(master.status(now)))
    assert doc["at"] == now and doc["timing"]["interval"] == 1.0
    assert doc["reconcile"]["acts_from"] <= now and doc["reconcile"]["excluded"]  # failed starts, put aside
    read = status.situation(doc)
    own = master.mastership.situation(now)
    assert read.books == own.books and read.master == own.master and read.timing == own.timing
    assert read.now == now and read.view.tables.digest == own.view.tables.digest
    assert read.view.tables.version == own.view.tables.version
    assert "decided about web" in render_status(doc)


def test_a_follower_s_document_has_no_master_memory():
    sim = settled()
    follower = next(h.node for h in sim.alive() if h.node.role != "master")
    doc = json.loads(json.dumps(follower.status(sim.clock.seconds())))
    assert "reconcile" not in doc and doc["decisions"] == {}
    read = status.situation(doc)
    assert read.books == Books() and str(read.master) == doc["master"]


def test_a_drained_host_shows_in_every_node_s_status():
    sim = settled()
    standby = next(h for h in sim.alive() if h.node.role == "standby")
    standby.driver.operate(1, OperatorCommand("drain", host=standby.id))  # asked of the master through it
    sim.run(3)  # committed at the next tick, and synced to every host
    assert [a.ok for a in standby.answers] == [True]
    standby = standby.id
    for host in sim.alive():
        doc = json.loads(json.dumps(host.node.status(sim.clock.seconds())))
        assert f"drained by the operator: {standby}\n" in render_status(doc)
