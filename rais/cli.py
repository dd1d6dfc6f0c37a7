"""The `rais` command: check-config, keygen, status.

Exit status: 0 fine, 1 the node could not be asked, 2 bad input (a bad
config, a bad argument, a key file that already exists).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from rais.config import ROLES, ConfigError, load_config, parse_hostport
from rais.keys import MAX_KEY_ID
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
    c, n = config.cluster, config.node
    print(
        f"{args.path}: ok: host {config.self_id} ({n.role}, priority {n.priority}) in cluster {c.id}, "
        f"group {c.group}:{c.port}, {len(c.keyring.keys)} key(s), "
        f"{len(config.services)} service(s), {len(config.policies)} policy(ies)"
    )
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


def _control_address(args: argparse.Namespace) -> tuple[str, int]:
    if args.control:
        return parse_hostport(args.control)
    if args.config:
        return load_config(args.config).node.control
    return parse_hostport(DEFAULT_CONTROL)


def fetch_status(host: str, port: int, timeout: float = TIMEOUT) -> dict[str, Any]:
    shown = f"[{host}]" if ":" in host else host
    with urllib.request.urlopen(f"http://{shown}:{port}/status.json", timeout=timeout) as reply:
        return json.load(reply)


def status(args: argparse.Namespace) -> int:
    try:
        host, port = _control_address(args)
    except ValueError as e:
        print(f"rais status: --control: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    try:
        doc = fetch_status(host, port)
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        print(f"rais status: cannot ask the node at {host}:{port}: {reason}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        sys.stdout.write(render_status(doc))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rais", description="Operate a RAIS cluster node.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-config", help="validate a config file")
    p.add_argument("path")
    p.add_argument("--role", choices=ROLES, help="check as if started with --role")
    p.add_argument("--host-id", type=_ranged(1, 0xFFFF), help="check as if started with --host-id")
    p.set_defaults(run=check_config)

    p = sub.add_parser("keygen", help="write a new random cluster key file (mode 0600)")
    p.add_argument("path")
    p.add_argument("--id", type=_ranged(0, MAX_KEY_ID), default=1, help="key id (0..65535, default 1)")
    p.set_defaults(run=keygen)

    p = sub.add_parser("status", help="show what a running node sees")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--control", metavar="HOST:PORT",
                       help=f"the node's control endpoint (default {DEFAULT_CONTROL})")
    where.add_argument("--config", metavar="PATH", help="take the control endpoint from this config")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.set_defaults(run=status)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
