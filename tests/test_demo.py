"""`make demo`, run as a user would: both failovers told, and nothing left running after it."""

import os
import re
import signal
import subprocess
import sys

import pytest

from rais.demo import listening
from rais.localcluster import wait_for

pytestmark = pytest.mark.integration


def demo(*args):
    return subprocess.Popen([sys.executable, "-m", "rais.demo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def closed(port):
    return not listening(port)


def ports(said):
    """Every control endpoint and server port the demo printed."""
    return [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", said)]


def test_the_demo_once_fails_a_service_and_the_master_over_and_stops_everything():
    run = demo("--once")
    said, _ = run.communicate(timeout=180)
    assert run.returncode == 0, said
    assert re.search(r"web runs on 1\.2\.0\.2, confirmed by the master's http probe \(HTTP 200", said), said
    assert re.search(r"mail runs on 1\.2\.0\.3, confirmed by the master's smtp probe \(220 ", said), said
    assert "the master's probe: web on 1.2.0.2 is failed (critical: " in said
    assert "decided: web lost on 1.2.0.2 (the service failed here)" in said
    # The active with room, keeping the standby as the one spare the cluster asks for, and why.
    assert re.search(r"decided: web -> 1\.2\.0\.3 \(score [0-9.]+: overlap .*\); an active with room, keeping "
                     r"the spares \(1 free, min_spares 1\)", said), said
    assert "web confirmed running on 1.2.0.3 by its probe (HTTP 200 OK" in said
    assert "the pool: cluster optimal; spares free 1 (1.2.0.4); in use 0; min_spares 1" in said
    assert re.search(r"1\.2\.0\.4 is master of term \d+/4, followed by every survivor", said), said
    assert re.search(r"tables intact at generation \d+: mail on 1\.2\.0\.3, web on 1\.2\.0\.3", said), said
    # The spare became master: none left (host 2 rests after web failed there).
    assert "the pool: cluster no spare left; spares free 0 (none); in use 0; min_spares 1, spares missing" in said
    assert "both failovers done." in said
    printed = ports(said)
    assert len(printed) == 10  # four control endpoints, and two servers' ports on each of three hosts
    assert wait_for(lambda: all(closed(p) for p in printed), 10), said


def test_ctrl_c_stops_the_running_demo_and_every_process_it_started():
    run = demo()
    lines = []
    for line in run.stdout:  # the demo narrates line by line; read until it waits for Ctrl-C
        lines.append(line)
        if "Ctrl-C stops it" in line or "the demo failed" in line:
            break
    said = "".join(lines)
    assert "Ctrl-C stops it" in said, said + run.stdout.read()
    (web,) = re.findall(r"1\.2\.0\.3 .* web on 127\.0\.0\.1:(\d+)", said)
    assert not closed(int(web))  # host 3 serves web since the first failover: Ctrl-C must stop it
    run.send_signal(signal.SIGINT)
    rest, _ = run.communicate(timeout=60)
    assert run.returncode == 0, said + rest
    assert "stopping the nodes and the servers" in rest
    assert wait_for(lambda: all(closed(p) for p in ports(said)), 10), said + rest


def test_a_start_action_run_twice_leaves_one_server(tmp_path):
    """Start actions must be idempotent (README): a second start with the first server alive does
    nothing, so no server is orphaned; once it is gone, a start runs one again."""
    from rais.localcluster import background_start

    start = background_start("x", "sleep 30")
    subprocess.run(["/bin/sh", "-c", start], cwd=tmp_path, check=True)
    first = int((tmp_path / "x.pid").read_text())
    subprocess.run(["/bin/sh", "-c", start], cwd=tmp_path, check=True)
    assert int((tmp_path / "x.pid").read_text()) == first
    os.kill(first, signal.SIGKILL)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now: as a server that crashed left its pid file
    (tmp_path / "x.pid").write_text(f"{gone.pid}\n")
    subprocess.run(["/bin/sh", "-c", start], cwd=tmp_path, check=True)
    again = int((tmp_path / "x.pid").read_text())
    assert again != first
    os.kill(again, signal.SIGKILL)
