"""The smtp probe against a real OpenSMTPD, check_smtp through exec, and broken servers."""

from __future__ import annotations

import probe_servers
import pytest
from twisted.trial.unittest import TestCase

from probes.exec import exec_probe
from probes.smtp import smtp
from rais.interfaces import Status
from rais.probing.conformance import Blackhole, closed_port

BANNER = f"220 {probe_servers.SERVER_NAME} ESMTP OpenSMTPD"


@pytest.fixture(scope="class")
def servers(request, tmp_path_factory):
    yield from probe_servers.class_servers(request, tmp_path_factory, smtpd=probe_servers.opensmtpd)


@pytest.mark.usefixtures("servers")
class TestSmtp(TestCase):
    async def test_plain_dialogue_is_ok(self):
        result = await probe_servers.check(smtp, self.smtpd, helo="probe.example")
        assert (result.status, result.detail) == (Status.OK, BANNER)

    async def test_banner_text(self):
        assert (await probe_servers.check(smtp, self.smtpd, banner="OpenSMTPD")).status == Status.OK
        result = await probe_servers.check(smtp, self.smtpd, banner="Postfix")
        assert (result.status, result.detail) == (Status.CRITICAL, f"banner lacks 'Postfix': {BANNER}")

    # OpenSMTPD 6.8 on OpenSSL 3 fails every TLS handshake ("EVP lib", even with
    # openssl s_client), so STARTTLS is checked against a scripted server.
    async def test_starttls_without_verification(self):
        result = await probe_servers.check(smtp, self.fakes["smtp_starttls"], starttls=True, verify=False)
        assert (result.status, result.detail) == (Status.OK, "220 fake.test ESMTP, STARTTLS")

    async def test_starttls_with_verification_refuses_a_self_signed_certificate(self):
        result = await probe_servers.check(smtp, self.fakes["smtp_starttls"], starttls=True,
                                           server_name=probe_servers.SERVER_NAME)
        assert result.status == Status.CRITICAL and "certificate verify failed" in result.detail, result

    async def test_starttls_where_it_is_not_offered_is_critical(self):
        result = await probe_servers.check(smtp, self.smtpd, starttls=True, verify=False)
        assert result.status == Status.CRITICAL and result.detail.startswith("STARTTLS: 5"), result

    async def test_refused_and_unreachable_are_critical(self):
        result = await probe_servers.check(smtp, closed_port())
        assert (result.status, result.detail) == (Status.CRITICAL, "connection was refused by other side")
        hole = Blackhole()
        self.addCleanup(hole.close)
        result = await probe_servers.check(smtp, hole.port, timeout=0.3)
        assert (result.status, result.detail) == (Status.CRITICAL, "timed out after 0.3 s")

    async def test_error_replies_are_critical(self):
        for behaviour, detail in [
            ("smtp_refuse", "banner: 554 5.3.2 no service here"),
            ("smtp_busy", "banner: 421 4.3.2 too busy, try later"),
            ("smtp_not_smtp", "banner: not an SMTP reply: 'SSH-2.0-OpenSSH_9.2'"),
            ("smtp_ehlo_550", "EHLO: 550 5.7.1 not you"),
            ("smtp_hangup", "EHLO: connection was closed cleanly"),
        ]:
            result = await probe_servers.check(smtp, self.fakes[behaviour])
            assert (result.status, result.detail) == (Status.CRITICAL, detail), behaviour

    async def test_server_that_hangs_after_the_banner_times_out(self):
        result = await probe_servers.check(smtp, self.fakes["smtp_stall_ehlo"], timeout=0.3)
        assert (result.status, result.detail) == (Status.CRITICAL, "timed out after 0.3 s")
        assert 0.3 <= result.latency < 0.5

    async def test_check_smtp_through_exec(self):
        plugin = probe_servers.require(f"{probe_servers.PLUGINS}/check_smtp", "monitoring-plugins-basic")
        command = [plugin, "-H", "{host}", "-p", "{port}"]
        result = await probe_servers.check(exec_probe, self.smtpd, command=command)
        assert result.status == Status.OK and result.detail.startswith("SMTP OK"), result
        result = await probe_servers.check(exec_probe, self.fakes["smtp_busy"], command=command)
        assert result.status == Status.WARNING, result  # check_smtp's own verdict, passed through
