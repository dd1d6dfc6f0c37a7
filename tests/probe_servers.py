"""Real servers for the probe tests, each on free loopback ports in its own temp folder.

nginx (Debian nginx-light), OpenSMTPD (Debian opensmtpd) and Redis (Debian redis-server) run as child
processes, and so do the misbehaving servers of probe_fakes.py; the DNS
server (twisted.names) runs in the test's own reactor. A missing program skips its tests with the package to install
(and in CI, where tests/conftest.py turns skips into failures, fails them).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.names import dns
from twisted.names.common import ResolverBase
from twisted.names.error import DomainError
from twisted.names.server import DNSServerFactory
from twisted.trial.unittest import TestCase

from rais.interfaces import ProbeResult
from rais.localcluster import free_port
from rais.probing.conformance import NGINX, local_nginx, server_process

SMTPD = "/usr/sbin/smtpd"
REDIS = "/usr/bin/redis-server"
PLUGINS = "/usr/lib/nagios/plugins"
SERVER_NAME = "probe.test"  # the name in the test certificate


async def check(probe: Any, port: int, timeout: float = 3.0, **options: Any) -> ProbeResult:
    """One check of a loopback port by ``probe``, straight through its own ``check``."""
    return await probe.check(reactor, "127.0.0.1", port, options, timeout)


def class_servers(request: Any, tmp_path_factory: Any, **servers: Any) -> Iterator[None]:
    """For a class-scoped fixture: start each server (name=context manager taking a folder) and the
    fakes, and give the test class an attribute per name (a port or a Server) and ``fakes``."""
    with ExitStack() as stack:
        for name, server in {**servers, "fakes": fakes}.items():
            setattr(request.cls, name, stack.enter_context(server(tmp_path_factory.mktemp(name))))
        yield


def require(program: str, package: str) -> str:
    if not os.access(program, os.X_OK):
        pytest.skip(f"{program} is missing: install the Debian package {package} (.ci/run does)")
    return program


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for SERVER_NAME and 127.0.0.1, and its key (mode 0600)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # OpenSMTPD 6.8 fails on EC keys
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@attrs.frozen
class Server:
    port: int
    tls_port: int


NGINX_SERVER = """\
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl;
        server_name {name};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location = /health {{ return 200 "ok\\n"; }}
        location = /error {{ return 503 "down\\n"; }}
        location = /moved {{ return 302 /health; }}
        location = /host {{ return 200 "host=$host method=$request_method\\n"; }}"""


@contextmanager
def nginx(folder: Path) -> Iterator[Server]:
    """nginx on loopback: /health (200 "ok"), /error (503), /moved (302), /host (echoes Host); TLS too."""
    require(NGINX, "nginx-light")
    cert, key = self_signed(folder)
    server = Server(free_port(), free_port())
    block = NGINX_SERVER.format(port=server.port, tls_port=server.tls_port, name=SERVER_NAME, cert=cert, key=key)
    with local_nginx(folder, block, (server.port, server.tls_port)):
        yield server


# No TLS: OpenSMTPD 6.8 on OpenSSL 3 fails every TLS handshake ("EVP lib").
SMTPD_CONF = """\
listen on 127.0.0.1 port {port} hostname {name}
action "local" mbox
match from local for local action "local"
"""


@contextmanager
def opensmtpd(folder: Path) -> Iterator[int]:
    """OpenSMTPD on a loopback port (yielded), without STARTTLS."""
    program = require(SMTPD, "opensmtpd")
    port = free_port()
    conf = folder / "smtpd.conf"
    conf.touch(mode=0o600)  # smtpd refuses a config others can read
    conf.write_text(SMTPD_CONF.format(name=SERVER_NAME, port=port))
    with server_process([program, "-d", "-f", str(conf)], folder, (port,)):
        yield port


@contextmanager
def redis(folder: Path) -> Iterator[int]:
    """Redis on a loopback port (yielded): a master, saving nothing to disk."""
    program = require(REDIS, "redis-server")
    port = free_port()
    argv = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder)]
    with server_process(argv, folder, (port,)):
        yield port


@contextmanager
def fakes(folder: Path) -> Iterator[dict[str, int]]:
    """The misbehaving servers of tests/probe_fakes.py: behaviour name -> port."""
    script = Path(__file__).with_name("probe_fakes.py")
    cert, key = self_signed(folder)
    process = subprocess.Popen([sys.executable, str(script), str(cert), str(key)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.kill()
        process.wait()
        process.stdin.close()
        process.stdout.close()


class Zone(ResolverBase):
    """A tiny authority for the DNS tests: name -> records; other names do not exist."""

    def __init__(self, records: dict[str, list[dns.RRHeader]]) -> None:
        super().__init__()
        self._records = records

    def _lookup(self, name: bytes, cls: int, type: int, timeout: object) -> Deferred:
        records = self._records.get(name.decode().lower())
        if records is None:
            return fail(DomainError(name))
        return succeed(([r for r in records if type in (r.type, dns.ALL_RECORDS)], [], []))


def dns_server(testcase: TestCase, records: dict[str, list[dns.RRHeader]]) -> int:
    """A twisted.names server for ``records`` on a loopback UDP port, stopped after ``testcase``."""
    factory = DNSServerFactory(authorities=[Zone(records)])
    port = reactor.listenUDP(0, dns.DNSDatagramProtocol(controller=factory), interface="127.0.0.1")
    testcase.addCleanup(port.stopListening)
    return port.getHost().port
