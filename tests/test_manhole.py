"""The telnet manhole: refused configs, and a real telnet client logged into a real node."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pexpect
import pytest

from rais.cli import main
from rais.localcluster import TWISTD, LocalCluster, free_port, wait_for
from rais.passwords import set_password

GOOD = """\
[cluster]
id = "1.2"
key_file = "rais.key"
interface = "127.0.0.1"

[node]
host_id = 7
state_dir = "state"
control = "127.0.0.1:{control}"

[manhole]
passwd = "manhole.passwd"
listen = "{listen}"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    set_password(str(tmp_path / "manhole.passwd"), "ops", "s3cret")
    return tmp_path / "rais.toml"


def refused_both_ways(config: Path, capsys: pytest.CaptureFixture[str], line: str) -> None:
    """`rais check-config` and twistd each say ``line`` alone and exit 2, without a traceback."""
    assert main(["check-config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [line])
    done = subprocess.run([TWISTD, "-n", "--pidfile=", "rais", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.splitlines()) == (2, [line]), done
    assert "Traceback" not in done.stdout + done.stderr


def test_check_config_takes_a_good_manhole(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(GOOD.format(control=free_port(), listen=f"127.0.0.1:{free_port()}"))
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out.startswith(f"{config}: ok: ")


def test_refused_without_a_password_file(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.remove(config.parent / "manhole.passwd")
    config.write_text(GOOD.format(control=free_port(), listen=f"127.0.0.1:{free_port()}"))
    passwd = config.parent / "manhole.passwd"
    refused_both_ways(config, capsys, f"{config}: manhole.passwd: {passwd}: no such file "
                                      f"(add a user with 'rais manhole-passwd {passwd} USER')")


def test_refused_with_a_password_file_others_may_read(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chmod(config.parent / "manhole.passwd", 0o640)
    config.write_text(GOOD.format(control=free_port(), listen=f"127.0.0.1:{free_port()}"))
    refused_both_ways(config, capsys, f"{config}: manhole.passwd: {config.parent / 'manhole.passwd'} "
                                      "is readable by others (mode 0640); chmod 600 it")


def test_refused_off_loopback(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(GOOD.format(control=free_port(), listen="0.0.0.0:8471"))
    refused_both_ways(config, capsys, f"{config}: manhole.listen: 0.0.0.0 is not a loopback address, and "
                                      "whoever reaches the manhole may run any Python in the node: "
                                      "set allow_remote = true to mean it")


# --- a live node -------------------------------------------------------------

TELNET = shutil.which("telnet")
PROMPT = ">>> "


def telnet(port: int) -> pexpect.spawn:
    if TELNET is None:
        pytest.skip("no telnet client: install the Debian package telnet")
    return pexpect.spawn(TELNET, ["127.0.0.1", str(port)], encoding="utf-8", timeout=15)


def log_in(port: int, password: str) -> pexpect.spawn:
    session = telnet(port)
    session.expect("Username: ")
    session.sendline("ops")
    session.expect("Password: ")
    session.sendline(password)
    return session


def ask(session: pexpect.spawn, line: str, answer: str) -> str:
    """Type ``line``, wait for ``answer`` (a regular expression); what matched."""
    session.sendline(line)
    session.expect(answer)
    matched = session.match.group(0)
    session.expect(PROMPT)
    return matched


@pytest.mark.integration
def test_an_operator_logs_in_and_asks_the_live_node(tmp_path: Path) -> None:
    port = free_port()
    section = f'\n[manhole]\nlisten = "127.0.0.1:{port}"\npasswd = "manhole.passwd"\n'
    service = '\n[services.web]\nprobe = "tcp"\nport = 9\nrunning = true\n'
    cluster = LocalCluster(str(tmp_path), ["master", "active"], 0.2, 3, extra=service, extras={1: section})
    master = cluster.nodes[0]
    set_password(os.path.join(master.folder, "manhole.passwd"), "ops", "s3cret")
    cluster.start_all()
    try:
        cluster.wait_ready()
        assert wait_for(lambda: len(master.status()["tables"]["services"]) == 2, 30)

        refused = log_in(port, "wrong")
        refused.expect("Authentication failed")
        refused.close()

        session = log_in(port, "s3cret")
        session.expect(PROMPT)
        assert ask(session, "str(node.role)", r"'\w+'") == "'master'"
        assert ask(session, "len(tables.table('services'))", r"\d+") == "2"
        # Text as `rais plan` prints it, line by line (a repr would show a quoted \n); what it decides
        # depends on how far the probes of web (nothing listens on port 9) have got.
        ask(session, "plan('1.2.0.2')", r"\nif 1\.2\.0\.2 goes down \(tables at generation \d+\), "
                                        r"the master would:\r*\n[a-z ]+: [^\r\n]+")
        # A probe runs on the reactor: its Deferred is shown first, its result when it comes.
        session.sendline(f"probe('tcp', '127.0.0.1:{master.control_port}')")
        session.expect(r"called back: ProbeResult\(status=<Status.OK: 0>")
        session.sendline("1 + 1")
        session.expect("\n2\r*\n")
        session.expect(PROMPT)
        # The keys work as over ssh. Ctrl-D on a line with text in it rings the bell and keeps the line
        # (the client used to send it as a telnet command Twisted cannot parse, which dropped the session).
        session.send("6 * 7\x04")
        session.expect("\a")
        session.sendline("")
        session.expect("\n42\r*\n")
        session.expect(PROMPT)
        session.send("6 * 7\x03")  # Ctrl-C abandons the line
        session.expect("KeyboardInterrupt")
        session.expect(PROMPT)
        session.send("\x04")  # Ctrl-D on an empty line ends the session
        session.expect("Connection closed by foreign host")
        session.expect(pexpect.EOF)
        session.close()
    finally:
        cluster.stop_all()
    log = Path(master.log_path).read_text()
    assert "Unhandled Error" not in log, log
    assert "manhole: login refused for user 'ops'" in log
    assert "manhole: user 'ops' logged in" in log
    # The port closed with the node.
    assert re.search(rf"\(TCP Port {port} Closed\)", log)
