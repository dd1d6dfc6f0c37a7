"""Random loss on every link of a real cluster: what the nodes make of it.

Four twistd nodes, each in its own network namespace (rais.netcluster;
heartbeat 0.2 s, dead_after 3); host 2 serves web, a real TCP listener in its
namespace, which the master probes with the tcp probe. At every receiver,
nftables drops 10%, then 30%, then 50% of the datagrams on the cluster port,
at random, for RAIS_SOAK_SECONDS seconds each (default 120). No host dies, so
reported per level, from the nodes' logs:
- suspects and false downs: "host X is suspect" and "host X is down" lines, on
  any node (a suspect is only a late beat: it shows the loss biting);
- pauses: "this node was not scheduled" lines (rais.pause: a process that did
  not run, on a machine too busy), and the false downs of a host that logged one
  then: its heartbeats stopped with it, so those downs are the machine's, not
  the loss's;
- new terms: terms claimed during the soak ("role ... -> master in term T");
- decisions and orders: the master's decisions about web ("web: ..." lines), and
  those that give an order (an assign, or a release);
- seconds until the cluster converges again once the loss stops.
Then, without loss, the master is killed (SIGKILL): seconds until every
survivor names the same new master. It reports; it asserts nothing. It needs
root and nftables (otherwise it says why and stops).
"""

from __future__ import annotations

import datetime
import glob
import os
import pathlib
import re
import tempfile
import time
from collections.abc import Callable

from rais.localcluster import agreed, converged, wait_for
from rais.netcluster import NetCluster, NetNode, unavailable

ROLES = ["master", "active", "active", "standby"]
INTERVAL, DEAD_AFTER = 0.2, 3
LEVELS = (10, 30, 50)
WEB_PORT = 8080
WEB = f"""
[services.web]
probe = "tcp"
port = {WEB_PORT}
running = true
probe_interval = 0.5
rise = 1
"""

# Lines of a node's twistd.log, after the time stamp and the logger's name.
DOWN = re.compile(r"^(\S+) \[.*\] host (\S+) is down \(was ")
PAUSED = re.compile(r"^(\S+) \[.*\] this node was not scheduled for ([\d.]+)s")
SUSPECT = re.compile(r"\] host \S+ is suspect \(was ")
MASTER = re.compile(r"\] role \w+ -> master in term (\S+):")
DECIDED = re.compile(r"DaemonEffects#info\] web: (.*)$")
# An assign names the chosen host; a release is of a failed copy, a stray copy or a surplus one.
ORDER = re.compile(r"^web -> |\(the service failed here\)$|: release$|scores lowest$")


def log_files(node: NetNode) -> list[str]:
    """The node's log, oldest first: twistd renames a full log (1 MB) to twistd.log.1, the one
    before that to .2, and so on, so the pieces together keep every byte where it was."""
    rotated = glob.glob(glob.escape(node.log_path) + ".*")
    return sorted(rotated, key=lambda path: -int(path.rsplit(".", 1)[1])) + [node.log_path]


def log_lines(node: NetNode, start: int, end: int) -> list[str]:
    """The lines logged between two of ``sizes``' positions."""
    text = b"".join(pathlib.Path(path).read_bytes() for path in log_files(node))
    return text[start:end].decode(errors="replace").splitlines()


def sizes(cluster: NetCluster) -> dict[int, int]:
    return {n.index: sum(os.path.getsize(path) for path in log_files(n)) for n in cluster.nodes}


def stamp(text: str) -> float:
    """A log line's time stamp (twistd's, to the second), in seconds since 1970."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def count(lines: list[str], pattern: re.Pattern[str], keep: Callable[[re.Match[str]], bool] = bool) -> int:
    return sum(1 for line in lines if (m := pattern.search(line)) and keep(m))


def soak(cluster: NetCluster, percent: int, seconds: float) -> dict[str, object]:
    before = sizes(cluster)
    cluster.loss(percent)
    time.sleep(seconds)
    cluster.no_loss()
    after = sizes(cluster)
    healed = time.monotonic()
    settled = wait_for(lambda: converged(cluster.nodes), 30)
    logs = {n.index: log_lines(n, before[n.index], after[n.index]) for n in cluster.nodes}
    lines = [line for node in logs.values() for line in node]
    terms = {m[1] for line in lines if (m := MASTER.search(line))}
    paused = {index: [stamp(m[1]) for line in node if (m := PAUSED.search(line))] for index, node in logs.items()}
    downs = [(stamp(m[1]), int(m[2].rsplit(".", 1)[1])) for line in lines if (m := DOWN.search(line))]
    return {
        "suspects": count(lines, SUSPECT),
        "false downs": len(downs),
        # A host whose own process did not run (rais.pause) sent no heartbeat either: its peers
        # were right. Its log says so when it runs again, at most a few seconds after they judged.
        "of a paused host": sum(1 for when, host in downs if any(-1 <= p - when <= 3 for p in paused.get(host, []))),
        "pauses": sum(len(p) for p in paused.values()),
        "new terms": len(terms),
        "decisions": count(lines, DECIDED),
        "orders": count(lines, DECIDED, lambda m: bool(ORDER.search(m[1]))),
        "converged after": f"{time.monotonic() - healed:.2f} s" if settled else "not in 30 s",
    }


def master_death(cluster: NetCluster) -> str:
    view = agreed(cluster.nodes)
    if view is None:
        return "no agreed master to kill"
    master = next(n for n in cluster.nodes if n.status()["self"] == view[0])
    rest = [n for n in cluster.nodes if n is not master]
    cluster.kill(master)
    killed = time.monotonic()

    if not wait_for(lambda: (agreed(rest) or view)[0] != view[0], 30, step=0.02):
        return f"{view[0]} killed: no agreement in 30 s"
    took = time.monotonic() - killed
    return f"{view[0]} killed: every survivor named {(agreed(rest) or ('?',))[0]} after {took:.2f} s"


def main() -> None:
    reason = unavailable()
    if reason:
        print(f"skipped: network namespaces: {reason}")
        return
    seconds = float(os.environ.get("RAIS_SOAK_SECONDS", "120"))
    with tempfile.TemporaryDirectory(prefix="rais-loss-") as base, \
            NetCluster(base, ROLES, INTERVAL, DEAD_AFTER, extras={2: WEB}) as cluster:
        cluster.listen(cluster.nodes[1], WEB_PORT)
        cluster.start_all()
        cluster.wait_ready()
        if not wait_for(lambda: converged(cluster.nodes), 30):
            raise RuntimeError("the cluster did not converge before the soak")
        rows = {percent: soak(cluster, percent, seconds) for percent in LEVELS}
        death = master_death(cluster)
    columns = list(rows[LEVELS[0]])
    print(f"{seconds:g} s of random loss per level, on every link; heartbeat {INTERVAL} s, dead_after {DEAD_AFTER}, "
          f"{len(ROLES)} hosts, none of which died")
    print(f"{'loss':>5}" + "".join(f"{c:>17}" for c in columns))
    for percent, row in rows.items():
        print(f"{percent:>4}%" + "".join(f"{row[c]!s:>17}" for c in columns))
    print(f"master death without loss: {death}", flush=True)
