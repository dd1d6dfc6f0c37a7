"""The dns probe against a twisted.names server in this process."""

from __future__ import annotations

import socket

import probe_servers
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher
from twisted.names import dns
from twisted.trial.unittest import TestCase

from probes.dns import dns_probe
from rais.interfaces import ProbeResult, Status


def record(name: str, payload: object) -> dns.RRHeader:
    return dns.RRHeader(name, payload.TYPE, dns.IN, 60, payload, auth=True)


RECORDS = {
    "www.example.test": [record("www.example.test", dns.Record_A("192.0.2.10")),
                         record("www.example.test", dns.Record_A("192.0.2.11")),
                         record("www.example.test", dns.Record_AAAA("2001:db8::10"))],
    "example.test": [record("example.test", dns.Record_MX(10, b"mail.example.test")),
                     record("example.test", dns.Record_TXT(b"v=spf1 -all"))],
}


class TestDns(TestCase):
    def setUp(self):
        self.port = probe_servers.dns_server(self, RECORDS)

    async def check(self, timeout: float = 2.0, **options) -> ProbeResult:
        return await dns_probe.check(reactor, "127.0.0.1", self.port, options, timeout)

    async def test_a_records(self):
        result = await self.check(name="www.example.test")
        assert (result.status, result.detail) == (Status.OK, "A www.example.test: 192.0.2.10, 192.0.2.11")
        assert 0 < result.latency < 1

    async def test_expected_answers(self):
        result = await self.check(name="www.example.test", expect=["192.0.2.11", "192.0.2.10"])
        assert result.status == Status.OK
        result = await self.check(name="WWW.example.test.", type="AAAA", expect="2001:db8::10")
        assert result.status == Status.OK, result
        result = await self.check(name="www.example.test", expect="192.0.2.99")
        assert (result.status, result.detail) == (
            Status.CRITICAL, "A www.example.test: 192.0.2.10, 192.0.2.11; expected 192.0.2.99")

    async def test_other_types(self):
        result = await self.check(name="example.test", type="MX", expect="mail.example.test.")
        assert (result.status, result.detail) == (Status.OK, "MX example.test: mail.example.test")
        result = await self.check(name="example.test", type="TXT")
        assert (result.status, result.detail) == (Status.OK, "TXT example.test: v=spf1 -all")

    async def test_no_record_of_the_type_is_critical(self):
        result = await self.check(name="example.test", type="A")
        assert (result.status, result.detail) == (Status.CRITICAL, "A example.test: no A record in the answer")

    async def test_nxdomain_is_critical(self):
        result = await self.check(name="nowhere.example.test")
        assert (result.status, result.detail) == (Status.CRITICAL, "no such name (NXDOMAIN)")

    async def test_a_server_that_never_answers_times_out_in_time(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            result = await dns_probe.check(reactor, "127.0.0.1", silent.getsockname()[1], {"name": "x.test"}, 0.3)
        assert (result.status, result.detail) == (Status.CRITICAL, "no answer in time")
        assert result.latency < 0.35

    async def test_a_check_logs_nothing(self):
        # A node checks every interval and its log carries events, not checks (tests/test_logs.py);
        # twistd writes other code's events at every level, so none at all.
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        result = await self.check(name="www.example.test")
        await deferLater(reactor, 0.1, lambda: None)  # the resolver's port closes on a later turn
        assert result.status == Status.OK
        assert [formatEvent(event) for event in events] == []
