"""Probe throughput: how many tcp and http checks one process runs per second on one core.

Against local servers on loopback (a TCP accept loop, and nginx for http),
each in a process of its own on another core where there is one. Figures:
probes per second at full speed, the CPU share of one core at a paced 1,000
probes per second, and Debian's check_tcp run in a loop, as the comparison.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.task import LoopingCall

from rais.probing.conformance import NGINX, local_nginx
from rais.probing.discover import discover
from rais.probing.runner import run_probe

BURST = 3000  # probes per full-speed measurement (and at most BURST_SECONDS)
BURST_SECONDS = 4.0
IN_FLIGHT = 64  # probes at once at full speed
PACED_RATE = 1000  # probes per second for the CPU share
PACED_SECONDS = 2.0
CHECK_TCP = "/usr/lib/nagios/plugins/check_tcp"
CHECK_TCP_RUNS = 200
TIMEOUT = 5.0

ACCEPTOR = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4096)
print(s.getsockname()[1], flush=True)
while True:
    s.accept()[0].close()
"""

NGINX_SERVER = """\
        listen 127.0.0.1:{port} backlog=4096;
        location = /health {{ return 200 "ok\\n"; }}"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _elsewhere() -> Callable[[], None] | None:
    """A preexec_fn putting a server on the cores this process does not use, if any."""
    others = os.sched_getaffinity(0) - {_core()}
    return (lambda: os.sched_setaffinity(0, others)) if others else None


def _core() -> int:
    return min(os.sched_getaffinity(0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _acceptor() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", ACCEPTOR], stdout=subprocess.PIPE,
                               preexec_fn=_elsewhere())
    assert process.stdout is not None  # stdout=PIPE
    try:
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


@contextmanager
def _nginx() -> Iterator[int | None]:
    if not os.access(NGINX, os.X_OK):
        yield None
        return
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        with local_nginx(Path(folder), NGINX_SERVER.format(port=port), (port,), _elsewhere()):
            yield port


def _full_speed(probe: Any, port: int, options: dict[str, Any]) -> tuple[float, float, int]:
    """(probes per second, CPU seconds per probe, probes not OK) with IN_FLIGHT at once."""
    reactor = EPollReactor()  # a fresh reactor per run: probes take theirs as an argument
    done = {"n": 0, "bad": 0, "started": 0}
    deadline = time.monotonic() + BURST_SECONDS

    def launch() -> None:
        if done["started"] >= BURST or time.monotonic() > deadline:
            if done["n"] == done["started"]:
                reactor.stop()
            return
        done["started"] += 1
        run_probe(reactor, probe, "127.0.0.1", port, options, TIMEOUT).addCallback(finished)

    def finished(result: Any) -> None:
        done["n"] += 1
        done["bad"] += result.status != 0
        launch()

    for _ in range(IN_FLIGHT):
        reactor.callWhenRunning(launch)
    wall, cpu = time.monotonic(), _cpu()
    reactor.run(installSignalHandlers=False)
    wall, cpu = time.monotonic() - wall, _cpu() - cpu
    return done["n"] / wall, cpu / max(done["n"], 1), done["bad"]


def _paced(probe: Any, port: int, options: dict[str, Any]) -> tuple[float, int]:
    """(share of one core, probes not OK) running PACED_RATE probes per second."""
    reactor = EPollReactor()
    ticks_per_second = 100
    per_tick = PACED_RATE // ticks_per_second
    state = {"ticks": 0, "pending": 0, "bad": 0}

    def finished(result: Any) -> None:
        state["pending"] -= 1
        state["bad"] += result.status != 0
        if state["pending"] == 0 and not ticker.running:
            reactor.stop()

    def tick() -> None:
        state["ticks"] += 1
        if state["ticks"] > PACED_SECONDS * ticks_per_second:
            ticker.stop()
            if state["pending"] == 0:
                reactor.stop()
            return
        for _ in range(per_tick):
            state["pending"] += 1
            run_probe(reactor, probe, "127.0.0.1", port, options, TIMEOUT).addCallback(finished)

    ticker = LoopingCall(tick)
    ticker.clock = reactor
    reactor.callWhenRunning(ticker.start, 1 / ticks_per_second)
    wall, cpu = time.monotonic(), _cpu()
    reactor.run(installSignalHandlers=False)
    wall, cpu = time.monotonic() - wall, _cpu() - cpu
    return cpu / wall, state["bad"]


def _check_tcp(port: int) -> tuple[float, float] | None:
    """(checks per second, CPU seconds per check, its own and the fork's) of check_tcp in a loop."""
    if not os.access(CHECK_TCP, os.X_OK):
        return None
    argv = [CHECK_TCP, "-H", "127.0.0.1", "-p", str(port)]
    wall, cpu = time.monotonic(), _cpu() + _children_cpu()
    for _ in range(CHECK_TCP_RUNS):
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    wall, cpu = time.monotonic() - wall, _cpu() + _children_cpu() - cpu
    return CHECK_TCP_RUNS / wall, cpu / CHECK_TCP_RUNS


def main() -> None:
    registry = discover()
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {_core()})  # "one core": this process, its servers elsewhere
    try:
        with _acceptor() as tcp_port, _nginx() as http_port:
            targets: list[tuple[str, int, dict[str, str]]] = [("tcp", tcp_port, {})]
            if http_port is None:
                print(f"http: skipped, {NGINX} is missing (Debian nginx-light)")
            else:
                targets.append(("http", http_port, {"path": "/health", "body": "ok"}))
            rates, cpu = {}, {}
            for name, port, options in targets:
                probe = registry.lookup(name)
                rate, cpu_each, bad = _full_speed(probe, port, options)
                share, paced_bad = _paced(probe, port, options)
                rates[name], cpu[name] = rate, cpu_each
                print(f"{name}: {rate:,.0f} probes/s on one core ({cpu_each * 1e6:,.0f} us CPU each, "
                      f"{IN_FLIGHT} in flight); {PACED_RATE:,}/s uses {share:.0%} of a core; "
                      f"{bad + paced_bad} not ok")
            loop = _check_tcp(tcp_port)
            if loop is None:
                print(f"check_tcp: skipped, {CHECK_TCP} is missing (Debian monitoring-plugins-basic)")
            else:
                rate, cpu_each = loop
                print(f"check_tcp in a loop: {rate:,.0f} checks/s ({cpu_each * 1e6:,.0f} us CPU each); "
                      f"rais tcp: {rates['tcp'] / rate:,.1f}x the checks per second, "
                      f"{cpu_each / cpu['tcp']:,.1f}x less CPU per check")
    finally:
        os.sched_setaffinity(0, pinned)
