"""The configuration file: TOML in, a frozen :class:`Config` out.

Every key is described once, in a table of :class:`_Field` specs per
section, so that checking, defaults and error wording stay uniform. Loading
collects every problem before giving up, one line each, in the form
``PATH: section.key: what is wrong``, so an operator fixes a file in one pass.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from rais.checks import Check, argv, boolean, choice, expect_type, integer, number, text, type_name
from rais.ids import MAX_HOST, ClusterId, HostClusterId
from rais.keys import KeyFileError, Keyring, load_keyring
from rais.load import CgroupError, LoadSource, cgroup_reading, own_cgroup
from rais.passwords import PasswdFileError, load_entries
from rais.planner import WEIGHT_NAMES
from rais.probing.discover import discover
from rais.states import Role, Spare

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MULTICAST_SCOPE = ipaddress.IPv4Network("239.0.0.0/8")
_ANY = "0.0.0.0"
# Each datagram goes to every peer: past a few dozen hosts multicast is the better transport.
MAX_PEERS = 256


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@attrs.frozen
class Command:
    """A start or stop command; with ``shell``, argv is ``("/bin/sh", "-c", text)``."""

    argv: tuple[str, ...]
    shell: bool = False


@attrs.frozen
class ClusterConfig:
    id: ClusterId
    key_file: str
    keyring: Keyring
    group: str
    port: int
    interface: str
    heartbeat_interval: float
    dead_after: int
    ttl: int
    quorum: bool
    probe_interval: float
    probe_timeout: float
    rise: int
    fall: int
    probe_concurrency: int
    balance_after: float
    move_hold: float
    settle: float
    min_spares: int
    # Unicast (rais.transport): every datagram to each of these (address, port) instead of the group.
    peers: tuple[tuple[str, int], ...] = ()


@attrs.frozen
class NodeConfig:
    host_id: int
    address: str
    role: Role = attrs.field(converter=Role)  # from a string already checked to name a role
    priority: int
    control: tuple[str, int]
    state_dir: str
    preempt: bool
    notify: Command | None = None
    load_source: LoadSource = attrs.field(default=LoadSource.HOST, converter=LoadSource)
    cgroup_path: str | None = None  # with load_source cgroup; None: the node's own cgroup
    load_command: Command | None = None  # with load_source command


@attrs.frozen
class ServiceConfig:
    name: str
    probe: str
    port: int | None
    running: bool
    start: Command | None
    stop: Command | None
    timeout: float
    options: Mapping[str, object]
    probe_interval: float | None = None  # None: the cluster's default
    probe_timeout: float | None = None
    rise: int | None = None
    fall: int | None = None
    address: str | None = None  # what the probe checks (a virtual IP); None: the host's address
    refresh: Command | None = None  # announces it again where it runs (a gratuitous ARP)
    exclusive: bool = False  # never on two hosts at once: with quorum, a host cut off stops it


@attrs.frozen
class PolicyConfig:
    name: str
    replicas: int
    max_cpu: float | None
    max_latency_ms: float | None
    max_net_mbps: float | None = None
    weights: Mapping[str, float] = MappingProxyType({})  # planner weights to override, by part
    prefer: HostClusterId | None = None  # placed there whenever it qualifies
    failback_after: float = 60.0  # seconds the preferred host qualifies before the service goes back
    spare: Spare = attrs.field(default=Spare.PREFER, converter=Spare)  # may it take a spare (rais.pool)


@attrs.frozen
class ProbesConfig:
    paths: tuple[str, ...]  # folders searched for probe plugins after the built-ins


@attrs.frozen
class ManholeConfig:
    listen: tuple[str, int]
    passwd: str  # checked at load; read again at each login
    allow_remote: bool


@attrs.frozen
class Config:
    path: str
    cluster: ClusterConfig
    node: NodeConfig
    services: Mapping[str, ServiceConfig]
    policies: Mapping[str, PolicyConfig]
    probes: ProbesConfig
    manhole: ManholeConfig | None = None  # None: no [manhole] section, no manhole

    @property
    def self_id(self) -> HostClusterId:
        return HostClusterId.of(self.cluster.id, self.node.host_id)


# --- field specs ------------------------------------------------------------

# Each key's check comes from rais.checks (shared with the probes' options).

_REQUIRED = object()


@attrs.frozen
class _Field:
    key: str
    check: Check
    default: Any = _REQUIRED  # the value used when the key is absent (already converted)


def _path(base: str) -> Check:
    def parse(text: str) -> str:
        if "\0" in text:
            raise ValueError("must not contain a NUL character")
        # Relative to the config file, not to wherever the daemon was started.
        return os.path.normpath(os.path.join(base, text))

    return text(parse)


def _parse_cluster_id(text: str) -> ClusterId:
    # ClusterId's own message would say "cluster id 0"; name it as written.
    if text == "0.0":
        raise ValueError("0.0 is not a valid cluster id (0.0 means no cluster)")
    return ClusterId.parse(text)


def _parse_ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def _parse_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _parse_group(text: str) -> str:
    group = _parse_ipv4(text)
    if ipaddress.IPv4Address(group) not in _MULTICAST_SCOPE:
        raise ValueError(f"{group} is outside 239.0.0.0/8 (administratively scoped multicast)")
    return group


def _peers(value: Any) -> tuple[tuple[str, int | None], ...]:
    """``["10.0.0.1", "10.0.0.2:5151"]``: IPv4 unicast addresses, each with its port if not the
    cluster's (None until the port is known). Names are refused: a lookup at start could wait on
    DNS, and could answer differently on each host."""
    expect_type(value, 'an array of "ADDRESS" or "ADDRESS:PORT" strings', list)
    if len(value) > MAX_PEERS:
        raise ValueError(f"{len(value)} peers; at most {MAX_PEERS} (a cluster that big wants multicast)")
    peers: list[tuple[str, int | None]] = []
    for position, item in enumerate(value, 1):
        try:
            expect_type(item, 'a string "ADDRESS" or "ADDRESS:PORT"', str)
            host, port = parse_hostport(item) if ":" in item else (item, None)
            address = ipaddress.IPv4Address(_parse_ipv4(host))
            if address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255":
                raise ValueError(f"{address} is not a unicast address")
        except ValueError as e:
            raise ValueError(f"item {position}: {e}") from None
        peers.append((str(address), port))
    return tuple(peers)


def _parse_host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    # An all-digit last label means a mistyped IPv4 address, not a hostname.
    if len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit():
        return text
    raise ValueError(f"{text!r} is not an IP address or hostname")


def parse_hostport(text: str) -> tuple[str, int]:
    """Split ``"HOST:PORT"`` (IPv6 as ``"[::1]:PORT"``) into ``(host, port)``."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r} is not [IPV6-ADDRESS]:PORT")
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"{text!r} is not HOST:PORT")
        if ":" in host:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, like [::1]:8470")
        try:
            host = _parse_host(host)
        except ValueError as e:
            raise ValueError(f"{text!r}: {e}") from None
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: port {port!r} must be 1..65535")
    return host, int(port)


def _command(shell: bool) -> Check:
    def check(value: Any) -> Command:
        if type(value) is str and shell:
            if not value.strip():
                raise ValueError("must not be empty")
            return Command(("/bin/sh", "-c", value), shell=True)
        if type(value) is list and shell:
            raise ValueError("with shell = true, give one string for /bin/sh -c, not an array")
        return Command(argv(value))

    return check


def _folders(base: str) -> Check:
    def check(value: Any) -> tuple[str, ...]:
        expect_type(value, "an array of folder paths", list)
        folders = []
        for position, item in enumerate(value, 1):
            try:
                folder = _path(base)(item)
            except ValueError as e:
                raise ValueError(f"item {position}: {e}") from None
            if not os.path.isdir(folder):
                raise ValueError(f"item {position}: {folder}: no such folder")
            folders.append(folder)
        return tuple(folders)

    return check


_PORT = integer(1, 65535)


def _cluster_fields(base: str) -> tuple[_Field, ...]:
    return (
        _Field("id", text(_parse_cluster_id, 'a string like "1.2"')),
        _Field("key_file", _path(base)),
        _Field("group", text(_parse_group), None),  # None: derived from the id below
        _Field("port", _PORT, 5150),
        _Field("interface", text(_parse_ipv4), _ANY),
        _Field("heartbeat_interval", number(0.05, 60), 1.0),
        _Field("dead_after", integer(2, 1000), 3),
        _Field("ttl", integer(1, 255), 1),
        _Field("quorum", boolean, False),
        # How the master probes services, unless a [services.NAME] says otherwise.
        _Field("probe_interval", number(0.1, 86400), 5.0),
        _Field("probe_timeout", number(0.01, 3600), 2.0),
        _Field("rise", integer(1, 100), 2),
        _Field("fall", integer(1, 100), 3),
        _Field("probe_concurrency", integer(1, 10000), 32),
        # Load balancing: a host over a service's max_cpu for this long gets a copy moved off.
        _Field("balance_after", number(0, 86400), 30.0),
        # The least time between two load moves of one service, so a noisy host never flaps.
        _Field("move_hold", number(0, 86400), 120.0),
        # A cluster starting up listens this long before it places services, so that a host
        # still booting can say what it runs (see README, "Starting a cluster").
        _Field("settle", number(0, 3600), 10.0),
        # Free standbys the master keeps, loading actives that have room once the pool is down to
        # this many (see README, "The pool of spares"); every host's config should say the same.
        _Field("min_spares", integer(0, 1000), 1),
        # Unicast instead of multicast, for networks without it (most clouds): README "Unicast peers".
        _Field("peers", _peers, ()),
    )


def _node_fields(base: str) -> tuple[_Field, ...]:
    return (
        _Field("host_id", integer(1, MAX_HOST)),
        _Field("address", text(_parse_host), None),  # None: cluster.interface, below
        _Field("role", choice(tuple(Role)), Role.ACTIVE),
        _Field("priority", integer(0, 255), 100),
        _Field("control", text(parse_hostport, 'a string "HOST:PORT"'), ("127.0.0.1", 8470)),
        _Field("state_dir", _path(base), "/var/lib/rais"),
        _Field("preempt", boolean, False),
        # Run on every role change and assignment here, with the event as arguments.
        _Field("notify", _command(False), None),
        # Where the CPU (and network) figures in this node's heartbeats come from (rais.load).
        _Field("load_source", choice(tuple(LoadSource)), LoadSource.HOST),
        _Field("cgroup_path", _path(base), None),
        _Field("load_command", _command(False), None),
    )


def _service_fields(shell: bool) -> tuple[_Field, ...]:
    # Any key of [services.NAME] not listed here is a probe option.
    return (
        _Field("probe", text()),
        _Field("port", _PORT, None),
        _Field("running", boolean, False),
        _Field("start", _command(shell), None),
        _Field("stop", _command(shell), None),
        _Field("shell", boolean, False),
        _Field("timeout", number(0, low_open=True), 10.0),
        _Field("probe_interval", number(0.1, 86400), None),
        _Field("probe_timeout", number(0.01, 3600), None),
        _Field("rise", integer(1, 100), None),
        _Field("fall", integer(1, 100), None),
        _Field("address", text(_parse_ip), None),
        _Field("refresh", _command(shell), None),
        _Field("exclusive", boolean, False),
    )


def _probes_fields(base: str) -> tuple[_Field, ...]:
    return (_Field("paths", _folders(base), ()),)


def _manhole_fields(base: str) -> tuple[_Field, ...]:
    return (
        _Field("listen", text(parse_hostport, 'a string "HOST:PORT"'), ("127.0.0.1", 8471)),
        _Field("passwd", _path(base)),
        _Field("allow_remote", boolean, False),
    )


def _loopback(host: str) -> bool:
    # A name other than localhost may resolve anywhere, so it counts as remote.
    return host == "localhost" or (ip_version(host) is not None and ipaddress.ip_address(host).is_loopback)


def _weights(value: Any) -> Mapping[str, float]:
    expect_type(value, "a table of weights", dict)
    weights = {}
    for name, weight in value.items():
        if name not in WEIGHT_NAMES:
            raise ValueError(f"{name!r} is not a weight; the weights are {', '.join(WEIGHT_NAMES)}")
        try:
            weights[name] = number(0, 1000)(weight)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return MappingProxyType(weights)


_POLICY_FIELDS = (
    _Field("replicas", integer(1, 1000), 1),
    _Field("max_cpu", number(0, 1, low_open=True), None),
    _Field("max_latency_ms", number(0, low_open=True), None),
    _Field("max_net_mbps", number(0, low_open=True), None),  # megabits/s in and out of a host
    _Field("weights", _weights, MappingProxyType({})),
    _Field("prefer", text(HostClusterId.parse, 'a host-cluster id like "1.2.0.7"'), None),
    _Field("failback_after", number(0, 86400), 60.0),
    _Field("spare", choice(tuple(Spare)), Spare.PREFER),
)


def foreign_host(host: HostClusterId, cluster: ClusterId) -> str | None:
    """Why ``host`` cannot be named in ``cluster``'s policies, if it cannot."""
    return None if host.cluster == cluster else f"{host} is a host of cluster {host.cluster}, not of {cluster}"


def check_policy(name: str, table: dict[str, Any]) -> PolicyConfig:
    """A ``[policy.NAME]`` table checked by the config's rules (`rais policy set` edits one live);
    ConfigError naming each bad key as the config would (``policy.NAME.KEY: why``)."""
    problems: list[str] = []

    def report(where: tuple[str, ...], message: str) -> None:
        problems.append(f"{_dotted(where)}: {message}")

    values = _read(table, ("policy", name), _POLICY_FIELDS, report)
    if problems:
        raise ConfigError(problems)
    return PolicyConfig(name=name, **values)


# --- loading ----------------------------------------------------------------

Report = Callable[[tuple[str, ...], str], None]


def _dotted(where: tuple[str, ...]) -> str:
    # Quote keys as TOML would, so `services."www.example".probe` is unambiguous.
    return ".".join(k if _BARE_KEY.fullmatch(k) else json.dumps(k, ensure_ascii=False) for k in where)


def _table(value: Any, where: tuple[str, ...], report: Report) -> dict[str, Any] | None:
    if type(value) is not dict:
        report(where, f"expected a table, got {type_name(value)}")
        return None
    return value


def _read(table: dict[str, Any], where: tuple[str, ...], fields: tuple[_Field, ...],
          report: Report, *, extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check ``table`` against ``fields``; unknown keys go to ``extras`` if given."""
    values = {}
    for field in fields:
        if field.key not in table:
            if field.default is _REQUIRED:
                report(where + (field.key,), "missing required key")
            else:
                values[field.key] = field.default
            continue
        try:
            values[field.key] = field.check(table[field.key])
        except ValueError as e:
            report(where + (field.key,), str(e))
    known = {field.key for field in fields}
    for key, value in table.items():
        if key in known:
            continue
        if extras is None:
            report(where + (key,), "unknown key")
        else:
            extras[key] = value
    return values


def _named_tables(doc: dict[str, Any], section: str, report: Report) -> dict[str, dict[str, Any]]:
    """The ``[SECTION.NAME]`` tables, each name checked."""
    tables = {}
    for name, value in (_table(doc.get(section, {}), (section,), report) or {}).items():
        if not _NAME.fullmatch(name):
            report((section, name), "invalid name: use 1 to 64 of A-Z a-z 0-9 _ . -")
        table = _table(value, (section, name), report)
        if table is not None:
            tables[name] = table
    return tables


def _check_probes(paths: tuple[str, ...], services: dict[str, dict[str, Any]], report: Report) -> None:
    """Each service's probe must exist, and take the service's options and port."""
    named = {name: service for name, service in services.items() if "probe" in service}
    if not named:
        return  # finding the plugins imports them all: not worth it for nothing
    registry = discover(paths)
    for name, service in named.items():
        # A port that was given but bad is reported already; only a missing one counts here.
        has_port = service.get("port", 0) is not None
        for key, message in registry.service_problems(service["probe"], service["options"], has_port):
            report(("services", name, key), message)


def _check_load_source(node: dict[str, Any], report: Report) -> None:
    """Each load_source's own key is given with it, and only with it (an ignored key is as
    misleading as an unknown one)."""
    source = node.get("load_source")
    if source is None:
        return  # a bad value, reported already
    for key, needs in (("cgroup_path", LoadSource.CGROUP), ("load_command", LoadSource.COMMAND)):
        if node.get(key) is not None and source != needs:
            report(("node", key), f'used only with load_source = "{needs}", not "{source}"')
    if source == LoadSource.COMMAND and "load_command" in node and node["load_command"] is None:
        report(("node", "load_command"), 'missing required key (node.load_source is "command")')


def _check_peers(table: dict[str, Any], cluster: dict[str, Any], report: Report) -> None:
    """Give each peer its port; the multicast keys are an error beside peers, as a key that would be
    ignored misleads, and so is a peer named twice."""
    if not cluster.get("peers"):
        return
    for key in ("group", "ttl"):
        if key in table:
            report(("cluster", key), "used only with multicast, not with cluster.peers (unicast)")
    port = cluster.get("port", 5150)  # a bad port is reported already
    peers = tuple((address, peer_port or port) for address, peer_port in cluster["peers"])
    seen: set[tuple[str, int]] = set()
    for address, peer_port in peers:
        if (address, peer_port) in seen:
            report(("cluster", "peers"), f"{address}:{peer_port} is named twice")
        seen.add((address, peer_port))
    cluster["peers"] = peers


def _parse_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: TOML syntax: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: TOML syntax: {e}"]) from None


def load_config(path: str, role: str | None = None, host_id: int | None = None) -> Config:
    """Read and check the config file at ``path``; ``role`` and ``host_id``
    (from command-line flags) replace the file's values before checking."""
    doc = _parse_file(path)
    base = os.path.dirname(os.path.abspath(path))
    problems: list[str] = []

    def report(where: tuple[str, ...], message: str) -> None:
        problems.append(f"{path}: {_dotted(where)}: {message}")

    for section in doc:
        if section not in ("cluster", "node", "services", "policy", "probes", "manhole"):
            report((section,), "unknown section")

    cluster_table = _table(doc.get("cluster", {}), ("cluster",), report) or {}
    cluster = _read(cluster_table, ("cluster",), _cluster_fields(base), report)
    # group absent from the file (None) takes its default from a valid id.
    if "id" in cluster and "group" in cluster and cluster["group"] is None:
        cluster["group"] = f"239.192.{cluster['id'].value >> 8}.{cluster['id'].value & 0xFF}"
    _check_peers(cluster_table, cluster, report)
    if "key_file" in cluster:
        try:
            cluster["keyring"] = load_keyring(cluster["key_file"])
        except KeyFileError as e:
            report(("cluster", "key_file"), str(e))

    node_table = dict(_table(doc.get("node", {}), ("node",), report) or {})
    for key, override in (("role", role), ("host_id", host_id)):
        if override is not None:
            node_table[key] = override
    node = _read(node_table, ("node",), _node_fields(base), report)
    if "address" in node and node["address"] is None:
        # The address peers use must be concrete; 0.0.0.0 only says "listen everywhere".
        if cluster.get("interface") == _ANY:
            report(("node", "address"), f"missing required key (cluster.interface is {_ANY})")
        else:
            node["address"] = cluster.get("interface")
    _check_load_source(node, report)

    services = {}
    for name, table in _named_tables(doc, "services", report).items():
        options: dict[str, Any] = {}
        values = _read(table, ("services", name), _service_fields(table.get("shell") is True),
                       report, extras=options)
        values.pop("shell", None)  # carried by each Command instead
        services[name] = dict(values, name=name, options=MappingProxyType(options))

    probes = _read(_table(doc.get("probes", {}), ("probes",), report) or {}, ("probes",),
                   _probes_fields(base), report)
    if "paths" in probes:  # a bad paths value is reported already; probes are not looked for then
        _check_probes(probes["paths"], services, report)

    policies = {}
    for name, table in _named_tables(doc, "policy", report).items():
        policies[name] = dict(_read(table, ("policy", name), _POLICY_FIELDS, report), name=name)
        prefer, cluster_id = policies[name].get("prefer"), cluster.get("id")
        if prefer is not None and cluster_id is not None and (why := foreign_host(prefer, cluster_id)):
            report(("policy", name, "prefer"), why)

    manhole = None
    if "manhole" in doc:
        manhole = _read(_table(doc["manhole"], ("manhole",), report) or {}, ("manhole",), _manhole_fields(base),
                        report)
        if "passwd" in manhole:
            try:
                load_entries(manhole["passwd"])
            except PasswdFileError as e:
                report(("manhole", "passwd"), str(e))
        if "listen" in manhole and not manhole.get("allow_remote", True) and not _loopback(manhole["listen"][0]):
            report(("manhole", "listen"), f"{manhole['listen'][0]} is not a loopback address, and whoever reaches "
                   "the manhole may run any Python in the node: set allow_remote = true to mean it")

    # Every value left missing above was reported, so no problems means
    # every record below gets all of its fields.
    if problems:
        raise ConfigError(problems)
    return Config(
        path=path,
        cluster=ClusterConfig(**cluster),
        node=NodeConfig(**node),
        services=MappingProxyType({name: ServiceConfig(**v) for name, v in services.items()}),
        policies=MappingProxyType({name: PolicyConfig(**v) for name, v in policies.items()}),
        probes=ProbesConfig(**probes),
        manhole=ManholeConfig(**manhole) if manhole is not None else None,
    )


# --- this host --------------------------------------------------------------

# What the file alone cannot show. `rais check-config` and twistd both refuse
# these; twistd also makes state_dir and needs the control port free.


def ip_version(host: str) -> int | None:
    """4 or 6 for an IP address, None for a host name (which binds as IPv4, as Twisted's TCP4 endpoint does)."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _bind_error(host: str, port: int, kind: socket.SocketKind) -> OSError | None:
    """Bind as the node would, then let go: the error, if any."""
    try:
        with socket.socket(socket.AF_INET6 if ip_version(host) == 6 else socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                # As Twisted's listenTCP does, so a connection of a node just stopped is no obstacle.
                # (On UDP it would let two sockets share a port, which listenUDP does not allow.)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        return e
    return None


def _not_ours(address: str) -> str | None:
    """Why ``address`` cannot be used here, if it cannot: binding to it, port 0, tells whether this
    host has it."""
    error = _bind_error(address, 0, socket.SOCK_DGRAM)
    if error is None:
        return None
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{address} is not an address of this host"
    return f"cannot use {address}: {error.strerror}"


def _not_a_folder(path: str) -> str | None:
    """The first of ``path`` and its parents that exists, if it is not a folder."""
    path = os.path.abspath(path)  # a relative path would never reach an existing parent
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return None if os.path.isdir(path) else path


def listen_problem(host: str, port: int) -> str | None:
    """Why a node could not listen on ``host``:``port`` now, if it could not."""
    shown = f"[{host}]:{port}" if ip_version(host) == 6 else f"{host}:{port}"
    error = _bind_error(host, port, socket.SOCK_STREAM)
    if error is None:
        return None
    if error.errno == errno.EADDRINUSE:
        return f"{shown} is in use (by a node already running, or another program)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this host"
    return f"cannot listen on {shown}: {error.strerror}"


def transport_words(cluster: ClusterConfig) -> str:
    """How the cluster's datagrams travel, for the node's log and `rais check-config`."""
    if cluster.peers:
        return f"unicast to peers {', '.join(f'{a}:{p}' for a, p in cluster.peers)}"
    return f"group {cluster.group}:{cluster.port}"


def own_peers(config: Config) -> list[tuple[str, int]]:
    """The entries of cluster.peers that are this host: at cluster.port, and at cluster.interface
    (or, when that is 0.0.0.0, at any address of this host). One is expected; its address is the
    one the node sends from, so that the other peers know the datagrams as coming from a peer."""
    cluster = config.cluster
    return [(address, port) for address, port in cluster.peers if port == cluster.port and (
        address == cluster.interface if cluster.interface != _ANY else _not_ours(address) is None)]


def _endpoints(config: Config) -> list[tuple[str, tuple[str, int]]]:
    """The TCP endpoints the node listens on, by the key that sets each."""
    listens = [("node.control", config.node.control)]
    if config.manhole is not None:
        listens.append(("manhole.listen", config.manhole.listen))
    return listens


def host_problems(config: Config, *, starting: bool = False) -> list[str]:
    """What stops ``config`` from running on this host, one line each, as load_config words them.

    ``starting`` (twistd) also makes state_dir and needs the control and manhole ports free; `rais check-config`
    leaves both alone, as the node may be running already and may run as another user.
    """
    problems = []

    def report(key: str, message: str) -> None:
        problems.append(f"{config.path}: {key}: {message}")

    if (why := _not_ours(config.cluster.interface)) is not None:
        report("cluster.interface", why)
    elif config.cluster.peers:
        mine = own_peers(config)
        if len(mine) > 1:
            report("cluster.peers", f"{' and '.join(a for a, _ in mine)} are all this host's: set "
                   "cluster.interface to the one it sends from")
        elif starting:
            host = mine[0][0] if mine else config.cluster.interface
            if (error := _bind_error(host, config.cluster.port, socket.SOCK_DGRAM)) is not None:
                report("cluster.port", f"cannot listen on UDP {host}:{config.cluster.port}: {error.strerror}")
    state_dir = config.node.state_dir
    if (blocker := _not_a_folder(state_dir)) is not None:
        report("node.state_dir", f"{blocker} is not a folder" if blocker == state_dir
               else f"cannot create {state_dir}: {blocker} is not a folder")
    elif starting:
        try:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
        except OSError as e:
            report("node.state_dir", f"cannot create {state_dir}: {e.strerror}")
        else:
            if not os.access(state_dir, os.W_OK | os.X_OK):
                report("node.state_dir", f"{state_dir} is not writable")
    for key, (host, port) in _endpoints(config) if starting else ():
        if (why := listen_problem(host, port)) is not None:
            report(key, why)
    if config.node.load_source == LoadSource.CGROUP:
        # Without cgroup_path, `rais check-config` reads its own cgroup (a shell's, not the node's):
        # that shows this host has cgroup v2; twistd, starting, reads the node's.
        try:
            cgroup_reading(config.node.cgroup_path or own_cgroup())
        except CgroupError as e:
            if config.node.cgroup_path:
                report("node.cgroup_path", str(e))
            else:
                report("node.load_source", f"cgroup: {e}")
    return problems


def host_notes(config: Config) -> list[str]:
    """What may be wrong on this host but need not be, for `rais check-config`, one line each."""
    notes = []
    for key, (host, port) in _endpoints(config):
        if (why := listen_problem(host, port)) is not None:
            notes.append(f"{config.path}: note: {key}: {why}")
    cluster = config.cluster
    if cluster.peers and not own_peers(config):
        where = cluster.interface if cluster.interface != _ANY else "any address of this host"
        notes.append(f"{config.path}: note: cluster.peers: none is this host ({where}, port {cluster.port}): "
                     "fine if each host lists only the others, but the same list on every host is simpler")
    host = config.node.control[0]
    if not _loopback(host):
        notes.append(f"{config.path}: note: node.control: {host} is not a loopback address: whoever reaches "
                     "it can read /status and /metrics, and move services (POST /move)")
    address = config.node.address
    # Peers reach this host's services there; a NAT address or a VIP not up yet is fine. A name
    # is left alone: looking it up may wait on DNS, and it may resolve elsewhere than here.
    if ip_version(address) is not None and (why := _not_ours(address)) is not None:
        notes.append(f"{config.path}: note: node.address: {why} "
                     "(fine only if it is a NAT address, or a VIP not up yet)")
    return notes

