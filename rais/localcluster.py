"""A cluster of real `twistd rais` processes on loopback, for the demo and the integration tests.

Each node gets its own folder with a config, a state_dir and a log; they
share one key file, one multicast group and port, and each has its own
control port.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs

from rais.cli import fetch_status
from rais.keys import write_new_key_file

# The twistd script installed beside this interpreter (a venv's bin folder).
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


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
    process: subprocess.Popen | None = None
    wanted: bool = False  # started and not deliberately stopped

    @property
    def config_path(self) -> str:
        return os.path.join(self.folder, "rais.toml")

    @property
    def log_path(self) -> str:
        return os.path.join(self.folder, "twistd.log")

    def status(self, timeout: float = 2.0) -> dict[str, Any]:
        return fetch_status("127.0.0.1", self.control_port, timeout)


CONFIG = """\
# Written by rais.localcluster for a local demo or test cluster.
[cluster]
id = "{cluster}"
key_file = "../cluster.key"
group = "{group}"
port = {port}
interface = "127.0.0.1"
heartbeat_interval = {interval}
dead_after = {dead_after}

[node]
host_id = {host_id}
address = "127.0.0.1"
role = "{role}"
priority = {priority}
control = "127.0.0.1:{control_port}"
state_dir = "state"

"""


class LocalCluster:
    def __init__(
        self,
        base: str,
        roles: list[str],
        interval: float = 1.0,
        dead_after: int = 3,
        cluster: str = "1.2",
        extra: str = "",
        extras: dict[int, str] | None = None,
    ) -> None:
        self.base = base
        self.interval = interval
        self.dead_after = dead_after
        # A random group and port keep concurrent demos and test runs apart.
        self.group = f"239.192.{random.randint(0, 255)}.{random.randint(1, 254)}"
        self.port = free_port(socket.SOCK_DGRAM)
        write_new_key_file(os.path.join(base, "cluster.key"))
        self.nodes = []
        for host_id, role in enumerate(roles, 1):
            folder = os.path.join(base, f"node{host_id}")
            os.makedirs(folder)
            node = LocalNode(host_id, role, folder, free_port())
            with open(node.config_path, "w") as f:
                f.write(CONFIG.format(
                    cluster=cluster, group=self.group, port=self.port, interval=interval,
                    dead_after=dead_after, host_id=host_id, role=role, priority=100,
                    control_port=node.control_port,
                ) + extra + (extras or {}).get(host_id, ""))
            self.nodes.append(node)

    def start(self, node: LocalNode) -> None:
        node.wanted = True
        with open(os.path.join(node.folder, "stderr.log"), "ab") as err:
            node.process = subprocess.Popen(
                [TWISTD, "-n", "--pidfile=", f"--logfile={node.log_path}",
                 "rais", "--config", node.config_path],
                cwd=node.folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )

    def start_all(self) -> None:
        """Start every node, a configured master first: a cluster that never had a master
        elects the best host it can hear, so the master is given a head start."""
        first = sorted(self.nodes, key=lambda n: n.role != "master")
        self.start(first[0])
        self.wait_ready()
        for node in first[1:]:
            self.start(node)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every node that should be running answers on its control port."""
        deadline = time.monotonic() + timeout
        for node in (n for n in self.nodes if n.wanted):
            retries = 3
            while True:
                if node.process is not None and node.process.poll() is not None:
                    # free_port() can race with another program taking the port: pick another.
                    if retries and "Address already in use" in self.tail(node):
                        retries -= 1
                        self._move_control(node)
                        self.start(node)
                        continue
                    raise RuntimeError(f"node {node.host_id} exited: {self.tail(node)}")
                try:
                    node.status(timeout=1.0)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"node {node.host_id} not ready: {self.tail(node)}") from None
                    time.sleep(0.1)

    def _move_control(self, node: LocalNode) -> None:
        old = f'control = "127.0.0.1:{node.control_port}"'
        node.control_port = free_port()
        with open(node.config_path) as f:
            text = f.read()
        with open(node.config_path, "w") as f:
            f.write(text.replace(old, f'control = "127.0.0.1:{node.control_port}"'))

    def kill(self, node: LocalNode, sig: int = signal.SIGKILL) -> None:
        node.wanted = False
        if node.process is not None:
            node.process.send_signal(sig)
            node.process.wait(timeout=10)

    def stop_all(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.wanted = False
        running = [n.process for n in self.nodes if n.process and n.process.poll() is None]
        for p in running:
            p.terminate()
        deadline = time.monotonic() + timeout
        for p in running:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @staticmethod
    def tail(node: LocalNode, lines: int = 20) -> str:
        text = ""
        for path in (os.path.join(node.folder, "stderr.log"), node.log_path):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += "".join(f.readlines()[-lines:])
        return text
