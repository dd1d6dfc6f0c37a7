"""The rais command and twistd's handling of configs, as an operator runs them."""

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rais.cli import main
from rais.localcluster import TWISTD, free_port

ROOT = Path(__file__).resolve().parent.parent
ELSEWHERE = "203.0.113.7"  # TEST-NET-3, for documentation only: an address of no real host

GOOD = """\
[cluster]
id = "1.2"
key_file = "rais.key"
interface = "127.0.0.1"

[node]
host_id = 7
role = "standby"
state_dir = "state"
"""


def twistd(*args, timeout=60):
    return subprocess.run([TWISTD, *args], capture_output=True, text=True, timeout=timeout)


def start(config, timeout=30):
    """twistd as README starts a node; a config it takes is a failure here, after ``timeout``."""
    return twistd("-n", "--pidfile=", "rais", "--config", str(config), timeout=timeout)


def with_control(text, port=None):
    # A free control port, so a node running here never adds a note or a problem.
    return text + f'control = "127.0.0.1:{port or free_port()}"\n'


@pytest.fixture
def config(tmp_path):
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    path = tmp_path / "rais.toml"
    path.write_text(with_control(GOOD))
    return path


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "k"
    assert main(["keygen", str(path)]) == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_text()
    assert main(["keygen", str(path)]) == 2
    assert path.read_text() == first
    assert "exists" in capsys.readouterr().err


def test_check_config_ok_prints_one_line(config, capsys):
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{config}: ok: host 1.2.0.7 (standby")


def test_check_config_reports_each_problem(config, capsys):
    config.write_text(GOOD.replace('id = "1.2"', 'id = "0.0"').replace("host_id = 7", "host_id = 0")
                      + "bogus = 1\n")
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{config}: cluster.id: ") for line in err), err
    assert any(line.startswith(f"{config}: node.host_id: ") for line in err), err
    assert any(line.startswith(f"{config}: node.bogus: ") for line in err), err


def test_check_config_applies_overrides(config, capsys):
    assert main(["check-config", str(config), "--role", "master", "--host-id", "9"]) == 0
    assert "host 1.2.0.9 (master" in capsys.readouterr().out


def test_status_of_a_node_that_is_not_there_exits_1(capsys):
    assert main(["status", "--control", f"127.0.0.1:{free_port()}"]) == 1
    assert "cannot ask the node" in capsys.readouterr().err


@pytest.mark.parametrize("args, code, err", [
    (["drain", "1.2.0"], 2, "rais drain: host-cluster id '1.2.0' must be 4 dotted octets\n"),
    (["policy", "set", "web"], 2, "rais policy set: expected KEY=VALUE ... (an empty VALUE: back to the default)\n"),
    (["policy", "set", "web", "replicas"], 2, "rais policy set: expected KEY=VALUE ... (an empty VALUE: back to "
                                              "the default)\n"),
    (["policy", "set", "web", "replicas=2", "--reset"], 2, "rais policy: --reset takes no KEY=VALUE\n"),
])
def test_operator_commands_refuse_bad_arguments_before_asking(capsys, args, code, err):
    assert main([*args, "--control", f"127.0.0.1:{free_port()}"]) == code
    assert capsys.readouterr().err == err


def test_operator_commands_say_when_the_node_is_not_there(capsys):
    for args in (["undrain", "1.2.0.2"], ["policy", "set", "web", "replicas=2"], ["policy", "show"]):
        assert main([*args, "--control", f"127.0.0.1:{free_port()}"]) == 1
        assert "cannot " in capsys.readouterr().err


def test_twistd_lists_rais_and_documents_its_options():
    assert "rais" in twistd("--help").stdout
    help_text = twistd("rais", "--help").stdout
    for option in ("--config", "--role", "--host-id"):
        assert option in help_text


def test_twistd_refuses_a_bad_config_without_a_traceback(config):
    config.write_text(GOOD.replace("host_id = 7", 'host_id = "seven"'))
    done = twistd("-n", "--pidfile=", "rais", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"{config}: node.host_id: expected an integer, got a string"]
    assert "Traceback" not in done.stdout + done.stderr


def test_twistd_refuses_a_bad_override(config):
    done = twistd("-n", "--pidfile=", "rais", "--config", str(config), "--role", "boss")
    assert done.returncode == 2
    assert done.stderr.startswith(f"{config}: node.role: ")
    assert "Traceback" not in done.stdout + done.stderr


def refused(done, line):
    assert (done.returncode, done.stderr.splitlines()) == (2, [line]), done
    assert "Traceback" not in done.stdout + done.stderr


def test_control_port_in_use(config, capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config.write_text(with_control(GOOD, port))
        why = f"127.0.0.1:{port} is in use (by a node already running, or another program)"
        refused(start(config), f"{config}: node.control: {why}")
        # The node itself may hold it: check-config only says so.
        assert main(["check-config", str(config)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[1:] == [f"{config}: note: node.control: {why}"]


def test_interface_elsewhere(config, capsys):
    config.write_text(with_control(GOOD.replace('"127.0.0.1"', f'"{ELSEWHERE}"')))
    line = f"{config}: cluster.interface: {ELSEWHERE} is not an address of this host"
    assert main(["check-config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    refused(start(config), line)


def test_state_dir_that_is_a_file(config, capsys):
    (config.parent / "state").write_text("")
    line = f"{config}: node.state_dir: {config.parent / 'state'} is not a folder"
    assert main(["check-config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    refused(start(config), line)


def test_key_file_that_is_a_fifo(config):
    key = config.parent / "rais.key"
    os.remove(key)
    os.mkfifo(key, 0o600)
    line = f"{config}: cluster.key_file: {key} is not a regular file"
    # Subprocesses, so that blocking on the FIFO fails the test rather than hanging it.
    refused(subprocess.run([sys.executable, "-m", "rais.cli", "check-config", str(config)],
                           capture_output=True, text=True, timeout=30), line)
    refused(start(config), line)


def test_key_file_problem_names_its_line(config, capsys):
    key = config.parent / "rais.key"
    with open(key, "a") as f:
        f.write("2 not-hex\n")
    assert main(["check-config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{config}: cluster.key_file: {key}: line 3: "
                                                    "secret is not hexadecimal"]


@pytest.mark.parametrize(("args", "line"), [
    (["--host-id", "abc"], "rais check-config: --host-id: expected an integer 1..65535, got 'abc'"),
    (["--host-id", "0"], "rais check-config: --host-id: expected an integer 1..65535, got '0'"),
    (["--role", "boss"], "rais check-config: --role: invalid choice: 'boss' (choose from 'active', 'standby', "
                         "'master')"),
    (None, "rais check-config: the following arguments are required: path"),
])
def test_check_config_bad_argument_is_one_line(config, capsys, args, line):
    with pytest.raises(SystemExit) as info:
        main(["check-config", *([str(config), *args] if args is not None else [])])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [line])


def test_check_config_help_still_shows_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check-config", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rais check-config ") and "--host-id HOST_ID" in out


def test_every_documented_start_gives_a_pidfile():
    # Without one, twistd writes ./twistd.pid, and a second node started in that folder refuses to run.
    starts = [line for path in (ROOT / "README.md", *(p for p in (ROOT / "etc").rglob("*") if p.is_file()))
              for line in path.read_text().splitlines() if "twistd -n" in line and "rais --config" in line]
    assert starts
    for line in starts:
        assert "--pidfile=" in line, line
