"""One node driven directly: inputs in (datagrams, ticks, results) at chosen times, outputs out."""

import itertools

import attrs

from rais.effects import (
    DuplicateId,
    Notify,
    Persist,
    RoleChanged,
    RunAction,
    RunProbe,
    Send,
    TablesChanged,
)
from rais.election import make_term
from rais.ids import HostClusterId
from rais.interfaces import ProbeResult, Status
from rais.membership import Transition
from rais.node import Node
from rais.probing.schedule import ProbeDefaults
from rais.settings import Identity, Timing
from rais.states import HostStatus, Role
from rais.wire import (
    Catalogue,
    CatalogueRequest,
    Datagram,
    Heartbeat,
    Load,
    Order,
    OrderDone,
    ServiceDecl,
    SyncNotice,
    Vote,
    VoteRequest,
)

TIMING = Timing(interval=1.0, dead_after=3)
WEB = ServiceDecl("web", "tcp", 80, False, True, True, "{}")
T0 = 1000.0
_sequence = itertools.count(1)


def hid(n):
    return HostClusterId.parse(f"1.2.0.{n}")


def node(n=2, role="active", timing=TIMING, services=(WEB,), **identity):
    me = Identity(id=hid(n), configured=role, address=f"10.0.0.{n}", **identity)
    return Node(me, boot_epoch=7, timing=timing, now=T0, services=services,
                probing=ProbeDefaults(interval=1.0, timeout=0.5))


def datagram(sender, message, term=0, epoch=1):
    return Datagram(1, hid(sender), epoch, next(_sequence), term, message)


def beat(role="active", generation=0, tables_term=0, configured=None):
    return Heartbeat(role=role, priority=100, generation=generation, address="10.0.0.9",
                     configured=configured or role, tables_term=tables_term)


def sent(outputs, kind=object):
    return [o.message for o in outputs if isinstance(o, Send) and isinstance(o.message, kind)]


def of(outputs, kind):
    return [o for o in outputs if isinstance(o, kind)]


def run(n, start, until, hear=()):
    """Tick ``n`` every quarter second from ``start`` to ``until``, first delivering ``hear``
    ((sender, message, term) each) every whole second; all the outputs."""
    out = []
    for step in range(round((until - start) * 4) + 1):
        now = start + step / 4
        if step % 4 == 0:
            for sender, message, term in hear:
                out += n.receive(now, datagram(sender, message, term), "test")
        out += n.tick(now) + n.reconcile(now)
    return out


# --- elections ---


def test_a_configured_master_listens_first_then_claims_and_announces_itself():
    n = node(1, "master")
    assert n.role == Role.STANDBY  # waits as a standby
    assert run(n, T0, T0 + 2.75) == []  # listening: dead_after intervals
    out = run(n, T0 + 3, T0 + 3.5)
    (change,) = of(out, RoleChanged)
    assert (change.old, change.new, change.reason) == ("standby", "master", "no master heard yet; new term 1/1")
    assert n.role == Role.MASTER and n.term == make_term(1, hid(1)) and n.master(T0 + 3.5) == hid(1)
    assert of(out, Notify)[0].words == ("role", "standby", "master", "1/1", change.reason)
    committed = of(out, TablesChanged)[0]
    assert (committed.how, committed.generation, committed.term) == ("committed", 1, n.term)
    assert sent(out, SyncNotice) and of(out, Persist)
    (hb,) = sent(out, Heartbeat)  # said at once, not at the next beat
    assert hb.role == Role.MASTER and hb.generation == 1


def test_a_follower_follows_the_newest_master_and_claims_when_it_falls_silent():
    n = node(2, "standby")
    term = make_term(4, hid(9))
    run(n, T0, T0 + 5, hear=[(9, beat("master"), term)])
    assert n.master(T0 + 5) == hid(9) and n.term == term and n.role == Role.STANDBY
    out = run(n, T0 + 5.25, T0 + 9)  # silent for dead_after intervals; we are the only candidate
    assert of(out, Transition)[-1].new == HostStatus.DOWN
    assert n.role == Role.MASTER and n.term == make_term(5, hid(2))  # newer than any term seen
    assert of(out, RoleChanged)[0].reason.startswith("the master is gone;")


def test_a_master_that_hears_a_newer_term_steps_down_and_forgets_its_mastership():
    n = node(1, "master")
    run(n, T0, T0 + 4)
    assert n.role == Role.MASTER and n.status(T0 + 4)["reconcile"]["next_order"] == 1
    out = n.receive(T0 + 4.1, datagram(3, beat("master"), make_term(7, hid(3))), "test")
    (change,) = of(out, RoleChanged)
    assert (change.old, change.new) == ("master", "standby") and "newer term 7/3" in change.reason
    doc = n.status(T0 + 4.1)
    assert n.mastership is None and doc["decisions"] == {} and "reconcile" not in doc
    assert doc["generation"] == 1  # the tables stay, as this node's replica


def test_a_frozen_node_listens_again_before_it_claims():
    n = node(1, "master")
    run(n, T0, T0 + 1)
    assert run(n, T0 + 11, T0 + 13.75) == []  # resumed after 10 s: it listens again, claims nothing yet
    assert n.role == Role.STANDBY
    run(n, T0 + 14, T0 + 15)
    assert n.role == Role.MASTER


def test_quorum_votes_one_candidate_per_term_and_none_while_a_master_lives():
    quorum = attrs.evolve(TIMING, quorum=True)
    n = node(2, "standby", timing=quorum)
    master = make_term(1, hid(1))
    run(n, T0, T0 + 2, hear=[(1, beat("master"), master)])
    ask = VoteRequest(make_term(2, hid(3)), 0, 0, False)
    (vote,) = sent(n.receive(T0 + 2.1, datagram(3, ask, master), "test"), Vote)
    assert not vote.granted  # the master is alive
    n2 = node(2, "standby", timing=quorum)
    (granted,) = sent(n2.receive(T0 + 0.1, datagram(3, ask), "test"), Vote)
    (other,) = sent(n2.receive(T0 + 0.2, datagram(4, VoteRequest(ask.term, 0, 0, False)), "test"), Vote)
    assert granted.granted and not other.granted  # one candidate per term


def test_a_quorum_master_that_hears_no_majority_steps_down():
    quorum = attrs.evolve(TIMING, quorum=True)
    n = node(1, "master", timing=quorum)
    out = run(n, T0, T0 + 3.5, hear=[(2, beat(), 0), (3, beat(), 0)])  # three known hosts: two make a majority
    (ask,) = sent(out, VoteRequest)
    assert n.role == Role.STANDBY  # a candidate, not yet master
    n.receive(T0 + 3.6, datagram(2, Vote(ask.term, hid(1), True), 0), "test")
    assert n.role == Role.MASTER and n.term == ask.term
    out = run(n, T0 + 4, T0 + 5, hear=[(2, beat(), ask.term)])
    assert n.role == Role.MASTER  # host 2 follows it: a majority with itself
    out = run(n, T0 + 5.25, T0 + 9)  # nobody heard since
    assert n.role == Role.STANDBY and "lost quorum: 1 of 2 needed" in of(out, RoleChanged)[-1].reason


# --- what a node accepts ---


def test_its_own_datagrams_are_ignored_and_another_process_with_its_id_is_reported():
    n = node(2)
    assert n.receive(T0, Datagram(1, hid(2), 7, 1, 0, beat()), "me") == []
    twin = attrs.evolve(beat(), stamp=int(T0 * 1e6))
    (loud,) = n.receive(T0, Datagram(1, hid(2), 8, 1, 0, twin), "10.0.0.99:5150")
    assert loud == DuplicateId(hid(2), "10.0.0.99:5150", 8)
    assert n.status(T0)["duplicate_id"] == {"source": "10.0.0.99:5150", "boot_epoch": 8}


def test_orders_are_taken_only_from_the_master_of_the_newest_term_and_run_once():
    n = node(2)
    term = make_term(3, hid(1))
    run(n, T0, T0 + 2, hear=[(1, beat("master"), term)])
    order = Order(5, "assign", hid(2), "web", 7)
    assert n.receive(T0 + 2.1, datagram(4, order, term), "test") == []  # not the master
    assert n.receive(T0 + 2.1, datagram(1, order, term - 1), "test") == []  # an older term
    (action,) = n.receive(T0 + 2.2, datagram(1, order, term), "test")
    assert action == RunAction("start", "web", term, 5)
    assert n.receive(T0 + 2.3, datagram(1, order, term), "test") == []  # running: not started again
    out = n.action_done(T0 + 2.4, action, True, "started web")
    assert of(out, Notify)[0].words == ("assign", "web", "ok", "started web")
    assert sent(out, OrderDone) == [OrderDone(5, "web", True, "started web")]
    assert n.host.services[0].running  # it declares web running now, and its digest changed
    again = n.receive(T0 + 2.5, datagram(1, order, term), "test")
    assert sent(again, OrderDone) == [OrderDone(5, "web", True, "started web")]  # answered, not run
    assert not of(again, RunAction)


def test_an_order_for_a_service_it_does_not_declare_is_refused_at_once():
    n = node(2)
    term = make_term(3, hid(1))
    run(n, T0, T0 + 2, hear=[(1, beat("master"), term)])
    out = n.receive(T0 + 2.1, datagram(1, Order(1, "assign", hid(2), "mail", 7), term), "test")
    assert sent(out, OrderDone) == [OrderDone(1, "mail", False, "not declared here")]


def test_catalogues_go_to_any_master_not_older_than_ours():
    n = node(2)
    term = make_term(3, hid(1))
    run(n, T0, T0 + 2, hear=[(1, beat("master"), term)])
    assert n.receive(T0 + 2.1, datagram(1, CatalogueRequest(hid(2)), term - 1), "test") == []
    (catalogue,) = sent(n.receive(T0 + 2.2, datagram(1, CatalogueRequest(hid(2)), term), "test"), Catalogue)
    assert catalogue.services == (WEB,)


# --- the master's probes ---


def test_only_a_listening_master_probes_and_results_of_an_earlier_term_are_dropped():
    n = node(1, "master")
    assert n.probes_due(T0 + 1) == []  # not master yet
    run(n, T0, T0 + 4)
    due = []
    for step in range(1, 31):  # polled ten times a second, as the daemon does, between ticks
        now = T0 + 4 + step / 10
        due += n.probes_due(now) + (n.tick(now) if step % 2 == 0 else [])
    (probe,) = of(due, RunProbe)  # once per probe interval, and not again while it runs
    assert probe.order.key == (hid(1), "web") and probe.term == n.term
    stale = attrs.evolve(probe, term=probe.term - 1)
    n.probe_done(T0 + 7, stale, ProbeResult(Status.OK, 0.001, "ok"))
    n.probe_done(T0 + 7, probe, ProbeResult(Status.OK, 0.002, "answers"))
    run(n, T0 + 7.25, T0 + 7.5)
    row = {r.name: r for r in n.tables.table("services")}["web"]
    assert (row.result, row.latency_us, row.detail) == ("ok", 2000, "answers")


# --- what a restart, a twin or a replay cannot do ---


def test_an_order_meant_for_an_earlier_start_of_this_host_is_not_taken():
    n = node(2)  # boot epoch 7
    term = make_term(3, hid(1))
    run(n, T0, T0 + 2, hear=[(1, beat("master"), term)])
    old = Order(5, "assign", hid(2), "web", 6)  # captured before the restart, sent again
    assert n.receive(T0 + 2.1, datagram(1, old, term), "test") == []
    assert n.receive(T0 + 2.2, datagram(1, attrs.evolve(old, epoch=7), term), "test") == [
        RunAction("start", "web", term, 5)]


def test_another_live_process_with_our_id_stops_us_leading_and_an_old_copy_of_ours_does_not():
    n = node(1, "master")
    run(n, T0, T0 + 4)
    assert n.role == Role.MASTER
    replayed = attrs.evolve(beat("master"), stamp=int((T0 - 600) * 1e6))  # ten minutes old
    out = n.receive(T0 + 4.1, Datagram(1, hid(1), 3, 1, n.term, replayed), "10.0.0.66:5150")
    assert out == [] and n.role == Role.MASTER
    live = attrs.evolve(beat("standby"), stamp=int((T0 + 4.2) * 1e6))
    out = n.receive(T0 + 4.2, Datagram(1, hid(1), 9, 1, 0, live), "10.0.0.77:5150")
    (loud,) = of(out, DuplicateId)
    assert (loud.source, loud.boot_epoch) == ("10.0.0.77:5150", 9)
    assert n.role == Role.STANDBY and "another process uses our host id" in of(out, RoleChanged)[0].reason
    assert run(n, T0 + 4.25, T0 + 6.75) == []  # it stays out while the twin may still run
    assert n.status(T0 + 6.75)["duplicate_id"] == {"source": "10.0.0.77:5150", "boot_epoch": 9}


def test_the_tables_are_saved_when_what_they_must_keep_changes_not_for_a_load_figure():
    n = node(1, "master")
    out = run(n, T0, T0 + 4)
    assert of(out, Persist)
    busy = attrs.evolve(beat(), load=Load(900, 0, 0))
    n.receive(T0 + 4.1, datagram(2, beat()), "test")
    assert of(run(n, T0 + 4.25, T0 + 4.5), Persist)  # a new host in the servers table
    n.receive(T0 + 4.6, datagram(2, busy), "test")
    out = run(n, T0 + 4.75, T0 + 5)
    assert of(out, TablesChanged) and not of(out, Persist)  # only its CPU moved
