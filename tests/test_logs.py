"""What a real node's log says: events, not checks or table generations; JSON lines on request."""

import json
import socket
import subprocess
import sys
import time

import pytest

from rais.localcluster import LocalCluster, free_port, wait_for

pytestmark = pytest.mark.integration

INTERVAL, DEAD_AFTER = 0.2, 3
WEB = """
[services.web]
probe = "http"
port = {port}
running = true
probe_interval = 0.1
"""
SMTP = """
[services.mail]
probe = "smtp"
port = {port}
running = true
probe_interval = 0.1
"""
DNS = """
[services.names]
probe = "dns"
port = {port}
name = "example.test"
running = true
probe_interval = 0.1
probe_timeout = 0.1
"""
# Each would appear per check, or per generation on every host, if the default level let it.
CHATTER = ("Starting factory", "Stopping factory", "tables committed", "tables applied",
           "DNSDatagramProtocol")  # the dns probe's UDP port, opened and closed every check


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture
def web_server(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield port
    server.kill()
    server.wait()


def test_the_default_log_has_events_and_nothing_per_check_or_generation(tmp_path, web_server):
    # The smtp probe checks a port that refuses, the dns probe one that never answers: their
    # connections and ports open and close all the same.
    extras = {2: WEB.format(port=web_server) + SMTP.format(port=free_port())
              + DNS.format(port=free_port(socket.SOCK_DGRAM))}
    cluster = LocalCluster(str(tmp_path), ["master", "active"], INTERVAL, DEAD_AFTER, extras=extras)
    cluster.start_all()
    try:
        cluster.wait_ready()
        master = cluster.nodes[0]

        def rows():
            return {r["name"]: r for r in master.status()["tables"]["services"]}

        assert wait_for(lambda: rows().get("web", {}).get("state") == "running"
                        and rows().get("mail", {}).get("state") == "failed"
                        and rows().get("names", {}).get("state") == "failed", 15), rows()
        # The window the log is judged over (the verdict is its content): about 20 checks of each probe.
        time.sleep(2.0)
        assert cluster.nodes[1].status()["generation"] > 1  # generations were committed and applied
    finally:
        cluster.stop_all()
    for node in cluster.nodes:
        text = read(node.log_path)
        for chatter in CHATTER:
            assert chatter not in text, f"node {node.host_id}: {chatter!r} in\n{text}"
    said = read(cluster.nodes[0].log_path)
    assert "role standby -> master in term 1/1: no master heard yet" in said, said
    assert "the master is gone" not in said


def test_log_format_json_writes_one_object_per_line_with_the_events_fields(tmp_path):
    cluster = LocalCluster(str(tmp_path), ["master"], INTERVAL, DEAD_AFTER,
                           options=["--log-format=json", "--log-level=debug"])
    node = cluster.nodes[0]
    cluster.start_all()
    try:
        cluster.wait_ready()

        def events():
            return [json.loads(line) for line in read(node.log_path).splitlines()]

        def role_changes():
            return [e for e in events() if e.get("new") == "master"]

        assert wait_for(role_changes, 10), read(node.log_path)
        assert wait_for(lambda: any(e.get("how") == "committed" for e in events()), 10)  # debug, as asked
    finally:
        cluster.stop_all()
    (change,) = role_changes()
    assert (change["old"], change["term_text"], change["reason"]) == (
        "standby", "1/1", "no master heard yet; new term 1/1")
    assert change["log_level"]["name"] == "info" and change["log_format"].startswith("role {old} -> {new}")


def test_a_bad_log_option_is_refused_in_one_line(tmp_path):
    cluster = LocalCluster(str(tmp_path), ["master"], INTERVAL, DEAD_AFTER, options=["--log-level=loud"])
    node = cluster.nodes[0]
    done = subprocess.run(cluster.command(node), capture_output=True, text=True, timeout=60, cwd=node.folder)
    assert (done.returncode, done.stderr) == (
        2, "--log-level: expected one of debug, info, warn, error, critical, got 'loud'\n")
