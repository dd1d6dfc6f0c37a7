"""A host's side of orders: each taken once, run once, answered again from memory."""

import attrs

from rais.catalogue import digest_of
from rais.effects import RunAction
from rais.ids import HostClusterId
from rais.orders import FENCE, KEPT_ORDERS, HostOrders
from rais.wire import Order, OrderDone, ServiceDecl

ME = HostClusterId.parse("1.2.0.2")
WEB = ServiceDecl("web", "tcp", 80, False, True, True, "{}")
STATIC = ServiceDecl("static", "tcp", 81, True, False, False, "{}")  # no start or stop action


def test_an_order_runs_once_and_its_answer_is_repeated_from_memory():
    host = HostOrders((WEB,), 1)
    order = Order(3, "assign", ME, "web", 1)
    action = host.take(9, order)
    assert action == RunAction("start", "web", 9, 3)
    assert host.take(9, order) is None  # running
    done = host.finished(action, True, "started")
    assert done == OrderDone(3, "web", True, "started")
    assert host.take(9, order) == done  # answered again, not run again
    assert host.take(10, order) == RunAction("start", "web", 10, 3)  # another term's order 3 is another order


def test_what_runs_here_follows_the_actions_that_succeed():
    host = HostOrders((WEB,), 1)
    before = host.catalogue
    start = host.take(1, Order(1, "assign", ME, "web", 1))
    host.finished(start, False, "exit status 1")
    assert not host.services[0].running and host.catalogue == before
    start = host.take(1, Order(2, "assign", ME, "web", 1))
    host.finished(start, True, "started")
    assert host.services[0].running and host.catalogue == digest_of(host.services) != before
    stop = host.take(1, Order(3, "release", ME, "web", 1))
    assert stop.action == "stop"
    host.finished(stop, True, "stopped")
    assert not host.services[0].running and host.catalogue == before


def test_orders_it_cannot_run_are_answered_at_once():
    host = HostOrders((STATIC,), 1)
    assert host.take(1, Order(1, "assign", ME, "mail", 1)) == OrderDone(1, "mail", False, "not declared here")
    assert host.take(1, Order(2, "release", ME, "static", 1)) == OrderDone(
        2, "static", True, "no stop action: left as it is")


def test_it_remembers_a_bounded_number_of_answers():
    host = HostOrders((STATIC,), 1)
    for n in range(KEPT_ORDERS + 10):
        host.take(1, Order(n, "assign", ME, "mail", 1))
    assert host.take(1, Order(KEPT_ORDERS + 9, "assign", ME, "mail", 1)).detail == "not declared here"
    assert len(host.catalogue_messages()) == 1


VIP = ServiceDecl("vip", "tcp", 80, True, True, True, "{}", exclusive=True, can_refresh=True)


def test_a_refresh_runs_its_action_and_changes_nothing_it_declares():
    host = HostOrders((VIP, STATIC), 1)
    before = host.catalogue
    refresh = host.take(1, Order(1, "refresh", ME, "vip", 1))
    assert refresh == RunAction("refresh", "vip", 1, 1)
    assert host.finished(refresh, True, "refreshed vip") == OrderDone(1, "vip", True, "refreshed vip")
    assert host.catalogue == before
    assert host.take(1, Order(2, "refresh", ME, "static", 1)) == OrderDone(
        2, "static", True, "no refresh action: left as it is")


def test_a_fence_stops_each_exclusive_service_running_here_once_and_answers_nobody():
    others = (attrs.evolve(VIP, name="db", exclusive=False), attrs.evolve(VIP, name="off", running=False))
    host = HostOrders((VIP, *others), 1)
    assert host.runs_exclusive()
    (stop,) = host.fence()
    assert stop == RunAction("stop", "vip", 0, FENCE)
    assert host.fence() == []  # being stopped
    assert host.finished(stop, True, "stopped vip") is None
    assert not host.runs_exclusive() and host.fence() == []
