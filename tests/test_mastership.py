"""What only a master holds: table upkeep, answers to its orders, probe results, its decision log."""
import attrs

from rais.effects import Decided, Persist, Send, TablesChanged
from rais.ids import HostClusterId
from rais.mastership import Mastership
from rais.membership import Membership
from rais.probing.schedule import ProbeDefaults
from rais.reconcile import START_FAILED_FOR, Books, Decision, Exclusion, Pending
from rais.settings import Identity, Timing
from rais.states import HostStatus, Result, Role, ServiceState
from rais.tables import Tables
from rais.wire import Heartbeat, Load, Order, OrderDone, RowKey, ServiceDecl, SyncNotice
from rais.wire.rows import PolicyRow, ServerRow

TIMING = Timing(interval=1.0, dead_after=3)
ME = HostClusterId.parse("1.2.0.1")
PEER = HostClusterId.parse("1.2.0.2")
GONE = HostClusterId.parse("1.2.0.3")
WEB = ServiceDecl("web", "tcp", 80, True, True, True, "{}")
T0 = 100.0


def mastership(tables=None, policies=(), cold_until=0.0):
    me = Identity(id=ME, configured=Role.MASTER, address="10.0.0.1")
    return Mastership(me, 5, TIMING, ProbeDefaults(rise=2, fall=2), 65537, T0, tables or Tables.empty(), policies,
                      cold_until)


def heard(membership, now, host=PEER):
    beat = Heartbeat(role="active", priority=100, generation=0, address="10.0.0.2", load=Load(300, 0, 0))
    membership.heard(now, host, "10.0.0.2:5150", 1, 65537, beat)


def upkeep(m, membership, now, services=(WEB,)):
    return m.upkeep(now, membership, Load(100, 0, 0), b"c" * 8, services)


def test_the_first_upkeep_writes_the_master_the_hosts_heard_and_the_policies_and_commits():
    m = mastership(policies=[PolicyRow("web", 2, None, None)])
    membership = Membership(1.0, 3)
    heard(membership, T0)
    out = upkeep(m, membership, T0)
    assert isinstance(out[0], TablesChanged) and not any(isinstance(o, Persist) for o in out)  # the node saves
    assert [o.message for o in out if isinstance(o, Send)][0] == SyncNotice(65537, 1, m.tables.digest)
    servers = {r.host: r for r in m.tables.table("servers")}
    assert servers[ME].role == Role.MASTER and servers[PEER].status == HostStatus.UP
    assert m.tables.get(RowKey("policy", 0, "web")).replicas == 2
    assert m.tables.get(RowKey("services", ME.value, "web")).state == ServiceState.RUNNING
    assert upkeep(m, membership, T0 + 0.25) == []  # nothing new: no generation


def test_hosts_in_the_tables_that_it_never_hears_are_down_once_it_has_listened():
    old = ServerRow(host=GONE, role="active", configured="active", status="up", priority=100,
                    address="10.0.0.3", boot_epoch=1, last_heard_ms=0, catalogue=bytes(8))
    m = mastership(Tables.of(65537, 4, [old]))
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0 + 2.9)
    assert m.tables.get(old.key).status == HostStatus.UP
    upkeep(m, membership, T0 + 3.0)
    assert m.tables.get(old.key).status == HostStatus.DOWN


def test_answers_to_its_orders_are_decisions_and_a_start_that_worked_waits_for_its_probe():
    m = mastership()
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0)
    orders = {n: Pending(Order(n, action, ME, "web", 5), T0, T0 + 120)
              for n, action in ((1, "release"), (2, "assign"), (3, "assign"))}
    m.books = Books(orders=orders, next_order=4)
    (released,) = m.order_done(T0 + 1, ME, OrderDone(1, "web", True, "stopped web"))
    assert released.decision == Decision("released", "web", ME, "web released on 1.2.0.1: stopped web")
    (failed,) = m.order_done(T0 + 1, ME, OrderDone(2, "web", False, "exit status 1"))
    assert failed.decision.action == "start-failed"
    assert m.books.excluded[(ME, "web")] == Exclusion("start failed: exit status 1", T0 + 1 + START_FAILED_FOR)
    assert m.order_done(T0 + 1, PEER, OrderDone(3, "web", True, "x")) == []  # not the host it was given to
    (started,) = m.order_done(T0 + 1, ME, OrderDone(3, "web", True, "started web"))
    assert started.decision.explanation == "web started on 1.2.0.1 (started web); waiting for its probe"
    assert m.order_done(T0 + 1, ME, OrderDone(3, "web", True, "started web")) == []  # answered twice
    upkeep(m, membership, T0 + 1)
    row = m.tables.get(RowKey("services", ME.value, "web"))
    assert (row.assigned, row.state, row.result, row.epoch) == (True, ServiceState.UNKNOWN, Result.NONE, 5)
    assert m.books.orders == {}
    assert m.books.refresh == {"web"}  # released on one host: the others announce it again


def test_a_repeated_decision_is_logged_once_and_marked_repeated():
    m = mastership()
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0)
    for n in range(2):
        m.probe_done(T0 + n, (ME, "web"), Result.CRITICAL, 0.002, "refused")
    upkeep(m, membership, T0 + 2)
    first = [o.decision for o in m.reconcile(T0 + 2) if isinstance(o, Decided)]
    assert [d.action for d in first] == ["release", "degraded"]  # nowhere else to go
    again = [o for o in m.reconcile(T0 + 2.25) if isinstance(o, Decided)]
    assert [(o.decision.action, o.repeated) for o in again] == [("degraded", True)]
    assert [text for _, text in m.decisions["web"]] == [d.explanation for d in first]


def test_probe_results_change_a_service_only_after_fall_failures_in_a_row():
    m = mastership()
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0)
    key = (ME, "web")
    m.probe_done(T0 + 1, key, Result.CRITICAL, 0.002, "refused")
    upkeep(m, membership, T0 + 1)
    row = m.tables.get(RowKey("services", ME.value, "web"))
    assert (row.state, row.result, row.detail) == (ServiceState.RUNNING, Result.CRITICAL, "refused")
    m.probe_done(T0 + 2, key, Result.CRITICAL, 0.002, "refused")
    upkeep(m, membership, T0 + 2)
    assert m.tables.get(RowKey("services", ME.value, "web")).state == ServiceState.FAILED


def test_a_copy_the_master_started_on_itself_stays_assigned_when_its_catalogue_changes():
    stopped = attrs.evolve(WEB, running=False)
    m = mastership()
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0, services=(stopped,))
    m.books = Books(orders={1: Pending(Order(1, "assign", ME, "web", 5), T0, T0 + 120)}, next_order=2)
    m.order_done(T0 + 1, ME, OrderDone(1, "web", True, "started web"))
    # Its start changed what it declares: the new catalogue must not undo the assignment.
    m.upkeep(T0 + 1, membership, Load(100, 0, 0), b"d" * 8, (WEB,))
    row = m.tables.get(RowKey("services", ME.value, "web"))
    assert (row.assigned, row.running, row.state) == (True, True, ServiceState.UNKNOWN)


def test_a_start_again_that_fails_on_a_restarted_host_loses_the_copy_there():
    m = mastership()
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0)
    assert m.tables.get(RowKey("services", ME.value, "web")).assigned  # found running
    m.books = Books(orders={1: Pending(Order(1, "assign", ME, "web", 5), T0, T0 + 120)}, next_order=2)
    m.order_done(T0 + 1, ME, OrderDone(1, "web", False, "exit status 1"))
    upkeep(m, membership, T0 + 1)
    assert not m.tables.get(RowKey("services", ME.value, "web")).assigned


def test_a_starting_cluster_waits_to_hear_what_runs_unless_every_host_it_knew_is_back():
    m = mastership(cold_until=T0 + 10)  # a fresh cluster: nobody known, so the full wait
    upkeep(m, Membership(1.0, 3), T0 + 5)
    assert m.settles_at == T0 + 10
    old = ServerRow(host=PEER, role="active", configured="active", status="up", priority=100,
                    address="10.0.0.2", boot_epoch=1, last_heard_ms=0, catalogue=bytes(8))
    m = mastership(Tables.of(65537, 4, [old]), cold_until=T0 + 10)  # restarted with its tables kept
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0 + 4)
    assert m.tables.get(old.key).status == HostStatus.UP and m.settles_at == T0 + 10  # not called down yet
    heard(membership, T0 + 5)
    upkeep(m, membership, T0 + 5)
    assert m.settles_at == T0 + 5  # everyone it knew is back


def test_a_move_is_taken_only_where_it_can_be_carried_out():
    m = mastership()
    membership = Membership(1.0, 3)
    heard(membership, T0)
    upkeep(m, membership, T0)
    stopped = attrs.evolve(WEB, running=False)
    m._stage_catalogue(T0, PEER, b"p" * 8, (stopped,))
    m.commit(T0)
    m.books = Books(excluded={(PEER, "web"): Exclusion("start failed: exit status 1", T0 + 300)})
    for service, host, why in (("mail", PEER, "no host declares mail"),
                               ("web", GONE, "1.2.0.3 is not in the cluster's tables"),
                               ("web", ME, "web is assigned to 1.2.0.1 already")):
        try:
            m.move(T0, service, host)
        except ValueError as e:
            assert str(e) == why
        else:
            raise AssertionError(f"moved {service} to {host}")
    assert m.move(T0, "web", PEER) == "moving web to 1.2.0.2"
    assert m.books.moves == {"web": PEER} and m.books.excluded == {}  # the operator's word overrides
