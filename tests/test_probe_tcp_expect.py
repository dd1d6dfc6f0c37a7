"""The sample drop-in probe etc/probes.d/tcp_expect.py: the conformance test, checks against a real
Redis and scripted servers, and an operator's use of it from a probes.d folder named by [probes] paths."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from pathlib import Path

import probe_servers
import pytest
from test_cli import GOOD  # the smallest valid config: cluster 1.2, host 7, key rais.key
from test_probe_conformance import FAST
from test_probe_registry import rais
from twisted.trial.unittest import TestCase

from rais.cli import main
from rais.interfaces import Status
from rais.probing.conformance import conformance_tests

SAMPLE = Path(__file__).resolve().parent.parent / "etc" / "probes.d" / "tcp_expect.py"
# Run from its file rather than found through [probes] paths here, so that no plugin cache
# (dropin.cache) is written into the source tree; test_operator_... loads it the real way.
tcp_expect = runpy.run_path(str(SAMPLE))["tcp_expect"]
PING = {"send": "PING\r\n", "expect": r"^\+PONG", "quit": "QUIT\r\n"}

TestTcpExpectConformance = conformance_tests(tcp_expect, PING, [
    {}, {"expect": "("}, {"expect": ""}, {"expect": "x", "send": ""}, {"expect": "x", "quit": 1},
    {"expect": "x", "max_bytes": 0}, {"expect": "x", "max_bytes": True},
], timeout=FAST)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    with probe_servers.redis(tmp_path_factory.mktemp("redis")) as port:
        yield port


@pytest.fixture(scope="class")
def servers(request, tmp_path_factory, redis):
    request.cls.redis = redis
    yield from probe_servers.class_servers(request, tmp_path_factory)


@pytest.mark.usefixtures("servers")
class TestTcpExpect(TestCase):
    async def test_redis_answers_and_is_the_master(self):
        result = await probe_servers.check(tcp_expect, self.redis, **PING)
        assert (result.status, result.detail) == (Status.OK, "+PONG")
        result = await probe_servers.check(tcp_expect, self.redis, send="INFO replication\r\n", expect="role:master")
        assert (result.status, result.detail) == (Status.OK, "role:master")

    async def test_the_quit_is_sent(self):
        before = self.quits()
        await probe_servers.check(tcp_expect, self.redis, **PING)
        assert self.quits() == before + 1

    def quits(self) -> int:
        """How many QUIT commands Redis was sent."""
        cli = probe_servers.require("/usr/bin/redis-cli", "redis-tools")
        stats = subprocess.run([cli, "-p", str(self.redis), "info", "commandstats"], capture_output=True,
                               text=True, timeout=10, check=True).stdout
        found = re.search(r"^cmdstat_quit:calls=(\d+),", stats, re.MULTILINE)
        return int(found[1]) if found else 0

    async def test_a_reply_without_a_match_is_critical_with_what_was_said(self):
        # Redis keeps the connection open: the probe gives up a little before its timeout (0.1 s of a
        # 1 s timeout before it: a shorter one left a busy machine too little room).
        result = await probe_servers.check(tcp_expect, self.redis, timeout=1.0, send="INFO replication\r\n",
                                           expect="role:slave")
        assert result.status == Status.CRITICAL, result
        assert result.detail.startswith("no match for 'role:slave' in ") and " bytes within 0.9 s: '$" in result.detail
        assert "\\r\\nrole:master\\r\\n" in result.detail and 0.9 <= result.latency < 1.0

    async def test_max_bytes_limits_the_reply_read(self):
        result = await probe_servers.check(tcp_expect, self.redis, send="INFO replication\r\n", expect="connected_",
                                           max_bytes=16)
        assert result.status == Status.CRITICAL
        # The first 16 bytes of the bulk reply "$349\r\n# Replication\r\n...": its length, then the text.
        shown = r"'\$\d+\\r\\n# Repl\w*'"
        assert re.fullmatch(r"no match for 'connected_' in 16 bytes \(max_bytes\): " + shown, result.detail), result
        assert result.latency < 1.0  # decided at once, not at the timeout

    async def test_a_service_that_speaks_first(self):
        result = await probe_servers.check(tcp_expect, self.fakes["smtp_not_smtp"], expect=r"^SSH-2\.0-")
        assert (result.status, result.detail) == (Status.OK, "SSH-2.0-OpenSSH_9.2")
        result = await probe_servers.check(tcp_expect, self.fakes["smtp_busy"], expect="^220 ")
        assert (result.status, result.detail) == (
            Status.CRITICAL, "no match for '^220 ' in 31 bytes, then connection was closed cleanly: "
                             "'421 4.3.2 too busy, try later\\r\\n'")

    async def test_silence_is_critical(self):
        result = await probe_servers.check(tcp_expect, self.fakes["silent"], timeout=1.0, expect="^220 ")
        assert (result.status, result.detail) == (Status.CRITICAL, "no match for '^220 ' in 0 bytes within 0.9 s")


# As an operator writes it: TOML reads \r\n in "..." as CR LF, and '...' as it is.
SERVICE = r"""
[probes]
paths = ["probes.d"]

[services.cache]
probe = "tcp_expect"
port = {port}
send = "PING\r\n"
expect = '^\+PONG'
"""


def test_operator_copies_it_into_probes_d(tmp_path, redis):
    # As README says: copy the file into a folder named by [probes] paths; no other change.
    folder = tmp_path / "probes.d"
    folder.mkdir()
    copy = shutil.copy(SAMPLE, folder)
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    config = tmp_path / "rais.toml"
    config.write_text(GOOD + SERVICE.format(port=redis))

    listed = rais("probes", "--config", str(config))  # which loads the whole config: the service's options are good
    assert listed.returncode == 0, listed
    assert f"tcp_expect: {copy} (port required)\n    {tcp_expect.description}\n" in listed.stdout
    assert "    expect = (required): regular expression" in listed.stdout

    ran = rais("probe", "tcp_expect", f"127.0.0.1:{redis}", "-o", 'send="PING\\r\\n"', "-o", r"expect=^\+PONG",
               "--config", str(config))
    assert (ran.returncode, ran.stdout.split(" (")[0]) == (0, f"OK: tcp_expect 127.0.0.1:{redis}: +PONG"), ran

    config.write_text(config.read_text().replace(r"'^\+PONG'", "'(PONG'"))
    checked = rais("check-config", str(config))
    assert checked.returncode == 2
    assert checked.stdout + checked.stderr == (f"{config}: services.cache.expect: not a regular expression: "
                                                "missing ), unterminated subpattern at position 0\n")
