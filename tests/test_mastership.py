"""What only a master holds: table upkeep, answers to its orders, probe results, its decision log."""
import functools

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
    assert not m.ledger.view(RowKey("services", ME.value, "web")).running  # by its answer, before its catalogue
    (failed,) = m.order_done(T0 + 1, ME, OrderDone(2, "web", False, "exit status 1"))
    assert failed.decision.action == "start-failed"
    assert m.books.excluded[(ME, "web")] == Exclusion("start failed: exit status 1", T0 + 1 + START_FAILED_FOR)
    assert m.books.cleanup == {(ME, "web")}  # stopped there by the next reconcile
    assert m.order_done(T0 + 1, PEER, OrderDone(3, "web", True, "x")) == []  # not the host it was given to
    (started,) = m.order_done(T0 + 1, ME, OrderDone(3, "web", True, "started web"))
    assert started.decision.explanation == "web started on 1.2.0.1 (started web); waiting for its probe"
    assert m.order_done(T0 + 1, ME, OrderDone(3, "web", True, "started web")) == []  # answered twice
    upkeep(m, membership, T0 + 1)
    row = m.tables.get(RowKey("services", ME.value, "web"))
    assert (row.assigned, row.running, row.state, row.result, row.epoch) == (
        True, True, ServiceState.UNKNOWN, Result.NONE, 5)  # running by its answer: a cut-off host is fenced
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


def two_hosts_serving_web():
    """A master (1.2.0.1, serving web) and a peer that declares web stopped."""
    m = mastership()
    membership = Membership(1.0, 3)
    heard(membership, T0)
    upkeep(m, membership, T0)
    m._stage_catalogue(T0, PEER, b"p" * 8, (attrs.evolve(WEB, running=False),))
    m.commit(T0)
    return m, membership


def refused(call, why):
    try:
        call()
    except ValueError as e:
        assert str(e) == why
    else:
        raise AssertionError(f"{call} was taken")


def test_a_drain_is_a_servers_row_change_kept_through_heartbeats_and_answered_with_its_consequences():
    m, membership = two_hosts_serving_web()
    refused(lambda: m.drain(T0, GONE, True), "1.2.0.3 is not in the cluster's tables")
    refused(lambda: m.drain(T0, ME, False), "1.2.0.1 is not drained already")
    said = m.drain(T0, ME, True)
    assert said.splitlines()[0] == ("draining 1.2.0.1: its services move elsewhere, and nothing is placed there "
                                    "until `rais undrain`")
    assert said.splitlines()[1:3] == ["then the master will:", "  assign: web -> 1.2.0.2 (score " +
                                      said.splitlines()[2].split("(score ", 1)[1]]
    refused(lambda: m.drain(T0, ME, True), "1.2.0.1 is drained already")
    heard(membership, T0 + 1)
    upkeep(m, membership, T0 + 1)  # rewrites the server rows from what it heard: the flag stays
    assert m.tables.get(RowKey("servers", ME.value, "")).drained
    refused(lambda: m.move(T0, "web", ME), "1.2.0.1 is drained by the operator")
    successor = mastership(m.tables)  # after a failover (or a restart), from the replicated tables
    upkeep(successor, membership, T0 + 2)
    assert successor.tables.get(RowKey("servers", ME.value, "")).drained
    said = m.drain(T0 + 1, ME, False)
    assert said.startswith("undraining 1.2.0.1: services may be placed there again")
    assert said.endswith("then the master will:\n  move nothing")
    upkeep(m, membership, T0 + 2)
    assert not m.tables.get(RowKey("servers", ME.value, "")).drained


def test_a_policy_set_live_is_checked_by_the_config_rules_and_answered_with_its_consequences():
    m, _ = two_hosts_serving_web()
    for service, given, why in (
            ("mail", {"replicas": "2"}, "no host declares mail, and it has no policy"),
            ("web", {"copies": "2"}, "policy.web.copies: unknown key"),
            ("web", {"replicas": "0"}, "policy.web.replicas: must be 1..1000, got 0"),
            ("web", {"max_cpu": "high"}, "policy.web.max_cpu: expected a number, got a string"),
            ("web", {"weights.speed": "1"}, "policy.web.weights: 'speed' is not a weight; the weights are "
                                            "overlap, latency, cpu, network, role, stickiness"),
            ("web", {"prefer": "1.3.0.2"}, "policy.web.prefer: 1.3.0.2 is a host of cluster 1.3, not of 1.2"),
            ("web", {}, "nothing to set: give KEY=VALUE (replicas, max_cpu, max_latency_ms, max_net_mbps, "
                        "prefer, failback_after, spare, weights.PART)")):
        refused(functools.partial(m.set_policy, T0, service, given), why)
    said = m.set_policy(T0, "web", {"replicas": "2", "max_cpu": "0.9", "weights.cpu": "3"})
    lines = said.splitlines()
    assert lines[0] == "policy set live: web: replicas=2 failback_after=60 max_cpu=0.9 weights.cpu=3 (set live)"
    assert lines[1] == "then the master will:" and lines[2].startswith("  assign: web -> 1.2.0.2 (score ")
    m.commit(T0)
    row = m.tables.get(RowKey("policy", 0, "web"))
    assert (row.replicas, row.max_cpu_permille, row.weights.cpu, row.live) == (2, 900, 3000, True)
    m.set_policy(T0, "web", {"max_cpu": ""})  # back to the default: no limit
    m.commit(T0)
    assert m.tables.get(RowKey("policy", 0, "web")).max_cpu_permille is None


def test_a_new_master_keeps_a_policy_set_live_over_its_config_until_reset():
    configured = PolicyRow("web", 1, None, None)
    live = PolicyRow("web", 3, None, None, live=True)
    m = mastership(Tables.of(65537, 4, [live]), policies=[configured, PolicyRow("db", 2, None, None)])
    upkeep(m, Membership(1.0, 3), T0)
    assert m.tables.get(RowKey("policy", 0, "web")) == live  # the operator's later word
    assert m.tables.get(RowKey("policy", 0, "db")).replicas == 2
    refused(lambda: m.reset_policy(T0, "db"), "db has no policy set live")
    assert m.reset_policy(T0, "web").startswith("policy back to the config: web: replicas=1 failback_after=60\n")
    m.commit(T0)
    assert m.tables.get(RowKey("policy", 0, "web")) == configured
    m = mastership(Tables.of(65537, 4, [PolicyRow("web", 1, None, None)]), policies=[PolicyRow("web", 2, None, None)])
    upkeep(m, Membership(1.0, 3), T0)
    assert m.tables.get(RowKey("policy", 0, "web")).replicas == 2  # not live: the config's is the latest word


def test_a_host_without_a_stop_action_still_runs_what_it_was_told_to_release():
    """Its answer says it left the service as it is (rais.orders): the copy still runs, and is still
    probed, so it is seen running again when its server comes back."""
    m = mastership()
    membership = Membership(1.0, 3)
    upkeep(m, membership, T0, services=(attrs.evolve(WEB, can_start=False, can_stop=False),))
    m.books = Books(orders={1: Pending(Order(1, "release", ME, "web", 5), T0, T0 + 120)}, next_order=2)
    m.order_done(T0 + 1, ME, OrderDone(1, "web", True, "no stop action: left as it is"))
    assert m.ledger.view(RowKey("services", ME.value, "web")).running
