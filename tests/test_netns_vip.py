"""etc/actions/rais-vip, run for real in network namespaces on a bridge (rais.netcluster, no node
started): two hosts take turns holding a virtual IP, and a neighbour (the cluster's observer)
whose ARP or neighbour cache must follow it. IPv4 and IPv6 alike.

A neighbour learns the holder's MAC the way a client does, by sending it a packet (a TCP
connect, refused). After a move it sends nothing more, so its entry changes only if the new
holder announces itself: a host that takes the address without announcing it leaves the entry
on the old holder (checked first, so the announcement is what the test sees working; for IPv6
this is also the kernel sending no neighbour advertisement for an address added nodad).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from rais.localcluster import wait_for
from rais.netcluster import VIP, VIP_ACTION, run

pytestmark = pytest.mark.integration

ANNOUNCED = 2.0  # four announcements, half a second apart, the first at once, with slack for a busy machine
RETURNS = 1.0  # an action's longest run: the announcements alone take 2.5 s (the last arping waits 1 s)
FAKE_MAC = "02:00:00:00:00:99"  # locally administered: no namespace has it


@pytest.fixture
def lan(net_cluster):
    """Hosts 1 and 2 and the observer on one bridge, each ``eth0`` inside; no node started."""
    if shutil.which("arping") is None:
        pytest.skip("arping is not installed (Debian: iputils-arping)")
    return net_cluster(["active", "active"])


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def family(request):
    return request.param


def address_of(cluster, family):
    """The VIP: the cluster's 198.18.X.100 or, for IPv6, 2001:2:0:X::100 (2001:2::/48 is IPv6's
    benchmarking block, RFC 5180, as 198.18.0.0/15 is IPv4's)."""
    if family == 4:
        return cluster.vip
    return f"2001:2:0:{cluster.vip.split('.')[2]}::{VIP}"


def prefixed(address):
    """The address with the prefix the hosts hold it under: /32 alone, or a /64 (on-link)."""
    return f"{address}/32" if ":" not in address else f"{address}/64"


def confinement(without=()):
    """setpriv's options for what etc/rais.service leaves the node and its actions: its
    CapabilityBoundingSet (less the capabilities ``without`` names), and NoNewPrivileges."""
    settings = {}
    with open(os.path.join(os.path.dirname(os.path.dirname(VIP_ACTION)), "rais.service")) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            settings[key] = value
    caps = ",".join(f"+{cap.lower().removeprefix('cap_')}" for cap in settings["CapabilityBoundingSet"].split()
                    if cap not in without)
    return ["setpriv", "--bounding-set", f"-all,{caps}"] + \
        (["--no-new-privs"] if settings.get("NoNewPrivileges") == "yes" else []) + ["--"]


def vip(namespace, *args, confined=False, without=()):
    """rais-vip run in a namespace, its output read as RAIS reads an action's: (exit status, what it
    printed on stderr); ``confined``: with only the capabilities etc/rais.service leaves it, less
    those ``without`` names. Every action returns at once, its announcements left running in the
    background with the output closed (RAIS counts an action done when its output closes)."""
    began = time.monotonic()
    confine = confinement(without) if confined else []
    done = subprocess.run(["ip", "netns", "exec", namespace, *confine, VIP_ACTION, *args],
                          capture_output=True, text=True)
    took = time.monotonic() - began
    assert took < RETURNS, f"rais-vip {' '.join(args)} took {took:.2f}s"
    return done.returncode, done.stderr


def entries(namespace, address):
    """``ADDRESS/PREFIX`` for each time ``eth0`` holds the address."""
    family = "-6" if ":" in address else "-4"
    out = run(["ip", "-n", namespace, "-j", family, "addr", "show", "dev", "eth0"])
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link["addr_info"]
                  if a["local"] == address)


def mac(namespace):
    return json.loads(run(["ip", "-n", namespace, "-j", "link", "show", "dev", "eth0"]))[0]["address"]


def cached(namespace, address):
    """The MAC the namespace's neighbour cache has for the address, or None."""
    rows = json.loads(run(["ip", "-n", namespace, "-j", "neigh", "show", "to", address, "dev", "eth0"]) or "[]")
    return rows[0].get("lladdr") if rows else None


def knock(namespace, address):
    """A TCP connect from the namespace to the address (refused): its cache learns the holder's MAC."""
    family = "AF_INET6" if ":" in address else "AF_INET"
    run(["ip", "netns", "exec", namespace, sys.executable, "-c",
         f"import socket; s = socket.socket(socket.{family}); s.settimeout(2); s.connect_ex(({address!r}, 9))"])


def neighbour(cluster, family):
    """The observer, with an IPv6 address on the VIP's /64 for the IPv6 case."""
    if family == 6:
        run(["ip", "-n", cluster.observer, "addr", "add", f"{address_of(cluster, 6).rsplit(':', 1)[0]}:250/64",
             "dev", "eth0", "nodad"])
    return cluster.observer


NO_DEVICE = "raisnodev0"


@pytest.mark.parametrize("args", [
    [],
    ["start", "192.0.2.1"],
    ["start", "192.0.2.1", "eth0", "extra"],
    ["restart", "192.0.2.1", "eth0"],
    ["start", "192.0.2", "eth0"],  # ip would take it as 192.0.0.2
    ["start", "192.0.2.256", "eth0"],
    ["start", "192.0.2.01", "eth0"],
    ["start", "192.0.2.1/33", "eth0"],
    ["start", "192.0.2.1/", "eth0"],
    ["stop", "2001:db8::zz", "eth0"],
    ["stop", "2001:db8:::1", "eth0"],
    ["status", "2001:db8::1/129", "eth0"],
    ["announce", "2001:db8::1%eth0", "eth0"],
    ["start", "192.0.2.1", "eth0/1"],
    ["start", "192.0.2.1", ""],
], ids=lambda args: " ".join(args) or "none")
def test_a_usage_error_exits_2_and_changes_nothing(args):
    # Run on this host, so on a device that cannot exist here: a check that broke would fail on it
    # (exit 1), not put an address on a real interface.
    args = [NO_DEVICE if a == "eth0" else a for a in args]
    done = subprocess.run([VIP_ACTION, *args], capture_output=True, text=True)
    assert done.returncode == 2, done
    assert "usage: rais-vip start|stop|status|announce ADDRESS[/PREFIX] DEVICE" in done.stderr


def test_start_holds_the_address_once_status_tells_and_stop_lets_it_go(lan, family):
    """Start twice, then once more without the prefix: one address. Stop without the prefix removes
    it whatever prefix it is held with (for IPv6 a /64: deleting a /128 would fail), and again is
    fine."""
    host = lan.nodes[0].namespace
    address = address_of(lan, family)
    assert vip(host, "status", address, "eth0") == (3, "")
    for args in ([prefixed(address)], [prefixed(address)], [address]):
        assert vip(host, "start", *args, "eth0") == (0, "")
        assert entries(host, address) == [prefixed(address)]
        assert vip(host, "status", address, "eth0") == (0, "")
    assert vip(host, "stop", address, "eth0") == (0, "")
    assert entries(host, address) == []
    assert vip(host, "status", prefixed(address), "eth0") == (3, "")
    assert vip(host, "stop", prefixed(address), "eth0") == (0, "")


def test_an_address_is_matched_by_value_not_spelling(lan):
    host = lan.nodes[0].namespace
    address = address_of(lan, 6)
    spelled = address.replace("2001:2:0:", "2001:0002:0000:")
    assert vip(host, "start", f"{spelled}/64", "eth0") == (0, "")
    assert entries(host, address) == [f"{address}/64"]
    assert vip(host, "status", address, "eth0") == (0, "")
    assert vip(host, "stop", spelled, "eth0") == (0, "")
    assert entries(host, address) == []


def test_stop_removes_every_prefix_an_ipv4_address_is_held_with(lan):
    """IPv4 lets one address be held as a /24 and a /32 at once; stop leaves neither."""
    host = lan.nodes[0].namespace
    address = lan.vip
    run(["ip", "-n", host, "addr", "add", f"{address}/24", "dev", "eth0"])
    assert vip(host, "start", f"{address}/32", "eth0") == (0, "")
    assert entries(host, address) == [f"{address}/24"]  # already held: left as it is
    run(["ip", "-n", host, "addr", "add", f"{address}/32", "dev", "eth0"])
    assert vip(host, "stop", address, "eth0") == (0, "")
    assert entries(host, address) == []


def test_a_missing_device_fails_start_and_is_not_holding_for_stop_and_status(lan):
    host = lan.nodes[0].namespace
    code, err = vip(host, "start", lan.vip, "eth9")
    assert code == 1 and "eth9" in err
    assert vip(host, "stop", lan.vip, "eth9") == (0, "")
    assert vip(host, "status", lan.vip, "eth9") == (3, "")


def test_a_neighbour_follows_the_address_to_its_new_holder(lan, family):
    """Host 1 holds the address and the neighbour learns its MAC. Host 2 takes it without
    announcing: the neighbour still names host 1. ``announce`` on host 2 moves the entry to host 2;
    a move back with stop and start moves it to host 1."""
    (one, two), peer = [n.namespace for n in lan.nodes], neighbour(lan, family)
    address = address_of(lan, family)
    assert vip(one, "start", prefixed(address), "eth0") == (0, "")
    knock(peer, address)
    assert cached(peer, address) == mac(one)

    assert vip(one, "stop", address, "eth0") == (0, "")
    quiet = ["nodad"] if family == 6 else []
    run(["ip", "-n", two, "addr", "add", prefixed(address), "dev", "eth0", *quiet])
    assert not wait_for(lambda: cached(peer, address) != mac(one), ANNOUNCED), "announced without rais-vip"

    assert vip(two, "announce", address, "eth0") == (0, "")
    assert wait_for(lambda: cached(peer, address) == mac(two), ANNOUNCED), cached(peer, address)

    assert vip(two, "stop", address, "eth0") == (0, "")
    assert vip(one, "start", prefixed(address), "eth0") == (0, "")
    assert wait_for(lambda: cached(peer, address) == mac(one), ANNOUNCED), cached(peer, address)


def test_the_units_capabilities_are_enough_to_take_announce_and_drop_the_address(lan, family):
    """Run as etc/rais.service runs the node's actions (root with only CAP_NET_ADMIN and CAP_NET_RAW,
    no new privileges), a move still reaches the neighbour and the stop still removes the address."""
    (one, two), peer = [n.namespace for n in lan.nodes], neighbour(lan, family)
    address = address_of(lan, family)
    assert vip(one, "start", prefixed(address), "eth0") == (0, "")
    knock(peer, address)
    assert vip(one, "stop", address, "eth0") == (0, "")
    assert vip(two, "start", prefixed(address), "eth0", confined=True) == (0, "")
    assert wait_for(lambda: cached(peer, address) == mac(two), ANNOUNCED), cached(peer, address)
    assert vip(two, "stop", address, "eth0", confined=True) == (0, "")
    assert entries(two, address) == []


def test_without_cap_net_raw_start_fails_and_says_so_before_it_takes_the_address(lan, family):
    """The announcements run with their output closed: without CAP_NET_RAW they would fail unseen,
    and the host would hold an address its clients still look for on the previous holder. So start
    and announce refuse, saying why, and the address is not taken (the master tries another host)."""
    one = lan.nodes[0].namespace
    address = address_of(lan, family)
    status, said = vip(one, "start", prefixed(address), "eth0", confined=True, without={"CAP_NET_RAW"})
    assert (status, said) == (1, "rais-vip: no CAP_NET_RAW: announcements need it (CapabilityBoundingSet in "
                                 "rais.service)\n")
    assert entries(one, address) == []
    assert vip(one, "start", prefixed(address), "eth0") == (0, "")
    assert vip(one, "announce", address, "eth0", confined=True, without={"CAP_NET_RAW"})[0] == 1
    assert vip(one, "stop", address, "eth0", confined=True, without={"CAP_NET_RAW"}) == (0, "")  # stop needs none
    assert entries(one, address) == []


def held_then_let_go(cluster, family):
    """Host 1 takes the address and stops 0.25 s later, between its first announcement and its
    second; then the neighbour's entry, which named host 1, is set to a MAC nobody has. Returns
    host 1, the neighbour and the address."""
    one, peer = cluster.nodes[0].namespace, neighbour(cluster, family)
    address = address_of(cluster, family)
    started = time.monotonic()
    assert vip(one, "start", prefixed(address), "eth0") == (0, "")
    knock(peer, address)
    assert cached(peer, address) == mac(one)
    time.sleep(max(0.0, started + 0.25 - time.monotonic()))
    assert vip(one, "stop", address, "eth0") == (0, "")
    run(["ip", "-n", peer, "neigh", "replace", address, "lladdr", FAKE_MAC, "dev", "eth0", "nud", "stale"])
    return one, peer, address


@pytest.mark.parametrize("nonlocal_bind", [False, True], ids=["bind-held-only", "nonlocal-bind"])
def test_no_announcement_once_the_address_is_let_go(lan, family, nonlocal_bind):
    """A host stopped after its first announcement sends none of the other three: the neighbour's
    entry stays where it was set meanwhile. One sent after the stop would point it back at a host
    that no longer answers. Also where the host may bind addresses it does not hold
    (ip_nonlocal_bind, set for services that bind a VIP before they have it): the senders' bind
    fails no more, and the check before each announcement is what stops them."""
    if nonlocal_bind:
        run(["ip", "netns", "exec", lan.nodes[0].namespace, "sysctl", "-q",
             f"net.ipv{family}.ip_nonlocal_bind=1"])
    _, peer, address = held_then_let_go(lan, family)
    assert not wait_for(lambda: cached(peer, address) != FAKE_MAC, ANNOUNCED), "announced after the stop"


def test_announce_on_a_host_without_the_address_sends_nothing(lan, family):
    """announce succeeds and sends nothing where the address is not held: on the host that just let
    it go, and on one that never held it."""
    one, peer, address = held_then_let_go(lan, family)
    assert vip(lan.nodes[1].namespace, "announce", address, "eth0") == (0, "")
    assert vip(one, "announce", address, "eth0") == (0, "")
    assert not wait_for(lambda: cached(peer, address) != FAKE_MAC, ANNOUNCED), "announced without the address"
