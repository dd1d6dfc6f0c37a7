"""The rais command and twistd's handling of configs, as an operator runs them."""

import os
import stat
import subprocess

import pytest

from rais.cli import main
from rais.localcluster import TWISTD, free_port

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


@pytest.fixture
def config(tmp_path):
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    path = tmp_path / "rais.toml"
    path.write_text(GOOD)
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
