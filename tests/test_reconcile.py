"""The master's decision step, pure: a situation in, decisions and new books out."""

import attrs
import pytest

from rais.ids import ClusterId, HostClusterId
from rais.planner import View
from rais.pool import REST
from rais.reconcile import (
    ORDER_TIMEOUT,
    RELEASE_HOLD,
    START_FAILED_FOR,
    Books,
    Exclusion,
    Pending,
    Situation,
    reconcile,
)
from rais.settings import Timing
from rais.tables import Tables
from rais.wire import Order
from rais.wire.rows import CpuRow, PolicyRow, ServerRow, ServiceRow

CLUSTER = ClusterId.parse("1.2")
MASTER = HostClusterId.of(CLUSTER, 1)
TIMING = Timing(interval=1.0, dead_after=3, balance_after=30.0, move_hold=120.0)
NOW = 5000.0


def hid(n):
    return HostClusterId.of(CLUSTER, n)


def server(n, status="up", role="active", cpu=100):
    return [ServerRow(host=hid(n), role=role, configured=role, status=status, priority=100,
                      address=f"10.0.0.{n}", boot_epoch=1, last_heard_ms=0, catalogue=bytes(8)),
            CpuRow(hid(n), cpu)]


def web(n, assigned=False, state=None, running=None, result="ok", can_start=True, epoch=1, **more):
    """A row of web on host n; ``epoch`` 1 (its server's boot): established in this boot."""
    state = state or ("running" if assigned else "stopped")
    running = assigned if running is None else running
    return ServiceRow(host=hid(n), name="web", probe="tcp", port=80, running=running, assigned=assigned,
                      can_start=can_start, can_stop=True, state=state, result=result, latency_us=None,
                      detail="", options="{}", changed_ms=0, epoch=epoch, **more)


ONE = PolicyRow("web", 1, None, None)


def situation(*rows, books=None, now=NOW, policy=ONE):
    flat = [r for item in rows for r in (item if isinstance(item, list) else [item])]
    if policy is not None:
        flat.append(policy)
    return Situation(View(Tables.of(65537, 7, flat)), books or Books(), MASTER, TIMING, now)


def said(changes):
    return [(d.action, d.service, d.host.host if d.host else None) for d in changes.decisions]


def test_a_failed_copy_is_released_there_and_placed_on_the_best_other_host():
    changes = reconcile(situation(server(1), server(2), server(3, role="standby"),
                                  web(2, assigned=True, state="failed", result="critical"), web(3)))
    assert said(changes) == [("release", "web", 2), ("assign", "web", 3)]
    release, assign = changes.decisions
    assert release.explanation == "web lost on 1.2.0.2 (the service failed here)"
    assert assign.explanation.startswith("web -> 1.2.0.3 (score ") and "1.2.0.2: the service failed here" in (
        assign.explanation)
    assert [(o.order, o.action, o.host.host) for o in changes.orders] == [(1, "release", 2), (2, "assign", 3)]
    assert [r.assigned for r in changes.rows] == [False]  # unassigned where it failed
    books = changes.books
    assert books.next_order == 3 and sorted(books.orders) == [1, 2]
    assert books.excluded[(hid(2), "web")] == Exclusion("the service failed here", NOW + REST)
    assert books.released_at[(hid(2), "web")] == NOW


def test_a_copy_on_a_host_that_is_down_is_unassigned_without_an_order_there():
    changes = reconcile(situation(server(1), server(2, status="down"), server(3), web(2, assigned=True), web(3)))
    assert said(changes) == [("unassign", "web", 2), ("assign", "web", 3)]
    assert changes.decisions[0].order is None


def test_a_suspect_host_keeps_its_copy():
    assert reconcile(situation(server(1), server(2, status="suspect"), server(3),
                               web(2, assigned=True), web(3))).decisions == ()


def test_a_copy_being_started_counts_and_its_host_is_not_chosen_twice():
    pending = Pending(Order(4, "assign", hid(3), "web", 1), NOW - 0.5, NOW + 100)
    books = Books(orders={4: pending}, next_order=5)
    two = PolicyRow("web", 2, None, None)
    changes = reconcile(situation(server(1), server(2), server(3), server(4), web(2, assigned=True), web(3),
                                  web(4), books=books, policy=two))
    assert said(changes) == []  # two wanted: one serving, one starting
    three = PolicyRow("web", 3, None, None)
    changes = reconcile(situation(server(1), server(2), server(3), server(4), web(2, assigned=True), web(3),
                                  web(4), books=books, policy=three))
    assert said(changes) == [("assign", "web", 4)]
    assert "1.2.0.3: being started" in changes.decisions[0].explanation


def test_an_unanswered_order_is_said_again_each_interval_and_given_up_at_its_deadline():
    order = Order(4, "assign", hid(3), "web", 1)
    fresh = Books(orders={4: Pending(order, NOW - 0.4, NOW + 100)}, next_order=5)
    rows = (server(1), server(2), server(3), web(2), web(3))
    assert reconcile(situation(*rows, books=fresh)).resend == ()
    late = Books(orders={4: Pending(order, NOW - 1.0, NOW + 100)}, next_order=5)
    changes = reconcile(situation(*rows, books=late))
    assert changes.resend == (order,) and changes.books.orders[4].sent_at == NOW
    expired = Books(orders={4: Pending(order, NOW - 1.0, NOW)}, next_order=5)
    changes = reconcile(situation(*rows, books=expired))
    assert said(changes)[:3] == [("expired", "web", 3), ("release", "web", 3), ("assign", "web", 2)]  # stopped there
    assert changes.books.excluded[(hid(3), "web")] == Exclusion("did not answer the start order",
                                                               NOW + START_FAILED_FOR)
    assert ORDER_TIMEOUT > TIMING.dead  # a host has time to answer before it is given up


def test_an_order_to_a_host_gone_down_is_given_up_at_once():
    order = Order(4, "release", hid(3), "web", 1)
    books = Books(orders={4: Pending(order, NOW, NOW + 100)}, next_order=5)
    changes = reconcile(situation(server(1), server(2), server(3, status="down"), web(2, assigned=True),
                                  books=books))
    assert changes.books.orders == {} and said(changes) == []  # a release needs no replacement


def test_without_a_policy_a_service_keeps_the_copies_it_has():
    changes = reconcile(situation(server(1), server(2), server(3), web(2, assigned=True), web(3, assigned=True),
                                  policy=None))
    assert changes.rows == (PolicyRow("web", 2, None, None),) and said(changes) == []


def test_extra_copies_are_released_worst_first_unless_a_copy_is_starting():
    rows = (server(1), server(2, cpu=900), server(3), web(2, assigned=True), web(3, assigned=True))
    changes = reconcile(situation(*rows))
    assert said(changes) == [("release", "web", 2)]  # the busier copy
    assert changes.rows[0].host == hid(2) and not changes.rows[0].assigned
    starting = Books(orders={9: Pending(Order(9, "assign", hid(3), "web", 1), NOW, NOW + 100)}, next_order=10)
    assert said(reconcile(situation(*rows, books=starting))) == []


def test_a_copy_running_where_nobody_assigned_it_is_released_once_per_hold():
    rows = (server(1), server(2), server(3), web(2, assigned=True), web(3, running=True))
    changes = reconcile(situation(*rows))
    assert said(changes) == [("release", "web", 3)]
    assert "runs on 1.2.0.3 without being assigned there" in changes.decisions[0].explanation
    later = attrs.evolve(changes.books, orders={})
    assert said(reconcile(situation(*rows, books=later, now=NOW + RELEASE_HOLD - 0.1))) == []
    assert said(reconcile(situation(*rows, books=later, now=NOW + RELEASE_HOLD))) == [("release", "web", 3)]


def test_a_copy_moves_off_a_host_over_its_limit_for_long_enough_then_holds():
    busy = PolicyRow("web", 1, 800, None)
    rows = (server(1), server(2, cpu=900), server(3, cpu=100), web(2, assigned=True), web(3))
    first = reconcile(situation(*rows, policy=busy))
    assert said(first) == [] and first.books.over_since == {(hid(2), "web"): NOW}
    due = reconcile(situation(*rows, policy=busy, books=first.books, now=NOW + 30))
    assert said(due) == [("overloaded", "web", 2), ("assign", "web", 3)]
    assert due.books.leaving == {"web": hid(2)}  # released once the copy on 3 runs
    assert due.rows == (web(3, moved_ms=int((NOW + 30) * 1000)),)  # the hold, in the tables for a later master
    # Host 3 took it and is busy too: within move_hold nothing moves again, whoever is master.
    moved = (server(1), server(2, cpu=100), server(3, cpu=900), web(2),
             web(3, assigned=True, moved_ms=int((NOW + 30) * 1000)))
    over = Books(over_since={(hid(3), "web"): NOW + 31})
    assert said(reconcile(situation(*moved, policy=busy, books=over, now=NOW + 100))) == []
    assert said(reconcile(situation(*moved, policy=busy, books=over, now=NOW + 150)))[0] == ("overloaded", "web", 3)


def test_a_load_move_releases_the_busy_copy_only_once_the_new_one_runs_and_keeps_it_if_that_fails():
    busy = PolicyRow("web", 1, 800, None)
    books = Books(leaving={"web": hid(2)})
    started = (server(1), server(2, cpu=900), server(3, cpu=100), web(2, assigned=True),
               web(3, assigned=True, state="unknown", result="none", moved_ms=int(NOW * 1000)))
    assert said(reconcile(situation(*started, policy=busy, books=books))) == []  # not yet seen to run
    # Even if the busy host dips under its limit meanwhile and scores best, the busy copy goes.
    runs = (server(1), server(2, cpu=790), server(3, cpu=600), web(2, assigned=True),
            web(3, assigned=True, moved_ms=int(NOW * 1000)))
    changes = reconcile(situation(*runs, policy=busy, books=books))
    assert said(changes) == [("release", "web", 2)]
    assert changes.decisions[0].explanation.endswith("1.2.0.2 the busy host it was moved off")
    # The new copy never rises: it is released there, and the busy one keeps serving.
    failed = (server(1), server(2, cpu=900), server(3, cpu=100), web(2, assigned=True),
              web(3, assigned=True, state="failed", result="critical", moved_ms=int(NOW * 1000)))
    changes = reconcile(situation(*failed, policy=busy, books=books))
    assert said(changes) == [("release", "web", 3)] and changes.books.leaving == {}


def test_a_load_move_needs_a_host_with_room_and_an_old_timer_is_forgotten_where_the_service_left():
    busy = PolicyRow("web", 1, 800, None)
    over = Books(over_since={(hid(2), "web"): NOW - 30, (hid(3), "web"): NOW - 500})
    noisy = (server(1), server(2, cpu=830), server(3, cpu=790), server(4, cpu=720), web(2, assigned=True),
             web(3), web(4))
    changes = reconcile(situation(*noisy, policy=busy, books=over))
    assert said(changes) == [("stays", "web", 2)]  # 3 and 4 are no better
    assert changes.decisions[0].explanation.startswith(
        "web stays on 1.2.0.2, which has been over its load limit for 30s: web: no host qualifies (")
    assert "1.2.0.3: cpu 0.79 is not under 0.70: no room to take load" in changes.decisions[0].explanation
    assert changes.books.over_since == {(hid(2), "web"): NOW - 30}  # 3's old timer is gone
    # Relative hysteresis: a policy with max_cpu 0.1 recovers under 0.0875.
    low = PolicyRow("web", 1, 100, None)
    timer = Books(over_since={(hid(2), "web"): NOW - 10})
    calm = (server(1), server(2, cpu=80), server(3), web(2, assigned=True), web(3))
    assert reconcile(situation(*calm, policy=low, books=timer)).books.over_since == {}


def test_a_host_that_calms_down_well_under_its_limit_starts_over():
    busy = PolicyRow("web", 1, 800, None)
    books = Books(over_since={(hid(2), "web"): NOW - 29})
    barely = (server(1), server(2, cpu=750), server(3), web(2, assigned=True), web(3))
    assert reconcile(situation(*barely, policy=busy, books=books)).books.over_since  # not yet calm: 0.75 >= 0.7
    calm = (server(1), server(2, cpu=650), server(3), web(2, assigned=True), web(3))
    assert reconcile(situation(*calm, policy=busy, books=books)).books.over_since == {}


@pytest.mark.parametrize("until,excluded", [(NOW + 1, True), (NOW, False)])
def test_hosts_put_aside_come_back_when_their_time_is_up(until, excluded):
    books = Books(excluded={(hid(3), "web"): Exclusion("start failed: exit 1", until)})
    changes = reconcile(situation(server(1), server(2), server(3, role="standby"),
                                  web(2, assigned=True, state="failed"), web(3), web(1), books=books))
    assign = changes.decisions[-1]
    assert (assign.host == hid(1)) is excluded
    assert ((hid(3), "web") in changes.books.excluded) is excluded


def test_nothing_qualifies_is_degraded_and_orders_nothing():
    changes = reconcile(situation(server(1), server(2), web(2, assigned=True, state="failed")))
    assert said(changes) == [("release", "web", 2), ("degraded", "web", None)]
    assert changes.decisions[1].explanation.startswith("web: no host qualifies (")


def test_a_host_where_a_copy_is_starting_is_not_given_another():
    two = PolicyRow("web", 2, None, None)
    changes = reconcile(situation(server(1), server(2), server(3, role="standby"), server(4),
                                  web(2, assigned=True, state="failed", result="critical"),
                                  web(3, assigned=True, state="unknown", result="none"), web(4), policy=two))
    assert said(changes) == [("release", "web", 2), ("assign", "web", 4)]  # not the standby, which is starting
    assert "1.2.0.3: a copy is starting there" in changes.decisions[1].explanation


def test_a_copy_on_a_host_that_restarted_since_it_was_started_is_started_there_again_once():
    rows = (server(1), server(2), server(3), web(2, assigned=True, epoch=0), web(3))  # host 2's boot is 1
    changes = reconcile(situation(*rows))
    assert said(changes) == [("assign", "web", 2)]
    assert changes.decisions[0].explanation == (
        "web -> 1.2.0.2 again: it restarted since the copy was started there (boot epoch 0 -> 1)")
    assert changes.orders[0].epoch == 1
    assert said(reconcile(situation(*rows, books=changes.books, now=NOW + 0.5))) == []  # in flight: once


def test_a_new_term_asks_every_holder_to_announce_once_and_a_release_asks_the_rest():
    rows = (server(1), server(2), server(3), web(2, assigned=True, can_refresh=True), web(3, can_refresh=True))
    first = reconcile(situation(*rows))
    assert said(first) == [("refresh", "web", 2)]
    assert first.orders[0].action == "refresh"
    done = attrs.evolve(first.books, orders={})
    assert first.books.announced and said(reconcile(situation(*rows, books=done))) == []
    # web was released elsewhere (the master's order_done adds it): the holder announces again.
    assert said(reconcile(situation(*rows, books=attrs.evolve(done, refresh=frozenset({"web"}))))) == [
        ("refresh", "web", 2)]


def test_a_holder_is_not_asked_to_announce_while_a_release_of_the_service_is_in_flight():
    rows = (server(1), server(2), server(3), web(2, assigned=True, can_refresh=True), web(3, running=True))
    changes = reconcile(situation(*rows))
    assert said(changes) == [("release", "web", 3)]  # the stray; the refresh waits for its answer
    assert changes.books.refresh == {"web"}


QUORUM = attrs.evolve(TIMING, quorum=True)


@pytest.mark.parametrize("exclusive,quorum,waits", [(True, True, True), (False, True, False), (True, False, False)])
def test_an_exclusive_copy_on_a_host_gone_down_waits_until_it_has_fenced_itself(exclusive, quorum, waits):
    down = [attrs.evolve(server(2, status="down")[0], last_heard_ms=int((NOW - 3.5) * 1000)), server(2)[1]]
    rows = (server(1), down, server(3), web(2, assigned=True, exclusive=exclusive), web(3))
    timing = QUORUM if quorum else TIMING
    changes = reconcile(Situation(View(Tables.of(65537, 7, [*flat(rows), ONE])), Books(), MASTER, timing, NOW))
    if waits:  # heard 3.5 s ago: it fences at 3 s (dead_after intervals); an interval more to be sure
        assert said(changes) == [("unassign", "web", 2), ("waiting", "web", 2)]
        unassigned = (*rows[:3], web(2, running=True, exclusive=True), web(3))
        later = Situation(View(Tables.of(65537, 8, [*flat(unassigned), ONE])), changes.books, MASTER, timing,
                          NOW + 0.5)
        assert said(reconcile(later)) == [("assign", "web", 3)]
    else:
        assert said(changes) == [("unassign", "web", 2), ("assign", "web", 3)]


def flat(rows):
    return [r for item in rows for r in (item if isinstance(item, list) else [item])]


@pytest.mark.parametrize("quorum,waits", [(True, True), (False, False)])
def test_an_exclusive_copy_failing_on_a_host_just_cut_off_waits_until_it_has_fenced_itself(quorum, waits):
    # Found by the namespace example: the holder cut off goes suspect, and the probe of its VIP
    # fails before it is down; the copy was started elsewhere while the holder still held it.
    suspect = [attrs.evolve(server(2, status="suspect")[0], last_heard_ms=int((NOW - 1.5) * 1000)), server(2)[1]]
    rows = (server(1), suspect, server(3),
            web(2, assigned=True, exclusive=True, state="failed", result="critical"), web(3))
    timing = QUORUM if quorum else TIMING
    changes = reconcile(Situation(View(Tables.of(65537, 7, [*flat(rows), ONE])), Books(), MASTER, timing, NOW))
    if waits:  # until 1.5 s + an interval from now: dead_after intervals after its last news, and one more
        assert said(changes) == [("unassign", "web", 2), ("waiting", "web", 2)]
        assert changes.decisions[1].explanation == (
            "web: waiting until 1.2.0.2 has fenced itself (it holds an exclusive copy) before starting it elsewhere")
    else:
        assert said(changes) == [("unassign", "web", 2), ("assign", "web", 3)]


def test_a_move_starts_a_copy_on_the_host_named_then_releases_the_other_and_is_done():
    rows = (server(1), server(2), server(3), web(2, assigned=True), web(3))
    asked = Books(moves={"web": hid(3)})
    first = reconcile(situation(*rows, books=asked))
    assert said(first) == [("assign", "web", 3)]
    assert first.decisions[0].explanation == "web -> 1.2.0.3: moving it there"
    done = attrs.evolve(first.books, orders={})
    running = (server(1), server(2), server(3), web(2, assigned=True), web(3, assigned=True))
    release = reconcile(situation(*running, books=done))
    assert said(release) == [("release", "web", 2)]  # kept where it was moved to, whatever the scores
    moved = (server(1), server(2), server(3), web(2), web(3, assigned=True))
    assert said(reconcile(situation(*moved, books=attrs.evolve(release.books, orders={})))) == [
        ("moved", "web", 3)]


def test_an_exclusive_service_is_released_before_it_is_started_where_it_moves():
    rows = (server(1), server(2), server(3, role="standby"), server(4),
            web(2, assigned=True, exclusive=True), web(3, exclusive=True), web(4, exclusive=True))
    first = reconcile(situation(*rows, books=Books(moves={"web": hid(4)})))
    assert said(first) == [("release", "web", 2)]
    released = (server(1), server(2), server(3, role="standby"), server(4),
                web(2, exclusive=True), web(3, exclusive=True), web(4, exclusive=True))
    placed = reconcile(situation(*released, books=attrs.evolve(first.books, orders={})))
    assert said(placed) == [("assign", "web", 4)]  # not the standby, which scores higher
    assert "preferred" in placed.decisions[0].explanation


def test_an_exclusive_move_starts_where_it_goes_only_once_the_release_is_answered():
    released = (server(1), server(2), server(3, role="standby"), server(4),
                web(2, exclusive=True), web(3, exclusive=True), web(4, exclusive=True))
    stopping = Books(orders={1: Pending(Order(1, "release", hid(2), "web", 1), NOW, NOW + ORDER_TIMEOUT)},
                     next_order=2, moves={"web": hid(4)})
    waiting = reconcile(situation(*released, books=stopping))
    assert said(waiting) == [("waiting", "web", 2)]
    assert waiting.decisions[0].explanation == ("web: waiting until 1.2.0.2 has stopped it (exclusive: never two "
                                                "holders) before starting it elsewhere")


@pytest.mark.parametrize("exclusive", [False, True])
def test_where_a_start_failed_the_service_is_stopped_once_and_an_exclusive_one_starts_elsewhere_after(exclusive):
    """A start cut short (a timeout) may have done part of its work: a virtual IP taken, say."""
    rows = (server(1), server(2), server(3), web(2, exclusive=exclusive), web(3, exclusive=exclusive))
    books = Books(excluded={(hid(2), "web"): Exclusion("start failed: timed out", NOW + 300)},
                  cleanup=frozenset({(hid(2), "web")}))
    changes = reconcile(situation(*rows, books=books))
    if exclusive:
        assert said(changes) == [("release", "web", 2), ("waiting", "web", 2)]
    else:
        assert said(changes) == [("release", "web", 2), ("assign", "web", 3)]
    assert changes.decisions[0].explanation == ("web stopped on 1.2.0.2, where its start failed, in case it did "
                                                "part of its work")
    assert changes.books.cleanup == frozenset()
    answered = reconcile(situation(*rows, books=attrs.evolve(changes.books, orders={})))  # the stop done
    assert said(answered) == [("assign", "web", 3)]  # and not stopped again


def test_a_stop_owed_where_a_start_failed_is_given_for_a_service_with_no_policy_and_no_copy():
    books = Books(excluded={(hid(2), "web"): Exclusion("start failed: timed out", NOW + 300)},
                  cleanup=frozenset({(hid(2), "web")}))
    changes = reconcile(situation(server(1), server(2), web(2), books=books, policy=None))
    assert said(changes)[0] == ("release", "web", 2) and changes.books.cleanup == frozenset()


def test_a_start_unanswered_on_a_host_still_up_is_stopped_there_and_not_on_a_host_gone_down():
    late = Books(orders={1: Pending(Order(1, "assign", hid(2), "web", 1), NOW - 200, NOW - 1)}, next_order=2)
    changes = reconcile(situation(server(1), server(2), server(3), web(2), web(3), books=late))
    assert said(changes) == [("expired", "web", 2), ("release", "web", 2), ("assign", "web", 3)]
    gone = reconcile(situation(server(1), server(2, status="down"), server(3), web(2), web(3), books=late))
    assert said(gone) == [("expired", "web", 2), ("assign", "web", 3)] and gone.books.cleanup == frozenset()


def test_a_move_to_a_host_that_cannot_take_it_is_given_up_with_the_reason():
    rows = (server(1), server(2), server(3, status="down"), web(2, assigned=True), web(3))
    changes = reconcile(situation(*rows, books=Books(moves={"web": hid(3)})))
    assert said(changes) == [("move-failed", "web", 3)]
    assert changes.decisions[0].explanation == "web: the move to 1.2.0.3 is given up: it is not up"
    assert changes.books.moves == {}


def test_a_service_goes_back_to_its_preferred_host_once_it_has_qualified_for_failback_after():
    prefer = PolicyRow("web", 1, None, None, prefer=hid(2), failback_ms=30_000)
    rows = (server(1), server(2), server(3), web(2), web(3, assigned=True))
    first = reconcile(situation(*rows, policy=prefer))
    assert said(first) == [] and first.books.back_since == {(hid(2), "web"): NOW}
    early = reconcile(situation(*rows, policy=prefer, books=first.books, now=NOW + 29))
    assert said(early) == []
    due = reconcile(situation(*rows, policy=prefer, books=first.books, now=NOW + 30))
    assert said(due) == [("failback", "web", 2), ("assign", "web", 2)]
    assert due.books.moves == {"web": hid(2)} and due.books.back_since == {}


def test_a_preferred_host_that_stops_qualifying_starts_its_hold_over():
    prefer = PolicyRow("web", 1, None, None, prefer=hid(2), failback_ms=30_000)
    rows = (server(1), server(2, cpu=900), server(3), web(2), web(3, assigned=True))
    busy = PolicyRow("web", 1, 800, None, prefer=hid(2), failback_ms=30_000)
    books = Books(back_since={(hid(2), "web"): NOW - 100})
    assert reconcile(situation(*rows, policy=busy, books=books)).books.back_since == {}
    assert said(reconcile(situation(*rows, policy=prefer, books=books))) == [("failback", "web", 2),
                                                                             ("assign", "web", 2)]


def test_a_new_copy_goes_to_the_preferred_host_when_it_qualifies():
    prefer = PolicyRow("web", 1, None, None, prefer=hid(4))
    rows = (server(1), server(2), server(3, role="standby"), server(4),
            web(2, assigned=True, state="failed", result="critical"), web(3), web(4))
    changes = reconcile(situation(*rows, policy=prefer))
    assert said(changes) == [("release", "web", 2), ("assign", "web", 4)]
    assert "1.2.0.3: score" in changes.decisions[1].explanation and "not preferred" in changes.decisions[1].explanation


def drained(n, **kw):
    row, cpu = server(n, **kw)
    return [attrs.evolve(row, drained=True), cpu]


def test_a_copy_on_a_drained_host_is_started_elsewhere_then_released_there():
    first = reconcile(situation(drained(1), server(2), server(3), web(1, assigned=True), web(2), web(3)))
    assert said(first) == [("assign", "web", 2)]
    assert "1.2.0.1: drained by the operator" in first.decisions[0].explanation
    started = (drained(1), server(2), server(3), web(1, assigned=True), web(2, assigned=True, state="unknown"), web(3))
    assert said(reconcile(situation(*started, books=attrs.evolve(first.books, orders={})))) == []  # not yet
    both = (drained(1), server(2), server(3), web(1, assigned=True), web(2, assigned=True), web(3))
    then = reconcile(situation(*both, books=attrs.evolve(first.books, orders={})))
    assert said(then) == [("release", "web", 1)]  # the drained copy scores lowest
    assert [(r.host, r.assigned) for r in then.rows] == [(hid(1), False)]


def test_nothing_is_placed_on_a_drained_host():
    changes = reconcile(situation(server(1), drained(2), server(3, status="down"), web(2), web(3)))
    assert said(changes) == [("degraded", "web", None)]
    assert "1.2.0.2: drained by the operator" in changes.decisions[0].explanation


def test_the_last_copy_stays_on_a_drained_host_when_no_other_qualifies_and_says_so():
    for exclusive in (False, True):
        rows = (drained(1), server(2, status="down"), web(1, assigned=True, exclusive=exclusive),
                web(2, exclusive=exclusive))
        changes = reconcile(situation(*rows))
        assert said(changes) == [("degraded", "web", None)]
        assert changes.decisions[0].explanation.startswith("web stays on drained 1.2.0.1: web: no host qualifies")
        assert changes.rows == () and changes.orders == ()


def test_an_exclusive_copy_leaves_a_drained_host_released_first_then_placed():
    rows = (drained(1), server(2), web(1, assigned=True, exclusive=True), web(2, exclusive=True))
    first = reconcile(situation(*rows))
    assert said(first) == [("release", "web", 1)]
    assert first.decisions[0].explanation == ("web released on 1.2.0.1: drained by the operator "
                                              "(exclusive: released first, then placed)")
    released = (drained(1), server(2), web(1, exclusive=True), web(2, exclusive=True))
    assert said(reconcile(situation(*released, books=attrs.evolve(first.books, orders={})))) == [
        ("assign", "web", 2)]


def test_an_undrained_host_takes_copies_again_but_nothing_moves_back_unless_preferred():
    rows = (server(1), server(2), web(1), web(2, assigned=True))
    assert said(reconcile(situation(*rows))) == []
    prefer = PolicyRow("web", 1, None, None, prefer=hid(1), failback_ms=0)
    assert said(reconcile(situation(*rows, policy=prefer))) == [("failback", "web", 1), ("assign", "web", 1)]
    drained_rows = (drained(1), server(2), web(1), web(2, assigned=True))
    assert said(reconcile(situation(*drained_rows, policy=prefer))) == []  # a drained preferred host waits


def test_a_move_to_a_host_drained_since_is_given_up():
    rows = (server(1), drained(2), web(1, assigned=True), web(2))
    changes = reconcile(situation(*rows, books=Books(moves={"web": hid(2)})))
    assert said(changes) == [("move-failed", "web", 2)]
    assert changes.decisions[0].explanation == "web: the move to 1.2.0.2 is given up: drained by the operator"
