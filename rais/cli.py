"""The `rais` command: check-config, keygen, manhole-passwd, status, events, plan, move, drain, undrain,
policy, probes, probe.

Exit status: 0 fine, 1 the node could not be asked (or, for `rais probes`,
a probe module failed to load), 2 bad input (a bad config, a bad argument,
a key file that already exists). `rais probe` exits as a Nagios plugin
does: 0 ok, 1 warning, 2 critical, 3 unknown (a bad argument included).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, NoReturn

from rais.config import ConfigError, host_notes, host_problems, load_config, parse_hostport, transport_words
from rais.interfaces import REQUIRED
from rais.keys import MAX_KEY_ID
from rais.states import Role
from rais.statusview import render_status

DEFAULT_CONTROL = "127.0.0.1:8470"
TIMEOUT = 5.0


def _ranged(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected an integer {low}..{high}, got {text!r}")
        return int(text)
    return convert


def check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path, role=args.role, host_id=args.host_id)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    problems = host_problems(config)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    c, n = config.cluster, config.node
    print(
        f"{args.path}: ok: host {config.self_id} ({n.role}, priority {n.priority}) in cluster {c.id}, "
        f"{transport_words(c)}, {len(c.keyring.keys)} key(s), "
        f"{len(config.services)} service(s), {len(config.policies)} policy(ies)"
    )
    for note in host_notes(config):
        print(note)
    return 0


def keygen(args: argparse.Namespace) -> int:
    from rais.keys import write_new_key_file

    try:
        write_new_key_file(args.path, args.id)
    except FileExistsError:
        print(f"{args.path}: exists; not overwriting a cluster key", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{args.path}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"{args.path}: new key {args.id} written (mode 0600); copy it to every host of the cluster")
    return 0


def manhole_passwd(args: argparse.Namespace) -> int:
    """Add ``args.user`` to the manhole's password file, or give the user a new password."""
    from rais.passwords import PasswdFileError, set_password

    if args.stdin:
        password = sys.stdin.readline().removesuffix("\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            print("rais manhole-passwd: the passwords differ; nothing written", file=sys.stderr)
            return 2
    if not password:
        print("rais manhole-passwd: empty password; nothing written", file=sys.stderr)
        return 2
    try:
        replaced = set_password(args.path, args.user, password)
    except PasswdFileError as e:
        print(f"rais manhole-passwd: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"rais manhole-passwd: {args.path}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"{args.path}: {'new password for' if replaced else 'added'} {args.user} (mode 0600)")
    return 0


def _control_address(args: argparse.Namespace, command: str) -> tuple[str, int] | None:
    """The control endpoint a command asks (--control, --config's, or the default); None, with
    the problem printed, if it cannot be worked out."""
    try:
        if args.control:
            return parse_hostport(args.control)
        if args.config:
            return load_config(args.config).node.control
        return parse_hostport(DEFAULT_CONTROL)
    except ValueError as e:
        print(f"rais {command}: --control: {e}", file=sys.stderr)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
    return None


def _ask(args: argparse.Namespace, command: str, path: str, fields: list[tuple[str, str]]) -> int:
    """POST an operator's command to a node's control endpoint, which carries it to the master, and
    print what the master says will happen."""
    where = _control_address(args, command)
    if where is None:
        return 2
    host, port = where
    shown = f"[{host}]" if ":" in host else host
    body = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(f"http://{shown}:{port}/{path}", data=body, timeout=TIMEOUT) as reply:
            print(reply.read().decode("utf-8", "replace").strip())
            return 0
    except urllib.error.HTTPError as e:  # refused: the reason is the body
        print(f"rais {command}: {e.read().decode('utf-8', 'replace').strip()}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError) as e:
        print(f"rais {command}: cannot reach the node at {host}:{port}: {getattr(e, 'reason', e)}", file=sys.stderr)
        return 1


def _host_arg(args: argparse.Namespace, command: str) -> bool:
    from rais.ids import HostClusterId

    try:
        HostClusterId.parse(args.host)
    except ValueError as e:
        print(f"rais {command}: {e}", file=sys.stderr)
        return False
    return True


def move(args: argparse.Namespace) -> int:
    """Ask the master, at its control endpoint, to move a service to a host."""
    if not _host_arg(args, "move"):
        return 2
    return _ask(args, "move", "move", [("service", args.service), ("host", args.host)])


def drain(args: argparse.Namespace) -> int:
    """Ask the master to drain a host (`rais drain`) or to undrain it (`rais undrain`)."""
    if not _host_arg(args, args.command):
        return 2
    return _ask(args, args.command, args.command, [("host", args.host)])


def policy_set(args: argparse.Namespace) -> int:
    """Ask the master to change a service's policy (KEY=VALUE ...), or to reset it to its config's."""
    if args.reset:
        if args.assignments:
            print("rais policy: --reset takes no KEY=VALUE", file=sys.stderr)
            return 2
        return _ask(args, "policy", "policy", [("service", args.service), ("reset", "yes")])
    if not args.assignments or any("=" not in a for a in args.assignments):
        print("rais policy set: expected KEY=VALUE ... (an empty VALUE: back to the default)", file=sys.stderr)
        return 2
    return _ask(args, "policy", "policy", [("service", args.service)] + [("set", a) for a in args.assignments])


def policy_show(args: argparse.Namespace) -> int:
    """The policy table's rows, as the node asked (the master, to be sure it is current) has them."""
    from rais.policy import describe
    from rais.status import DocumentError, read_tables

    doc = _document(args, "policy")
    if isinstance(doc, int):
        return doc
    try:
        rows = read_tables(doc).table("policy")
    except DocumentError as e:
        print(f"rais policy: the status document: {e}", file=sys.stderr)
        return 2
    shown = [r for r in rows if args.service in (None, r.name)]
    if args.service is not None and not shown:
        print(f"rais policy: {args.service} has no policy in the tables", file=sys.stderr)
        return 2
    for row in shown:
        print(describe(row))
    return 0


ASKS_THE_MASTER = "any node's control endpoint; it carries the command to the master"


def _node_address(p: argparse.ArgumentParser, what: str = "the node's control endpoint") -> Any:
    """--control or --config, which say the control endpoint a command asks; the group, for more."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--control", metavar="HOST:PORT", help=f"{what} (default {DEFAULT_CONTROL})")
    where.add_argument("--config", metavar="PATH", help="take the control endpoint from this config")
    return where


def fetch_status(host: str, port: int, timeout: float = TIMEOUT) -> dict[str, Any]:
    shown = f"[{host}]" if ":" in host else host
    with urllib.request.urlopen(f"http://{shown}:{port}/status.json", timeout=timeout) as reply:
        return json.load(reply)


def _document(args: argparse.Namespace, command: str) -> Any:
    """The status document (a JSON object) from a saved file (--tables) or a running node; an exit
    code on failure."""
    path = getattr(args, "tables", None)
    if path == "":
        print(f"rais {command}: --tables: expected a file name", file=sys.stderr)
        return 2
    if path is not None:
        from rais.status import DocumentError, no_duplicate_keys

        where, problem = path, None
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            problem = e.strerror
        except UnicodeDecodeError as e:
            problem = f"not UTF-8: byte {e.object[e.start]:#04x} at offset {e.start}"
        else:
            try:
                doc = json.loads(text, object_pairs_hook=no_duplicate_keys)
            except json.JSONDecodeError as e:  # names the line and column
                problem = f"not JSON: {e}"
            except DocumentError as e:
                problem = f"not a status document: {e}"
            except ValueError:  # the one other: Python reads no integer of more digits than this
                problem = f"not a status document: a number of more than {sys.get_int_max_str_digits()} digits"
            except RecursionError:
                problem = "not a status document: nested too deeply"
        if problem is not None:
            print(f"rais {command}: {path}: {problem}", file=sys.stderr)
            return 2
    else:
        endpoint = _control_address(args, command)
        if endpoint is None:
            return 2
        host, port = endpoint
        where = f"the node at {host}:{port}"
        try:
            doc = fetch_status(host, port)
        except (OSError, ValueError, RecursionError) as e:
            reason = getattr(e, "reason", None) or e
            print(f"rais {command}: cannot ask {where}: {reason}", file=sys.stderr)
            return 1
    if not isinstance(doc, dict):  # nor may a number pass for an exit code
        from rais.status import json_type

        print(f"rais {command}: {where}: not a status document: expected a JSON object, got {json_type(doc)}",
              file=sys.stderr)
        return 2
    return doc


def status(args: argparse.Namespace) -> int:
    doc = _document(args, "status")
    if isinstance(doc, int):
        return doc
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        sys.stdout.write(render_status(doc))
    return 0


def events(args: argparse.Namespace) -> int:
    """The node's recent events, oldest first; with --follow, then each new one as it happens."""
    from rais.eventview import Seen, follow, json_line, person_line

    doc = _document(args, "events")
    if isinstance(doc, int):
        return doc
    line, seen = json_line if args.json else person_line, Seen()
    for event in seen.new(doc):
        print(line(event))
    sys.stdout.flush()
    if args.follow:
        endpoint = _control_address(args, "events")
        if endpoint is None:  # its config was edited since it was read above
            return 2
        host, port = endpoint
        try:
            follow(lambda: fetch_status(host, port), seen, line, sys.stdout, sys.stderr)
        except KeyboardInterrupt:  # how a follow ends
            pass
    return 0


def plan(args: argparse.Namespace) -> int:
    """What the master will do next, from a status document, if --fail says something fails."""
    from rais import dryrun
    from rais.status import DocumentError, situation

    try:
        failure = dryrun.parse_failure(args.fail) if args.fail is not None else None
    except ValueError as e:
        print(f"rais plan: --fail: {e}", file=sys.stderr)
        return 2
    doc = _document(args, "plan")
    if isinstance(doc, int):
        return doc
    try:
        now = situation(doc)
    except DocumentError as e:
        print(f"rais plan: {args.tables or 'the status document'}: {e}", file=sys.stderr)
        return 2
    try:
        changes = dryrun.plan(now, failure)
    except ValueError as e:  # the failure names a host or service the tables do not have
        print(f"rais plan: --fail: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(dryrun.changes_json(now, changes, failure), sys.stdout, indent=1)
        print()
    else:
        sys.stdout.write(dryrun.changes_text(now, changes, failure))
    return 0


def _probe_registry(config: str | None) -> Any:
    """The probes found, with the [probes] paths of ``config`` if given; raises ConfigError."""
    from twisted.logger import globalLogBeginner

    from rais.probing.discover import discover  # imports every probe plugin: only for these commands

    # Modules that fail to import are logged with a traceback; these commands
    # print each failure's reason themselves, so the log goes nowhere.
    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    return discover(load_config(config).probes.paths if config else ())


def list_probes(args: argparse.Namespace) -> int:
    try:
        registry = _probe_registry(args.config)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    for name, probe in registry.probes.items():
        port = {None: "port required", 0: "no port"}.get(probe.default_port, f"port {probe.default_port}")
        print(f"{name}: {registry.sources[name]} ({port})\n    {probe.description}")
        for option in probe.options:
            print(f"    {option.name} = {_default(option.default)}: {option.description}")
    for failure in registry.failures:
        print(f"{failure.file}: failed to load: {failure.reason}")
    return 1 if registry.failures else 0


def _default(value: Any) -> str:
    if value is None:
        return "(optional)"
    return "(required)" if value is REQUIRED else json.dumps(value)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not (sep and key):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        # A TOML value where it is one (200, true, ["a", "b"]), else the text itself.
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds over 0 and at most 3600, got {text!r}")
    return seconds


UNKNOWN = 3  # the Nagios exit status for "could not check"


def run_probe_once(args: argparse.Namespace) -> int:
    from rais.probing.discover import UnknownProbe

    try:
        host, port = parse_hostport(args.target)
        registry = _probe_registry(args.config)
        probe = registry.lookup(args.name)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return UNKNOWN
    except (ValueError, UnknownProbe) as e:
        print(f"rais probe: {e}", file=sys.stderr)
        return UNKNOWN
    options = dict(args.option)
    problems = probe.validate(options)
    for key, message in sorted(problems.items()):
        print(f"rais probe: --option {key}: {message}", file=sys.stderr)
    if problems:
        return UNKNOWN
    from twisted.internet.task import react

    react(_check_once, (probe, host, port, options, args.timeout))
    return UNKNOWN  # not reached: react exits with the result's status


def _check_once(reactor: Any, probe: Any, host: str, port: int, options: dict[str, Any],
                timeout: float) -> Any:
    from rais.probing.runner import run_probe

    def show(result: Any) -> None:
        shown = f"[{host}]" if ":" in host else host
        print(f"{result.status.name}: {probe.name} {shown}:{port}: {result.detail} "
              f"({result.latency * 1000:.1f} ms)")
        raise SystemExit(int(result.status))

    return run_probe(reactor, probe, host, port, options, timeout).addCallback(show)


class _Parser(argparse.ArgumentParser):
    """Reports a bad argument in one line, as a bad config is (no usage text), and exits 2."""

    def error(self, message: str) -> NoReturn:
        # argparse words it "argument --host-id: ..."; the problem lines elsewhere start at the name.
        self.exit(2, f"{self.prog}: {message.removeprefix('argument ')}\n")


def parser() -> argparse.ArgumentParser:
    # The sub-parsers are of the same class, so each reports its own bad arguments.
    top = _Parser(prog="rais", description="Operate a RAIS cluster node.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-config", help="validate a config file")
    p.add_argument("path")
    p.add_argument("--role", choices=[role.value for role in Role], help="check as if started with --role")
    p.add_argument("--host-id", type=_ranged(1, 0xFFFF), help="check as if started with --host-id")
    p.set_defaults(run=check_config)

    p = sub.add_parser("keygen", help="write a new random cluster key file (mode 0600)")
    p.add_argument("path")
    p.add_argument("--id", type=_ranged(0, MAX_KEY_ID), default=1, help="key id (0..65535, default 1)")
    p.set_defaults(run=keygen)

    p = sub.add_parser("manhole-passwd", help="add a manhole user, or change a password (file mode 0600)")
    p.add_argument("path", metavar="FILE")
    p.add_argument("user", metavar="USER")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(run=manhole_passwd)

    p = sub.add_parser("status", help="show what a running node sees")
    _node_address(p)
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.set_defaults(run=status)

    p = sub.add_parser("events", help="show a running node's recent events (roles, hosts, decisions)")
    _node_address(p)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events until interrupted")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(run=events)

    p = sub.add_parser("plan", help="dry run: what the master will do next, or if a host or a service failed")
    p.add_argument("--fail", metavar="HOST[:SERVICE]",
                   help="suppose this host goes down, or HOST:SERVICE for one service failing there")
    where = _node_address(p, "plan from a running node's tables")
    where.add_argument("--tables", metavar="FILE", help="plan from a saved `rais status --json`")
    p.add_argument("--json", action="store_true", help="print the decisions and every score as JSON")
    p.set_defaults(run=plan)

    p = sub.add_parser("move", help="ask the master to move a service to a host (then release it elsewhere)")
    p.add_argument("service")
    p.add_argument("host", metavar="HOST", help="host-cluster id, like 1.2.0.7")
    _node_address(p, ASKS_THE_MASTER)
    p.set_defaults(run=move)

    for command, what in (("drain", "move every service off a host and place nothing there"),
                          ("undrain", "let the master place services on a drained host again")):
        p = sub.add_parser(command, help=f"ask the master to {what}")
        p.add_argument("host", metavar="HOST", help="host-cluster id, like 1.2.0.7")
        _node_address(p, ASKS_THE_MASTER)
        p.set_defaults(run=drain)

    policy = sub.add_parser("policy", help="show the policies in the tables, or change one live").add_subparsers(
        dest="action", required=True, metavar="{show,set}")
    p = policy.add_parser("show", help="the policy table's rows (as the node asked has them)")
    p.add_argument("service", nargs="?")
    _node_address(p)
    p.set_defaults(run=policy_show)
    p = policy.add_parser("set", help="change a service's policy (kept over a new master's config; see --reset)")
    p.add_argument("service")
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                   help="replicas, max_cpu, max_latency_ms, max_net_mbps, prefer, failback_after, weights.PART")
    p.add_argument("--reset", action="store_true", help="back to the master's [policy.SERVICE], no longer live")
    _node_address(p, ASKS_THE_MASTER)
    p.set_defaults(run=policy_set)

    p = sub.add_parser("probes", help="list the probe plugins found, and those that failed to load")
    p.add_argument("--config", metavar="PATH", help="also search this config's [probes] paths")
    p.set_defaults(run=list_probes)

    p = sub.add_parser("probe", help="run one probe once; exit 0 ok, 1 warning, 2 critical, 3 unknown")
    p.add_argument("name", help="probe name (see `rais probes`)")
    p.add_argument("target", metavar="HOST:PORT", help="what to check (IPv6 as [::1]:PORT)")
    p.add_argument("--option", "-o", metavar="KEY=VALUE", type=_option, action="append", default=[],
                   help="a probe option; VALUE is read as TOML if it is valid TOML, else as text")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds (default 10)")
    p.add_argument("--config", metavar="PATH", help="also search this config's [probes] paths")
    p.set_defaults(run=run_probe_once)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
