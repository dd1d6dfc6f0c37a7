"""The files in etc/ an operator installs as they are, run for real: ``etc/actions/rais-systemd``
against a real systemd manager (``systemd --user`` in namespaces of its own, tests/usermanager.py:
systemd is not PID 1 here), and ``etc/rais.service`` checked by systemd's own tools.
``etc/actions/rais-vip`` is tests/test_netns_vip.py's.
"""

import os
import shutil
import socket
import subprocess
import sys

import pytest

from rais.localcluster import wait_for
from tests import usermanager

ETC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "etc")
SYSTEMD_ACTION = os.path.join(ETC, "actions", "rais-systemd")
UNIT = os.path.join(ETC, "rais.service")
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")  # this environment's, as /opt/rais/bin/twistd

pytestmark = pytest.mark.integration

# A server that answers once started (Type=exec: systemctl start fails if it cannot be run), and
# a start that fails (a oneshot's start job waits for its process, which exits 1).
WEB = """[Service]
Type=exec
ExecStart={python} -m http.server --bind 127.0.0.1 {port}
StandardOutput=null
StandardError=null
"""
BROKEN = """[Service]
Type=oneshot
ExecStart=/bin/false
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def manager(port):
    """A systemd user manager with web.service (an HTTP server on ``port``) and broken.service
    installed, neither started."""
    reason = usermanager.unavailable()
    if reason:
        pytest.skip(f"systemd user manager: {reason}")
    with usermanager.UserManager({"web.service": WEB.format(python=sys.executable, port=port),
                                  "broken.service": BROKEN}) as made:
        yield made


def systemd_action(env, *args):
    """rais-systemd run with this environment: (exit status, what it printed on stderr)."""
    done = subprocess.run([SYSTEMD_ACTION, *args], env=env, capture_output=True, text=True, timeout=30)
    return done.returncode, done.stderr


def main_pid(manager, unit):
    return int(manager.systemctl("show", "--property=MainPID", "--value", unit).stdout)


def test_rais_systemd_starts_and_stops_a_unit_and_again_changes_nothing(manager, port):
    env = manager.env
    assert systemd_action(env, "status", "web.service") == (3, "")
    assert systemd_action(env, "start", "web.service") == (0, "")
    assert wait_for(lambda: answers(port), 10), manager.log()
    server = main_pid(manager, "web.service")
    assert systemd_action(env, "status", "web") == (0, "")  # a name without a suffix is a service
    assert systemd_action(env, "start", "web.service") == (0, "")
    assert main_pid(manager, "web.service") == server and answers(port)  # not started a second time

    assert systemd_action(env, "stop", "web.service") == (0, "")
    assert not answers(port) and not os.path.exists(f"/proc/{server}")  # stop waits for the server to go
    assert systemd_action(env, "status", "web.service") == (3, "")
    assert systemd_action(env, "stop", "web.service") == (0, "")


def test_rais_systemd_says_when_a_start_fails_and_a_stop_of_an_unknown_unit_is_done(manager):
    code, err = systemd_action(manager.env, "start", "broken.service")
    assert code == 1 and "broken.service" in err
    assert systemd_action(manager.env, "status", "broken.service") == (3, "")
    code, err = systemd_action(manager.env, "start", "missing.service")
    assert code == 1 and "missing.service not found" in err
    # Not installed here, so not running here: stopped, and systemctl's complaint kept for the log.
    code, err = systemd_action(manager.env, "stop", "missing.service")
    assert code == 0 and "missing.service not loaded" in err
    assert systemd_action(manager.env, "status", "missing.service") == (3, "")


def test_rais_systemd_without_a_manager_fails_and_never_says_inactive(tmp_path):
    """No manager behind XDG_RUNTIME_DIR: every action exits 1; status must not claim "not active"
    (3), nor stop "stopped", when it could not ask."""
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed (Debian: systemd)")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), SYSTEMCTL_SCOPE="--user")
    for action in ("start", "stop", "status"):
        code, err = systemd_action(env, action, "web.service")
        assert code == 1 and "Failed to connect" in err, (action, code, err)


@pytest.mark.parametrize("args,scope", [
    ([], None),
    (["start"], None),
    (["start", "web.service", "extra"], None),
    (["restart", "web.service"], None),
    (["start", "--now"], None),
    (["start", "a b.service"], None),
    (["start", "/etc/systemd/system/web.service"], None),
    (["start", ""], None),
    (["status", "web.service"], "--global"),
    (["stop", "web*"], None),
    (["stop", "web?.service"], None),
    (["stop", "web[12].service"], None),
], ids=["none", "no-unit", "extra", "restart", "option", "space", "path", "empty", "scope", "glob", "glob?",
        "glob["])
def test_rais_systemd_usage_errors_exit_2(args, scope):
    env = dict(os.environ, SYSTEMCTL_SCOPE=scope) if scope else {k: v for k, v in os.environ.items()
                                                                  if k != "SYSTEMCTL_SCOPE"}
    code, err = systemd_action(env, *args)
    assert code == 2 and "usage: rais-systemd start|stop|status UNIT" in err


def verify(unit_path):
    """``systemd-analyze verify`` of a unit file where /opt/rais/bin/twistd is this environment's
    twistd (a tmpfs on /opt in a mount namespace of its own), as an operator's install has it."""
    script = 'mount -t tmpfs tmpfs /opt && mkdir -p /opt/rais/bin && ln -s "$1" /opt/rais/bin/twistd && ' \
             'exec systemd-analyze verify "$2"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", TWISTD,
                           unit_path], capture_output=True, text=True, timeout=60)


@pytest.fixture
def analyze():
    if os.geteuid() != 0:
        pytest.skip("a mount namespace for /opt/rais needs root")
    for tool, package in (("systemd-analyze", "systemd"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: {package})")


def test_rais_service_passes_systemd_analyze_verify(analyze, tmp_path):
    """verify exits 0 even on a directive it ignores, so nothing may be printed; and a copy with
    one misspelt value is reported, so the silence is verify reading this file."""
    done = verify(UNIT)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    broken = tmp_path / "rais.service"
    with open(UNIT) as f:
        broken.write_text(f.read().replace("Restart=on-failure", "Restart=on-fail"))
    assert "on-fail" in verify(str(broken)).stderr


def test_rais_service_hardening_keeps_its_exposure_low(analyze):
    """systemd-analyze security (offline, from the file): 2.7 "OK" when written; over 3.0 means
    a hardening line went."""
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=30", UNIT],
                          capture_output=True, text=True, timeout=60)
    print("\n  " + done.stdout.strip().rsplit("\n", 1)[-1])
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script", ["rais-vip", "rais-systemd"])
def test_the_action_scripts_are_posix_sh_shellcheck_finds_nothing_in(script):
    """They run under /bin/sh, dash on Debian: no bashisms, quoting as meant."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: shellcheck)")
    done = subprocess.run(["shellcheck", "--shell=sh", os.path.join(ETC, "actions", script)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
