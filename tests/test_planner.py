"""The planner, from scenario tables; its choices against exhaustive search; `rais plan`."""

import itertools
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rais.ids import ClusterId, HostClusterId
from rais.planner import DEFAULT_WEIGHTS, View, host_down, place, replicas, score_host, service_failed
from rais.tables import Tables
from rais.wire.rows import CpuRow, LatencyRow, NetworkRow, PolicyRow, ServerRow, ServiceRow

CLUSTER = ClusterId.parse("1.2")


def hid(n):
    return HostClusterId.of(CLUSTER, n)


def host(n, role="active", status="up", cpu=0.1, rtt_ms=1.0, net=0, **services):
    """Rows for host n; services: name=(assigned, state, result, can_start)."""
    rows = [ServerRow(hid(n), role, role, status, 100, f"10.0.0.{n}", 1, 0, bytes(8)),
            CpuRow(hid(n), round(cpu * 1000)), NetworkRow(hid(n), net, 0), LatencyRow(hid(n), round(rtt_ms * 1000))]
    for name, (assigned, state, result, can_start) in services.items():
        rows.append(ServiceRow(hid(n), name, "tcp", 80, assigned, assigned, can_start, True, state, result,
                               None, "", "{}", 0))
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


def test_a_failed_service_goes_to_the_best_other_host_and_says_why():
    v = view(host(1, web=RUNNING), host(2, web=SPARE, cpu=0.5), host(3, role="standby", web=SPARE),
             host(4, web=COLD))
    release, assign = service_failed(v, hid(1), "web")
    assert (release.action, release.host) == ("release", hid(1))
    assert (assign.action, assign.host) == ("assign", hid(3))  # the idle standby
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
    release, assign = service_failed(v, hid(1), "web")
    assert assign.action == "degraded" and assign.host is None
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


def test_a_host_going_down_moves_everything_it_served():
    v = view(host(1, web=RUNNING, db=RUNNING, idle=SPARE), host(2, web=SPARE, db=SPARE))
    decisions = host_down(v, hid(1))
    assert [(d.service, d.host) for d in decisions] == [("db", hid(2)), ("web", hid(2))]


def test_nothing_qualifies_is_degraded_never_dropped():
    v = view(host(1, web=RUNNING))
    (_, d) = service_failed(v, hid(1), "web")
    assert d.action == "degraded" and "no host qualifies" in d.explanation
    assert place(view(host(1)), "web").explanation == "web: no host qualifies (no host declares it)"


def test_replicas_are_added_to_the_best_distinct_hosts_and_extra_ones_released():
    policy = PolicyRow("web", 3, None, None)
    v = view(host(1, web=RUNNING), host(2, cpu=0.9, web=SPARE), host(3, web=SPARE), host(4, web=SPARE),
             policy=policy)
    assert [d.host for d in replicas(v, "web")] == [hid(3), hid(4)]
    many = view(host(1, web=RUNNING), host(2, cpu=0.9, web=RUNNING), host(3, web=RUNNING),
                policy=PolicyRow("web", 2, None, None))
    (release,) = replicas(many, "web")
    assert (release.action, release.host) == ("release", hid(2))  # the busiest copy goes


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
    decisions = replicas(v, "web")
    serving = len(v.serving("web"))
    if serving >= want:
        return
    # Every subset of eligible hosts of the size needed: the best total score, ties to lower ids.
    scored = [score_host(v, row, {}, DEFAULT_WEIGHTS)
              for row in v.services("web")]
    eligible = [s for s in scored if s.eligible]
    need = min(want - serving, len(eligible))
    best = max(itertools.combinations(eligible, need),
               key=lambda c: (round(sum(s.total for s in c), 6), [-s.host.value for s in c]))
    chosen = [d.host for d in decisions if d.action == "assign"]
    assert sorted(chosen) == sorted(s.host for s in best)
    assert round(sum(s.total for s in scored if s.host in chosen), 6) == round(sum(s.total for s in best), 6)
    if need < want - serving:
        assert decisions[-1].action == "degraded"


def test_rais_plan_reads_a_saved_status(tmp_path):
    from rais.sim import Simulation

    sim = Simulation(["master", "active", "standby"], services=2)
    sim.run_until(sim.converged, 30)
    sim.run(3)
    doc = sim.masters()[0].node.status(sim.clock.seconds())
    saved = tmp_path / "status.json"
    saved.write_text(json.dumps(doc))
    out = subprocess.run([sys.executable, "-m", "rais.cli", "plan", "--fail", "1.2.0.2", "--tables", str(saved),
                          "--json"], capture_output=True, text=True, check=True)
    decisions = json.loads(out.stdout)
    assert [d["service"] for d in decisions] == ["svc0"]
    assert {s["host"] for s in decisions[0]["scores"]} == {"1.2.0.1", "1.2.0.2", "1.2.0.3"}
    text = subprocess.run([sys.executable, "-m", "rais.cli", "plan", "--fail", "1.2.0.2:svc0", "--tables",
                           str(saved)], capture_output=True, text=True, check=True).stdout
    assert text.startswith("if svc0 fails on 1.2.0.2") and "release: svc0 failed on 1.2.0.2" in text
    bad = subprocess.run([sys.executable, "-m", "rais.cli", "plan", "--fail", "nope", "--tables", str(saved)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--fail" in bad.stderr


def test_a_policy_tunes_the_weights_and_limits_the_network():
    from rais.wire.rows import Weights

    # By default the standby wins; a policy that weighs only cpu picks the idler active.
    hosts = (host(1, web=RUNNING), host(2, role="standby", cpu=0.3, web=SPARE), host(3, cpu=0.1, web=SPARE))
    assert place(view(*hosts), "web", {hid(1): "failed"}).host == hid(2)
    cpu_only = PolicyRow("web", 1, None, None, None, Weights(0, 0, 5000, 0, 0, 0))
    assert place(view(*hosts, policy=cpu_only), "web", {hid(1): "failed"}).host == hid(3)
    capped = PolicyRow("web", 1, None, None, 1_000_000)
    decision = place(view(host(1, web=RUNNING), host(2, net=2_000_000, web=SPARE), policy=capped), "web",
                     {hid(1): "failed"})
    assert decision.action == "degraded" and "1.2.0.2: network 16.0 Mbit/s > max_net_mbps 8" in decision.explanation
