"""A conformance test for any probe: does it keep the IProbe contract?

For probe authors and RAIS's own tests. In a test module (pytest collects
it; so does trial)::

    from rais.probing.conformance import conformance_tests
    from probes.mine import mine

    TestMine = conformance_tests(mine, good_options={"path": "/"}, bad_options=[{"path": 5}])

``good_options`` must make the probe talk to the target's port, so that a
closed port is CRITICAL. The tests are twisted.trial test cases: after each
one, trial fails the test if a timer, socket or process pipe is left open.

For tests against real servers: :func:`server_process` runs one until its
ports accept connections, :func:`local_nginx` runs nginx with a server block.
"""

from __future__ import annotations

import errno
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from rais.interfaces import IProbe, Option, ProbeResult, Status

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # what `probe = NAME` accepts in a config
_JUNK = {"junk": [[1.5, True]]}  # a TOML value no sane option takes
_RETURN_WITHIN = 0.1  # seconds check() may take before it returns its Deferred


def closed_port() -> int:
    """A loopback port nothing listens on (just released by the kernel)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Blackhole:
    """A loopback port where a TCP connect hangs: its listener's queue is full, so SYNs are dropped."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self._fillers = []
        for _ in range(2):  # Linux queues backlog + 1 connections
            filler = socket.socket()
            filler.setblocking(False)
            code = filler.connect_ex(("127.0.0.1", self.port))
            assert code in (0, errno.EINPROGRESS), errno.errorcode.get(code)
            self._fillers.append(filler)
        time.sleep(0.05)  # let the handshakes complete so the queue is full

    def close(self) -> None:
        for s in [*self._fillers, self._listener]:
            s.close()


STARTUP = 10.0  # seconds a server may take to accept connections
NGINX = "/usr/sbin/nginx"  # Debian nginx-light

_NGINX_CONF = """\
worker_processes 1;
error_log {folder}/error.log;
pid {folder}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    default_type text/plain;
    server {{
{server}
    }}
}}
"""


@contextmanager
def server_process(argv: Sequence[str], folder: Path, ports: Sequence[int],
                   preexec_fn: Callable[[], None] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in ``folder`` (output to server.log there) until every loopback port in ``ports``
    accepts connections; stop it (SIGTERM, then SIGKILL) afterwards."""
    log = folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=folder, preexec_fn=preexec_fn)
    try:
        for port in ports:
            _wait_for_port(port, process, log)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port} within {STARTUP} s:\n{log.read_text()}")


@contextmanager
def local_nginx(folder: Path, server: str, ports: Sequence[int],
                preexec_fn: Callable[[], None] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with its config, pid, logs and temp files in ``folder``, serving one ``server`` block
    (its ``listen`` lines name ``ports``)."""
    conf = folder / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(folder=folder, server=server))
    with server_process([NGINX, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"], folder, ports,
                        preexec_fn) as process:
        yield process


class _Conformance(TestCase):
    probe: Any
    good_options: Mapping[str, Any]
    bad_options: Sequence[Mapping[str, Any]]
    check_timeout: float
    slack: float

    def test_provides_iprobe(self) -> None:
        self.assertTrue(IProbe.providedBy(self.probe))
        verifyObject(IProbe, self.probe)

    def test_declarations(self) -> None:
        self.assertRegex(self.probe.name, _NAME)
        self.assertIsInstance(self.probe.description, str)
        self.assertTrue(self.probe.description and "\n" not in self.probe.description)
        port = self.probe.default_port
        self.assertTrue(port is None or (type(port) is int and 0 <= port <= 65535), port)
        names = [option.name for option in self.probe.options]
        self.assertEqual(len(names), len(set(names)), "option names repeat")
        for option in self.probe.options:
            self.assertIsInstance(option, Option)
            self.assertRegex(option.name, r"[A-Za-z0-9_-]+")

    def test_good_options_pass(self) -> None:
        self.assertEqual(self.probe.validate(self.good_options), {})

    def test_bad_options_are_reported_by_name(self) -> None:
        for bad in self.bad_options:
            problems = self.probe.validate(bad)
            self.assertTrue(problems, f"accepted {bad!r}")
            self._well_formed(problems, bad)

    def test_unknown_option_is_reported(self) -> None:
        options = {**self.good_options, "no_such_option": 1}
        self.assertIn("no_such_option", self.probe.validate(options))

    def test_junk_values_are_reported(self) -> None:
        for option in self.probe.options:
            options = {**self.good_options, option.name: _JUNK}
            problems = self.probe.validate(options)
            self.assertIn(option.name, problems, f"{option.name} accepted {_JUNK!r}")
            self._well_formed(problems, options)

    def test_closed_port_is_critical(self) -> Deferred[None]:
        return self._expect(closed_port(), Status.CRITICAL)

    def test_hanging_connect_is_critical_in_time(self) -> Deferred[None]:
        hole = Blackhole()
        self.addCleanup(hole.close)
        return self._expect(hole.port, Status.CRITICAL)

    def _expect(self, port: int, status: Status) -> Deferred[None]:
        started = time.monotonic()
        d = self.probe.check(reactor, "127.0.0.1", port, self.good_options, self.check_timeout)
        returned = time.monotonic() - started
        self.assertIsInstance(d, Deferred)
        self.assertLess(returned, _RETURN_WITHIN, "check() blocked before returning")
        limit = self.check_timeout + self.slack

        def fired(result: ProbeResult) -> None:
            took = time.monotonic() - started
            self.assertIsInstance(result, ProbeResult)
            self.assertEqual(result.status, status, result)
            self.assertLessEqual(took, limit, f"fired after {took:.2f} s")
            self.assertTrue(0 <= result.latency <= limit, result)
            self.assertIsInstance(result.detail, str)
            self.assertTrue(result.detail and "\n" not in result.detail, result)

        # An errback here fails the test: a probe must never errback.
        return d.addCallback(fired)

    def _well_formed(self, problems: Mapping[str, str], options: Mapping[str, Any]) -> None:
        known = {option.name for option in self.probe.options} | set(options)
        for key, message in problems.items():
            self.assertIn(key, known)
            self.assertTrue(isinstance(message, str) and message and "\n" not in message, message)


def conformance_tests(probe: Any, good_options: Mapping[str, Any],
                      bad_options: Sequence[Mapping[str, Any]] = (), *, timeout: float = 1.0,
                      slack: float = 0.5) -> type[TestCase]:
    """A test class checking that ``probe`` keeps the IProbe contract.

    ``bad_options`` are option sets ``validate`` must reject; ``timeout`` is
    given to each check, which must fire within it plus ``slack`` seconds.
    """
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", str(probe.name)))
    return type(f"Test{name}ProbeConformance", (_Conformance,), {
        "probe": probe,
        "good_options": dict(good_options),
        "bad_options": [dict(bad) for bad in bad_options],
        "check_timeout": timeout,
        "slack": slack,
        "timeout": timeout + slack + 10,  # trial's own limit per test, far beyond the probe's
    })
