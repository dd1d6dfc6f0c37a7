"""A virtual IP's failover, RAIS against keepalived, as an HTTP client sees it.

Three hosts, each a network namespace running nginx (rais.netcluster); a client in the
observer namespace fetches http://VIP:8080/ every 10 ms, each on a new connection (so
each finds the VIP through its ARP cache afresh), and every stretch of failed fetches
is an outage. Host 2 holds the VIP at the start. RAIS moves it with the operator's
action, etc/actions/rais-vip (start, stop, and announce as the refresh); keepalived
with VRRP. Each run starts from nothing running (no VIP, empty ARP caches, every
nginx up, every link up), brings one system to steady state, then fails one thing:
- nginx: nginx killed (SIGKILL) on the VIP's holder, host 2;
- link: host 2's link down (its cable pulled);
- daemon: the failover daemon killed with SIGKILL where it leads: RAIS's master, host
  1, which does not hold the VIP; keepalived on the VRRP master, host 2, which does
  (every keepalived process there at once: the daemon crashed);
- and keepalived only, as it runs two processes: main, its main process killed
  (SIGKILL), whose VRRP child is then told to stop (SIGTERM) and leaves in order;
  vrrp, its VRRP process killed, which the main process starts again.
At two timings (TIMINGS): every second, and the fastest each runs reliably here.
Reported over RAIS_VIP_RUNS runs (default 5) for each system, timing and failure:
the longest outage and the total, median and max, and keepalived's over RAIS's, as a
markdown table; a plot goes to RAIS_VIP_PLOT (default bench-vip.png here). Fewer
while developing: RAIS_VIP_TIMINGS=slow|fast, RAIS_VIP_FAILURES=nginx,link,daemon,main,vrrp,
RAIS_VIP_SYSTEMS=rais,keepalived (comma-separated). It needs root, keepalived, nginx,
arping, curl and matplotlib (`make bench` installs matplotlib; it says what is missing).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from rais.localcluster import agreed, converged, service_rows, stop_processes, wait_for
from rais.netcluster import HTTP_PORT, Client, HolderWatch, NetCluster, NetNode, run, unavailable

ROLES = ["master", "active", "standby"]
HOLDER = 2  # the host (its index) holding the VIP at the start of every run
DEAD_AFTER = 3  # RAIS: a host is down after 3 silent heartbeats, as VRRP's master-down is 3 adverts (plus skew)
RISE, FALL = 2, 2  # both: checks in a row before a service counts as up again, or as down
CHECK_TIMEOUT = 1  # s a check may take (RAIS probe_timeout, vrrp_script timeout: keepalived 2.2 takes whole seconds)
SETTLE = 6.0  # RAIS [cluster] settle: the starting master places nothing before every host has said what it runs
STEADY = 1.0  # s of steady state (host 2 answers, alone holds the VIP) before each failure
QUIET = 3.0  # s watched after a failover is seen complete: the new copy's verification, a second move, a move back
LIMIT = 30.0  # s a failover may take before the run says it never completed
# The client's fetches: one every 10 ms, each given 50 ms to connect and again to answer (the
# Client's default is 200 ms). A fetch into a black hole (the VIP's MAC on a host cut off) fails only
# when its time is up and the next starts after it, so such an outage is measured up to that much
# long; 50 ms keeps that small, and a steady cluster here failed one fetch in 30000 with it (a
# stall of the whole machine, which a RAIS node saw too, as a late heartbeat).
FETCH_TIMEOUT = 0.05
RESOLUTION = 0.01  # s: the client's period; shorter outages cannot be told from none


@attrs.frozen
class Timing:
    name: str
    heartbeat: float  # RAIS heartbeat_interval
    probe: float  # RAIS probe_interval of the VIP's service
    advert: float  # keepalived advert_int (VRRPv3 takes fractions of a second)
    check: int  # keepalived vrrp_script interval: whole seconds in keepalived 2.2 (2.3.2 added milliseconds)


TIMINGS = {
    "slow": Timing("every 1 s", 1.0, 1.0, 1.0, 1),
    # The least each takes (RAIS heartbeat_interval 0.05, probe_interval 0.1; VRRPv3 advert_int 0.01;
    # keepalived 2.2's vrrp_script interval is whole seconds). Each held steady state here, on a busy
    # 2-core machine, without a false failover: RAIS twice 300 s without a host down (one late beat,
    # "suspect", in a stall of the whole machine), keepalived 420 s without a change of master.
    "fast": Timing("fastest", 0.05, 0.1, 0.01, 1),
}
FAILURES = {"nginx": "nginx killed on the holder", "link": "holder's link down", "daemon": "daemon killed (SIGKILL)",
            "main": "keepalived's main process killed", "vrrp": "keepalived's VRRP process killed"}

# Each host declares the VIP as a service; host 2 boots holding it. The probe checks the VIP itself
# (address), so the master sees what clients see.
RAIS_WEB = """
[services.web]
probe = "http"
port = {port}
address = "{vip}"
running = {running}
start = {start}
stop = {stop}
refresh = {refresh}
exclusive = true
probe_interval = {probe}
probe_timeout = {timeout}
rise = {rise}
fall = {fall}

[policy.web]
replicas = 1
"""
# No spare kept back (min_spares 0): the standby, host 3, takes the VIP, as keepalived's next priority does.
RAIS_SETTINGS = "min_spares = 0"

# keepalived as its manual has it for a quick failover; "!" starts a comment.
KEEPALIVED = """\
! Written by bench/vip.py for host {index}.
global_defs {{
    router_id bench-host-{index}
    ! VRRPv3: VRRPv2 rounds an advert_int under a second up to 1 s.
    vrrp_version 3
    ! On becoming master, 5 gratuitous ARPs at once (the default), and 5 more a second later, not
    ! 5 s later, in case the first burst was lost (rais-vip repeats its announcements likewise).
    vrrp_garp_master_repeat 5
    vrrp_garp_master_delay 1
    ! Announce again every 5 s while master, so a client pointed elsewhere (a lost ARP, a holder that
    ! died with the VIP up) finds the master again: what RAIS's refresh does on a new term.
    vrrp_garp_master_refresh 5
    ! The check runs as root (curl is root's and not writable by others), without a warning.
    script_user root
    enable_script_security
    ! Real-time scheduling once the VRRP process finds itself late, as keepalived advises at startup.
    max_auto_priority
}}
vrrp_script nginx {{
    ! What RAIS's http probe does: GET / must answer under 400 (here at this host's own address:
    ! a backup checks its own nginx before it may take the VIP).
    script "/usr/bin/curl --fail --silent --output /dev/null --max-time {timeout} http://{address}:{port}/"
    interval {check}
    timeout {timeout}
    rise {rise}
    fall {fall}
}}
vrrp_instance web {{
    ! Every host starts as a backup, with nopreempt: a host coming back does not take the VIP back
    ! from the current master, as RAIS does not move a service back (no policy prefer here).
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 51
    ! Host 2 leads; then host 3 (RAIS's standby, which RAIS's planner picks), then host 1.
    priority {priority}
    advert_int {advert}
    virtual_ipaddress {{
        {vip}/32 dev eth0
    }}
    ! Weight 0: a failing check puts the instance in FAULT, so it drops the VIP and sends priority 0
    ! (a weight would only lower its priority, and with nopreempt no backup would take over).
    track_script {{
        nginx
    }}
}}
"""
PRIORITIES = {1: 50, 2: 150, 3: 100}


def host_id(node: NetNode) -> str:
    """The node's host as RAIS names it (cluster 1.2)."""
    return f"1.2.0.{node.host_id}"


@attrs.frozen
class Seen:
    """What a run watches: who holds the VIP, and who answers the client."""

    watch: HolderWatch
    client: Client

    def answered_by(self, index: int) -> bool:
        last = self.client.last()
        return last is not None and last.answer == f"host {index}"

    def served_by(self, index: int) -> bool:
        """The host alone holds the VIP and answered the client's latest fetch."""
        return self.watch.holding() == {index} and self.answered_by(index)

    def taken_over(self) -> bool:
        """A host other than the first holder holds the VIP and answered the client's latest fetch."""
        return any(self.answered_by(i) for i in self.watch.holding() - {HOLDER})


class NotSteady(RuntimeError):
    """A system did not reach steady state: the run starts again."""


class System(Protocol):
    name: str
    failures: tuple[str, ...]  # those of FAILURES it has

    def start(self, seen: Seen) -> None:
        """Start every host's daemon and return at steady state: host 2 holds the VIP and serves."""

    def kill(self, seen: Seen, failure: str) -> Callable[[], bool]:
        """Kill the daemon (or a process of it) where it leads; what says the failover is complete."""

    def stop(self) -> None:
        """Stop every process it started."""


class Scene:
    """One cluster for one timing, shared by both systems: three hosts with nginx, the VIP nowhere."""

    def __init__(self, cluster: NetCluster) -> None:
        self.cluster = cluster
        self.servers = {node.index: cluster.serve(node) for node in cluster.nodes}

    def node(self, index: int) -> NetNode:
        return self.cluster.nodes[index - 1]

    def reset(self) -> None:
        """Back to the start, whatever the last run did: links up, nginx everywhere, the VIP
        nowhere, and empty ARP caches, so every run's client and hosts find the VIP afresh."""
        for node in self.cluster.nodes:
            self.cluster.link_up(node)
            if self.servers[node.index].poll() is not None:
                self.servers[node.index] = self.cluster.serve(node)
            self.cluster.drop_vip(node)
        for namespace in [n.namespace for n in self.cluster.nodes] + [self.cluster.observer]:
            run(["ip", "-n", namespace, "neigh", "flush", "all"])

    def fail(self, system: System, failure: str, seen: Seen) -> Callable[[], bool]:
        """Make the failure happen now; what says the failover is complete."""
        if failure == "nginx":
            server = self.servers[HOLDER]
            server.kill()
            server.wait()
        elif failure == "link":
            self.cluster.link_down(self.node(HOLDER))
        else:
            return system.kill(seen, failure)
        return seen.taken_over


class Rais:
    """RAIS nodes, host 1 the configured master; every run a new cluster (state wiped)."""

    name = "RAIS"
    failures: tuple[str, ...] = ("nginx", "link", "daemon")  # a node is one process

    def __init__(self, scene: Scene, timing: Timing) -> None:
        self.cluster = scene.cluster
        for node in self.cluster.nodes:
            with open(node.config_path, "a") as f:
                f.write(RAIS_WEB.format(port=HTTP_PORT, vip=self.cluster.vip, running=str(node.index == HOLDER).lower(),
                                        start=json.dumps(self.cluster.vip_action("start")),
                                        stop=json.dumps(self.cluster.vip_action("stop")),
                                        refresh=json.dumps(self.cluster.vip_action("announce")),
                                        probe=timing.probe, timeout=CHECK_TIMEOUT, rise=RISE,
                                        fall=FALL))

    def start(self, seen: Seen) -> None:
        nodes = self.cluster.nodes
        for node in nodes:  # a new cluster: no tables or terms from the last run
            shutil.rmtree(os.path.join(node.folder, "state"), ignore_errors=True)
        self.cluster.take_vip(nodes[HOLDER - 1])  # host 2 boots holding it, as its config says
        master, *others = nodes
        self.cluster.start(master)
        settled = time.monotonic() + SETTLE
        self.cluster.wait_ready()
        for node in others:
            self.cluster.start(node)
        self.cluster.wait_ready()
        if not wait_for(lambda: self.steady(seen), SETTLE + 20):
            raise NotSteady(f"no steady state: {[n.status()['tables']['services'] for n in nodes]}")
        time.sleep(max(0.0, settled - time.monotonic()))  # a failure during the settle would wait for its end

    def steady(self, seen: Seen) -> bool:
        """Host 1 leads, every node has the same tables, and they run web on host 2 alone, as the
        client and the watch see it."""
        nodes = self.cluster.nodes
        if not seen.served_by(HOLDER) or not converged(nodes) or (agreed(nodes) or ("",))[0] != host_id(nodes[0]):
            return False
        rows = service_rows(nodes[0], "web")
        holder = host_id(nodes[HOLDER - 1])
        return [h for h, r in rows.items() if r["assigned"]] == [holder] and rows[holder]["state"] == "running"

    def kill(self, seen: Seen, failure: str) -> Callable[[], bool]:
        master = self.cluster.nodes[0]  # steady() made sure it leads, and it does not hold the VIP
        self.cluster.kill(master, signal.SIGKILL)
        rest = self.cluster.nodes[1:]
        return lambda: (agreed(rest) or (host_id(master),))[0] != host_id(master)

    def stop(self) -> None:
        self.cluster.stop_all()


class Keepalived:
    """keepalived in each host's namespace (VRRPv3, multicast adverts on the bridge), each with its
    own config, pid files and log in its node's folder."""

    name = "keepalived"
    failures: tuple[str, ...] = tuple(FAILURES)

    def __init__(self, scene: Scene, timing: Timing) -> None:
        self.cluster = scene.cluster
        self.processes: dict[int, subprocess.Popen] = {}
        self.offsets: dict[int, int] = {}  # where each log was when its keepalived started
        for node in self.cluster.nodes:
            os.makedirs(self.folder(node), exist_ok=True)
            with open(self.path(node, "keepalived.conf"), "w") as f:
                f.write(KEEPALIVED.format(index=node.index, address=node.address, port=HTTP_PORT, check=timing.check,
                                          timeout=CHECK_TIMEOUT, rise=RISE, fall=FALL, advert=timing.advert,
                                          priority=PRIORITIES[node.index], vip=self.cluster.vip))

    @staticmethod
    def folder(node: NetNode) -> str:
        return os.path.join(node.folder, "keepalived")

    def path(self, node: NetNode, name: str) -> str:
        return os.path.join(self.folder(node), name)

    def launch(self, node: NetNode) -> None:
        # Pid files of its own for each process keepalived may start, so three run on one machine;
        # any left by a killed one go first (keepalived refuses to start while one names a live pid).
        pids = {option: self.path(node, f"{name}.pid") for option, name in
                (("--pid", "keepalived"), ("--vrrp_pid", "vrrp"), ("--checkers_pid", "checkers"), ("--bfd_pid", "bfd"))}
        for path in pids.values():
            if os.path.exists(path):
                os.remove(path)
        log = self.path(node, "keepalived.log")
        self.offsets[node.index] = os.path.getsize(log) if os.path.exists(log) else 0
        argv = ["keepalived", "--vrrp", "--dont-fork", "--log-console", "--log-detail", "--no-syslog",
                "--use-file", self.path(node, "keepalived.conf"), *(f"{o}={p}" for o, p in pids.items())]
        self.processes[node.index] = self.cluster.spawn(node, argv, log=log)

    def logged(self, node: NetNode) -> str:
        """What its keepalived logged since it last started."""
        with open(self.path(node, "keepalived.log"), "rb") as f:
            f.seek(self.offsets[node.index])
            return f.read().decode(errors="replace")

    def start(self, seen: Seen) -> None:
        # Host 2 alone first: with every host a backup, whoever's master-down timer ends first
        # leads, and that depends on when each process started.
        holder = self.cluster.nodes[HOLDER - 1]
        self.launch(holder)
        if not wait_for(lambda: seen.served_by(HOLDER), 30):
            raise NotSteady(f"host {HOLDER} never took the VIP: {self.logged(holder)[-2000:]}")
        backups = [n for n in self.cluster.nodes if n is not holder]
        for node in backups:
            self.launch(node)
        if not wait_for(lambda: all("Entering BACKUP STATE" in self.logged(n) for n in backups), 30) \
                or not seen.served_by(HOLDER):
            raise NotSteady(f"no steady state: holders {sorted(seen.watch.holding())}")

    def kill(self, seen: Seen, failure: str) -> Callable[[], bool]:
        # The VRRP child dies first: killed after its parent, it would get the SIGTERM its parent
        # asks for when it dies (PR_SET_PDEATHSIG) and leave in good order (priority 0 sent, VIP
        # dropped), which a crash does not do ("main" measures that); killed alone, its parent
        # starts a new one ("vrrp").
        holder = self.cluster.nodes[HOLDER - 1]
        log = self.path(holder, "keepalived.log")
        mark = os.path.getsize(log)
        if failure in ("daemon", "vrrp"):
            with open(self.path(holder, "vrrp.pid")) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        if failure in ("daemon", "main"):
            parent = self.processes.pop(HOLDER)
            parent.kill()
            parent.wait()
        if failure == "vrrp":
            # The new VRRP process drops the VIP as it starts and joins as a backup; a backup
            # takes over, or with nobody master the highest priority does, which may be host 2
            # again: done once the new process has a state and one host serves, as seen afresh
            # (a watch sample and an answered fetch both begun after the state was logged).
            since: list[float] = []

            def done() -> bool:
                if not since:
                    with open(log, "rb") as f:
                        f.seek(mark)
                        text = f.read()
                    if b"Entering BACKUP STATE" in text or b"Entering MASTER STATE" in text:
                        since.append(time.monotonic())
                    return False
                last, samples = seen.client.last(), seen.watch.samples
                return (last is not None and last.at > since[0] and bool(samples) and samples[-1][0] > since[0]
                        and any(seen.served_by(i) for i in seen.watch.holding()))

            return done
        return seen.taken_over

    def stop(self) -> None:
        stop_processes(list(self.processes.values()))  # SIGTERM: each drops the VIP and sends priority 0
        self.processes.clear()


SYSTEMS: dict[str, type[Rais] | type[Keepalived]] = {"rais": Rais, "keepalived": Keepalived}


@attrs.frozen
class Run:
    system: str
    timing: str
    failure: str
    longest: float  # s, the longest outage the client saw from the failure on
    total: float  # s, all of them
    took: float | None  # s until the failover was seen complete; None: not within LIMIT
    doubled: bool  # two hosts held the VIP at the end
    unsteady: str  # what went wrong in the steady second before the failure (an outage, another holder), or ""

    def __str__(self) -> str:
        took = f"{self.took:.2f} s" if self.took is not None else f"NOT within {LIMIT:g} s"
        return (f"{self.timing}, {FAILURES[self.failure]}, {self.system}: longest outage {self.longest:.2f} s, "
                f"total {self.total:.2f} s; failover seen complete after {took}"
                + ("; VIP on two hosts" if self.doubled else "")
                + (f"; NOT STEADY before the failure: {self.unsteady}" if self.unsteady else ""))


def one_run(scene: Scene, system: System, timing: Timing, failure: str) -> Run:
    scene.reset()
    with HolderWatch(scene.cluster) as watch, Client(scene.cluster, timeout=FETCH_TIMEOUT) as client:
        seen = Seen(watch, client)
        try:
            system.start(seen)
            steady = time.monotonic()
            time.sleep(STEADY)
            failed = time.monotonic()
            done = scene.fail(system, failure, seen)
            took = time.monotonic() - failed if wait_for(done, LIMIT, step=0.01) else None
            time.sleep(QUIET)
            end = time.monotonic()
            doubled = len(watch.holding()) > 1
        finally:
            system.stop()
    outages = [b - a for a, b in client.outages(failed, end)]
    wrong = [f"outage of {b - a:.2f} s" for a, b in client.outages(steady, failed)]
    if (held := watch.held_by(steady, failed)) != {HOLDER}:
        wrong.append(f"held by {sorted(held)}")
    return Run(system.name, timing.name, failure, max(outages, default=0.0), sum(outages), took, doubled,
               ", ".join(wrong))


def missing() -> list[str]:
    """What this bench needs and this machine lacks, with how to get it."""
    lacking = [f"{tool} (Debian: apt-get install -y --no-install-recommends {package})"
               for tool, package in (("keepalived", "keepalived"), ("nginx", "nginx-light"),
                                     ("arping", "iputils-arping"), ("curl", "curl"))
               if shutil.which(tool) is None]
    if importlib.util.find_spec("matplotlib") is None:
        lacking.append("matplotlib (`make bench` installs it: pip install -e '.[bench]')")
    return lacking


def chosen(variable: str, known: Sequence[str]) -> list[str]:
    """The names an environment variable picks (comma-separated), in ``known``'s order; all by default."""
    names = [n.strip() for n in os.environ.get(variable, ",".join(known)).split(",") if n.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise SystemExit(f"bench.vip: {variable}: expected some of {', '.join(known)}, got {unknown or 'none'}")
    return [n for n in known if n in names]


def of(results: list[Run], system: str, timing: Timing, failure: str) -> list[Run]:
    return [r for r in results if (r.system, r.timing, r.failure) == (system, timing.name, failure)]


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "-"


def ratio(keepalived: Sequence[float], rais: Sequence[float]) -> str:
    """keepalived's median over RAIS's; an outage under the client's period counts as none."""
    if not keepalived or not rais:
        return "-"
    k, r = statistics.median(keepalived), statistics.median(rais)
    if r < RESOLUTION:
        return "none either" if k < RESOLUTION else "inf (RAIS: none)"
    return f"{k / r:.2f}"


def table(results: list[Run], timings: list[Timing], failures: list[str]) -> str:
    lines = ["| timing | failure | RAIS longest | keepalived longest | longest k/R | RAIS total | keepalived total "
             "| total k/R | VIP on two hosts after (RAIS, k.) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for timing in timings:
        for failure in failures:
            rais, kept = (of(results, system.name, timing, failure) for system in (Rais, Keepalived))
            longest = ([r.longest for r in rais], [r.longest for r in kept])
            total = ([r.total for r in rais], [r.total for r in kept])
            doubled = ", ".join(f"{sum(r.doubled for r in rs)}/{len(rs)}" if rs else "-" for rs in (rais, kept))
            lines.append(f"| {timing.name} | {FAILURES[failure]} | {spread(longest[0])} | {spread(longest[1])} "
                         f"| {ratio(longest[1], longest[0])} | {spread(total[0])} | {spread(total[1])} "
                         f"| {ratio(total[1], total[0])} | {doubled} |")
    return "\n".join(lines)


def plot(results: list[Run], timings: list[Timing], failures: list[str], systems: list[str], path: str) -> None:
    """Per timing, the longest and the total outage of every run (dots) and their median (bars)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    colours = {Rais.name: "tab:blue", Keepalived.name: "tab:orange"}
    figure, axes = plt.subplots(2, len(timings), figsize=(max(7.0, 1.5 * len(failures) * len(timings)), 7.5),
                                squeeze=False)
    width = 0.8 / len(systems)
    for column, timing in enumerate(timings):
        for row, (measure, label) in enumerate((("longest", "longest outage (s)"), ("total", "total outage (s)"))):
            ax = axes[row][column]
            for s, system in enumerate(systems):
                for f, failure in enumerate(failures):
                    values = [getattr(r, measure) for r in of(results, system, timing, failure)]
                    if not values:
                        continue
                    x = f + (s - (len(systems) - 1) / 2) * width
                    ax.bar(x, statistics.median(values), width * 0.9, color=colours[system], alpha=0.45,
                           label=system if f == 0 else None)
                    ax.scatter([x] * len(values), values, color=colours[system], s=14, zorder=3)
            ax.set_xticks(range(len(failures)), [textwrap.fill(FAILURES[f], 16) for f in failures], fontsize=7)
            ax.set_ylabel(label)
            ax.set_title(f"{timing.name}: RAIS heartbeat {timing.heartbeat:g} s, probe {timing.probe:g} s; "
                         f"keepalived advert {timing.advert:g} s, check {timing.check} s", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8)
    figure.suptitle("Virtual IP failover as an HTTP client sees it (bars: median; dots: runs)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def measure(scene: Scene, system: System, timing: Timing, failure: str) -> Run:
    """One run, started again (at most twice) if the system never reached steady state: a
    start slowed by a busy machine is no failover to measure."""
    for _ in range(3):
        try:
            return one_run(scene, system, timing, failure)
        except NotSteady as e:
            print(f"  {timing.name}, {FAILURES[failure]}, {system.name}: {e}; starting again", flush=True)
    raise RuntimeError(f"{system.name} reached no steady state three times running")


def main() -> None:
    reason = unavailable()
    if reason:
        print(f"skipped: network namespaces: {reason}")
        return
    lacking = missing()
    if lacking:
        raise SystemExit("bench.vip needs " + "; ".join(lacking))
    count = int(os.environ.get("RAIS_VIP_RUNS", "5"))
    timings = [TIMINGS[t] for t in chosen("RAIS_VIP_TIMINGS", list(TIMINGS))]
    failures = chosen("RAIS_VIP_FAILURES", list(FAILURES))
    systems = chosen("RAIS_VIP_SYSTEMS", list(SYSTEMS))
    path = os.path.abspath(os.environ.get("RAIS_VIP_PLOT", "bench-vip.png"))
    began = time.monotonic()
    results: list[Run] = []
    for timing in timings:
        with tempfile.TemporaryDirectory(prefix="rais-vip-") as base, \
                NetCluster(base, ROLES, timing.heartbeat, DEAD_AFTER, settings=RAIS_SETTINGS, settle=SETTLE) as cluster:
            scene = Scene(cluster)
            made = {name: SYSTEMS[name](scene, timing) for name in systems}
            for i in range(count):
                for failure in failures:
                    # Each system first every other round, so a machine busier at some moments
                    # favours neither.
                    for name in (systems if i % 2 == 0 else systems[::-1]):
                        if failure in made[name].failures:
                            results.append(measure(scene, made[name], timing, failure))
                            print(f"  {results[-1]}", flush=True)
    print(f"\nClient-observed downtime in seconds, median / max of {count} run(s) each; k/R: keepalived's median "
          f"over RAIS's. Both: rise {RISE}, fall {FALL}, checks time out after {CHECK_TIMEOUT} s; RAIS dead_after "
          f"{DEAD_AFTER}; keepalived VRRPv3.\n")
    print(table(results, timings, failures) + "\n")
    for timing in timings:
        print(f"- {timing.name}: RAIS heartbeat_interval {timing.heartbeat:g} s, probe_interval {timing.probe:g} s; "
              f"keepalived advert_int {timing.advert:g} s, vrrp_script interval {timing.check} s")
    unsteady = sum(bool(r.unsteady) for r in results)
    if unsteady:
        print(f"{unsteady} run(s) saw an outage or another holder in the steady second before the failure")
    plot(results, timings, failures, [SYSTEMS[s].name for s in systems], path)
    print(f"\nplot: {path}\nran {len(results)} runs in {time.monotonic() - began:.0f} s", flush=True)
