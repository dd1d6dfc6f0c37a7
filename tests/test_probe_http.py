"""The http and https probes against a real nginx, check_http through exec, and broken servers."""

from __future__ import annotations

import probe_servers
import pytest
from twisted.trial.unittest import TestCase

from probes.exec import exec_probe
from probes.http import http, https
from rais.interfaces import Status
from rais.probing.conformance import closed_port


@pytest.fixture(scope="class")
def servers(request, tmp_path_factory):
    yield from probe_servers.class_servers(request, tmp_path_factory, nginx=probe_servers.nginx)


@pytest.mark.usefixtures("servers")
class TestHttpAgainstNginx(TestCase):
    async def test_health_is_ok_with_body_and_latency(self):
        result = await probe_servers.check(http, self.nginx.port, path="/health", body="ok", expect=200)
        assert result.status == Status.OK, result
        assert result.detail == "HTTP 200 OK, 3 bytes"
        assert 0 < result.latency < 1

    async def test_a_redirect_is_in_the_default_range(self):
        assert (await probe_servers.check(http, self.nginx.port, path="/moved")).status == Status.OK

    async def test_wrong_status_is_critical(self):
        result = await probe_servers.check(http, self.nginx.port, path="/error")
        assert result.status == Status.CRITICAL
        assert result.detail == "HTTP 503 Service Temporarily Unavailable, expected 200-399"
        result = await probe_servers.check(http, self.nginx.port, path="/moved", expect=[200, "204-206"])
        assert (result.status, result.detail) == (Status.CRITICAL, "HTTP 302 Moved Temporarily, expected 200, 204-206")

    async def test_expected_error_status_is_ok(self):
        assert (await probe_servers.check(http, self.nginx.port, path="/error", expect="500-599")).status == Status.OK

    async def test_body_substring_and_regex(self):
        result = await probe_servers.check(http, self.nginx.port, path="/health", body="healthy")
        assert (result.status, result.detail) == (Status.CRITICAL, "HTTP 200 OK, body lacks 'healthy'")
        result = await probe_servers.check(http, self.nginx.port, path="/health", body_regex=r"^o")
        assert result.status == Status.OK
        result = await probe_servers.check(http, self.nginx.port, path="/health", body_regex=r"^k")
        assert result.status == Status.CRITICAL and "does not match" in result.detail

    async def test_host_header_method_and_extra_headers(self):
        result = await probe_servers.check(http, self.nginx.port, path="/host", host="www.example.com",
                             body="host=www.example.com method=GET")
        assert result.status == Status.OK, result
        result = await probe_servers.check(http, self.nginx.port, path="/host", method="HEAD", headers={"X-Probe": "1"})
        assert result.status == Status.OK and result.detail.endswith(", 0 bytes"), result

    async def test_https_without_verification(self):
        result = await probe_servers.check(https, self.nginx.tls_port, path="/host", verify=False,
                                           host=probe_servers.SERVER_NAME,
                             body=f"host={probe_servers.SERVER_NAME}")
        assert result.status == Status.OK, result

    async def test_https_with_verification_refuses_a_self_signed_certificate(self):
        result = await probe_servers.check(https, self.nginx.tls_port, path="/health", host=probe_servers.SERVER_NAME)
        assert result.status == Status.CRITICAL
        assert result.detail.startswith("TLS: ") and "certificate verify failed" in result.detail, result

    async def test_https_to_a_plain_http_port_is_critical(self):
        result = await probe_servers.check(https, self.nginx.port, verify=False)
        assert result.status == Status.CRITICAL and result.detail.startswith("TLS: "), result

    async def test_refused_is_critical(self):
        result = await probe_servers.check(http, closed_port())
        assert (result.status, result.detail) == (Status.CRITICAL, "connection was refused by other side")

    async def test_server_that_hangs_mid_response_times_out(self):
        result = await probe_servers.check(http, self.fakes["http_stall"], timeout=0.5)
        assert (result.status, result.detail) == (Status.CRITICAL, "timed out after 0.5 s")
        assert 0.5 <= result.latency < 0.7

    async def test_server_that_never_answers_times_out(self):
        result = await probe_servers.check(http, self.fakes["silent"], timeout=0.3)
        assert (result.status, result.detail) == (Status.CRITICAL, "timed out after 0.3 s")

    async def test_garbage_is_critical(self):
        result = await probe_servers.check(http, self.fakes["http_garbage"])
        assert (result.status, result.detail) == (
            Status.CRITICAL, "not HTTP: non-integer status code: b'this is not HTTP at all'")

    async def test_check_http_through_exec(self):
        plugin = probe_servers.require(f"{probe_servers.PLUGINS}/check_http", "monitoring-plugins-basic")
        command = [plugin, "-H", "{host}", "-p", "{port}", "-u", "/health", "-s", "ok"]
        result = await probe_servers.check(exec_probe, self.nginx.port, command=command)
        assert result.status == Status.OK and result.detail.startswith("HTTP OK: HTTP/1.1 200 OK"), result
        result = await probe_servers.check(exec_probe, self.nginx.port, command=[*command[:-3], "/error"])
        assert result.status == Status.CRITICAL and "503" in result.detail, result
