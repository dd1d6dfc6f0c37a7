"""The datagram protocol and the daemon's effects, with an in-memory transport and a fake clock."""

import attrs
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent

from rais.config import load_config
from rais.daemon import DaemonEffects, NodeService
from rais.effects import Driver
from rais.events import EventLog
from rais.ids import HostClusterId
from rais.keys import parse_keys, write_new_key_file
from rais.metrics import NodeMetrics
from rais.node import Node
from rais.probing.schedule import ProbeDefaults
from rais.settings import Identity, Timing
from rais.transport import NodeProtocol
from rais.wire import Heartbeat, seal

KEYS = parse_keys(["1 " + "ab" * 32])
OTHER_KEYS = parse_keys(["1 " + "cd" * 32])
GROUP, PORT = "239.192.1.2", 5150


class FakeMulticast:
    def __init__(self):
        self.written = []
        self.joined = []

    def write(self, data, addr):
        self.written.append((data, addr))

    def setTTL(self, ttl):
        self.ttl = ttl

    def setLoopbackMode(self, mode):
        self.loopback = mode

    def setOutgoingInterface(self, addr):
        self.interface = addr
        return succeed(None)

    def joinGroup(self, group, interface):
        self.joined.append((group, interface))
        return succeed(None)


class Saver:
    def save(self, tables):
        SAVED.append(tables)


SAVED = []


@attrs.define
class Daemon:
    """A node wired as rais.daemon wires it, on a fake multicast transport."""

    node: Node
    protocol: NodeProtocol
    driver: Driver | None = None  # made after its metrics, which read this record (rais.metrics)
    metrics: NodeMetrics | None = None
    answers: list = attrs.Factory(list)  # to operators' commands asked through it

    @property
    def transport(self):
        return self.protocol.transport

    def datagramReceived(self, data, addr):
        self.protocol.datagramReceived(data, addr)

    def beat(self):
        self.driver.beat(None)

    def tick(self):
        self.driver.tick()

    def counters(self):
        return self.protocol.counters()


def make(host, clock, role="active", interval=1.0, dead_after=3, epoch=1, services=(), prober=None, peers=None):
    ident = Identity(id=HostClusterId.parse(f"1.2.0.{host}"), configured=role, address=f"10.0.0.{host}")
    node = Node(ident, epoch, Timing(interval=interval, dead_after=dead_after), clock.seconds(), services=services,
                probing=ProbeDefaults(interval=interval, timeout=interval / 2))
    proto = NodeProtocol(KEYS, ident.id, epoch, GROUP, PORT, "127.0.0.1", 1, peers)
    daemon = Daemon(node, proto)
    daemon.metrics = NodeMetrics(daemon, clock)
    daemon.driver = Driver(node, DaemonEffects(proto, Saver(), clock, {}, None, prober, daemon.metrics,
                                               EventLog(ident.id, clock), daemon.answers.append), clock)
    proto.deliver = daemon.metrics.delivering(daemon.driver.received)
    proto.makeConnection(FakeMulticast())
    return daemon


def deliver(sender, receivers):
    """Multicast what sender wrote to every receiver (itself included, as loopback does)."""
    for data, addr in sender.transport.written:
        assert addr == (GROUP, PORT)
        for r in receivers:
            r.datagramReceived(data, (f"10.0.0.{sender.node.identity.id.host}", PORT))
    sender.transport.written.clear()


def test_joins_the_group_on_the_configured_interface():
    p = make(1, Clock())
    assert p.transport.joined == [(GROUP, "127.0.0.1")]
    assert p.transport.interface == "127.0.0.1" and p.transport.loopback


def test_nodes_hear_each_other_and_notice_silence():
    clock = Clock()
    a, b, c = make(1, clock, "master"), make(2, clock), make(3, clock, "standby")
    nodes = [a, b, c]
    for p in nodes:
        p.beat()
    for p in nodes:
        deliver(p, nodes)
    status = b.node.status(clock.seconds())
    assert [(h["id"], h["configured_role"], h["status"]) for h in status["hosts"]] == [
        ("1.2.0.1", "master", "up"), ("1.2.0.3", "standby", "up")]
    assert status["master"] is None  # nobody claims before listening for dead_after intervals
    assert b.counters() == {"received": 3, "sent": 1, "dropped": {}}  # its own beat looped back too

    # c goes silent; a and b keep beating, and a, the configured master, takes over.
    for _ in range(16):
        clock.advance(0.25)
        for p in (a, b):
            p.beat()
            deliver(p, nodes)
        for p in nodes:
            p.tick()
            deliver(p, nodes)
    status = b.node.status(clock.seconds())
    assert {h["id"]: h["status"] for h in status["hosts"]} == {"1.2.0.1": "up", "1.2.0.3": "down"}
    assert status["master"] == "1.2.0.1" and a.node.role == "master"
    assert SAVED and SAVED[-1].version == a.node.tables.version  # the follower saved what it got
    # What each daemon logged, it keeps for operators: b saw c go down, a became master.
    assert ("host", "1.2.0.3", "host 1.2.0.3 is down (was suspect)") in [
        (e["kind"], e["host"], e["text"]) for e in b.driver.effects.events.json()]
    assert [e["text"] for e in a.driver.effects.events.json() if e["kind"] == "role"][-1].startswith(
        "role standby -> master")


def test_bad_datagrams_are_dropped_and_counted_by_reason():
    clock = Clock()
    a, b = make(1, clock), make(2, clock)
    a.beat()
    (good, _), = a.transport.written
    b.datagramReceived(good, ("10.0.0.1", PORT))
    b.datagramReceived(good, ("10.0.0.1", PORT))                       # replayed
    b.datagramReceived(good[:-1] + bytes([good[-1] ^ 1]), ("10.0.0.1", PORT))  # tampered tag
    stranger = Heartbeat(role="active", priority=1, generation=0, address="x")
    forged = seal(OTHER_KEYS, HostClusterId.parse("1.2.0.9"), 1, 1, 0, stranger)
    b.datagramReceived(forged, ("10.0.0.9", PORT))                     # wrong key
    other = seal(KEYS, HostClusterId.parse("1.3.0.9"), 1, 1, 0, stranger)
    b.datagramReceived(other, ("10.0.0.9", PORT))                      # other cluster
    b.datagramReceived(b"\x30\x03junk", ("10.0.0.9", PORT))            # malformed
    b.datagramReceived(b"\x00" * 5000, ("10.0.0.9", PORT))             # oversized
    assert b.counters()["dropped"] == {
        "replay": 1, "bad-tag": 2, "other-cluster": 1, "malformed": 1, "oversized": 1}
    assert b.counters()["received"] == 1
    assert [str(h["id"]) for h in b.node.status(clock.seconds())["hosts"]] == ["1.2.0.1"]


def test_own_datagrams_are_ignored_and_a_duplicate_id_is_reported_by_both():
    clock = Clock()
    clock.advance(1000)  # heartbeats are stamped with the clock
    a = make(1, clock, epoch=1)
    twin = make(1, clock, epoch=2)
    a.beat()
    twin.beat()
    deliver(a, [a, twin])  # the older one, heard by the newer: no stale-epoch drop hides it
    deliver(twin, [a, twin])
    for node in (a, twin):
        assert node.counters()["dropped"] == {"duplicate-id": 1}
        doc = node.node.status(clock.seconds())
        assert doc["hosts"] == [] and doc["duplicate_id"]["source"] == "10.0.0.1:5150"


def test_a_node_error_costs_one_datagram_not_the_node():
    clock = Clock()
    a, b = make(1, clock), make(2, clock)

    def broken(*args):
        raise RuntimeError("bug")

    b.node.receive = broken
    a.beat()
    deliver(a, [b])
    assert b.counters()["dropped"] == {"internal": 1}


def test_a_send_error_is_counted_and_the_node_keeps_going():
    clock = Clock()
    a = make(1, clock)

    def unreachable(data, addr):
        raise OSError(101, "Network is unreachable")

    a.transport.write = unreachable
    a.beat()
    assert a.counters() == {"received": 0, "sent": 0, "dropped": {"send-error": 1}}


def test_a_node_error_on_a_tick_is_logged_and_the_next_tick_runs():
    clock = Clock()
    a = make(1, clock)
    calls = []

    def broken(now):
        calls.append(now)
        raise RuntimeError("bug")

    a.node.tick = broken
    a.tick()
    a.tick()  # the shell survived the first
    assert len(calls) == 2


def peers_of(host, hosts=(1, 2, 3)):
    return [(f"10.0.0.{h}", PORT) for h in hosts if h != host]


def test_unicast_sends_each_datagram_to_every_peer_and_hears_only_peers():
    clock = Clock()
    a, b, c = (make(h, clock, peers=peers_of(h)) for h in (1, 2, 3))
    assert a.transport.joined == []  # no group, no multicast settings
    a.beat()
    assert [addr for _, addr in a.transport.written] == [("10.0.0.2", PORT), ("10.0.0.3", PORT)]
    assert a.counters()["sent"] == 2 and a.counters()["peers"] == ["10.0.0.2:5150", "10.0.0.3:5150"]
    data = a.transport.written[0][0]
    b.datagramReceived(data, ("10.0.0.1", PORT))
    assert b.counters()["received"] == 1
    # The same datagram from an address b does not send to: kept out, so a peer list that differs
    # between hosts makes no one-way link.
    c.datagramReceived(data, ("10.0.0.9", PORT))
    c.datagramReceived(data, ("10.0.0.1", PORT + 1))
    assert c.counters()["received"] == 0 and c.counters()["dropped"] == {"not-a-peer": 2}
    b.datagramReceived(b"junk", ("10.0.0.3", PORT))  # from a peer's address, but not sealed: not heard
    assert b.protocol.silent() == [("10.0.0.3", PORT)] and c.protocol.silent() == peers_of(3)
    assert b.protocol.silent() == peers_of(2)  # each call looks back to the one before


class FakeUDP:
    """listenUDP's port: writes, and none of the multicast calls."""

    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))


def test_a_unicast_host_whose_peers_list_only_itself_sends_to_nobody_and_hears_nobody():
    """The first host of a cluster brought up with peers: its own entry is not sent to, so it has no
    peer; it is still unicast (its port is listenUDP's, with no multicast calls), not the group."""
    ident = HostClusterId.parse("1.2.0.1")
    proto = NodeProtocol(KEYS, ident, 1, GROUP, PORT, "10.0.0.1", 1, [])
    proto.makeConnection(FakeUDP())
    proto.send(Heartbeat(role="active", priority=1, generation=0, address="10.0.0.1"), 0)
    assert proto.transport.written == [] and proto.counters()["peers"] == []
    sender = make(2, Clock(), peers=peers_of(2))
    sender.beat()
    proto.datagramReceived(sender.transport.written[0][0], ("10.0.0.2", PORT))
    assert proto.counters()["received"] == 0 and proto.counters()["dropped"] == {"not-a-peer": 1}


def test_unicast_nodes_elect_a_master_and_follow_it():
    clock = Clock()
    nodes = [make(h, clock, role, peers=peers_of(h)) for h, role in ((1, "master"), (2, "active"), (3, "standby"))]
    by_address = {f"10.0.0.{n.node.identity.id.host}": n for n in nodes}
    for _ in range(24):
        clock.advance(0.25)
        for n in nodes:
            n.beat()
            n.tick()
        for n in nodes:
            for data, (address, _) in n.transport.written:
                by_address[address].datagramReceived(data, (f"10.0.0.{n.node.identity.id.host}", PORT))
            n.transport.written.clear()
    assert [n.node.status(clock.seconds())["master"] for n in nodes] == ["1.2.0.1"] * 3
    assert all(not n.counters()["dropped"] for n in nodes)


def test_the_node_says_when_the_peers_it_hears_nothing_from_change(tmp_path):
    """A peer list, port or key that differs between hosts shows as peers never heard: said once when
    the silent set changes, not every check."""
    write_new_key_file(str(tmp_path / "rais.key"))
    (tmp_path / "rais.toml").write_text('[cluster]\nid = "1.2"\nkey_file = "rais.key"\n'
                                        'peers = ["10.0.0.2", "10.0.0.3"]\n[node]\nhost_id = 1\naddress = "10.0.0.1"\n')
    service = NodeService(load_config(str(tmp_path / "rais.toml")), (), Clock())
    protocol = service.protocol = NodeProtocol(KEYS, HostClusterId.parse("1.2.0.1"), 1, GROUP, PORT, "0.0.0.0", 1,
                                               peers_of(1))
    sender = make(2, Clock(), peers=peers_of(2))
    sender.beat()
    data = sender.transport.written[0][0]
    with capturedLogs() as events:
        service._peers_heard()  # both silent
        service._peers_heard()  # the same: not said again
        protocol.datagramReceived(data, ("10.0.0.2", PORT))
        service._peers_heard()
        protocol.datagramReceived(b"junk", ("10.0.0.2", PORT))  # not sealed: not heard
        service._peers_heard()  # the same silent set as before: said once
    said = [formatEvent(e) for e in events if e.get("log_namespace") == "rais.daemon.NodeService"]
    assert said == [
        "nothing heard from peers 10.0.0.2:5150 10.0.0.3:5150: is each up, with the same [cluster] peers, port and "
        "key, and is UDP 5150 open between the hosts?",
        "nothing heard from peers 10.0.0.3:5150: is each up, with the same [cluster] peers, port and key, and is "
        "UDP 5150 open between the hosts?",
        "nothing heard from peers 10.0.0.2:5150 10.0.0.3:5150: is each up, with the same [cluster] peers, port and "
        "key, and is UDP 5150 open between the hosts?",
    ]
