"""Every built-in probe passes the conformance test an operator's own probe would."""

import sys

from probes.dns import dns_probe
from probes.exec import exec_probe
from probes.http import http, https
from probes.smtp import smtp
from probes.tcp import tcp
from rais.probing.conformance import conformance_tests

# Exit 2 (critical) when the port refuses, 0 when it accepts: like check_tcp, without needing it.
CONNECT = [sys.executable, "-c", "import socket, sys\n"
           "try: socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)\n"
           "except OSError as e: print('TCP CRITICAL -', e); sys.exit(2)\n"
           "print('TCP OK')", "{host}", "{port}"]

FAST = 0.4  # seconds per check: the timeout cases wait this long

TestTcp = conformance_tests(tcp, {}, timeout=FAST)
TestHttp = conformance_tests(http, {"path": "/health", "expect": [200, "300-399"], "body": "ok"}, [
    {"path": "health"}, {"method": "FETCH"}, {"expect": 99}, {"expect": "300-200"}, {"expect": []},
    {"headers": {"bad name": "x"}}, {"headers": {"X-A": 1}}, {"body_regex": "("},
    {"host": "example.com", "headers": {"Host": "example.com"}}, {"verify": False},
], timeout=FAST)
TestHttps = conformance_tests(https, {"verify": False, "host": "example.com"}, [{"verify": "no"}], timeout=FAST)
TestSmtp = conformance_tests(smtp, {"helo": "probe.example", "starttls": True, "verify": False}, [
    {"starttls": "yes"}, {"helo": ""},
], timeout=FAST)
TestDns = conformance_tests(dns_probe, {"name": "example.test", "type": "AAAA", "expect": ["2001:db8::1"]}, [
    {}, {"name": "example.test", "type": "ANY"}, {"name": "example.test", "expect": []},
], timeout=FAST)
TestExec = conformance_tests(exec_probe, {"command": CONNECT}, [
    {}, {"command": []}, {"command": "run 'x"}, {"command": ["a", 1]},
    {"command": ["true"], "shell_command": "true"}, {"shell_command": ""},
], timeout=FAST)
