"""/metrics: nodes wired as rais.daemon wires them (DaemonEffects, NodeMetrics, the transport; see
tests/test_transport.py) on an in-memory multicast and a fake clock, read as a scrape reads them."""

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from rais.control import control_site
from rais.effects import Decided, RoleChanged, TablesChanged
from rais.ids import HostClusterId
from rais.interfaces import ProbeResult, Status
from rais.metrics import NodeMetrics
from rais.reconcile import Decision
from rais.wire import ServiceDecl
from tests.test_transport import PORT, Daemon, deliver, make

WEB = ServiceDecl("web", "tcp", 80, True, True, True, "{}")
PROBE_LATENCY = 0.003


class Prober:
    """Every check answers at once, in PROBE_LATENCY seconds."""

    def run(self, order):
        return succeed(ProbeResult(Status.OK, PROBE_LATENCY, "fine"))


def value(daemon, name, **labels):
    return daemon.metrics.registry.get_sample_value(name, labels)


def run(nodes, clock, seconds):
    """Beat every interval, tick every quarter and poll the probes, multicasting what each says."""
    for step in range(round(seconds * 4)):
        clock.advance(0.25)
        for n in nodes:
            if step % 4 == 0:
                n.beat()
            n.tick()
            n.driver.poll_probes()
        for sender in nodes:
            deliver(sender, nodes)


@pytest.fixture
def cluster():
    clock = Clock()
    clock.advance(1000)
    nodes = [make(n, clock, role, services=(WEB,), prober=Prober())
             for n, role in ((1, "master"), (2, "active"), (3, "standby"))]
    run(nodes, clock, 8)
    assert nodes[0].node.role == "master" and nodes[1].node.master(clock.seconds()) == nodes[0].node.id
    return nodes


def test_the_node_as_it_is_now(cluster):
    master, active, standby = cluster
    # web runs on the configured standby too: serving, it is active (rais.pool).
    for n, role in ((master, "master"), (active, "active"), (standby, "active")):
        assert {r: value(n, "rais_role", role=r) for r in ("master", "active", "standby")} == {
            r: float(r == role) for r in ("master", "active", "standby")}
        assert value(n, "rais_term") == master.node.term
        assert value(n, "rais_tables_generation") == master.node.tables.generation
        assert {s: value(n, "rais_hosts", status=s) for s in ("up", "suspect", "down")} == {
            "up": 3, "suspect": 0, "down": 0}
        # Every host serves web: no spare, and none asked for (the config default is 1; Timing's 0).
        assert {s: value(n, "rais_cluster_state", state=s) for s in ("optimal", "degraded", "no-spare-left")} == {
            "optimal": 0.0, "degraded": 0.0, "no-spare-left": 1.0}
        assert {k: value(n, "rais_spares", kind=k) for k in ("free", "in_use", "resting", "min")} == {
            "free": 0, "in_use": 1, "resting": 0, "min": 0}
        states = {s: value(n, "rais_services", state=s) for s in ("running", "stopped", "failed", "unknown")}
        assert states == {"running": 3, "stopped": 0, "failed": 0, "unknown": 0}  # web, probed ok on each host
        counters = n.protocol.counters()
        assert value(n, "rais_datagrams_received_total") == counters["received"] > 0
        assert value(n, "rais_datagrams_sent_total") == counters["sent"] > 0


def test_what_happened_is_counted(cluster):
    master, active, _ = cluster
    assert value(master, "rais_elections_total") == 1 and value(active, "rais_elections_total") == 0
    committed = value(master, "rais_generations_total", how="committed")
    assert committed == master.node.tables.generation
    assert value(active, "rais_generations_total", how="applied") > 0
    assert value(master, "rais_sync_sent_bytes_total") > 0 and value(active, "rais_sync_sent_bytes_total") == 0
    # Every host hears every transfer, the master its own looped back (then ignored by its node).
    assert value(active, "rais_sync_received_bytes_total") == value(master, "rais_sync_received_bytes_total") > 0
    probes = value(master, "rais_probe_latency_seconds_count", probe="tcp")
    assert probes >= 3  # web on each of the three hosts
    assert value(master, "rais_probe_latency_seconds_bucket", probe="tcp", le="0.005") == probes
    assert value(master, "rais_probe_latency_seconds_bucket", probe="tcp", le="0.0025") == 0
    assert value(master, "rais_probe_latency_seconds_sum", probe="tcp") == pytest.approx(probes * PROBE_LATENCY)
    assert value(active, "rais_probe_latency_seconds_count", probe="tcp") is None  # only the master probes


def test_drops_are_counted_by_reason(cluster):
    _, active, _ = cluster
    assert value(active, "rais_datagrams_dropped_total", reason="malformed") is None  # none yet
    active.protocol.datagramReceived(b"\x30\x03junk", ("10.0.0.9", PORT))
    assert value(active, "rais_datagrams_dropped_total", reason="malformed") == 1


def test_failovers_are_the_decisions_that_move_a_copy_and_elections_the_terms_begun():
    metrics = NodeMetrics(Daemon(None, None), Clock())
    host = HostClusterId.parse("1.2.0.3")
    for action in ("assign", "unassign", "release", "degraded", "waiting", "started"):
        metrics.event(Decided(Decision(action, "web", host, f"web: {action}")))
    metrics.event(Decided(Decision("assign", "web", host, "web: assign"), repeated=True))  # said again
    metrics.event(RoleChanged("standby", "master", 1 << 16 | 1, "the master is gone"))
    metrics.event(RoleChanged("master", "master", 2 << 16 | 1, "a partition healed"))  # a new term of ours
    metrics.event(RoleChanged("master", "standby", 3 << 16 | 2, "a newer term"))
    metrics.event(TablesChanged("applied snapshot", 7, 1 << 16 | 1))
    value = metrics.registry.get_sample_value
    assert {a: value("rais_failovers_total", {"action": a}) for a in ("assign", "unassign", "release")} == {
        "assign": 1, "unassign": 1, "release": 1}
    assert value("rais_elections_total") == 2
    assert value("rais_generations_total", {"how": "applied snapshot"}) == 1
    assert value("rais_role", {"role": "master"}) is None  # no node yet: nothing to say about it


def test_the_control_endpoint_serves_it_in_the_text_format(cluster):
    master = cluster[0]
    site = control_site(lambda: {}, lambda command: succeed("ok"), master.metrics.registry)
    request = DummyRequest([b"metrics"])
    body = site.getResourceFor(request).render(request).decode()
    assert request.responseHeaders.getRawHeaders(b"content-type")[0] == b"text/plain; version=0.0.4; charset=utf-8"
    assert "# HELP rais_role " in body and 'rais_role{role="master"} 1.0' in body
    assert 'rais_hosts{status="up"} 3.0' in body


def promtool_check(text):
    """`promtool check metrics` on ``text``: its complaints, "" when it has none."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return f"exit {done.returncode}: {done.stdout}{done.stderr}" if done.returncode or done.stdout else ""


def test_promtool_finds_nothing_to_say(cluster):
    for n in cluster:
        assert promtool_check(generate_latest(n.metrics.registry).decode()) == ""
