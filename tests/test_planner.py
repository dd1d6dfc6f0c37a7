"""The planner, from scenario tables; its choices against exhaustive search."""

import itertools

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rais.ids import ClusterId, HostClusterId
from rais.planner import WEIGHT_NAMES, View, place, place_copies, score_host, surplus
from rais.tables import Tables
from rais.wire.rows import CpuRow, LatencyRow, NetworkRow, PolicyRow, ServerRow, ServiceRow, Weights

CLUSTER = ClusterId.parse("1.2")


def hid(n):
    return HostClusterId.of(CLUSTER, n)


def host(n, role="active", status="up", cpu=0.1, rtt_ms=1.0, net=0, **services):
    """Rows for host n; services: name=(assigned, state, result, can_start)."""
    rows = [ServerRow(host=hid(n), role=role, configured=role, status=status, priority=100, address=f"10.0.0.{n}",
                      boot_epoch=1, last_heard_ms=0, catalogue=bytes(8)),
            CpuRow(hid(n), round(cpu * 1000)), NetworkRow(hid(n), net, 0), LatencyRow(hid(n), round(rtt_ms * 1000))]
    for name, (assigned, state, result, can_start) in services.items():
        rows.append(ServiceRow(host=hid(n), name=name, probe="tcp", port=80, running=assigned, assigned=assigned,
                               can_start=can_start, can_stop=True, state=state, result=result,
                               latency_us=None, detail="", options="{}", changed_ms=0))
    return rows


RUNNING = (True, "running", "ok", True)
SPARE = (False, "stopped", "ok", True)  # declared, warm, not serving
COLD = (False, "stopped", "critical", True)  # declared, can be started
BROKEN = (False, "stopped", "critical", False)  # declared, not answering, no start action


def view(*hosts, policy=None):
    rows = [r for h in hosts for r in h]
    if policy is not None:
        rows.append(policy)
    return View(Tables.of(65537, 1, rows))


FAILED_HERE = {hid(1): "the service failed here"}


def test_a_failed_service_goes_to_the_best_other_host_and_says_why():
    v = view(host(1, web=RUNNING), host(2, web=SPARE, cpu=0.5), host(3, role="standby", web=SPARE),
             host(4, web=COLD))
    assign = place(v, "web", FAILED_HERE, origin=hid(1))
    assert assign.host == hid(3)  # the idle standby
    text = assign.explanation
    assert text.startswith("web -> 1.2.0.3 (score ") and "1.2.0.1: the service failed here" in text
    assert "1.2.0.2: score" in text and "less" in text
    assert [s.host for s in assign.scores if s.eligible] == [hid(3), hid(2), hid(4)]


@pytest.mark.parametrize("candidate,policy,reason", [
    (host(2, status="down", web=SPARE), None, "down"),
    (host(2, status="suspect", web=SPARE), None, "suspect"),
    (host(2, web=RUNNING), None, "already serves it"),
    (host(2, cpu=0.93, web=SPARE), PolicyRow("web", 1, 850, None), "cpu 0.93 > max_cpu 0.85"),
    (host(2, rtt_ms=62, web=SPARE), PolicyRow("web", 1, None, 50_000), "latency 62.0 ms > max_latency_ms 50"),
    (host(2, web=BROKEN), None, "its probe fails and it has no start action"),
])
def test_hard_limits_rule_a_host_out(candidate, policy, reason):
    v = view(host(1, web=RUNNING), candidate, policy=policy)
    assign = place(v, "web", FAILED_HERE, origin=hid(1))
    assert assign.host is None
    assert f"1.2.0.2: {reason}" in assign.explanation


@pytest.mark.parametrize("better,worse", [
    (host(2, cpu=0.2, web=SPARE), host(3, cpu=0.6, web=SPARE)),
    (host(2, rtt_ms=2, web=SPARE), host(3, rtt_ms=30, web=SPARE)),
    (host(2, net=10_000_000, web=SPARE), host(3, net=100_000_000, web=SPARE)),
    (host(2, role="standby", web=SPARE), host(3, web=SPARE)),
    (host(2, web=SPARE), host(3, web=COLD)),  # warm beats cold
    (host(2, web=SPARE, db=RUNNING), host(3, web=SPARE)),  # its companion db already runs there
])
def test_each_component_prefers_the_better_host(better, worse):
    v = view(host(1, web=RUNNING, db=RUNNING), worse, better)
    assert place(v, "web", {hid(1): "failed"}, origin=hid(1)).host == hid(2)


def test_ties_go_to_the_lower_host_id():
    v = view(host(5, web=SPARE), host(3, web=SPARE), host(4, web=SPARE))
    assert place(v, "web").host == hid(3)


def test_nothing_qualifies_is_degraded_never_dropped():
    v = view(host(1, web=RUNNING))
    d = place(v, "web", FAILED_HERE, origin=hid(1))
    assert d.host is None and "no host qualifies" in d.explanation
    assert place(view(host(1)), "web").explanation == "web: no host qualifies (no host declares it)"


def test_replicas_are_added_to_the_best_distinct_hosts_and_extra_ones_released():
    policy = PolicyRow("web", 3, None, None)
    v = view(host(1, web=RUNNING), host(2, cpu=0.9, web=SPARE), host(3, web=SPARE), host(4, web=SPARE),
             policy=policy)
    assert [d.host for d in place_copies(v, "web", 2)] == [hid(3), hid(4)]
    many = view(host(1, web=RUNNING), host(2, cpu=0.9, web=RUNNING), host(3, web=RUNNING),
                policy=PolicyRow("web", 2, None, None))
    (release,) = surplus(many, "web", 2)
    assert release.host == hid(2)  # the busiest copy goes


roles = st.sampled_from(["active", "standby"])
states = st.sampled_from([RUNNING, SPARE, COLD, BROKEN])


@settings(max_examples=200, deadline=None)
@given(
    cluster=st.lists(st.tuples(roles, st.floats(0, 1), st.floats(0.1, 80), states,
                               st.sampled_from(["up", "up", "down"])), min_size=1, max_size=6),
    max_cpu=st.none() | st.integers(1, 1000),
    max_latency=st.none() | st.integers(1_000, 100_000),
    want=st.integers(1, 4),
)
def test_the_planner_agrees_with_exhaustive_search(cluster, max_cpu, max_latency, want):
    policy = PolicyRow("web", want, max_cpu, max_latency)
    v = view(*(host(n, role, status, cpu, rtt, web=svc) for n, (role, cpu, rtt, svc, status)
               in enumerate(cluster, 1)), policy=policy)
    serving = len(v.serving("web"))
    if serving >= want:
        return
    decisions = place_copies(v, "web", want - serving)
    # Every subset of eligible hosts of the size needed: the best total score, ties to lower ids.
    scored = [score_host(v, row, {}) for row in v.services("web")]
    eligible = [s for s in scored if s.eligible]
    need = min(want - serving, len(eligible))
    best = max(itertools.combinations(eligible, need),
               key=lambda c: (round(sum(s.total for s in c), 6), [-s.host.value for s in c]))
    chosen = [d.host for d in decisions if d.host is not None]
    assert sorted(chosen) == sorted(s.host for s in best)
    assert round(sum(s.total for s in scored if s.host in chosen), 6) == round(sum(s.total for s in best), 6)
    if need < want - serving:
        assert decisions[-1].host is None


def test_a_policy_tunes_the_weights_and_limits_the_network():
    # By default the standby wins; a policy that weighs only cpu picks the idler active.
    hosts = (host(1, web=RUNNING), host(2, role="standby", cpu=0.3, web=SPARE), host(3, cpu=0.1, web=SPARE))
    assert place(view(*hosts), "web", {hid(1): "failed"}).host == hid(2)
    cpu_only = PolicyRow("web", 1, None, None, None, Weights(0, 0, 5000, 0, 0, 0))
    assert place(view(*hosts, policy=cpu_only), "web", {hid(1): "failed"}).host == hid(3)
    capped = PolicyRow("web", 1, None, None, 1_000_000)
    decision = place(view(host(1, web=RUNNING), host(2, net=2_000_000, web=SPARE), policy=capped), "web",
                     {hid(1): "failed"})
    assert decision.host is None and "1.2.0.2: network 16.0 Mbit/s > max_net_mbps 8" in decision.explanation


def test_the_planner_s_weights_are_the_ones_the_wire_carries():
    assert WEIGHT_NAMES == tuple(field.name for field in attrs.fields(Weights))


def test_a_host_with_no_cpu_figure_yet_is_unknown_not_idle():
    """It used to score as 0% busy, the best: a host the master had not yet heard the load of
    won over every host it had."""
    unheard = [r for r in host(3, web=SPARE) if not isinstance(r, CpuRow)]
    v = view(host(1, web=RUNNING), host(2, cpu=0.3, web=SPARE), unheard)
    assign = place(v, "web", FAILED_HERE, origin=hid(1))
    assert assign.host == hid(2)
    assert dict(next(s for s in assign.scores if s.host == hid(3)).parts)["cpu"] == 0.5
