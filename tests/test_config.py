"""Tests for rais.config: the example file, defaults, overrides and every kind of problem."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rais.config import (
    Command,
    ConfigError,
    ManholeConfig,
    host_notes,
    host_problems,
    load_config,
    own_peers,
    parse_hostport,
)
from rais.ids import ClusterId, HostClusterId
from rais.keys import write_new_key_file
from rais.load import CgroupError
from rais.localcluster import free_port
from rais.passwords import set_password
from rais.states import Role

EXAMPLE = Path(__file__).resolve().parent.parent / "etc" / "rais.toml"

# The smallest valid file; values are raw TOML so tests can write any type.
BASE = {
    "cluster": {"id": '"1.2"', "key_file": '"rais.key"'},
    "node": {"host_id": "7", "address": '"10.0.0.7"'},
}


def render(sections: dict[str, dict[str, str]]) -> str:
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in keys.items() if value is not None)
    return "\n".join(lines) + "\n"


def write(folder: Path, changes: dict[str, dict[str, str | None]] | None = None,
          extra: str = "", name: str = "rais.toml") -> str:
    """Write BASE with ``changes`` (a None value drops the key) plus ``extra`` text."""
    sections = {section: dict(keys) for section, keys in BASE.items()}
    for section, keys in (changes or {}).items():
        sections.setdefault(section, {}).update(keys)
    path = folder / name
    path.write_text(render(sections) + extra)
    return str(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_new_key_file(str(tmp_path / "rais.key"))
    return tmp_path


def problems(path: str, **overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, **overrides)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(path: str, **overrides: object) -> str:
    found = problems(path, **overrides)
    assert len(found) == 1, found
    return found[0]


# --- the example file -------------------------------------------------------


def test_example_file_validates(tmp_path: Path) -> None:
    path = tmp_path / "rais.toml"
    # state_dir must point somewhere this test may write.
    text = EXAMPLE.read_text().replace('state_dir = "/var/lib/rais"', 'state_dir = "state"')
    assert 'state_dir = "state"' in text
    path.write_text(text)
    write_new_key_file(str(tmp_path / "rais.key"))
    set_password(str(tmp_path / "manhole.passwd"), "ops", "s3cret")

    config = load_config(str(path))

    assert config.path == str(path)
    assert config.cluster.id == ClusterId.parse("1.2")
    assert config.cluster.key_file == str(tmp_path / "rais.key")
    assert config.node.state_dir == str(tmp_path / "state")
    assert config.self_id == HostClusterId.parse("1.2.0.1")
    web = config.services["web"]
    assert web.probe == "http"
    assert web.start == Command(("/usr/sbin/nginx",))
    assert web.stop == Command(("/usr/sbin/nginx", "-s", "quit"))
    assert dict(web.options) == {"path": "/health"}
    assert config.policies["web"].max_cpu == 0.8
    assert config.manhole == ManholeConfig(("127.0.0.1", 8471), str(tmp_path / "manhole.passwd"), False)


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    for key in ("id", "key_file", "group", "port", "interface", "heartbeat_interval", "dead_after",
                "ttl", "quorum", "host_id", "address", "role", "priority", "control", "state_dir", "preempt",
                "probe", "running", "start", "stop", "shell", "timeout", "replicas", "max_cpu",
                "max_latency_ms", "settle", "refresh", "exclusive", "prefer", "failback_after", "listen",
                "passwd", "allow_remote", "load_source"):
        assert f"\n{key} = " in text, key


# --- defaults and overrides -------------------------------------------------


def test_defaults(folder: Path) -> None:
    path = write(folder, {"cluster": {"interface": '"10.0.0.7"'}, "node": {"address": None}},
                 extra='[services.db]\nprobe = "http"\n[policy.db]\n')
    config = load_config(path)

    cluster, node = config.cluster, config.node
    assert cluster.group == "239.192.1.2"
    assert cluster.port == 5150
    assert cluster.heartbeat_interval == 1.0 and type(cluster.heartbeat_interval) is float
    assert cluster.dead_after == 3
    assert cluster.ttl == 1
    assert cluster.quorum is False
    assert cluster.settle == 10.0
    assert cluster.keyring.signing.id == 1
    assert node.address == "10.0.0.7"  # from cluster.interface
    assert node.role == "active"
    assert node.priority == 100
    assert node.control == ("127.0.0.1", 8470)
    assert node.state_dir == "/var/lib/rais"
    assert node.preempt is False
    assert (node.load_source, node.cgroup_path, node.load_command) == ("host", None, None)
    db = config.services["db"]
    assert (db.name, db.port, db.running, db.start, db.stop, db.timeout) == ("db", None, False, None, None, 10.0)
    assert dict(db.options) == {}
    policy = config.policies["db"]
    assert (policy.name, policy.replicas, policy.max_cpu, policy.max_latency_ms) == ("db", 1, None, None)


def test_default_interface_and_group_follow_cluster_id(folder: Path) -> None:
    config = load_config(write(folder, {"cluster": {"id": '"200.7"'}}))
    assert config.cluster.interface == "0.0.0.0"
    assert config.cluster.group == "239.192.200.7"


def test_every_key_set(folder: Path) -> None:
    path = write(folder, {
        "cluster": {"group": '"239.1.2.3"', "port": "6000", "interface": '"10.0.0.7"',
                    "heartbeat_interval": "0.25", "dead_after": "5", "ttl": "4"},
        "node": {"address": '"db1.example.com"', "role": '"master"', "priority": "0",
                 "control": '"[::1]:9000"', "state_dir": '"/srv/rais"', "preempt": "true"},
    })
    config = load_config(path)
    assert (config.cluster.group, config.cluster.port, config.cluster.interface) == ("239.1.2.3", 6000, "10.0.0.7")
    assert (config.cluster.heartbeat_interval, config.cluster.dead_after, config.cluster.ttl) == (0.25, 5, 4)
    node = config.node
    assert (node.address, node.role, node.priority, node.control, node.state_dir, node.preempt) == (
        "db1.example.com", "master", 0, ("::1", 9000), "/srv/rais", True)


def test_integer_heartbeat_interval_becomes_float(folder: Path) -> None:
    config = load_config(write(folder, {"cluster": {"heartbeat_interval": "2"}}))
    assert config.cluster.heartbeat_interval == 2.0 and type(config.cluster.heartbeat_interval) is float


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_role_override(folder: Path, role: str) -> None:
    config = load_config(write(folder, {"node": {"role": '"standby"'}}), role=role)
    assert config.node.role == role


def test_host_id_override(folder: Path) -> None:
    config = load_config(write(folder), host_id=300)
    assert config.node.host_id == 300
    assert config.self_id == HostClusterId.parse("1.2.1.44")


def test_override_supplies_missing_host_id(folder: Path) -> None:
    assert load_config(write(folder, {"node": {"host_id": None}}), host_id=9).node.host_id == 9


def test_bad_overrides_are_reported_under_node(folder: Path) -> None:
    path = write(folder)
    assert problems(path, role="boss", host_id=0) == [
        f"{path}: node.host_id: must be 1..65535, got 0",
        f"{path}: node.role: must be one of active, standby, master, got 'boss'",
    ]


def test_relative_paths_resolve_against_config_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "keys").mkdir()
    shutil.move(str(folder / "rais.key"), str(folder / "keys" / "rais.key"))
    path = write(folder, {"cluster": {"key_file": '"keys/rais.key"'}, "node": {"state_dir": '"../state"'}})
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(os.path.relpath(path))

    assert config.cluster.key_file == str(folder / "keys" / "rais.key")
    assert config.node.state_dir == str(folder.parent / "state")
    assert os.path.isabs(config.node.state_dir)


# --- services and policies --------------------------------------------------


def test_service_commands_and_options(folder: Path) -> None:
    path = write(folder, extra="""
[services.web-1]
probe = "http"
port = 8080
running = true
start = "/usr/bin/web --config '/etc/my web.conf'"
stop = ["/usr/bin/pkill", "-F", "/run/web.pid"]
timeout = 3
path = "/health"
expect = [200, 204]
[services.web-1.headers]
Host = "example.com"

[services."db.main"]
probe = "tcp"
port = 5432
shell = true
start = "pg_ctl start && echo 'up'"
stop = "pg_ctl stop"
""")
    config = load_config(path)
    web = config.services["web-1"]
    assert (web.port, web.running, web.timeout) == (8080, True, 3.0)
    assert web.start == Command(("/usr/bin/web", "--config", "/etc/my web.conf"))
    assert web.stop == Command(("/usr/bin/pkill", "-F", "/run/web.pid"))
    assert dict(web.options) == {"path": "/health", "expect": [200, 204], "headers": {"Host": "example.com"}}
    with pytest.raises(TypeError):
        web.options["path"] = "/other"  # type: ignore[index]
    db = config.services["db.main"]
    assert db.start == Command(("/bin/sh", "-c", "pg_ctl start && echo 'up'"), shell=True)
    assert db.stop == Command(("/bin/sh", "-c", "pg_ctl stop"), shell=True)


def test_load_sources(folder: Path) -> None:
    node = load_config(write(folder, {"node": {"load_source": '"command"',
                                               "load_command": "\"cat '/run/my load'\""}})).node
    assert (node.load_source, node.load_command) == ("command", Command(("cat", "/run/my load")))
    argv = '["probe-load", "-q"]'
    node = load_config(write(folder, {"node": {"load_source": '"command"', "load_command": argv}})).node
    assert node.load_command == Command(("probe-load", "-q"))
    node = load_config(write(folder, {"node": {"load_source": '"cgroup"', "cgroup_path": '"cg/rais"'}})).node
    assert (node.load_source, node.cgroup_path) == ("cgroup", str(folder / "cg" / "rais"))
    assert load_config(write(folder, {"node": {"load_source": '"cgroup"'}})).node.cgroup_path is None  # its own


@pytest.mark.parametrize(("keys", "problem"), [
    ({"load_source": '"gpu"'}, "load_source: must be one of host, cgroup, command, got 'gpu'"),
    ({"load_source": '"command"'}, 'load_command: missing required key (node.load_source is "command")'),
    ({"load_command": '"cat /run/load"'}, 'load_command: used only with load_source = "command", not "host"'),
    ({"load_source": '"command"', "load_command": '""'}, "load_command: must name a program to run"),
    ({"load_source": '"command"', "load_command": "[1]"}, "load_command: item 1 is an integer, expected a string"),
    ({"load_source": '"command"', "load_command": '["cat", "x"]', "cgroup_path": '"/sys/fs/cgroup"'},
     'cgroup_path: used only with load_source = "cgroup", not "command"'),
    ({"load_source": '"cgroup"', "cgroup_path": "7"}, "cgroup_path: expected a string, got an integer"),
])
def test_load_source_problems(folder: Path, keys: dict[str, str], problem: str) -> None:
    path = write(folder, {"node": keys})
    assert only_problem(path) == f"{path}: node.{problem}"


def test_records_and_mappings_are_read_only(folder: Path) -> None:
    config = load_config(write(folder, extra='[services.a]\nprobe = "tcp"\nport = 1\n'))
    with pytest.raises(AttributeError):
        config.node.role = "master"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.services["b"] = config.services["a"]  # type: ignore[index]


def test_policy_values(folder: Path) -> None:
    config = load_config(write(folder, extra="[policy.web]\nreplicas = 3\nmax_cpu = 1\nmax_latency_ms = 12.5\n"))
    policy = config.policies["web"]
    assert (policy.replicas, policy.max_cpu, policy.max_latency_ms) == (3, 1.0, 12.5)


# --- problems, one at a time ------------------------------------------------


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    # wrong types
    ("cluster", "port", "true", "expected an integer, got a boolean"),
    ("cluster", "port", '"5150"', "expected an integer, got a string"),
    ("cluster", "ttl", "1.5", "expected an integer, got a float"),
    ("cluster", "id", "1.2", 'expected a string like "1.2", got a float'),
    ("cluster", "heartbeat_interval", "true", "expected a number, got a boolean"),
    ("cluster", "interface", "[1]", "expected a string, got an array"),
    ("node", "host_id", "true", "expected an integer, got a boolean"),
    ("node", "preempt", '"yes"', "expected a boolean (true or false), got a string"),
    ("node", "preempt", "1", "expected a boolean (true or false), got an integer"),
    ("node", "state_dir", "1979-05-27", "expected a string, got a date"),
    ("node", "control", "8470", 'expected a string "HOST:PORT", got an integer'),
    # out of range
    ("cluster", "port", "0", "must be 1..65535, got 0"),
    ("cluster", "port", "65536", "must be 1..65535, got 65536"),
    ("cluster", "heartbeat_interval", "0.01", "must be 0.05..60, got 0.01"),
    ("cluster", "heartbeat_interval", "61", "must be 0.05..60, got 61"),
    ("cluster", "heartbeat_interval", "nan", "must be a finite number, got nan"),
    ("cluster", "dead_after", "1", "must be 2..1000, got 1"),
    ("cluster", "ttl", "256", "must be 1..255, got 256"),
    ("node", "host_id", "0", "must be 1..65535, got 0"),
    ("node", "host_id", "65536", "must be 1..65535, got 65536"),
    ("node", "priority", "-1", "must be 0..255, got -1"),
    ("node", "priority", "256", "must be 0..255, got 256"),
    # bad values
    ("cluster", "id", '"0.0"', "0.0 is not a valid cluster id (0.0 means no cluster)"),
    ("cluster", "id", '"1.256"', "cluster id '1.256': 256 is over 255"),
    ("cluster", "id", '"1"', "cluster id '1' must be 2 dotted octets"),
    ("cluster", "id", '""', "must not be empty"),
    ("cluster", "group", '"224.0.0.1"', "224.0.0.1 is outside 239.0.0.0/8 (administratively scoped multicast)"),
    ("cluster", "group", '"240.0.0.1"', "240.0.0.1 is outside 239.0.0.0/8 (administratively scoped multicast)"),
    ("cluster", "group", '"239.1"', "'239.1' is not an IPv4 address"),
    ("cluster", "interface", '"::1"', "'::1' is not an IPv4 address"),
    ("node", "role", '"boss"', "must be one of active, standby, master, got 'boss'"),
    ("node", "address", '"not a host!"', "'not a host!' is not an IP address or hostname"),
    ("node", "address", '"10.0.0"', "'10.0.0' is not an IP address or hostname"),
    ("node", "control", '"localhost"', "'localhost' is not HOST:PORT"),
    ("node", "control", '"localhost:0"', "'localhost:0': port '0' must be 1..65535"),
    ("node", "control", '"::1:8470"', "'::1:8470': put an IPv6 address in brackets, like [::1]:8470"),
    ("node", "state_dir", '"a\\u0000b"', "must not contain a NUL character"),
])
def test_bad_value(folder: Path, section: str, key: str, value: str, message: str) -> None:
    path = write(folder, {section: {key: value}})
    assert only_problem(path) == f"{path}: {section}.{key}: {message}"


@pytest.mark.parametrize(("section", "key"), [("cluster", "id"), ("cluster", "key_file"), ("node", "host_id")])
def test_missing_required_key(folder: Path, section: str, key: str) -> None:
    path = write(folder, {section: {key: None}})
    assert only_problem(path) == f"{path}: {section}.{key}: missing required key"


def test_address_required_when_interface_is_any(folder: Path) -> None:
    path = write(folder, {"node": {"address": None}})
    assert only_problem(path) == f"{path}: node.address: missing required key (cluster.interface is 0.0.0.0)"


def test_missing_sections_report_their_required_keys(folder: Path) -> None:
    path = folder / "rais.toml"
    path.write_text("")
    assert problems(str(path)) == [
        f"{path}: cluster.id: missing required key",
        f"{path}: cluster.key_file: missing required key",
        f"{path}: node.host_id: missing required key",
        f"{path}: node.address: missing required key (cluster.interface is 0.0.0.0)",
    ]


def test_unknown_section(folder: Path) -> None:
    path = write(folder, extra="[nodes]\nhost_id = 1\n")
    assert only_problem(path) == f"{path}: nodes: unknown section"


def test_unknown_key(folder: Path) -> None:
    path = write(folder, {"node": {"prio": "3"}})
    assert only_problem(path) == f"{path}: node.prio: unknown key"


def test_unknown_policy_key(folder: Path) -> None:
    path = write(folder, extra="[policy.web]\nreplica = 2\n")
    assert only_problem(path) == f"{path}: policy.web.replica: unknown key"


def test_section_that_is_not_a_table(folder: Path) -> None:
    path = folder / "rais.toml"
    path.write_text('node = 5\nservices = "web"\n' + render({"cluster": BASE["cluster"]}))
    assert problems(str(path), host_id=1) == [
        f"{path}: node: expected a table, got an integer",
        f"{path}: node.address: missing required key (cluster.interface is 0.0.0.0)",
        f"{path}: services: expected a table, got a string",
    ]


def test_missing_key_file(folder: Path) -> None:
    os.remove(folder / "rais.key")
    path = write(folder)
    key = folder / "rais.key"
    assert only_problem(path) == (
        f"{path}: cluster.key_file: {key}: no such file (create one with 'rais keygen {key}')"
    )


# --- [manhole] ----------------------------------------------------------------


def manhole(folder: Path, **keys: str) -> str:
    set_password(str(folder / "manhole.passwd"), "ops", "s3cret")
    return write(folder, {"manhole": {"passwd": '"manhole.passwd"', **keys}})


def test_no_manhole_section_no_manhole(folder: Path) -> None:
    assert load_config(write(folder)).manhole is None


def test_manhole_defaults_and_keys(folder: Path) -> None:
    passwd = str(folder / "manhole.passwd")
    assert load_config(manhole(folder)).manhole == ManholeConfig(("127.0.0.1", 8471), passwd, False)
    config = load_config(manhole(folder, listen='"[::1]:9000"'))
    assert config.manhole is not None and config.manhole.listen == ("::1", 9000)
    config = load_config(manhole(folder, listen='"0.0.0.0:9000"', allow_remote="true"))
    assert config.manhole == ManholeConfig(("0.0.0.0", 9000), passwd, True)
    config = load_config(manhole(folder, listen='"localhost:9000"'))
    assert config.manhole is not None and config.manhole.listen == ("localhost", 9000)


@pytest.mark.parametrize(("listen", "host"), [
    ('"0.0.0.0:8471"', "0.0.0.0"), ('"10.0.0.7:8471"', "10.0.0.7"), ('"[::]:8471"', "::"),
    ('"ops.example.com:8471"', "ops.example.com"),
])
def test_manhole_off_loopback_needs_allow_remote(folder: Path, listen: str, host: str) -> None:
    path = manhole(folder, listen=listen)
    assert only_problem(path) == (
        f"{path}: manhole.listen: {host} is not a loopback address, and whoever reaches the manhole may run "
        "any Python in the node: set allow_remote = true to mean it"
    )


def test_manhole_problems(folder: Path) -> None:
    passwd = folder / "manhole.passwd"
    path = write(folder, {"manhole": {"listen": '"127.0.0.1"'}})
    assert problems(path) == [
        f"{path}: manhole.listen: '127.0.0.1' is not HOST:PORT",
        f"{path}: manhole.passwd: missing required key",
    ]
    path = write(folder, {"manhole": {"passwd": '"manhole.passwd"'}})
    assert only_problem(path) == (f"{path}: manhole.passwd: {passwd}: no such file "
                                  f"(add a user with 'rais manhole-passwd {passwd} USER')")
    path = manhole(folder, allow_remote='"yes"', port="1")
    assert problems(path) == [f"{path}: manhole.allow_remote: expected a boolean (true or false), got a string",
                              f"{path}: manhole.port: unknown key"]
    os.chmod(passwd, 0o644)
    path = write(folder, {"manhole": {"passwd": '"manhole.passwd"'}})
    assert only_problem(path) == (
        f"{path}: manhole.passwd: {passwd} is readable by others (mode 0644); chmod 600 it"
    )
    passwd.write_text("ops:s3cret\n")
    os.chmod(passwd, 0o600)
    assert only_problem(path) == (f"{path}: manhole.passwd: {passwd}: line 1: expected "
                                  "'USER:scrypt:N:R:P:SALT-HEX:KEY-HEX' (write one with 'rais manhole-passwd')")


def test_manhole_port_in_use(folder: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        set_password(str(folder / "manhole.passwd"), "ops", "s3cret")
        path = write(folder, {
            "node": {"address": '"127.0.0.1"', "state_dir": '"state"', "control": f'"127.0.0.1:{free_port()}"'},
            "manhole": {"passwd": '"manhole.passwd"', "listen": f'"127.0.0.1:{port}"'},
        })
        config = load_config(path)
        why = f"127.0.0.1:{port} is in use (by a node already running, or another program)"
        assert host_problems(config) == [] and host_notes(config) == [f"{path}: note: manhole.listen: {why}"]
        assert host_problems(config, starting=True) == [f"{path}: manhole.listen: {why}"]


def test_key_file_readable_by_others(folder: Path) -> None:
    os.chmod(folder / "rais.key", 0o644)
    path = write(folder)
    assert only_problem(path) == (
        f"{path}: cluster.key_file: {folder / 'rais.key'} is readable by others (mode 0644); chmod 600 it"
    )


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail, rather than hang, if the body blocks (as opening a FIFO with no writer does)."""
    def hung(signum: int, frame: object) -> None:
        raise AssertionError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir], ids=["fifo", "folder"])
def test_key_file_that_is_not_a_regular_file(folder: Path, make: Callable[[Path, int], None]) -> None:
    key = folder / "rais.key"
    os.remove(key)
    make(key, 0o600)
    path = write(folder)
    with within(5):
        assert only_problem(path) == f"{path}: cluster.key_file: {key} is not a regular file"


SECRET = "ab" * 32


@pytest.mark.parametrize(("content", "message"), [
    (f"# keys\n\n1 {SECRET}\n2\n", "line 4: expected 'KEY-ID HEX-SECRET'"),
    (f"70000 {SECRET}\n", "line 1: key id '70000' must be 0..65535"),
    (f"1 {SECRET}\n2 {SECRET[:-1]}x\n", "line 2: secret is not hexadecimal"),
    ("1 abcd\n", "line 1: secret has 2 bytes, needs 16 or more"),
    (f"1 {SECRET}\n1 {SECRET}\n", "line 2: key id 1 appears twice"),
    ("# no key yet\n", "holds no key"),
    (f"1 {SECRET}\n# café\n", "line 2: not ASCII text (byte 0xc3)"),
    # Lines are counted at \n only, as an editor counts them.
    (f"1 {SECRET}\r\n\f\r\nbad\r\n", "line 3: expected 'KEY-ID HEX-SECRET'"),
], ids=["fields", "key-id", "hex", "short", "twice", "no-key", "ascii", "crlf"])
def test_key_file_content_problem_names_the_file_and_line(folder: Path, content: str, message: str) -> None:
    key = folder / "rais.key"
    key.write_bytes(content.encode())  # still mode 0600
    path = write(folder)
    assert only_problem(path) == f"{path}: cluster.key_file: {key}: {message}"


@pytest.mark.parametrize(("name", "shown"), [
    ("my web", '"my web"'),
    ("", '""'),
    ("x" * 65, "x" * 65),
    ("web/1", '"web/1"'),
    ("wéb", '"wéb"'),
])
def test_bad_service_name(folder: Path, name: str, shown: str) -> None:
    path = write(folder, extra=f'[services."{name}"]\nprobe = "tcp"\nport = 1\n')
    assert only_problem(path) == f"{path}: services.{shown}: invalid name: use 1 to 64 of A-Z a-z 0-9 _ . -"


def test_bad_policy_name(folder: Path) -> None:
    path = write(folder, extra='[policy."a b"]\n')
    assert only_problem(path) == f'{path}: policy."a b": invalid name: use 1 to 64 of A-Z a-z 0-9 _ . -'


def test_longest_service_name_is_fine(folder: Path) -> None:
    name = "A-z_0." + "x" * 58
    assert name in load_config(write(folder, extra=f'[services."{name}"]\nprobe = "tcp"\nport = 1\n')).services


@pytest.mark.parametrize(("lines", "key", "message"), [
    ("start = 5", "start", "expected a string or an array of strings, got an integer"),
    ("start = {a = 1}", "start", "expected a string or an array of strings, got a table"),
    ('stop = ["kill", 9]', "stop", "item 2 is an integer, expected a string"),
    ("start = []", "start", "must name a program to run"),
    ('start = "   "', "start", "must name a program to run"),
    ('start = "run \'x"', "start", "cannot split into words: No closing quotation"),
    ('shell = true\nstart = ["a", "b"]', "start", "with shell = true, give one string for /bin/sh -c, not an array"),
    ('shell = true\nstop = " "', "stop", "must not be empty"),
    ('shell = "yes"', "shell", "expected a boolean (true or false), got a string"),
    ("port = 70000", "port", "must be 1..65535, got 70000"),
    ("running = 1", "running", "expected a boolean (true or false), got an integer"),
    ("timeout = 0", "timeout", "must be greater than 0, got 0"),
    ("timeout = inf", "timeout", "must be a finite number, got inf"),
    ('address = "10.0.0"', "address", "'10.0.0' is not an IP address"),
    ('address = "vip.example"', "address", "'vip.example' is not an IP address"),
    ("refresh = 1", "refresh", "expected a string or an array of strings, got an integer"),
    ('exclusive = "yes"', "exclusive", "expected a boolean (true or false), got a string"),
])
def test_bad_service_key(folder: Path, lines: str, key: str, message: str) -> None:
    path = write(folder, extra=f'[services.web]\nprobe = "http"\n{lines}\n')
    assert only_problem(path) == f"{path}: services.web.{key}: {message}"


def test_a_virtual_ip_service(folder: Path) -> None:
    path = write(folder, extra='[services.vip]\nprobe = "tcp"\nport = 80\naddress = "10.0.0.100"\nshell = true\n'
                               'start = "ip addr replace 10.0.0.100/32 dev eth0"\n'
                               'refresh = "arping -U -c 1 10.0.0.100"\nexclusive = true\n')
    vip = load_config(path).services["vip"]
    assert (vip.address, vip.exclusive) == ("10.0.0.100", True)
    assert vip.refresh == Command(("/bin/sh", "-c", "arping -U -c 1 10.0.0.100"), shell=True)
    assert "address" not in vip.options  # a service key, not the probe's


def test_service_without_probe(folder: Path) -> None:
    path = write(folder, extra="[services.web]\nport = 80\n")
    assert only_problem(path) == f"{path}: services.web.probe: missing required key"


def test_service_that_is_not_a_table(folder: Path) -> None:
    path = write(folder, extra="[services]\nweb = 80\n")
    assert only_problem(path) == f"{path}: services.web: expected a table, got an integer"


@pytest.mark.parametrize(("line", "key", "message"), [
    ("replicas = 0", "replicas", "must be 1..1000, got 0"),
    ("replicas = 1001", "replicas", "must be 1..1000, got 1001"),
    ("max_cpu = 0", "max_cpu", "must be over 0 and at most 1, got 0"),
    ("max_cpu = 1.5", "max_cpu", "must be over 0 and at most 1, got 1.5"),
    ('max_cpu = "50%"', "max_cpu", "expected a number, got a string"),
    ("max_latency_ms = -1", "max_latency_ms", "must be greater than 0, got -1"),
    ('prefer = "1.2.0"', "prefer", "host-cluster id '1.2.0' must be 4 dotted octets"),
    ('prefer = "1.3.0.2"', "prefer", "1.3.0.2 is a host of cluster 1.3, not of 1.2"),
    ("prefer = 2", "prefer", 'expected a host-cluster id like "1.2.0.7", got an integer'),
    ("failback_after = -1", "failback_after", "must be 0..86400, got -1"),
])
def test_bad_policy_key(folder: Path, line: str, key: str, message: str) -> None:
    path = write(folder, extra=f"[policy.web]\n{line}\n")
    assert only_problem(path) == f"{path}: policy.web.{key}: {message}"


def test_toml_syntax_error(folder: Path) -> None:
    path = folder / "rais.toml"
    path.write_text("[cluster]\nid = \n")
    [problem] = problems(str(path))
    assert problem.startswith(f"{path}: TOML syntax: ")
    assert "line 2" in problem


def test_not_utf8(folder: Path) -> None:
    path = folder / "rais.toml"
    path.write_bytes(b'[cluster]\nid = "\xff"\n')
    assert problems(str(path)) == [f"{path}: TOML syntax: not UTF-8 text"]


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    assert problems(path) == [f"{path}: cannot read: No such file or directory"]


def test_folder_instead_of_file(tmp_path: Path) -> None:
    assert problems(str(tmp_path)) == [f"{tmp_path}: cannot read: Is a directory"]


def test_path_is_reported_as_given(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(folder, {"node": {"prio": "1"}})
    monkeypatch.chdir(folder)
    assert only_problem("./rais.toml") == "./rais.toml: node.prio: unknown key"


def test_all_problems_are_reported_together(folder: Path) -> None:
    os.remove(folder / "rais.key")
    path = write(folder, {
        "cluster": {"id": '"0.0"', "port": "true", "group": '"10.0.0.1"'},
        "node": {"host_id": None, "prio": "1"},
    }, extra='[extra]\n[services."bad name"]\nprobe = 1\nstart = 2\nurl = "x"\n[policy.p]\nmax_cpu = 2\n')
    key = folder / "rais.key"
    assert problems(path, role="boss") == [
        f"{path}: extra: unknown section",
        f"{path}: cluster.id: 0.0 is not a valid cluster id (0.0 means no cluster)",
        f"{path}: cluster.group: 10.0.0.1 is outside 239.0.0.0/8 (administratively scoped multicast)",
        f"{path}: cluster.port: expected an integer, got a boolean",
        f"{path}: cluster.key_file: {key}: no such file (create one with 'rais keygen {key}')",
        f"{path}: node.host_id: missing required key",
        f"{path}: node.role: must be one of active, standby, master, got 'boss'",
        f"{path}: node.prio: unknown key",
        f'{path}: services."bad name": invalid name: use 1 to 64 of A-Z a-z 0-9 _ . -',
        f'{path}: services."bad name".probe: expected a string, got an integer',
        f'{path}: services."bad name".start: expected a string or an array of strings, got an integer',
        f"{path}: policy.p.max_cpu: must be over 0 and at most 1, got 2",
    ]


# --- parse_hostport ---------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8470", ("127.0.0.1", 8470)),
    ("localhost:1", ("localhost", 1)),
    ("ctl.example.com.:65535", ("ctl.example.com.", 65535)),
    ("[::1]:8470", ("::1", 8470)),
    ("[2001:db8::0001]:80", ("2001:db8::1", 80)),
])
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("8470", "'8470' is not HOST:PORT"),
    (":8470", "':8470': '' is not an IP address or hostname"),
    ("host:", "'host:': port '' must be 1..65535"),
    ("host:http", "'host:http': port 'http' must be 1..65535"),
    ("host:65536", "'host:65536': port '65536' must be 1..65535"),
    ("-bad-:80", "'-bad-:80': '-bad-' is not an IP address or hostname"),
    ("[::1]", "'[::1]' is not [IPV6-ADDRESS]:PORT"),
    ("[1.2.3.4]:80", "'[1.2.3.4]:80': '1.2.3.4' is not an IPv6 address"),
])
def test_parse_hostport_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hostport(text)
    assert str(info.value) == message


@given(st.integers(1, 65535), st.ip_addresses())
def test_parse_hostport_round_trip(port: int, address: object) -> None:
    host = str(address)
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_hostport(text) == (host, port)


def test_policy_weights_and_network_limit(folder: Path) -> None:
    path = write(folder, extra="[policy.web]\nmax_net_mbps = 100\nweights = { cpu = 4, role = 0 }\n")
    policy = load_config(path).policies["web"]
    assert policy.max_net_mbps == 100.0 and dict(policy.weights) == {"cpu": 4.0, "role": 0.0}
    path = write(folder, extra="[policy.web]\nweights = { speed = 1 }\n")
    assert only_problem(path) == (f"{path}: policy.web.weights: 'speed' is not a weight; the weights are "
                                  "overlap, latency, cpu, network, role, stickiness")
    path = write(folder, extra="[policy.web]\nweights = { cpu = -1 }\n")
    assert only_problem(path) == f"{path}: policy.web.weights: cpu: must be 0..1000, got -1"


# --- this host ----------------------------------------------------------------

ELSEWHERE = "203.0.113.7"  # TEST-NET-3, for documentation only: an address of no real host


def here(folder: Path, changes: dict[str, dict[str, str]] | None = None) -> str:
    """write(), with this host's address, state_dir in ``folder`` and a free control port."""
    node = {"address": '"127.0.0.1"', "state_dir": '"state"', "control": f'"127.0.0.1:{free_port()}"'}
    changes = changes or {}
    return write(folder, {"cluster": changes.get("cluster", {}), "node": node | changes.get("node", {})})


@pytest.mark.parametrize("interface", ["0.0.0.0", "127.0.0.1"])
def test_an_interface_of_this_host_is_fine(folder: Path, interface: str) -> None:
    config = load_config(here(folder, {"cluster": {"interface": f'"{interface}"'}}))
    assert host_problems(config) == host_problems(config, starting=True) == []
    assert host_notes(config) == []


def test_interface_must_be_an_address_of_this_host(folder: Path) -> None:
    path = here(folder, {"cluster": {"interface": f'"{ELSEWHERE}"'}})
    config = load_config(path)  # the file itself is fine
    problem = f"{path}: cluster.interface: {ELSEWHERE} is not an address of this host"
    assert host_problems(config) == host_problems(config, starting=True) == [problem]


def test_address_elsewhere_is_only_a_note(folder: Path) -> None:
    # A NAT address or a VIP not up yet is right there; a name is not looked up.
    path = here(folder, {"node": {"address": f'"{ELSEWHERE}"'}})
    config = load_config(path)
    assert host_problems(config, starting=True) == []
    assert host_notes(config) == [f"{path}: note: node.address: {ELSEWHERE} is not an address of this host "
                                  "(fine only if it is a NAT address, or a VIP not up yet)"]
    assert host_notes(load_config(here(folder, {"node": {"address": '"db1.example.com"'}}))) == []


def test_state_dir_that_is_a_file(folder: Path) -> None:
    (folder / "state").write_text("")
    path = here(folder)
    problem = f"{path}: node.state_dir: {folder / 'state'} is not a folder"
    config = load_config(path)
    # Once each, also when starting, where making the folder would fail too.
    assert host_problems(config) == host_problems(config, starting=True) == [problem]


def test_state_dir_under_a_file(folder: Path) -> None:
    (folder / "state").write_text("")
    path = here(folder, {"node": {"state_dir": '"state/node"'}})
    assert host_problems(load_config(path)) == [
        f"{path}: node.state_dir: cannot create {folder / 'state' / 'node'}: {folder / 'state'} is not a folder"]


def test_state_dir_is_made_only_when_starting(folder: Path) -> None:
    config = load_config(here(folder, {"node": {"state_dir": '"var/state"'}}))
    assert host_problems(config) == []
    assert not (folder / "var").exists()
    assert host_problems(config, starting=True) == []
    assert (folder / "var" / "state").is_dir()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_control_port_in_use(folder: Path, host: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = here(folder, {"node": {"control": f'"{host}:{port}"'}})
        config = load_config(path)
        why = f"{host}:{port} is in use (by a node already running, or another program)"
        assert host_problems(config, starting=True) == [f"{path}: node.control: {why}"]
        # check-config: the node itself may be the one listening.
        assert host_problems(config) == []
        assert host_notes(config) == [f"{path}: note: node.control: {why}"]


def test_control_on_an_address_elsewhere(folder: Path) -> None:
    path = here(folder, {"node": {"control": f'"{ELSEWHERE}:8470"'}})
    assert host_problems(load_config(path), starting=True) == [
        f"{path}: node.control: {ELSEWHERE} is not an address of this host"]


def test_control_off_loopback_is_a_note(folder: Path) -> None:
    # /status, /metrics and POST /move are then reachable from the network: fine, if meant.
    path = here(folder, {"node": {"control": f'"0.0.0.0:{free_port()}"'}})
    assert host_notes(load_config(path)) == [
        f"{path}: note: node.control: 0.0.0.0 is not a loopback address: whoever reaches it can read "
        "/status and /metrics, and move services (POST /move)"]
    for host in ("localhost", "127.0.0.2"):
        assert host_notes(load_config(here(folder, {"node": {"control": f'"{host}:{free_port()}"'}}))) == []


# --- the cgroup a node reads ------------------------------------------------


def test_a_cgroup_folder_must_be_readable_here(folder: Path) -> None:
    (folder / "cg").mkdir()
    path = here(folder, {"node": {"load_source": '"cgroup"', "cgroup_path": '"cg"'}})
    config = load_config(path)  # the file itself is fine
    problem = f"{path}: node.cgroup_path: {folder / 'cg'}: no cpu.stat: not a cgroup v2 folder"
    assert host_problems(config) == host_problems(config, starting=True) == [problem]
    (folder / "cg" / "cpu.stat").write_text("usage_usec 12\n")
    assert host_problems(config) == []
    missing = load_config(here(folder, {"node": {"load_source": '"cgroup"', "cgroup_path": '"gone"'}}))
    assert host_problems(missing) == [f"{missing.path}: node.cgroup_path: {folder / 'gone'}: no such folder"]


def test_own_cgroup_needs_cgroup_v2(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rais.config

    def nowhere() -> str:
        raise CgroupError("no cgroup v2 hierarchy is mounted")

    monkeypatch.setattr(rais.config, "own_cgroup", nowhere)
    config = load_config(here(folder, {"node": {"load_source": '"cgroup"'}}))
    assert host_problems(config, starting=True) == [
        f"{config.path}: node.load_source: cgroup: no cgroup v2 hierarchy is mounted"]


# --- unicast peers ------------------------------------------------------------


def test_peers_take_the_cluster_port_unless_they_name_one(folder: Path) -> None:
    cluster = load_config(write(folder, {"cluster": {"port": "5160",
                                                     "peers": '["10.0.0.1", "10.0.0.2:5170", "10.0.0.7"]'}})).cluster
    assert cluster.peers == (("10.0.0.1", 5160), ("10.0.0.2", 5170), ("10.0.0.7", 5160))
    assert load_config(write(folder)).cluster.peers == ()  # multicast, the default


@pytest.mark.parametrize(("keys", "problem"), [
    ({"peers": '"10.0.0.1"'}, 'peers: expected an array of "ADDRESS" or "ADDRESS:PORT" strings, got a string'),
    ({"peers": '["10.0.0.1", 7]'}, 'peers: item 2: expected a string "ADDRESS" or "ADDRESS:PORT", got an integer'),
    ({"peers": '["db1.example.com"]'}, "peers: item 1: 'db1.example.com' is not an IPv4 address"),
    ({"peers": '["10.0.0.1:0"]'}, "peers: item 1: '10.0.0.1:0': port '0' must be 1..65535"),
    ({"peers": '["239.1.2.3"]'}, "peers: item 1: 239.1.2.3 is not a unicast address"),
    ({"peers": '["10.0.0.1", "10.0.0.1:5150"]'}, "peers: 10.0.0.1:5150 is named twice"),
    ({"peers": '["10.0.0.1"]', "group": '"239.192.1.2"'}, "group: used only with multicast, not with "
     "cluster.peers (unicast)"),
    ({"peers": '["10.0.0.1"]', "ttl": "2"}, "ttl: used only with multicast, not with cluster.peers (unicast)"),
    ({"peers": "[" + ", ".join(f'"10.0.{i // 250}.{i % 250 + 1}"' for i in range(257)) + "]"},
     "peers: 257 peers; at most 256 (a cluster that big wants multicast)"),
])
def test_peers_problems(folder: Path, keys: dict[str, str], problem: str) -> None:
    path = write(folder, {"cluster": keys})
    assert only_problem(path) == f"{path}: cluster.{problem}"


def test_this_host_among_the_peers(folder: Path) -> None:
    """The entry at this host's address and the cluster port is this host: it sends from there and
    not to itself. None is a note (each host may list only the others); two an error."""
    port = free_port(socket.SOCK_DGRAM)
    peers = f'["127.0.0.1:{port}", "127.0.0.1:{port + 1}", "10.0.0.2"]'
    local = {"cluster": {"port": str(port), "peers": peers}, "node": {"state_dir": '"state"'}}
    config = load_config(write(folder, local))
    assert own_peers(config) == [("127.0.0.1", port)]  # interface 0.0.0.0: any address of this host
    assert host_problems(config, starting=True) == [] and not [n for n in host_notes(config) if "cluster.peers" in n]
    config = load_config(write(folder, {**local, "cluster": {**local["cluster"], "interface": '"127.0.0.1"'}}))
    assert own_peers(config) == [("127.0.0.1", port)]

    path = write(folder, {"cluster": {"port": str(port), "peers": '["10.0.0.2", "10.0.0.3"]'},
                          "node": {"state_dir": '"state"'}})
    assert host_notes(load_config(path))[0] == (
        f"{path}: note: cluster.peers: none is this host (any address of this host, port {port}): fine if each "
        "host lists only the others, but the same list on every host is simpler")

    path = write(folder, {"cluster": {"port": str(port), "peers": '["127.0.0.1", "127.0.0.2"]'},
                          "node": {"state_dir": '"state"'}})
    assert host_problems(load_config(path)) == [
        f"{path}: cluster.peers: 127.0.0.1 and 127.0.0.2 are all this host's: set cluster.interface to the one "
        "it sends from"]


def test_a_unicast_port_in_use_stops_a_start(folder: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        path = write(folder, {"cluster": {"port": str(port), "peers": '["127.0.0.1", "10.0.0.2"]'},
                              "node": {"state_dir": '"state"', "control": f'"127.0.0.1:{free_port()}"'}})
        config = load_config(path)
        assert host_problems(config) == []  # check-config: the node may be running already
        assert host_problems(config, starting=True) == [
            f"{path}: cluster.port: cannot listen on UDP 127.0.0.1:{port}: Address already in use"]


# --- the three-host example ----------------------------------------------------

WEB_VIP = EXAMPLE.parent / "web-vip.toml"


@pytest.mark.parametrize("host", [1, 2, 3])
@pytest.mark.parametrize("variant", ["multicast", "unicast", "with-worker"])
def test_the_three_host_example_is_valid_on_each_host(folder: Path, host: int, variant: str) -> None:
    """etc/web-vip.toml with its PER HOST lines changed, as README says; the commented unicast and
    worker variants too. Its actions are the scripts in etc/actions/, installed in /etc/rais/actions/."""
    text = WEB_VIP.read_text()
    for line in ('interface = "192.0.2.11"', "host_id = 1 "):
        assert line in text, line
    text = text.replace('interface = "192.0.2.11"', f'interface = "192.0.2.1{host}"')
    text = text.replace("host_id = 1 ", f"host_id = {host} ")
    text = text.replace('"/etc/rais/rais.key"', '"rais.key"').replace('"/var/lib/rais"', '"state"')
    if variant == "unicast":
        text = text.replace("# peers = [", "peers = [")
    if variant == "with-worker":
        block = text[text.index("# [services.worker]"):text.index("[policy.vip]")]
        text = text.replace(block, "\n".join(line.removeprefix("# ") for line in block.splitlines()) + "\n")
    path = folder / "rais.toml"
    path.write_text(text)
    config = load_config(str(path))
    assert config.self_id == HostClusterId.parse(f"1.2.0.{host}") and config.cluster.quorum
    assert len(config.cluster.peers) == (3 if variant == "unicast" else 0)
    assert set(config.services) == ({"vip", "worker"} if variant == "with-worker" else {"vip"})
    vip = config.services["vip"]
    assert vip.exclusive and vip.address == "192.0.2.10"
    for service in config.services.values():
        for command in (service.start, service.stop, service.refresh):
            if command is not None:
                script = EXAMPLE.parent / "actions" / os.path.basename(command.argv[0])
                assert command.argv[0] == f"/etc/rais/actions/{script.name}" and os.access(script, os.X_OK)
