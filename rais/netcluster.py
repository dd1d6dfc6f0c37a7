"""A cluster of real twistd nodes, each in its own network namespace, and the faults a test makes.

``NetCluster`` builds one namespace per host on one bridge: a veth (``eth0``
inside), an address in a 198.18.X.0/24 of its own (198.18.0.0/15 is reserved for
network benchmarks, RFC 2544, so unlikely to clash; the bridge's name claims
X, so clusters coexist), loopback up and a route for multicast. The root
namespace gets ``.254`` on the bridge, so this machine reaches every node's
control endpoint (``rais status --control 198.18.X.i:8470``; ``status()`` asks
from inside the node's namespace, so a link down does not hide it), and an
observer namespace (``.250``, no node) captures and injects datagrams. Each
node runs as ``ip netns exec NS twistd -n rais`` with its interface, address
and control endpoint on its own address.

Faults: signals to the processes this object started (kill, freeze, thaw,
restart), a link down, partitions both ways or one way (or at the link layer,
ARP included), and random loss of the cluster's datagrams, with nftables in the
receivers' namespaces; a cut is written for every namespace before any is
applied, and applied to all at once.

A service that moves: ``vip`` (``.100``) is a virtual IP a service's start takes
(``vip_take``: the address, then gratuitous ARPs) and its stop drops
(``vip_drop``), both ``etc/actions/rais-vip``, the script an operator installs;
``serve()`` runs nginx in a node's namespace on every address, so whoever holds
the VIP answers HTTP on it. Watching it: a ``Client`` in the
observer fetches from the VIP every 10 ms and reports the outages, and a
``HolderWatch`` samples which namespaces hold the VIP and reports when two did.

Cleanup, ``close()`` (or leaving the ``with`` block): it stops the processes
it started, then deletes its nftables tables, veths, namespaces and bridge.
Inside the ``with`` block SIGTERM raises KeyboardInterrupt, so a test run that
is terminated still cleans up; a harness killed outright (SIGKILL) takes its
processes with it (they die with their parent), and the next NetCluster made
on this machine deletes the network it left behind.
"""

from __future__ import annotations

import array
import ctypes
import fcntl
import functools
import http.client
import ipaddress
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from types import FrameType, TracebackType
from typing import Any, Self

import attrs

from rais.keys import write_new_key_file
from rais.localcluster import LocalNode, Shared, TwistdCluster, launch, stop_processes, wait_for, write_config

ROOT, OBSERVER = 254, 250  # host parts of the root namespace's and the observer's addresses
VIP, HTTP_PORT = 100, 8080  # the virtual IP's host part; the port serve() listens on
GROUP, PORT, CONTROL_PORT = "239.192.1.2", 5150, 8470  # each cluster has a bridge of its own
# The virtual IP's actions, as an operator installs them: etc/actions/ beside this package.
VIP_ACTION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "etc", "actions", "rais-vip")
TABLE = "raisfault"  # the nftables table in each node's namespace: chains cut and loss
OWNER = "rais.netcluster pid "  # the bridge's alias: which process made it
_CLONE_NEWNET = 0x40000000
_SIOCGIFCONF, _IFREQ = 0x8912, 40  # the ioctl listing a namespace's IPv4 addresses; sizeof(struct ifreq)
# serve()'s nginx: one process (it stops on the SIGTERM close() sends), every file in its folder.
NGINX = """\
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log stderr;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 0.0.0.0:{port};
        root {root};
    }}
}}
"""


class NetError(RuntimeError):
    """A command that builds or changes the network failed."""


def run(argv: list[str], stdin: str | None = None) -> str:
    """Run a command to completion; its output, or NetError with what it said."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


@functools.cache
def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None. Tried in a throwaway namespace."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: iproute2, nftables)"
    probe = f"raisprobe-{os.getpid()}"
    try:
        run(["ip", "netns", "add", probe])
        run(["ip", "-n", probe, "-batch", "-"],
            "link add raisbr type bridge\nlink add raisv type veth peer name raisp\n")
        run(["ip", "netns", "exec", probe, "nft", "add", "table", "inet", TABLE])
    except NetError as e:
        return str(e)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _namespaces() -> list[str]:
    return sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []


def sweep() -> None:
    """Delete the network of every cluster whose harness no longer runs (it was killed outright)."""
    for link in json.loads(run(["ip", "-j", "link", "show", "type", "bridge"]) or "[]"):
        octet = re.fullmatch(r"raisbr(\d+)", link["ifname"])
        owner = re.fullmatch(re.escape(OWNER) + r"(\d+)", link.get("ifalias", ""))
        if octet is None or owner is None or alive(int(owner[1])):
            continue
        ports = [p["ifname"] for p in json.loads(run(["ip", "-j", "link", "show", "master", link["ifname"]]) or "[]")]
        prefix = f"rais{octet[1]}-{owner[1]}-"
        _delete(ports, [ns for ns in _namespaces() if ns.startswith(prefix)], link["ifname"])
    probes = [ns for ns in _namespaces() if (m := re.fullmatch(r"raisprobe-(\d+)", ns)) and not alive(int(m[1]))]
    if probes:
        _delete([], probes, None)  # unavailable()'s, killed before it deleted it


def _kill_left_in(namespace: str) -> None:
    """SIGKILL whatever still runs in one of the cluster's namespaces: a server a start action put in
    the background outlives its node, and would outlive the namespace too."""
    listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout
    for pid in listed.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass  # gone meanwhile


def _delete(veths: Iterable[str], namespaces: Iterable[str], bridge: str | None) -> None:
    """Delete these links and namespaces, whatever is already gone: the veths first (a namespace
    deleted with a veth in it frees the veth only later)."""
    lines = [f"link del {v}" for v in veths] + [f"netns del {ns}" for ns in namespaces]
    lines += [f"link del {bridge}"] if bridge else []
    subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)


def _used_networks() -> list[ipaddress.IPv4Network]:
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
    nets = []
    for r in routes:
        try:
            nets.append(ipaddress.IPv4Network(r["dst"], strict=False))
        except (KeyError, ValueError):
            continue  # "default", "broadcast ..." and the like
    return [n for n in nets if n.prefixlen > 0]


@attrs.define(kw_only=True)
class NetNode(LocalNode):
    index: int  # its place in the cluster, 1..N: its address is .index; host_id may differ
    namespace: str
    veth: str  # its veth's end on the bridge, in the root namespace

    def status(self, timeout: float = 2.0) -> dict[str, Any]:
        """Its status.json, asked from inside its namespace: a link down does not hide it."""
        connection = _NamespaceHTTP(self.namespace, self.address, self.control_port, timeout)
        try:
            connection.request("GET", "/status.json")
            reply = connection.getresponse()
            if reply.status != 200:
                raise OSError(f"{self.address}:{self.control_port}: HTTP {reply.status}")
            return json.load(reply)
        except http.client.HTTPException as e:
            raise OSError(f"{self.address}:{self.control_port}: {e!r}") from e  # as urllib's errors are
        finally:
            connection.close()


@attrs.frozen
class Captured:
    """A datagram the observer saw on the group and port."""

    data: bytes
    source: str  # "address:port"
    at: float  # time.time() when it arrived


def _socket_in(namespace: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A socket in ``namespace``. A network namespace belongs to a thread and a socket stays
    in the namespace it was made in: a thread enters it, makes the socket and ends."""
    made: list[socket.socket | OSError] = []

    def enter() -> None:
        try:
            with open(f"/run/netns/{namespace}") as f:
                if ctypes.CDLL(None, use_errno=True).setns(f.fileno(), _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns {namespace}: {os.strerror(errno)}")
            made.append(socket.socket(socket.AF_INET, kind))
        except OSError as e:
            made.append(e)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    if isinstance(made[0], OSError):
        raise made[0]
    return made[0]


class _NamespaceHTTP(http.client.HTTPConnection):
    """An HTTP connection made from inside a namespace."""

    def __init__(self, namespace: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.namespace = namespace

    def connect(self) -> None:
        self.sock = _socket_in(self.namespace, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))


class NetCluster(TwistdCluster[NetNode]):
    """N twistd nodes, node ``i`` (1-based) in namespace ``...-h<i>`` at ``198.18.X.i``.

    ``settings`` adds [cluster] keys (``quorum = true``); ``extra`` goes into every node's
    config and ``extras[i]`` into node i's; ``host_ids[i]`` gives node i another host id
    (the same as another node's, for a duplicate-id test); ``settle`` is [cluster] settle.
    ``unicast`` lists every node in [cluster] peers instead of a group, and drops multicast at each node.
    """

    def __init__(self, base: str, roles: list[str], interval: float = 1.0, dead_after: int = 3, *,
                 cluster: str = "1.2", settings: str = "", extra: str = "", extras: dict[int, str] | None = None,
                 host_ids: dict[int, int] | None = None, settle: float = 2.0, unicast: bool = False) -> None:
        super().__init__(base, interval, dead_after)
        self.group, self.port = GROUP, PORT
        self.key_path = os.path.join(base, "cluster.key")
        self.bridge: str | None = None
        self._namespaces: list[str] = []
        self._veths: list[str] = []
        self._helpers: list[subprocess.Popen] = []
        self._link_cut: list[str] = []  # namespaces with partition_links()'s chain
        self._injector: socket.socket | None = None
        self._sigterm: Any = None
        try:
            sweep()
            octet = self._claim_bridge()
            net = f"198.18.{octet}"
            self.observer_address = f"{net}.{OBSERVER}"
            self.vip = f"{net}.{VIP}"
            self.observer = f"rais{octet}-{os.getpid()}-obs"
            # unicast: [cluster] peers lists every node, and no multicast datagram reaches any node.
            peers = tuple(f"{net}.{index}" for index in range(1, len(roles) + 1)) if unicast else ()
            shared = Shared(self.group, self.port, interval, dead_after, cluster, settings, extra, settle, peers)
            write_new_key_file(self.key_path)
            for index, role in enumerate(roles, 1):
                node = NetNode(
                    host_id=(host_ids or {}).get(index, index), role=role, folder=os.path.join(base, f"node{index}"),
                    control_port=CONTROL_PORT, address=f"{net}.{index}", index=index,
                    namespace=f"rais{octet}-{os.getpid()}-h{index}", veth=f"rais{octet}v{index}",
                )
                write_config(node, shared, (extras or {}).get(index, ""))
                self.nodes.append(node)
            self._wire([(n.namespace, n.veth, n.address) for n in self.nodes]
                       + [(self.observer, f"rais{octet}vo", self.observer_address)])
            tables = f"add table inet {TABLE}\n" + "".join(
                f"add chain inet {TABLE} {chain} {{ type filter hook input priority {prio}; policy accept; }}\n"
                for chain, prio in (("cut", 0), ("loss", 10)))
            if unicast:
                tables += f"add chain inet {TABLE} nomulticast {{ type filter hook input priority -10; }}\n" \
                          f"add rule inet {TABLE} nomulticast ip daddr 224.0.0.0/4 drop\n"
            self._nft({node.namespace: tables for node in self.nodes})
        except BaseException:
            self.close()
            raise

    def _claim_bridge(self) -> int:
        """Make this cluster's bridge on a free 198.18.X.0/24; its name raisbrX claims X."""
        used = _used_networks()
        free = [x for x in range(256) if not any(
            n.overlaps(ipaddress.IPv4Network(f"198.18.{x}.0/24")) for n in used)]
        random.shuffle(free)  # two harnesses starting together rarely reach for the same one
        for octet in free:
            bridge = f"raisbr{octet}"
            try:
                run(["ip", "link", "add", bridge, "type", "bridge", "mcast_snooping", "0"])
            except NetError as e:
                if "exists" in str(e):
                    continue  # another cluster's
                raise
            self.bridge = bridge
            run(["ip", "-batch", "-"], f'link set {bridge} alias "{OWNER}{os.getpid()}"\n'
                f"link set {bridge} up\naddr add 198.18.{octet}.{ROOT}/24 dev {bridge}\n")
            return octet
        raise NetError("no free /24 in 198.18.0.0/16 for a cluster")

    def _wire(self, hosts: list[tuple[str, str, str]]) -> None:
        """For each (namespace, veth, address): the namespace, its veth on the bridge as eth0 inside,
        its address, loopback, and the multicast route."""
        lines = []
        for namespace, veth, _ in hosts:
            self._namespaces.append(namespace)
            self._veths.append(veth)
            lines += [f"netns add {namespace}", f"link add {veth} type veth peer name eth0 netns {namespace}",
                      f"link set {veth} master {self.bridge} up"]
        run(["ip", "-batch", "-"], "\n".join(lines) + "\n")
        for namespace, _, address in hosts:
            run(["ip", "-n", namespace, "-batch", "-"],
                f"link set lo up\naddr add {address}/24 dev eth0\nlink set eth0 up\nroute add 224.0.0.0/4 dev eth0\n")

    def _nft(self, scripts: dict[str, str]) -> None:
        """Run an nft script in each namespace named: all started before any is waited for, so
        a cut lands everywhere within a few milliseconds; each script is one nft transaction."""
        running = [(namespace, subprocess.Popen(["ip", "netns", "exec", namespace, "nft", "-f", "-"],
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
                   for namespace in scripts]
        failed = []
        for namespace, p in running:
            _, err = p.communicate(scripts[namespace])
            if p.returncode != 0:
                failed.append(f"{namespace}: {err.strip()}")
        if failed:
            raise NetError("nft: " + "; ".join(failed))

    # The processes.

    def command(self, node: NetNode) -> list[str]:
        return ["ip", "netns", "exec", node.namespace, *super().command(node)]

    def restart(self, node: NetNode) -> None:
        """Stop the node with SIGTERM, start it again, and wait until it answers."""
        self.kill(node, signal.SIGTERM)
        self.start(node)
        self.wait_ready()

    def freeze(self, node: NetNode) -> None:
        """SIGSTOP: the node stops dead, its sockets open, until thawed."""
        assert node.process is not None
        node.process.send_signal(signal.SIGSTOP)

    def thaw(self, node: NetNode) -> None:
        """SIGCONT: a frozen node resumes where it stopped, its socket's queue waiting."""
        assert node.process is not None
        node.process.send_signal(signal.SIGCONT)

    def spawn(self, node: NetNode, argv: list[str], log: str | None = None) -> subprocess.Popen:
        """Another process in the node's namespace (a server for a probe, another failover
        daemon), stopped by close(). Its stderr goes to ``log`` if given (a log to read back
        alone), else to helpers.log in the node's folder."""
        p = launch(["ip", "netns", "exec", node.namespace, *argv], node.folder,
                   log or os.path.join(node.folder, "helpers.log"))
        self._helpers.append(p)
        return p

    def listen(self, node: NetNode, port: int) -> subprocess.Popen:
        """A TCP (HTTP) server on the node's address, for a tcp or http probe to find."""
        return self.spawn(node, [sys.executable, "-m", "http.server", "--bind", node.address, str(port)])

    def status(self, node: NetNode, timeout: float = 2.0) -> dict[str, Any]:
        return node.status(timeout)

    # A service that moves: the virtual IP, and a server wherever it goes.

    def vip_action(self, action: str) -> list[str]:
        """The argv of ``rais-vip ACTION`` for the VIP on a node's eth0 (start, stop, status, announce)."""
        return [VIP_ACTION, action, f"{self.vip}/32", "eth0"]

    @property
    def vip_announce(self) -> str:
        """Shell: announce the VIP again from this host, in the background, only while it holds it
        (rais-vip: gratuitous ARPs, four, half a second apart)."""
        return shlex.join(self.vip_action("announce"))

    @property
    def vip_take(self) -> str:
        """Shell: hold the VIP (holding it already is fine), then announce it."""
        return shlex.join(self.vip_action("start"))

    @property
    def vip_drop(self) -> str:
        """Shell: let the VIP go (not holding it is fine)."""
        return shlex.join(self.vip_action("stop"))

    def take_vip(self, node: NetNode) -> None:
        """The node's host takes the VIP now, outside its node: as a host whose boot brings it up."""
        run(["ip", "netns", "exec", node.namespace, *self.vip_action("start")])

    def drop_vip(self, node: NetNode) -> None:
        """The node's host loses the VIP, outside its node: as a reboot does."""
        run(["ip", "netns", "exec", node.namespace, *self.vip_action("stop")])

    def serve(self, node: NetNode, port: int = HTTP_PORT) -> subprocess.Popen:
        """nginx in the node's namespace on every address (the VIP too, whenever it is there),
        answering ``GET /`` with ``host N``; listening once this returns, stopped by close()."""
        if shutil.which("nginx") is None:
            raise NetError("nginx is not installed (Debian: nginx-light)")
        root = os.path.join(node.folder, "www")
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(f"host {node.index}\n")
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX.format(root=root, port=port))
        server = self.spawn(node, ["nginx", "-e", "stderr", "-p", root, "-c", conf])

        def answers() -> bool:
            with _socket_in(node.namespace, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                return sock.connect_ex((node.address, port)) == 0

        if not wait_for(lambda: server.poll() is not None or answers(), 10) or server.poll() is not None:
            raise NetError(f"nginx in {node.namespace} did not start: see {node.folder}/helpers.log")
        return server

    # The network.

    def link_down(self, node: NetNode) -> None:
        """The node's cable pulled: its veth's bridge end down (inside, eth0 loses its carrier)."""
        run(["ip", "link", "set", node.veth, "down"])

    def link_up(self, node: NetNode) -> None:
        run(["ip", "link", "set", node.veth, "up"])

    def partition(self, groups: Sequence[Sequence[NetNode]]) -> None:
        """Each group hears only itself (both ways); nodes in no group, and the observer, hear
        and are heard by all. Replaces the previous cut."""
        drops = {}
        for group in groups:
            others = [n.address for g in groups if g is not group for n in g]
            for node in group:
                drops[node.namespace] = others
        self._cut(drops)

    def partition_one_way(self, src: Sequence[NetNode], dst: Sequence[NetNode]) -> None:
        """``dst`` stops hearing ``src`` (dropped at the receivers by source address); ``src``
        still hears ``dst``. Replaces the previous cut."""
        self._cut({node.namespace: [n.address for n in src] for node in dst})

    def partition_links(self, groups: Sequence[Sequence[NetNode]], observer: int | None = None) -> None:
        """Each group hears only itself, and at the link layer: every frame from another group's
        host, ARP included, is dropped where it arrives (by its source MAC), as if each group had a
        switch of its own. The observer is in ``groups[observer]``, or hears and is heard by all, as
        are nodes in no group. partition() lets ARP through, and a gratuitous ARP reaches every
        side; with this one, a client on the observer's side misses the other side's. Replaces the
        previous such cut; heal() ends both kinds."""
        members = [[n.namespace for n in group] + ([self.observer] if i == observer else [])
                   for i, group in enumerate(groups)]
        macs = {ns: json.loads(run(["ip", "-n", ns, "-j", "link", "show", "dev", "eth0"]))[0]["address"]
                for group in members for ns in group}
        scripts = {}
        for group in members:
            others = [macs[ns] for g in members if g is not group for ns in g]
            for ns in group:
                scripts[ns] = (f"add table netdev {TABLE}\nadd chain netdev {TABLE} link {{ type filter hook "
                               f"ingress device eth0 priority 0; policy accept; }}\nflush chain netdev {TABLE} link\n"
                               + (f"add rule netdev {TABLE} link ether saddr {{ {', '.join(others)} }} drop\n"
                                  if others else ""))
        scripts |= {ns: f"flush chain netdev {TABLE} link\n" for ns in self._link_cut if ns not in scripts}
        self._nft(scripts)
        self._link_cut = sorted(scripts)

    def heal(self) -> None:
        self._cut({})
        if self._link_cut:
            self._nft({ns: f"flush chain netdev {TABLE} link\n" for ns in self._link_cut})

    def _cut(self, drops: dict[str, list[str]]) -> None:
        """Per namespace, the source addresses its node stops hearing; every other node hears all."""
        self._nft({n.namespace: self._chain("cut", f"ip saddr {{ {', '.join(drops[n.namespace])} }} drop"
                                            if drops.get(n.namespace) else None) for n in self.nodes})

    def loss(self, percent: int, nodes: Sequence[NetNode] | None = None) -> None:
        """Drop ``percent``% of the incoming datagrams on the cluster's port, at random, in every
        node's namespace (or the given nodes')."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss of {percent}%: expected 0..100")
        # nft compares the random number (0..99) only with a value in its range.
        chance = "" if percent == 100 else f"numgen random mod 100 < {percent} "
        rule = f"udp dport {self.port} {chance}drop" if percent else None
        self._nft({node.namespace: self._chain("loss", rule) for node in nodes or self.nodes})

    def no_loss(self) -> None:
        self._nft({node.namespace: self._chain("loss", None) for node in self.nodes})

    @staticmethod
    def _chain(chain: str, rule: str | None) -> str:
        return f"flush chain inet {TABLE} {chain}\n" + (f"add rule inet {TABLE} {chain} {rule}\n" if rule else "")

    # The observer.

    def capture(self, seconds: float) -> list[Captured]:
        """Every datagram seen on the group and port from the observer for ``seconds``."""
        sock = _socket_in(self.observer)
        seen = []
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.group, self.port))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                            socket.inet_aton(self.group) + socket.inet_aton(self.observer_address))
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, (host, port) = sock.recvfrom(65535)
                except TimeoutError:
                    break
                seen.append(Captured(data, f"{host}:{port}", time.time()))
        finally:
            sock.close()
        return seen

    def inject(self, datagrams: Iterable[bytes]) -> None:
        """Send these datagrams to the group and port from the observer, as they are."""
        if self._injector is None:
            self._injector = _socket_in(self.observer)
            self._injector.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                      socket.inet_aton(self.observer_address))
            self._injector.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        for data in datagrams:
            self._injector.sendto(data, (self.group, self.port))

    # Cleanup.

    def close(self) -> None:
        """Stop every process this cluster started, then delete its nftables tables, veths,
        namespaces and bridge. Safe to call again, and on a cluster half built."""
        try:
            stop_processes([n.process for n in self.nodes if n.process] + self._helpers)
        finally:
            for namespace in self._namespaces:
                _kill_left_in(namespace)
            if self._injector is not None:
                self._injector.close()
                self._injector = None
            for node in self.nodes:
                if node.namespace in self._namespaces:
                    subprocess.run(["ip", "netns", "exec", node.namespace, "nft", "delete", "table", "inet", TABLE],
                                   capture_output=True)
            _delete(self._veths, self._namespaces, self.bridge)
            self._veths, self._namespaces, self.bridge = [], [], None

    def __enter__(self) -> NetCluster:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._sigterm = signal.signal(signal.SIGTERM, _interrupt)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            self.close()
        finally:
            if self._sigterm is not None:
                signal.signal(signal.SIGTERM, self._sigterm)
                self._sigterm = None


def _addresses(sock: socket.socket) -> set[str]:
    """Every IPv4 address in the namespace ``sock`` was made in: SIOCGIFCONF lists each one, an
    added /32 too, in microseconds (``ip -n NS addr`` is a process, milliseconds)."""
    buf = array.array("B", bytes(64 * _IFREQ))
    pointer, size = buf.buffer_info()
    length, _ = struct.unpack("iL", fcntl.ioctl(sock.fileno(), _SIOCGIFCONF, struct.pack("iL", size, pointer)))
    data = buf.tobytes()
    # Each struct ifreq: the interface's name (16 bytes), then a sockaddr_in, its address at 4..8.
    return {socket.inet_ntoa(data[i + 20:i + 24]) for i in range(0, length, _IFREQ)}


def _stretches(marks: Iterable[tuple[float, bool]], since: float, until: float) -> list[tuple[float, float]]:
    """From time-ordered (time, bad) marks: each run of bad ones, from its first mark to the
    next good mark (or ``until``: still going on), clipped to the window."""
    found, start = [], None
    for at, bad in marks:
        if bad and start is None:
            start = at
        elif not bad and start is not None:
            found.append((start, at))
            start = None
    if start is not None:
        found.append((start, until))
    return [(max(a, since), min(b, until)) for a, b in found if b > since and a < until]


class _Every:
    """A thread calling ``sample(now)`` every ``every`` seconds (at once after one that ran
    late), from ``start()`` or entering the ``with`` block, until ``stop()`` or leaving it."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self, now: float) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            now = time.monotonic()
            self.sample(now)
            due = max(due + self.every, time.monotonic())

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


@attrs.frozen
class Fetch:
    at: float  # time.monotonic() when it began
    answer: str | None  # the body ("host 2"), or None: refused, failed or timed out


class Client(_Every):
    """Fetches ``http://VIP:port/`` from the observer every ``every`` seconds, each on a new
    connection (so each finds the VIP afresh, through the observer's ARP cache), each given
    ``timeout`` seconds to connect and again to answer. Times are time.monotonic()."""

    def __init__(self, cluster: NetCluster, port: int = HTTP_PORT, every: float = 0.01,
                 timeout: float = 0.2) -> None:
        super().__init__(every)
        self.namespace, self.host, self.port, self.timeout = cluster.observer, cluster.vip, port, timeout
        self.fetches: list[Fetch] = []

    def sample(self, now: float) -> None:
        connection = _NamespaceHTTP(self.namespace, self.host, self.port, self.timeout)
        try:
            connection.request("GET", "/")
            reply = connection.getresponse()
            answer = reply.read().decode(errors="replace").strip() if reply.status == 200 else None
        except (OSError, http.client.HTTPException):
            answer = None
        finally:
            connection.close()
        self.fetches.append(Fetch(now, answer))

    def last(self) -> Fetch | None:
        return self.fetches[-1] if self.fetches else None

    def outages(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float]]:
        """(start, end) of each stretch in the window during which every fetch failed: from the
        first failed fetch to the next answered one; one still going on ends with the window."""
        until = min(until, time.monotonic())
        return _stretches(((f.at, f.answer is None) for f in list(self.fetches)), since, until)

    def longest(self, since: float = 0.0, until: float = float("inf")) -> float:
        """The longest outage in the window, in seconds (0 if none)."""
        return max((end - start for start, end in self.outages(since, until)), default=0.0)

    def answers(self, since: float = 0.0, until: float = float("inf")) -> set[str]:
        """Who answered in the window ("host 2", ...)."""
        return {f.answer for f in list(self.fetches) if since <= f.at <= until and f.answer is not None}


class AnyHost(Client):
    """Like Client, but for a service served on each host's own address (no VIP): every ``every``
    seconds, connects from the observer to each of ``nodes`` on ``port`` in turn; a sample is
    answered ("host N", the first that accepts) if any of them accepts."""

    def __init__(self, cluster: NetCluster, nodes: Sequence[NetNode], port: int = HTTP_PORT,
                 every: float = 0.02, timeout: float = 0.1) -> None:
        super().__init__(cluster, port, every, timeout)
        self.nodes = list(nodes)

    def sample(self, now: float) -> None:
        answer = None
        for node in self.nodes:
            with _socket_in(self.namespace, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                if sock.connect_ex((node.address, self.port)) == 0:
                    answer = f"host {node.index}"
                    break
        self.fetches.append(Fetch(now, answer))


class HolderWatch(_Every):
    """Samples every ``every`` seconds which nodes' namespaces hold the VIP (by node index).
    Times are time.monotonic()."""

    def __init__(self, cluster: NetCluster, every: float = 0.02) -> None:
        super().__init__(every)
        self.vip = cluster.vip
        # A socket stays in the namespace it was made in: one per node, made once.
        self._sockets = [(node.index, _socket_in(node.namespace)) for node in cluster.nodes]
        self.samples: list[tuple[float, frozenset[int]]] = []

    def sample(self, now: float) -> None:
        self.samples.append((now, frozenset(i for i, sock in self._sockets if self.vip in _addresses(sock))))

    def stop(self) -> None:
        super().stop()
        for _, sock in self._sockets:
            sock.close()

    def holding(self) -> frozenset[int]:
        """Who held the VIP at the latest sample."""
        return self.samples[-1][1] if self.samples else frozenset()

    def held_by(self, since: float = 0.0, until: float = float("inf")) -> set[int]:
        """Everyone who held the VIP at some sample in the window."""
        return {i for at, held in list(self.samples) if since <= at <= until for i in held}

    def shared(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float]]:
        """(start, end) of each stretch in the window during which two or more held the VIP: from
        the first sample that saw it to the first that did not (longer by up to one sample)."""
        until = min(until, time.monotonic())
        return _stretches(((at, len(held) > 1) for at, held in list(self.samples)), since, until)

    def overlap(self, since: float = 0.0, until: float = float("inf")) -> tuple[float, float]:
        """(total, longest) seconds in the window during which two or more held the VIP."""
        lengths = [end - start for start, end in self.shared(since, until)]
        return sum(lengths), max(lengths, default=0.0)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as Ctrl-C: pytest and the bench unwind (and clean up) on KeyboardInterrupt."""
    raise KeyboardInterrupt(f"signal {signum}")
