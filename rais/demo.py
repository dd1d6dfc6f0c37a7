"""`make demo`: a three-node cluster on loopback, shown until Ctrl-C."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time

from rais.localcluster import LocalCluster
from rais.statusview import render_status

ROLES = ["master", "active", "standby"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rais-demo", description=__doc__)
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds instead of waiting for Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (configs, logs)")
    args = parser.parse_args(argv)

    base = tempfile.mkdtemp(prefix="rais-demo-")
    cluster = LocalCluster(base, ROLES)
    print(f"demo cluster in {base}: {len(ROLES)} twistd nodes, group {cluster.group}:{cluster.port}")
    cluster.start_all()
    started = time.monotonic()
    try:
        cluster.wait_ready()
        while args.duration is None or time.monotonic() - started < args.duration:
            print(f"\n=== {time.strftime('%H:%M:%S')} (Ctrl-C stops the cluster) ===")
            for node in cluster.nodes:
                try:
                    sys.stdout.write(render_status(node.status()))
                except OSError as e:
                    print(f"node {node.host_id}: not answering ({e})")
            sys.stdout.flush()
            time.sleep(2)
    except KeyboardInterrupt:
        print()
    except (RuntimeError, TimeoutError) as e:
        print(f"the cluster did not start: {e}", file=sys.stderr)
        return 1
    finally:
        print("stopping the nodes ...")
        cluster.stop_all()
        if args.keep:
            print(f"configs and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
