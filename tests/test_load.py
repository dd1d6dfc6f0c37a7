"""Load sources ([node] load_source): the host's figures from psutil, a cgroup v2's CPU against its
allowance, and an operator's command; averaged so a heartbeat carries sustained load, not noise."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import psutil
import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock, deferLater
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from rais import load
from rais.interfaces import ILoadSource, LoadFigures
from rais.load import (
    SMOOTHING,
    CgroupCpu,
    CgroupError,
    CommandLoad,
    LoadSampler,
    allowance,
    cgroup2_mounts,
    cgroup_folder,
    cgroup_of,
    cpuset_size,
    own_cgroup,
    parse_figures,
    quota_cpus,
    usage_usec,
)
from rais.localcluster import LocalCluster, wait_for
from tests.processes import state as process_state

Counters = namedtuple("Counters", "bytes_recv bytes_sent")


@pytest.fixture
def host(monkeypatch):
    """The host's figures, as the test sets them: [cpu percent, Counters]."""
    figures = [0.0, Counters(0, 0)]
    monkeypatch.setattr(load.psutil, "cpu_percent", lambda interval=None: figures[0])
    monkeypatch.setattr(load.psutil, "net_io_counters", lambda: figures[1])
    return figures


def lines(events):
    return [formatEvent(e) for e in events]


# --- the sampler ------------------------------------------------------------


def test_figures_are_averaged_over_about_the_smoothing_time(host):
    sampler = LoadSampler(0.0)
    assert sampler.sample(0.2).cpu_permille == 0
    host[0] = 100.0  # the host becomes busy, and stays busy
    now, seen = 0.2, []
    while now < 0.2 + SMOOTHING:
        now = round(now + 0.2, 6)
        host[1] = Counters(int(now * 1_000_000), 0)  # a steady 1 MB/s in
        seen.append(sampler.sample(now))
    assert seen[0].cpu_permille < 100  # one busy beat is not a busy host
    expected = 1000 * (1 - math.exp(-1))  # after one time constant
    assert abs(seen[-1].cpu_permille - expected) < 30
    assert 500_000 < seen[-1].net_rx_bps < 1_000_000
    assert [s.cpu_permille for s in seen] == sorted(s.cpu_permille for s in seen)


@implementer(ILoadSource)
class Given:
    """A source whose figures the test sets."""

    name = "given"

    def __init__(self, smoothed):
        self.smoothed = smoothed
        self.figures = LoadFigures()
        self.stopped = False

    def read(self, now):
        return self.figures

    def stop(self):
        self.stopped = True


def test_a_source_gives_what_it_measures_and_the_host_the_rest(host):
    host[0], source = 20.0, Given(smoothed=False)
    sampler = LoadSampler(0.0, source)
    assert sampler.source == "given" and LoadSampler(0.0).source == "host"
    host[1] = Counters(1000, 3000)
    first = sampler.sample(1.0)
    assert (first.cpu_permille, first.net_rx_bps, first.net_tx_bps) == (200, 1000, 3000)  # none given yet
    source.figures = LoadFigures(cpu=0.9, tx=50.0)  # a step, carried as given at once
    host[1] = Counters(2000, 6000)
    second = sampler.sample(2.0)
    assert (second.cpu_permille, second.net_rx_bps, second.net_tx_bps) == (900, 1000, 50)
    source.figures = LoadFigures()  # the source fails: the host's average stands in, as it ran on
    assert sampler.sample(3.0).cpu_permille == 200
    sampler.stop()
    assert source.stopped


def test_a_smoothed_source_is_averaged_like_the_host(host):
    source = Given(smoothed=True)
    sampler = LoadSampler(0.0, source)
    source.figures = LoadFigures(cpu=0.0)
    sampler.sample(1.0)
    source.figures = LoadFigures(cpu=1.0)
    expected = 1000 * (1 - math.exp(-1 / SMOOTHING))
    assert abs(sampler.sample(2.0).cpu_permille - expected) <= 1


# --- cgroup -----------------------------------------------------------------

PURE_V2 = """\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
HYBRID = """\
31 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
33 31 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
"""


def test_own_cgroup_path_is_the_v2_line():
    assert cgroup_of("12:cpu,cpuacct:/user.slice\n0::/system.slice/rais.service\n") == "/system.slice/rais.service"
    with pytest.raises(CgroupError, match="no cgroup v2 hierarchy"):
        cgroup_of("4:memory:/docker/abc\n1:cpu:/\n")


@pytest.mark.parametrize(("proc_cgroup", "mountinfo", "folder"), [
    ("0::/system.slice/rais.service\n", PURE_V2, "/sys/fs/cgroup/system.slice/rais.service"),
    ("0::/\n", PURE_V2, "/sys/fs/cgroup"),  # a container's own cgroup is the root of its namespace
    ("1:name=systemd:/x\n0::/user.slice\n", HYBRID, "/sys/fs/cgroup/unified/user.slice"),
    # A mount of a subtree shows the cgroups under it; an escaped space in its mount point.
    ("0::/machine.slice/vm/inner\n",
     "40 1 0:26 /machine.slice /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n",
     "/mnt/my cgroups/vm/inner"),
])
def test_the_folder_of_a_cgroup(proc_cgroup, mountinfo, folder):
    assert cgroup_folder(proc_cgroup, mountinfo) == folder


def test_cgroup2_mounts_among_the_others():
    assert cgroup2_mounts(HYBRID) == [("/", "/sys/fs/cgroup/unified")]
    assert cgroup2_mounts(PURE_V2 + HYBRID) == [("/", "/sys/fs/cgroup"), ("/", "/sys/fs/cgroup/unified")]


def test_no_folder_without_a_cgroup2_mount_that_shows_it():
    with pytest.raises(CgroupError, match="no cgroup v2 hierarchy is mounted"):
        cgroup_folder("0::/a\n", HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs"))
    with pytest.raises(CgroupError, match="no cgroup v2 mount shows this process's cgroup /elsewhere"):
        cgroup_folder("0::/elsewhere\n", "40 1 0:26 /machine.slice /mnt rw - cgroup2 cgroup2 rw\n")


def test_cgroup_files_parsed():
    assert usage_usec("usage_usec 20031354327\nuser_usec 17851979099\nsystem_usec 2179375227\n") == 20031354327
    with pytest.raises(CgroupError, match="no usage_usec"):
        usage_usec("user_usec 5\n")
    assert quota_cpus("max 100000\n") is None
    assert quota_cpus("150000 100000\n") == 1.5
    assert quota_cpus("50000 100000") == 0.5
    for bad in ("", "max", "-1 100000", "100000 0", "lots 100000"):
        with pytest.raises(CgroupError, match="cpu.max is not QUOTA PERIOD"):
            quota_cpus(bad)
    assert cpuset_size("0-3,8\n") == 5
    assert cpuset_size("7") == 1
    for bad in ("", "3-1", "0,,1", "a-b"):
        with pytest.raises(CgroupError, match="cpuset is not a list of CPUs"):
            cpuset_size(bad)


def cgroup(folder: Path, usage: int | None = None, cpu_max: str | None = None, cpuset: str | None = None) -> Path:
    """A fake cgroup v2 folder: cgroup.controllers, and the files given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cgroup.controllers").write_text("cpu cpuset\n")
    for name, text in (("cpu.stat", usage is not None and f"usage_usec {usage}\nuser_usec 0\n"),
                       ("cpu.max", cpu_max), ("cpuset.cpus.effective", cpuset)):
        if text:
            (folder / name).write_text(text)
    return folder


def test_allowance_is_the_least_of_the_machine_its_cpuset_and_every_quota_above(tmp_path):
    cgroup(tmp_path / "root")  # the hierarchy's root has no cpu.max
    parent = cgroup(tmp_path / "root" / "container", cpu_max="200000 100000\n")
    child = cgroup(parent / "rais", cpu_max="max 100000\n", cpuset="0-2\n")
    assert allowance(str(child), machine_cpus=8) == 2.0  # the container's quota, set on the parent
    assert allowance(str(child), machine_cpus=1) == 1.0  # a quota over the machine is the machine
    (child / "cpu.max").write_text("50000 100000\n")
    assert allowance(str(child), machine_cpus=8) == 0.5
    (child / "cpu.max").unlink()
    (parent / "cpu.max").unlink()
    assert allowance(str(child), machine_cpus=8) == 3.0  # its cpuset
    assert allowance(str(tmp_path / "root"), machine_cpus=8) == 8.0


def test_a_cgroup_reports_its_cpu_against_its_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(load.os, "cpu_count", lambda: 4)
    folder = cgroup(tmp_path / "c", usage=1_000_000, cpu_max="100000 100000\n")
    source = CgroupCpu(str(folder), 10.0)
    assert source.smoothed
    cgroup(folder, usage=1_500_000)  # half a CPU-second in a second
    assert source.read(11.0) == LoadFigures(cpu=0.5)
    cgroup(folder, usage=3_500_000)
    assert source.read(12.0) == LoadFigures(cpu=1.0)  # two CPUs' worth against a quota of one: all of it
    (folder / "cpu.max").write_text("max 100000\n")  # the quota lifted live: the machine's 4 CPUs
    cgroup(folder, usage=5_500_000)
    assert source.read(13.0) == LoadFigures(cpu=0.5)
    cgroup(folder, usage=10)  # made again: its count restarted
    assert source.read(14.0) == LoadFigures(cpu=0.0)


def test_an_unreadable_cgroup_is_logged_once_and_the_host_stands_in(tmp_path):
    folder = cgroup(tmp_path / "c", usage=0)
    source = CgroupCpu(str(folder), 0.0)
    (folder / "cpu.stat").unlink()
    with capturedLogs() as events:
        assert [source.read(t) for t in (1.0, 2.0, 3.0)] == [LoadFigures()] * 3
        cgroup(folder, usage=250_000)
        assert source.read(4.0) == LoadFigures(cpu=0.25 / 4 / (os.cpu_count() or 1))  # since the last reading
    assert lines(events) == [
        f"load source cgroup: {folder}: no cpu.stat: not a cgroup v2 folder; the host's figures stand in",
        "load source cgroup answers again",
    ]
    assert events[0]["source"] == "cgroup" and str(folder) in events[0]["why"]


def cgroup2_root() -> str:
    """Where this machine mounts cgroup v2, or skip (a failure in CI) if it does not."""
    with open("/proc/self/mountinfo") as f:
        mounts = [point for root, point in cgroup2_mounts(f.read()) if root == "/"]
    if not mounts:
        pytest.skip("cgroup v2 is not mounted here")
    return mounts[0]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_real_cgroup_with_a_busy_process():
    """A child cgroup made here, a busy process moved into it: its figure is that process's CPU
    time against the quota (1 CPU where this cgroup v2 has the cpu controller, the machine's CPUs
    where cgroup v1 holds it)."""
    root = cgroup2_root()
    own = own_cgroup()
    assert own.startswith(root) and os.path.exists(os.path.join(own, "cpu.stat"))
    child = os.path.join(root, f"rais-test-{os.getpid()}")
    try:
        os.mkdir(child)
    except OSError as e:
        pytest.skip(f"cannot make a cgroup under {root}: {e.strerror}")
    enabled = False
    busy = None
    try:
        with open(os.path.join(root, "cgroup.controllers")) as f:
            quota = "cpu" in f.read().split()
        if quota:
            with open(os.path.join(root, "cgroup.subtree_control")) as f:
                enabled = "cpu" not in f.read().split()
            if enabled:
                with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu")
            with open(os.path.join(child, "cpu.max"), "w") as f:
                f.write("100000 100000")
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        with open(os.path.join(child, "cgroup.procs"), "w") as f:
            f.write(str(busy.pid))
        time.sleep(0.2)
        allowed = allowance(child, os.cpu_count() or 1)
        assert allowed == (1.0 if quota else os.cpu_count())
        start, spent = time.monotonic(), cpu_seconds(busy.pid)
        source = CgroupCpu(child, start)
        time.sleep(1.0)
        now, spent = time.monotonic(), cpu_seconds(busy.pid) - spent
        share = source.read(now).cpu
        # What the busy process used, and nothing of the rest of the machine (ticks are 10 ms).
        assert share is not None and abs(share - spent / (now - start) / allowed) < 0.05, (share, spent, allowed)
        if quota:
            assert share > 0.8  # the whole quota, unless the machine is starved
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        for _ in range(50):  # a killed process leaves its cgroup a moment after it is reaped
            try:
                os.rmdir(child)
                break
            except OSError:
                time.sleep(0.02)
        if enabled:
            with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                f.write("-cpu")
    assert not os.path.exists(child)


# --- command ----------------------------------------------------------------


@pytest.mark.parametrize(("line", "figures"), [
    ("cpu=0.85 rx=1200 tx=3400\n", LoadFigures(0.85, 1200.0, 3400.0)),
    ("  cpu=0.9  ", LoadFigures(cpu=0.9)),
    ("tx=1e6", LoadFigures(tx=1e6)),
    ("cpu=1.7", LoadFigures(cpu=1.0)),  # over its allowance is all of it
    ("\n\ncpu=0\n", LoadFigures(cpu=0.0)),
])
def test_command_output(line, figures):
    assert parse_figures(line) == figures


@pytest.mark.parametrize(("output", "why"), [
    ("", "printed nothing"),
    ("cpu=0.5\nrx=1\n", "printed 2 lines, expected one"),
    ("cpu 0.5", "'cpu' is not cpu=, rx= or tx="),
    ("load=0.5", "'load=0.5' is not cpu=, rx= or tx="),
    ("cpu=0.5 cpu=0.6", "cpu is given twice"),
    ("cpu=-0.1", "'cpu=-0.1': expected a number, at least 0"),
    ("rx=nan", "'rx=nan': expected a number, at least 0"),
    ("tx=fast", "'tx=fast': expected a number, at least 0"),
])
def test_bad_command_output(output, why):
    with pytest.raises(ValueError) as info:
        parse_figures(output)
    assert str(info.value) == why


def done(out: bytes, code: int = 0, err: bytes = b""):
    reason = Failure(ProcessDone(0) if code == 0 else ProcessTerminated(exitCode=code))
    return reason, out, err


class Runs:
    """Stands in for run_in_session: each run a Deferred the test fires."""

    def __init__(self):
        self.started: list[Deferred] = []
        self.cancelled = 0

    def __call__(self, reactor_, argv):
        self.argv = argv
        d = Deferred(lambda _: self._cancelled())
        self.started.append(d)
        return d

    def _cancelled(self):
        self.cancelled += 1


def command(runs, timeout=2.0):
    clock = Clock()
    return clock, CommandLoad(clock, ["cat", "/run/load"], run=runs, timeout=timeout)


def test_a_command_runs_once_a_beat_one_at_a_time_and_its_latest_answer_counts():
    runs = Runs()
    clock, source = command(runs)
    assert not source.smoothed
    assert source.read(0.0) == LoadFigures()  # no answer yet: the host stands in
    assert runs.argv == ("cat", "/run/load") and len(runs.started) == 1
    assert source.read(0.2) == LoadFigures() and len(runs.started) == 1  # still running: not a second
    runs.started[0].callback(done(b"cpu=0.9\n"))
    assert source.read(0.4) == LoadFigures(cpu=0.9) and len(runs.started) == 2
    assert source.read(0.6) == LoadFigures(cpu=0.9)  # the last answer stays while the next run runs
    runs.started[1].callback(done(b"cpu=0.3 rx=10\n"))
    assert source.read(0.8) == LoadFigures(cpu=0.3, rx=10.0)
    assert len(clock.getDelayedCalls()) == 1  # the timeout of the run now running, no other


def test_a_failing_command_is_logged_once_per_change_and_the_host_stands_in():
    runs = Runs()
    clock, source = command(runs)
    with capturedLogs() as events:
        source.read(0.0)
        runs.started[-1].callback(done(b"cpu=0.5"))
        for beat in range(3):
            source.read(beat + 1.0)
            runs.started[-1].callback(done(b"", 1, b"cat: /run/load: No such file or directory\n"))
        assert source.read(4.0) == LoadFigures()
        runs.started[-1].callback(done(b"cpu=lots"))
        source.read(5.0)
        runs.started[-1].callback(done(b"", 2))
        source.read(6.0)
        clock.advance(2.0)  # it hangs: killed, with its group
        assert runs.cancelled == 1 and source.read(8.0) == LoadFigures()
        runs.started[-1].callback(done(b"cpu=0.4"))
        assert source.read(9.0) == LoadFigures(cpu=0.4)
    assert lines(events) == [
        "load source command cat /run/load: exit status 1: cat: /run/load: No such file or directory; "
        "the host's figures stand in",
        "load source command cat /run/load: its output: 'cpu=lots': expected a number, at least 0; "
        "the host's figures stand in",
        "load source command cat /run/load: exit status 2; the host's figures stand in",
        "load source command cat /run/load: no answer in 2s (process group killed); the host's figures stand in",
        "load source command cat /run/load answers again",
    ]


def test_a_command_that_cannot_start_costs_the_beat_not_the_heartbeat():
    def no_process(reactor_, argv):
        raise OSError(24, "Too many open files")

    with capturedLogs() as events:
        source = CommandLoad(Clock(), ["cat", "x"], run=no_process)
        assert source.read(0.0) == source.read(1.0) == LoadFigures()
    assert lines(events) == ["load source command cat x: cannot start it: Too many open files; "
                             "the host's figures stand in"]


def test_stop_kills_the_run_quietly_and_starts_no_more():
    runs = Runs()
    clock, source = command(runs)
    with capturedLogs() as events:
        source.read(0.0)
        source.stop()
        assert runs.cancelled == 1
        assert source.read(1.0) == LoadFigures() and len(runs.started) == 1
    assert events == [] and clock.getDelayedCalls() == []
    source.stop()  # twice is fine
    _, idle = command(Runs())
    idle.stop()  # with nothing running too


def test_a_sampler_carries_a_command_figure_as_given(host):
    host[0] = 10.0
    sampler = LoadSampler(0.0, CommandLoad(Clock(), ["x"], run=lambda r, a: succeed(done(b"cpu=0.9"))))
    assert sampler.sample(0.2).cpu_permille == 900


class RealCommand(TestCase):
    """The command on the reactor, as a node runs it."""

    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.folder)

    async def answer(self, source, beats=50):
        for beat in range(beats):
            figures = source.read(beat * 0.1)
            if figures != LoadFigures():
                return figures
            await deferLater(reactor, 0.1)
        return None

    async def test_a_command_reading_a_file(self):
        path = os.path.join(self.folder, "load")
        with open(path, "w") as f:
            f.write("cpu=0.9 rx=5\n")
        source = CommandLoad(reactor, ["cat", path])
        self.addCleanup(source.stop)
        assert await self.answer(source) == LoadFigures(cpu=0.9, rx=5.0)

    async def test_stop_leaves_no_process(self):
        pidfile = os.path.join(self.folder, "pids")
        source = CommandLoad(reactor, ["sh", "-c", f"sleep 30 & echo $$ $! > {pidfile}; wait"])
        source.read(0.0)
        for _ in range(100):
            if os.path.exists(pidfile) and open(pidfile).read().endswith("\n"):
                break
            await deferLater(reactor, 0.02)
        pids = [int(p) for p in open(pidfile).read().split()]
        source.stop()
        await deferLater(reactor, 0.2)
        states = [process_state(p) for p in pids]
        for pid in pids:  # whatever the assertion says, leave nothing running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # The shell and its child got SIGKILL: gone, or zombies until their parent reaps them.
        assert all(state in ("gone", "Z") for state in states), (pids, states)


# --- a real node ------------------------------------------------------------


def group_members(leader: int) -> list[int]:
    """The live processes of the process group ``leader`` leads (a load command's, under setsid):
    a zombie has ended, waiting only for its parent (init, for an orphan) to reap it."""
    return [pid for pid in psutil.pids() if process_state(pid) not in ("gone", "Z") and _group(pid) == leader]


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.integration
def test_a_node_with_a_load_command_reports_its_figure_to_the_master(tmp_path):
    """Node 2's command cats a file the test writes; node 1's hangs, and must be killed with its
    group when the node stops (it would be at its 5 s timeout; the test is over before then)."""
    figures = tmp_path / "load"
    figures.write_text("cpu=0\n")

    def write(text):  # whole or not at all: cat never sees half a line
        (tmp_path / "load.new").write_text(text)
        os.replace(tmp_path / "load.new", figures)

    # `; :` keeps the shell from replacing itself with sleep: its command line names the marker.
    marker = str(tmp_path / "hanging")
    extras = {1: f'load_source = "command"\nload_command = ["sh", "-c", "sleep 30; :", "{marker}"]\n',
              2: f'load_source = "command"\nload_command = ["cat", "{figures}"]\n'}
    cluster = LocalCluster(str(tmp_path), ["master", "active"], 0.2, 3, extras=extras)
    master = cluster.nodes[0]

    def cpu():
        rows = {r["host"]: r["cpu_permille"] for r in master.status()["tables"]["cpu"]}
        return rows.get("1.2.0.2")

    def hanging():
        return [p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]

    cluster.start_all()
    try:
        cluster.wait_ready()
        # Its first beat carries the host's figure; the master rewrites a row only for a change of 10
        # points, so the row settles anywhere under 100.
        assert wait_for(lambda: cpu() is not None and cpu() < 100, 10), master.status()["tables"]["cpu"]
        write("cpu=0.9\n")
        written = time.monotonic()
        assert wait_for(lambda: cpu() == 900, 5), master.status()["tables"]["cpu"]
        took = time.monotonic() - written
        print(f"cpu=0.9 written to the master's cpu table in {took:.2f}s")  # within 5 s; a figure, not a bound
        [shell] = hanging()
        assert len(group_members(shell)) == 2  # the shell and its sleep
    finally:
        cluster.stop_all()
    assert wait_for(lambda: not group_members(shell), 1), [(p, process_state(p)) for p in group_members(shell)]
    for node in cluster.nodes:
        log = (tmp_path / f"node{node.host_id}" / "twistd.log").read_text()
        assert "load from command " in log
        assert "Unhandled" not in log and "Traceback" not in log, log
        # Node 1's hanging command is killed after COMMAND_TIMEOUT, and says so, if the test runs that long.
        assert node.host_id == 1 or "load source" not in log, log
