"""`make demo`: what RAIS is for, on loopback, narrated.

Four twistd nodes (heartbeat 0.2 s, dead_after 3): a master, two actives
serving different real services (host 2 a web server, Python's http.server;
host 3 a mail server, aiosmtpd) and a standby. Every host but the master can
start either service (its own copy, on a port of its own). The demo kills
the web server and shows the master detect it, decide where it goes and
why (the active with room, keeping the standby as the cluster's one spare,
min_spares = 1), and confirm it running there; then it kills the master and
shows the spare take over with the tables intact. The cluster then runs until
Ctrl-C (or, with --once, the demo ends there: exit 0 if both failovers
happened), and every process the demo started is stopped.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from functools import partial
from typing import Any

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
from rais.statusview import pool_line

ROLES = ["master", "active", "active", "standby"]
INTERVAL, DEAD_AFTER = 0.2, 3
SERVERS = {  # service -> (probe, the server's command for a port)
    "web": ("http", f"{sys.executable} -m http.server --bind 127.0.0.1 {{port}}"),
    "mail": ("smtp", f"{sys.executable} -m aiosmtpd -n -l 127.0.0.1:{{port}}"),
}
SERVES = {2: "web", 3: "mail"}  # the host serving each service at first (the others can start it)
# Four nodes on a busy machine may take seconds to boot: the master waits that long before it places
# anything, so that the actives are found running their services (see [cluster] settle in the README).
SETTLE = 5.0
WAIT = 30.0  # seconds for any one step of the story


class DemoFailed(Exception):
    """A step of the story did not happen in time."""


def start_command(name: str, port: int) -> str:
    """A shell start action: the server in the background, its pid in NAME.pid in the node's folder."""
    return background_start(name, SERVERS[name][1].format(port=port))


def demo_cluster(base: str) -> tuple[LocalCluster, dict[tuple[int, str], int]]:
    """The cluster's configs, and the port of each (host, service)."""
    ports = {(host, name): free_port() for host in (2, 3, 4) for name in SERVERS}
    policies = "".join(ROLE_ONLY_POLICY.format(name=name) for name in SERVERS)
    extras = {1: policies}
    for host in (2, 3, 4):
        extras[host] = policies + "".join(
            background_service(name, SERVERS[name][0], ports[host, name], SERVES.get(host) == name,
                               start_command(name, ports[host, name]))
            for name in SERVERS)
    return LocalCluster(base, ROLES, INTERVAL, DEAD_AFTER, extras=extras, settle=SETTLE), ports


def hid(node: LocalNode) -> str:
    return f"1.2.0.{node.host_id}"


def serving(node: LocalNode, name: str) -> str | None:
    """The host ``node``'s tables say serves ``name``, confirmed by its probe."""
    hosts = [h for h, r in service_rows(node, name).items()
             if r["assigned"] and r["state"] == "running" and r["result"] == "ok"]
    return hosts[0] if len(hosts) == 1 else None


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


def served(story: Story, node: LocalNode, name: str, away_from: str | None = None) -> str:
    """Wait until ``node``'s tables say one host (not ``away_from``) serves ``name``; that host."""
    story.until(f"{name} confirmed running", lambda: serving(node, name) not in (None, away_from))
    where = serving(node, name)
    if where is None:  # between two looks, it moved again
        raise DemoFailed(f"{name} is not served: {service_rows(node, name)}")
    return where


class Story:
    """Says each step as it happens, with the time since the step began."""

    def __init__(self) -> None:
        self.since = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.since:5.2f} s] {text}", flush=True)

    def begin(self, text: str) -> None:
        print(f"\n== {text}", flush=True)
        self.since = time.monotonic()

    def until(self, what: str, predicate: Callable[[], Any]) -> None:
        if not wait_for(predicate, WAIT, step=0.02):
            raise DemoFailed(f"{what}: not within {WAIT:.0f} s")


def fail_service(cluster: LocalCluster, story: Story) -> None:
    master, web_host = cluster.nodes[0], cluster.nodes[1]
    story.begin(f"killing the web server on {hid(web_host)} (SIGKILL)")
    at = time.time()
    story.say(f"web server pid {kill_server(web_host, 'web')} killed")

    def lost() -> bool:
        return any(d["at"] >= at and "lost on" in d["text"] for d in master.status()["decisions"].get("web", []))

    story.until("the master noticing", lost)
    row = service_rows(master, "web")[hid(web_host)]
    story.say(f"the master's probe: web on {hid(web_host)} is {row['state']} ({row['result']}: {row['detail']})")
    where = served(story, master, "web", away_from=hid(web_host))
    for decision in master.status()["decisions"]["web"]:
        if decision["at"] >= at:
            print(textwrap.indent(f"decided: {decision['text']}", " " * 10))
    story.say(f"web confirmed running on {where} by its probe ({service_rows(master, 'web')[where]['detail']})")
    story.say(f"the pool: {pool_line(master.status()['pool'])}")


def fail_master(cluster: LocalCluster, story: Story) -> None:
    master, standby = cluster.nodes[0], cluster.nodes[3]
    before = standby.status()
    assigned = assignments(before)
    story.begin(f"killing the master, {hid(master)} (SIGKILL); the standby {hid(standby)} has generation "
                f"{before['generation']} of term {before['term_text']}: {shown(assigned)}")
    cluster.kill(master)
    survivors = cluster.nodes[1:]

    def new_master() -> bool:
        docs = [n.status() for n in survivors]
        return all(d["master"] == hid(standby) and d["term"] > before["term"] for d in docs)

    story.until("a new master", new_master)
    after = standby.status()
    story.say(f"{hid(standby)} is master of term {after['term_text']}, followed by every survivor")
    story.until("the tables replicated", lambda: len({(d["generation"], d["digest"])
                                                     for d in (n.status() for n in survivors)}) == 1)
    after = standby.status()
    if assignments(after) != assigned:
        raise DemoFailed(f"the new master's tables differ: {shown(assignments(after))}")
    story.say(f"tables intact at generation {after['generation']}: {shown(assigned)}")
    story.say(f"the pool: {pool_line(after['pool'])}")


def assignments(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["name"], r["host"]) for r in doc["tables"]["services"] if r["assigned"]}


def shown(assigned: set[tuple[str, str]]) -> str:
    return ", ".join(f"{name} on {host}" for name, host in sorted(assigned))


def run(cluster: LocalCluster, ports: dict[tuple[int, str], int], once: bool) -> int:
    """The story: the cluster starts, a service fails over, the master fails over; 1 if a step did not happen."""
    story = Story()
    story.begin("starting the servers, then the cluster")
    try:
        for host, name in SERVES.items():  # as an operator would have it: each active serves one already
            folder = cluster.nodes[host - 1].folder
            subprocess.run(["/bin/sh", "-c", start_command(name, ports[host, name])], cwd=folder, check=True)
            # Listening before the nodes start: else the first probes fail, and the service moves.
            story.until(f"{name} listening", partial(listening, ports[host, name]))
        cluster.start_all()
        cluster.wait_ready()
        master = cluster.nodes[0]
        for name in SERVES.values():
            where = served(story, master, name)
            story.say(f"{name} runs on {where}, confirmed by the master's {SERVERS[name][0]} probe "
                      f"({service_rows(master, name)[where]['detail']})")
        story.say(f"the pool: {pool_line(master.status()['pool'])}")
        fail_service(cluster, story)
        fail_master(cluster, story)
    except (DemoFailed, RuntimeError, OSError) as e:  # OSError: a node that stopped answering, a timeout
        print(f"the demo failed: {e}", file=sys.stderr, flush=True)
        return 1
    print("\nboth failovers done.", flush=True)
    if not once:
        print("The cluster runs on (the status URLs above); Ctrl-C stops it.", flush=True)
        while True:
            time.sleep(3600)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rais-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true",
                        help="end after the two failovers: exit 0 if both happened, 1 otherwise")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (configs, logs)")
    args = parser.parse_args(argv)
    # A SIGTERM stops the demo as Ctrl-C does: everything it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    base = tempfile.mkdtemp(prefix="rais-demo-")
    cluster, ports = demo_cluster(base)
    try:
        print(f"demo cluster in {base}: {len(ROLES)} twistd nodes on 127.0.0.1, group {cluster.group}:{cluster.port}")
        for node in cluster.nodes:
            can = ", ".join(f"{name} on 127.0.0.1:{ports[node.host_id, name]}" for name in SERVERS
                            if (node.host_id, name) in ports)
            print(f"  {hid(node)} {node.role:8} status http://127.0.0.1:{node.control_port}/  "
                  f"(.../status.json){'  can serve ' + can if can else ''}")
        return run(cluster, ports, args.once)
    except KeyboardInterrupt:
        print()
        return 0
    finally:
        print("stopping the nodes and the servers ...", flush=True)
        cluster.stop_all()
        stop_servers(cluster, SERVERS)
        if args.keep:
            print(f"configs and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
