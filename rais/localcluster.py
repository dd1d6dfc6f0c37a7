"""Clusters of real `twistd rais` processes on this machine.

``LocalCluster`` runs them on loopback, for the demo and the integration
tests: each node gets its own folder with a config, a state_dir and a log;
they share one key file, one multicast group and port, and each has its own
control port. ``TwistdCluster`` (starting, signalling and stopping the
processes it started), ``write_config`` and the status helpers are shared
with ``rais.netcluster``, which puts each node in a network namespace.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from rais.cli import fetch_status
from rais.keys import write_new_key_file

# The twistd script installed beside this interpreter (a venv's bin folder).
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")

_PR_SET_PDEATHSIG = 1


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; a node that is
    briefly not answering (restarting) counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(step)
    return False


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@attrs.define
class LocalNode:
    host_id: int
    role: str
    folder: str
    control_port: int
    address: str = "127.0.0.1"  # the node's interface, address and control host
    process: subprocess.Popen | None = None
    wanted: bool = False  # started and not deliberately stopped

    @property
    def config_path(self) -> str:
        return os.path.join(self.folder, "rais.toml")

    @property
    def log_path(self) -> str:
        return os.path.join(self.folder, "twistd.log")

    def status(self, timeout: float = 2.0) -> dict[str, Any]:
        return fetch_status(self.address, self.control_port, timeout)


CONFIG = """\
# Written by rais.localcluster or rais.netcluster for a demo or test cluster.
[cluster]
id = "{cluster}"
key_file = "../cluster.key"
{transport}
port = {port}
interface = "{address}"
heartbeat_interval = {interval}
dead_after = {dead_after}
settle = {settle}
{settings}
[node]
host_id = {host_id}
address = "{address}"
role = "{role}"
priority = {priority}
control = "{address}:{control_port}"
state_dir = "state"

"""


@attrs.frozen
class Shared:
    """What every node's config of one cluster says alike."""

    group: str
    port: int
    interval: float
    dead_after: int
    cluster: str = "1.2"
    settings: str = ""  # more [cluster] keys, one per line
    extra: str = ""  # appended to every node's config: [services.*], [policy.*], ...
    # These clusters start their nodes together, within a second: a starting cluster need not
    # listen for the 10 s an operator's hosts may take to boot.
    settle: float = 2.0
    peers: tuple[str, ...] = ()  # unicast to these ("ADDRESS[:PORT]") instead of the group

    @property
    def transport(self) -> str:
        """The [cluster] line saying where datagrams go."""
        if self.peers:
            return f"peers = [{', '.join(json.dumps(peer) for peer in self.peers)}]"
        return f'group = "{self.group}"'


# A service whose start runs a server in the background, its pid in NAME.pid in the node's folder,
# probed often: how the demo and the failover bench declare theirs.
BACKGROUND_SERVICE = """
[services.{name}]
probe = "{probe}"
port = {port}
running = {running}
probe_interval = 0.3
probe_timeout = 0.5
rise = 1
fall = 2
shell = true
timeout = 5.0
start = "{start}"
stop = "kill $(cat {name}.pid) 2>/dev/null; rm -f {name}.pid"
"""
# Hosts sharing one machine sample one machine's CPU, network and latency at different moments:
# the role alone picks the host for the service, the standby first.
ROLE_ONLY_POLICY = """
[policy.{name}]
weights = {{ cpu = 0, network = 0, latency = 0 }}
"""


def background_start(name: str, server: str) -> str:
    """A shell start action for a server run in the background, its pid in NAME.pid in the node's
    folder; idempotent, as start actions must be: a server already running there is left alone."""
    # No double quotes: it goes into a TOML basic string (BACKGROUND_SERVICE).
    return (f"[ -f {name}.pid ] && kill -0 $(cat {name}.pid) 2>/dev/null || "
            f"{{ {server} >{name}.log 2>&1 & echo $! > {name}.pid; sleep 0.3; }}")


def kill_server(node: LocalNode, name: str) -> int:
    """SIGKILL the server a start action left on ``node``; its pid file goes, so no pid is signalled twice."""
    path = os.path.join(node.folder, f"{name}.pid")
    with open(path) as f:
        pid = int(f.read())
    os.remove(path)
    os.kill(pid, signal.SIGKILL)
    return pid


def stop_servers(cluster: TwistdCluster[Any], names: Iterable[str]) -> None:
    """Kill whatever server (of ``names``) a start action left running, whatever happened."""
    for node in cluster.nodes:
        for name in names:
            try:
                kill_server(node, name)
            except (OSError, ValueError):
                pass  # none there, or gone already


def service_rows(node: LocalNode, name: str) -> dict[str, dict[str, Any]]:
    """The services table's rows of ``name`` by host, as ``node`` has them."""
    return {r["host"]: r for r in node.status()["tables"]["services"] if r["name"] == name}


def background_service(name: str, probe: str, port: int, running: bool, start: str) -> str:
    """[services.NAME] for a server that ``start`` runs in the background."""
    return BACKGROUND_SERVICE.format(name=name, probe=probe, port=port, running=str(running).lower(), start=start)


def write_config(node: LocalNode, shared: Shared, extra: str = "") -> None:
    """The node's rais.toml: the shared settings, then the cluster-wide and this node's ``extra``."""
    os.makedirs(node.folder, exist_ok=True)
    with open(node.config_path, "w") as f:
        f.write(CONFIG.format(
            cluster=shared.cluster, transport=shared.transport, port=shared.port, interval=shared.interval,
            dead_after=shared.dead_after, settle=shared.settle, settings=shared.settings, host_id=node.host_id,
            address=node.address,
            role=node.role, priority=100, control_port=node.control_port,
        ) + shared.extra + extra)


def agreed(nodes: Sequence[LocalNode], docs: Sequence[dict[str, Any]] | None = None) -> tuple[str, int] | None:
    """(master, term) if every node names the same master and term, else None."""
    docs = docs or [n.status() for n in nodes]
    views = {(d["master"], d["term"]) for d in docs}
    if len(views) == 1 and docs[0]["master"] is not None:
        return views.pop()
    return None


def converged(nodes: Sequence[LocalNode]) -> bool:
    """One master, followed by all, with the same tables: all read from one round of statuses."""
    docs = [n.status() for n in nodes]
    return bool(agreed(nodes, docs)) and len({(d["generation"], d["digest"]) for d in docs}) == 1


def declared(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The services table without what probes measure: a master probes each service at its own
    phase of the probe interval, so one may not have reached a service yet when another has."""
    measured = ("result", "latency_us", "detail", "changed_ms")
    return [{k: v for k, v in r.items() if k not in measured} for r in doc["tables"]["services"]]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies, so a harness
    killed outright (SIGKILL) leaves no node running. The kernel ties this to the starting
    thread, so clusters are started from the main thread."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def launch(argv: list[str], folder: str, stderr_path: str,
           env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start a process of a cluster in ``folder``, its stderr appended to ``stderr_path``; with ``env``
    as its whole environment if given, else this process's."""
    with open(stderr_path, "ab") as err:
        return subprocess.Popen(argv, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, preexec_fn=_die_with_parent, env=env)


N = TypeVar("N", bound=LocalNode)


class TwistdCluster(Generic[N]):
    """The twistd processes of a cluster's nodes: started, signalled and stopped, and only
    those this object started (it keeps their Popen objects; nothing is found by name)."""

    # The program that runs a node, and its environment (None: this process's); an installed
    # copy of RAIS elsewhere (tests/test_wheel.py) sets its own.
    twistd: str = TWISTD
    env: Mapping[str, str] | None = None

    def __init__(self, base: str, interval: float, dead_after: int) -> None:
        self.base = base
        self.interval = interval
        self.dead_after = dead_after
        self.nodes: list[N] = []
        self.options: Sequence[str] = ()  # more options of the rais plugin, for every node

    def command(self, node: N) -> list[str]:
        return [self.twistd, "-n", "--pidfile=", f"--logfile={node.log_path}", "rais", "--config", node.config_path,
                *self.options]

    def start(self, node: N) -> None:
        node.wanted = True
        node.process = launch(self.command(node), node.folder, os.path.join(node.folder, "stderr.log"), self.env)

    def start_all(self) -> None:
        """Start every node, a configured master first: a cluster that never had a master
        elects the best host it can hear, so the master is given a head start."""
        first = sorted(self.nodes, key=lambda n: n.role != "master")
        self.start(first[0])
        self.wait_ready()
        for node in first[1:]:
            self.start(node)

    def retry(self, node: N) -> bool:
        """A node exited while starting: whether it was started again (see LocalCluster)."""
        return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every node that should be running answers on its control port."""
        deadline = time.monotonic() + timeout
        for node in (n for n in self.nodes if n.wanted):
            while True:
                if node.process is not None and node.process.poll() is not None:
                    if self.retry(node):
                        continue
                    raise RuntimeError(f"node {node.host_id} exited: {self.tail(node)}")
                try:
                    node.status(timeout=1.0)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"node {node.host_id} not ready: {self.tail(node)}") from None
                    time.sleep(0.1)

    def kill(self, node: N, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (one that ends it) to the node's process and wait for it to exit."""
        node.wanted = False
        if node.process is not None:
            node.process.send_signal(sig)
            node.process.wait(timeout=10)

    def stop_all(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.wanted = False
        stop_processes([n.process for n in self.nodes if n.process], timeout)

    @staticmethod
    def tail(node: LocalNode, lines: int = 20) -> str:
        text = ""
        for path in (os.path.join(node.folder, "stderr.log"), node.log_path):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += "".join(f.readlines()[-lines:])
        return text


def stop_processes(processes: Sequence[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM each process still running (and SIGCONT, so a frozen one acts on it), then
    SIGKILL whatever has not exited after ``timeout`` seconds."""
    running = [p for p in processes if p.poll() is None]
    for p in running:
        p.terminate()
        p.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for p in running:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class LocalCluster(TwistdCluster[LocalNode]):
    def __init__(
        self,
        base: str,
        roles: list[str],
        interval: float = 1.0,
        dead_after: int = 3,
        cluster: str = "1.2",
        extra: str = "",
        extras: dict[int, str] | None = None,
        options: Sequence[str] = (),
        settings: str = "",
        settle: float = 2.0,
    ) -> None:
        super().__init__(base, interval, dead_after)
        self.options = options
        # A random group and port keep concurrent demos and test runs apart.
        self.group = f"239.192.{random.randint(0, 255)}.{random.randint(1, 254)}"
        self.port = free_port(socket.SOCK_DGRAM)
        shared = Shared(self.group, self.port, interval, dead_after, cluster, settings, extra, settle)
        write_new_key_file(os.path.join(base, "cluster.key"))
        for host_id, role in enumerate(roles, 1):
            node = LocalNode(host_id, role, os.path.join(base, f"node{host_id}"), free_port())
            write_config(node, shared, (extras or {}).get(host_id, ""))
            self.nodes.append(node)
        self._retries = {node.host_id: 3 for node in self.nodes}

    def retry(self, node: LocalNode) -> bool:
        # free_port() can race with another program taking the port: pick another.
        if self._retries[node.host_id] and "Address already in use" in self.tail(node):
            self._retries[node.host_id] -= 1
            self._move_control(node)
            self.start(node)
            return True
        return False

    def _move_control(self, node: LocalNode) -> None:
        old = f'control = "127.0.0.1:{node.control_port}"'
        node.control_port = free_port()
        with open(node.config_path) as f:
            text = f.read()
        with open(node.config_path, "w") as f:
            f.write(text.replace(old, f'control = "127.0.0.1:{node.control_port}"'))
