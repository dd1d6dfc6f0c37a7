"""Service failover with real processes on loopback: from a kill to the service confirmed elsewhere.

Four twistd nodes (heartbeat 0.2 s, dead_after 3): host 2 serves "web" (a
Python http.server), host 3 can start it with its start action, host 4 (the
standby, which the planner tries first) has a start action that fails. The
master probes web every 0.3 s (rise 1, fall 2). Reported, over a few runs:
- the web server on host 2 killed: seconds until web is confirmed running
  on host 3 (after host 4's start failed);
- host 2 killed with SIGKILL: the same.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time

from rais.localcluster import (
    ROLE_ONLY_POLICY,
    LocalCluster,
    LocalNode,
    background_service,
    background_start,
    free_port,
    kill_server,
    service_rows,
    stop_servers,
    wait_for,
)

ROLES = ["master", "active", "active", "standby"]
INTERVAL, DEAD_AFTER = 0.2, 3
RUNS = 3

# Every role change and assignment, appended to notify.log in the node's folder.
NOTIFY = r'''notify = ["/bin/sh", "-c", "echo \"$*\" >> notify.log", "notify"]'''


def serve(port: int) -> str:
    """A shell start command: a web server in the background, its pid in web.pid."""
    return background_start("web", f"{sys.executable} -m http.server {port} --bind 127.0.0.1")


def web_cluster(base: str) -> tuple[LocalCluster, dict[int, int]]:
    ports = {n: free_port() for n in (2, 3, 4)}
    extras = {
        2: background_service("web", "http", ports[2], True, serve(ports[2])),
        3: background_service("web", "http", ports[3], False, serve(ports[3])),
        4: background_service("web", "http", ports[4], False, "echo port in use >&2; exit 1"),
    }
    policy = ROLE_ONLY_POLICY.format(name="web")
    extras = {n: NOTIFY + text + policy for n, text in extras.items()} | {1: policy}
    cluster = LocalCluster(base, ROLES, INTERVAL, DEAD_AFTER, extras=extras)
    # Host 2 serves web from the start, as an operator would have it.
    folder = cluster.nodes[1].folder
    subprocess.run(["/bin/sh", "-c", serve(ports[2])], cwd=folder, check=True)
    return cluster, ports


def web_rows(node: LocalNode) -> dict[str, dict]:
    return service_rows(node, "web")


def confirmed_on(cluster: LocalCluster, host: str) -> bool:
    row = web_rows(cluster.nodes[2]).get(host, {})  # as a replica, host 3, sees it
    return row.get("assigned") is True and row.get("state") == "running"




def one_run(kind: str) -> float:
    with tempfile.TemporaryDirectory(prefix="rais-failover-") as base:
        cluster, _ports = web_cluster(base)
        cluster.start_all()
        try:
            cluster.wait_ready()
            if not wait_for(lambda: confirmed_on(cluster, "1.2.0.2"), 30):
                raise RuntimeError("web never ran on host 2")
            time.sleep(1)
            start = time.monotonic()
            if kind == "service":
                kill_server(cluster.nodes[1], "web")
            else:
                cluster.kill(cluster.nodes[1], signal.SIGKILL)
                kill_server(cluster.nodes[1], "web")  # its web server goes down with the host
            if not wait_for(lambda: confirmed_on(cluster, "1.2.0.3"), 30, step=0.02):
                raise RuntimeError(f"web not confirmed on host 3 after the {kind} kill")
            return time.monotonic() - start
        finally:
            cluster.stop_all()
            stop_servers(cluster, ["web"])


def main() -> None:
    for kind, what in (("service", "web server on host 2 killed"), ("host", "host 2 killed (SIGKILL)")):
        times = [one_run(kind) for _ in range(RUNS)]
        print(f"{what}: web confirmed on host 3 after {', '.join(f'{t:.2f}' for t in times)} s "
              f"(host 4's start failed first); heartbeat {INTERVAL} s, dead_after {DEAD_AFTER}, "
              f"probe every 0.3 s, fall 2", flush=True)
