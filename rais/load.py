"""Where a node's load figures come from (``[node] load_source``), read once a heartbeat.

``host`` (the default) is psutil: the whole machine's CPUs. ``cgroup`` is the CPU time of a cgroup v2
against what that cgroup may use, so a node in a container, or each of several nodes on one machine,
reports its own share. ``command`` is the operator's program printing the figures, run in the
background once a heartbeat.

What a source does not give comes from the host: the network figures of ``cgroup`` (cgroup v2 counts
no network bytes; psutil reads the network namespace the node runs in, which is a container's own
when it has one), a figure a command leaves out, and every figure while a source fails. A failure is
logged when it starts, when it changes and when it ends, never once a beat.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import attrs
import psutil
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from rais.interfaces import ILoadSource, LoadFigures
from rais.process import Ended, exit_code, run_in_session
from rais.settings import SMOOTHING
from rais.wire import Load

if TYPE_CHECKING:
    from rais.config import NodeConfig

log = Logger()

_MAX_RATE = 2**63 - 1
# A load command taking this long is killed: its answer would describe load older than the
# span the other sources average over.
COMMAND_TIMEOUT = SMOOTHING
_KEYS = ("cpu", "rx", "tx")  # the figures, in LoadFigures' order


class LoadSource(StrEnum):
    """What ``[node] load_source`` may name."""

    HOST = "host"
    CGROUP = "cgroup"
    COMMAND = "command"


class _Average:
    """An exponential average over about SMOOTHING seconds, whatever the spacing of its samples."""

    def __init__(self) -> None:
        self.value: float | None = None
        self._at = 0.0

    def add(self, sample: float, now: float) -> float:
        if self.value is None:
            self.value = sample
        else:
            self.value += (1 - math.exp(-max(now - self._at, 0.0) / SMOOTHING)) * (sample - self.value)
        self._at = now
        return self.value


class _Trouble:
    """A source's failure, logged when it starts or changes kind and when it ends: a source that
    fails every beat says so once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.kind: str | None = None

    def failed(self, kind: str, why: str) -> None:
        if kind != self.kind:
            log.warn("load source {source}: {why}; the host's figures stand in", source=self.source, why=why)
        self.kind = kind

    def cleared(self) -> None:
        if self.kind is not None:
            log.info("load source {source} answers again", source=self.source)
        self.kind = None


class HostLoad:
    """The machine's CPU busy share and network byte rates, from psutil: the default source, and
    what stands in for whatever another source does not give.

    psutil.cpu_percent(interval=None) compares with its previous call, so a read never blocks.
    """

    def __init__(self, now: float) -> None:
        psutil.cpu_percent(interval=None)
        self._last = now
        self._net = psutil.net_io_counters()

    def read(self, now: float) -> LoadFigures:
        cpu = psutil.cpu_percent(interval=None) / 100
        net = psutil.net_io_counters()
        elapsed = max(now - self._last, 1e-3)
        # Counters can wrap or reset (interface re-created): clamp at zero.
        rx = max(0, net.bytes_recv - self._net.bytes_recv) / elapsed
        tx = max(0, net.bytes_sent - self._net.bytes_sent) / elapsed
        self._last, self._net = now, net
        return LoadFigures(cpu, rx, tx)


# --- cgroup -----------------------------------------------------------------

_OCTAL = re.compile(r"\\([0-7]{3})")


class CgroupError(Exception):
    """A cgroup cannot be found or read; the message says why, for a log line or a config problem."""


def cgroup_of(proc_cgroup: str) -> str:
    """This process's cgroup v2 path, from /proc/self/cgroup's ``0::PATH`` line."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise CgroupError("this process is in no cgroup v2 hierarchy (only cgroup v1)")


def cgroup2_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(root, mount point) of each cgroup v2 mount in /proc/self/mountinfo's text."""
    mounts = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, kind = before.split(), after.split()
        if len(fields) >= 5 and kind and kind[0] == "cgroup2":
            # The kernel writes a space, tab, newline or backslash in a path as \ooo.
            root, point = (_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), f) for f in fields[3:5])
            mounts.append((root, point))
    return mounts


def cgroup_folder(proc_cgroup: str, mountinfo: str) -> str:
    """The folder of this process's cgroup v2: its path under a cgroup2 mount that shows it (mounted
    at /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system; a container's own cgroup is
    the root of its namespace)."""
    path = cgroup_of(proc_cgroup)
    mounts = cgroup2_mounts(mountinfo)
    if not mounts:
        raise CgroupError("no cgroup v2 hierarchy is mounted")
    for root, point in mounts:
        if root == "/" or path == root or path.startswith(root + "/"):
            return os.path.normpath(point + "/" + path[len(root.rstrip("/")):])
    raise CgroupError(f"no cgroup v2 mount shows this process's cgroup {path}")


def own_cgroup() -> str:
    """The folder of this process's own cgroup v2."""
    try:
        with open("/proc/self/cgroup") as cgroup, open("/proc/self/mountinfo") as mountinfo:
            return cgroup_folder(cgroup.read(), mountinfo.read())
    except OSError as e:
        raise CgroupError(f"cannot read /proc/self: {e.strerror}") from None


def usage_usec(cpu_stat: str) -> int:
    """Microseconds of CPU the cgroup and its descendants have used, from its cpu.stat."""
    for line in cpu_stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value)
    raise CgroupError("cpu.stat has no usage_usec")


def quota_cpus(cpu_max: str) -> float | None:
    """The CPUs' worth of time a cpu.max ``QUOTA PERIOD`` allows, None for ``max`` (no quota)."""
    words = cpu_max.split()
    if len(words) == 2 and words[0] == "max":
        return None
    if len(words) == 2 and all(w.isdigit() and int(w) > 0 for w in words):
        return int(words[0]) / int(words[1])
    raise CgroupError(f"cpu.max is not QUOTA PERIOD: {cpu_max.strip()!r}")


def cpuset_size(cpus: str) -> int:
    """How many CPUs a cpuset list such as ``0-3,8`` names."""
    count = 0
    for part in cpus.strip().split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or not (high or low).isdigit() or int(high or low) < int(low):
            raise CgroupError(f"cpuset is not a list of CPUs: {cpus.strip()!r}")
        count += int(high or low) - int(low) + 1
    return count


def _text(folder: str, name: str) -> str | None:
    """A cgroup file, None if the cgroup has none (its controller is not enabled there)."""
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CgroupError(f"cannot read {name}: {e.strerror}") from None


def allowance(folder: str, machine_cpus: int) -> float:
    """The CPUs' worth of time the cgroup at ``folder`` may use: the machine's CPUs, fewer if its
    cpuset names fewer, and no more than the cpu.max quota of it or of any cgroup above it (a
    container's limit is often set on a parent of the cgroup its processes are in)."""
    cpus = float(machine_cpus)
    if (cpuset := _text(folder, "cpuset.cpus.effective")) is not None and cpuset.strip():
        cpus = min(cpus, cpuset_size(cpuset))
    here = folder
    # Every cgroup v2 folder has cgroup.controllers; the folder holding the hierarchy has not.
    while os.path.exists(os.path.join(here, "cgroup.controllers")):
        if (cpu_max := _text(here, "cpu.max")) is not None and (quota := quota_cpus(cpu_max)) is not None:
            cpus = min(cpus, quota)
        here, parent = os.path.dirname(here), here
        if here == parent:
            break
    return cpus


def cgroup_reading(folder: str) -> tuple[int, float]:
    """(usage_usec, allowance) of the cgroup at ``folder``: cgroupfs files, read from the kernel's
    memory, so reading them once a heartbeat does not block the reactor. CgroupError names the folder."""
    try:
        if not os.path.isdir(folder):
            raise CgroupError("no such folder")
        cpu_stat = _text(folder, "cpu.stat")
        if cpu_stat is None:
            raise CgroupError("no cpu.stat: not a cgroup v2 folder")
        return usage_usec(cpu_stat), allowance(folder, os.cpu_count() or 1)
    except CgroupError as e:
        raise CgroupError(f"{folder}: {e}") from None


@implementer(ILoadSource)
class CgroupCpu:
    """The CPU time of the cgroup v2 at ``folder`` (its descendants' included), as a share of its
    allowance; read again each time, so a quota changed live counts at once."""

    smoothed = True  # as noisy as the host's

    def __init__(self, folder: str, now: float) -> None:
        self.folder = folder
        self.name = f"cgroup {folder}"
        self._trouble = _Trouble("cgroup")  # its problems name the folder
        self._last: tuple[float, int] | None = None  # when, and usage_usec, at the last good reading
        self.read(now)  # the baseline of the first beat's figure

    def read(self, now: float) -> LoadFigures:
        try:
            usage, cpus = cgroup_reading(self.folder)
        except CgroupError as e:
            self._trouble.failed(str(e), str(e))
            return LoadFigures()
        self._trouble.cleared()
        last, self._last = self._last, (now, usage)
        if last is None or now <= last[0]:
            return LoadFigures()
        # Clamped at zero: a cgroup made again restarts its count.
        used = max(0, usage - last[1]) / 1e6
        return LoadFigures(cpu=min(1.0, used / ((now - last[0]) * cpus)))

    def stop(self) -> None:
        pass  # holds nothing between reads


# --- command ----------------------------------------------------------------


def parse_figures(output: str) -> LoadFigures:
    """A load command's output: one line of ``cpu=0.85 rx=1200 tx=3400``, cpu a share of what the
    node may use (over 1 counts as 1), rx and tx bytes/s in and out, each optional; ValueError
    says what is wrong."""
    lines = output.strip().splitlines()
    if len(lines) != 1:
        raise ValueError(f"printed {len(lines)} lines, expected one" if lines else "printed nothing")
    values: dict[str, float] = {}
    for word in lines[0].split():
        key, sep, text = word.partition("=")
        if not sep or key not in _KEYS:
            raise ValueError(f"{word!r} is not cpu=, rx= or tx=")
        if key in values:
            raise ValueError(f"{key} is given twice")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{word!r}: expected a number, at least 0")
        values[key] = min(value, 1.0) if key == "cpu" else value
    return LoadFigures(**values)


class _Failed(Exception):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind  # what counts as a change worth another log line


def _answer(ended: Ended) -> LoadFigures:
    reason, out, err = ended
    code = exit_code(reason)
    if code != 0:
        how = f"exit status {code}" if code is not None else "killed by a signal"
        last = err.decode("utf-8", "replace").strip().rsplit("\n", 1)[-1]
        raise _Failed(how, f"{how}: {last}" if last else how)
    try:
        return parse_figures(out.decode("utf-8", "replace"))
    except ValueError as e:
        raise _Failed("output", f"its output: {e}") from None


@implementer(ILoadSource)
class CommandLoad:
    """Figures the operator's program prints (see parse_figures), run in its own session once a
    heartbeat, never twice at once.

    A beat reads the latest answer, which stays while the next run runs; before the first answer,
    and after a run that failed, there is none, and the host's figures stand in. A run that takes
    ``timeout`` seconds is killed, with its whole process group.
    """

    # Carried as given: the program is the operator's own measurement (averaged there if it wants),
    # and a test that drives load with it sees the step at the next beat, not 5 s later.
    smoothed = False

    def __init__(self, reactor: Any, argv: Sequence[str],
                 run: Callable[[Any, Sequence[str]], Deferred[Ended]] = run_in_session,
                 timeout: float = COMMAND_TIMEOUT) -> None:
        self.reactor = reactor
        self.argv = tuple(argv)
        self.name = f"command {shlex.join(self.argv)}"
        self.timeout = timeout
        self._run = run
        self._trouble = _Trouble(self.name)
        self._figures = LoadFigures()
        self._running: Deferred[Ended] | None = None
        self._stopped = False

    def read(self, now: float) -> LoadFigures:
        if self._running is None and not self._stopped:
            self._start()
        return self._figures

    def _start(self) -> None:
        try:
            d = self._running = self._run(self.reactor, self.argv)
        except OSError as e:  # no process to be had (out of file descriptors): no answer this beat
            self._figures = LoadFigures()
            self._trouble.failed("start", f"cannot start it: {e.strerror}")
            return
        timer = self.reactor.callLater(self.timeout, d.cancel)

        def ended(result: Ended | Failure) -> None:
            if timer.active():
                timer.cancel()
            self._running = None
            if self._stopped:
                return  # cancelled by stop(): no answer is wanted
            try:
                if isinstance(result, Failure):
                    raise _Failed("timeout", f"no answer in {self.timeout:g}s (process group killed)")
                self._figures = _answer(result)
            except _Failed as e:
                self._figures = LoadFigures()
                self._trouble.failed(e.kind, str(e))
            else:
                self._trouble.cleared()

        d.addBoth(ended)

    def stop(self) -> None:
        self._stopped = True
        if self._running is not None:
            self._running.cancel()  # kills its process group


def source_for(node: NodeConfig, reactor: Any, now: float) -> ILoadSource | None:
    """The source ``[node] load_source`` names; None for the host, which the sampler reads anyway."""
    if node.load_source == LoadSource.CGROUP:
        return CgroupCpu(node.cgroup_path or own_cgroup(), now)
    if node.load_source == LoadSource.COMMAND:
        assert node.load_command is not None  # the config requires one
        return CommandLoad(reactor, node.load_command.argv)
    return None


class LoadSampler:
    """The figures a heartbeat carries: the source's where it gives them, the host's where it does
    not; the host's, and a smoothed source's, averaged over about SMOOTHING seconds."""

    def __init__(self, now: float, source: ILoadSource | None = None) -> None:
        self._host = HostLoad(now)
        self._source = source
        # One average per figure (cpu, rx, tx) of each: the host's runs on, so that whenever it
        # stands in for the source it is already a sustained figure.
        self._host_average = [_Average() for _ in _KEYS]
        self._source_average = [_Average() for _ in _KEYS]

    def sample(self, now: float) -> Load:
        host = attrs.astuple(self._host.read(now))
        source = self._source
        own: tuple[float | None, ...] = (None,) * len(_KEYS)
        if source is not None:
            try:
                own = attrs.astuple(source.read(now))
            except Exception:  # a bug in a source must not stop the heartbeats: the host's stand in
                log.failure("load source {source} failed; the host's figures stand in", source=source.name)
        figures = []
        for measured, given, host_average, source_average in zip(
                host, own, self._host_average, self._source_average, strict=True):
            figure = host_average.add(measured, now)
            if given is not None:
                assert source is not None  # only a source gives figures
                figure = source_average.add(given, now) if source.smoothed else given
            figures.append(figure)
        cpu, rx, tx = figures
        return Load(
            cpu_permille=min(1000, round(cpu * 1000)),
            net_rx_bps=min(_MAX_RATE, round(rx)),
            net_tx_bps=min(_MAX_RATE, round(tx)),
        )

    @property
    def source(self) -> str:
        """Where the figures come from, for the log."""
        return self._source.name if self._source is not None else "host"

    def stop(self) -> None:
        """The node is stopping: the source lets go of what it holds."""
        if self._source is not None:
            self._source.stop()
