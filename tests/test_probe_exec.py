"""The exec probe: Nagios exit codes and output, real monitoring-plugins checks, timeouts."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile

import probe_servers
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from probes.exec import exec_probe
from rais.interfaces import ProbeResult, Status
from rais.probing.conformance import closed_port
from tests.processes import state as process_state


async def check(port: int = 1, timeout: float = 2.0, **options) -> ProbeResult:
    return await exec_probe.check(reactor, "127.0.0.1", port, options, timeout)


class TestExec(TestCase):
    async def test_exit_codes_are_nagios_statuses(self):
        for code, status in [(0, Status.OK), (1, Status.WARNING), (2, Status.CRITICAL), (3, Status.UNKNOWN)]:
            result = await check(shell_command=f"echo 'CHECK {status.name} - all said|time=1s;;;'; exit {code}")
            assert (result.status, result.detail) == (status, f"CHECK {status.name} - all said"), result

    async def test_other_exit_codes_and_signals_are_unknown(self):
        result = await check(shell_command="echo odd; exit 7")
        assert (result.status, result.detail) == (Status.UNKNOWN, "exit status 7: odd")
        result = await check(shell_command="kill -9 $$")
        assert result.status == Status.UNKNOWN and result.detail.startswith("killed by signal 9"), result

    async def test_a_missing_program_is_unknown(self):
        result = await check(command="/nonexistent/check_thing")
        assert result.status == Status.UNKNOWN and "No such file or directory" in result.detail, result

    async def test_a_plugin_that_raises_reports_its_exception(self):
        result = await check(command=[sys.executable, "-c", "raise RuntimeError('disk on fire')"])
        assert (result.status, result.detail) == (Status.WARNING, "RuntimeError: disk on fire")

    async def test_target_is_substituted_without_a_shell(self):
        result = await check(port=8080, command=["/bin/echo", "{host}:{port}", "$HOME;", "{port}"])
        assert (result.status, result.detail) == (Status.OK, "127.0.0.1:8080 $HOME; 8080")
        result = await check(port=8080, shell_command="echo {host} {port} | tr 0 o")
        assert (result.status, result.detail) == (Status.OK, "127.o.o.1 8o8o")

    async def test_timeout_kills_the_whole_process_group(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        pidfile = os.path.join(folder, "pid")
        result = await check(timeout=0.5, shell_command=f"sleep 30 & echo $! > {pidfile}; sleep 30")
        assert (result.status, result.detail) == (Status.CRITICAL, "timed out after 0.5 s")
        assert 0.5 <= result.latency < 0.7
        child = int(open(pidfile).read())
        # The background sleep got SIGKILL too: gone, or a zombie until init reaps it.
        await deferLater(reactor, 0.1)
        assert process_state(child) in ("gone", "Z"), process_state(child)

    async def test_check_tcp(self):
        plugin = probe_servers.require(f"{probe_servers.PLUGINS}/check_tcp", "monitoring-plugins-basic")
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            result = await check(port=listener.getsockname()[1], command=[plugin, "-H", "{host}", "-p", "{port}"])
        assert result.status == Status.OK and result.detail.startswith("TCP OK"), result
        result = await check(port=closed_port(), command=[plugin, "-H", "{host}", "-p", "{port}"])
        assert result.status == Status.CRITICAL and "Connection refused" in result.detail, result
