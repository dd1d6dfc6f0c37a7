"""`make demo`: a three-node cluster on loopback, shown until Ctrl-C.

Node 2 serves a real web server (Python's http.server) that the master
probes; stop it (its pid is printed) to see the service fail.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time

from rais.localcluster import LocalCluster, free_port
from rais.statusview import render_status

ROLES = ["master", "active", "standby"]
WEB = """
[services.web]
probe = "http"
port = {port}
running = true
probe_interval = 2.0
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rais-demo", description=__doc__)
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds instead of waiting for Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (configs, logs)")
    args = parser.parse_args(argv)

    base = tempfile.mkdtemp(prefix="rais-demo-")
    port = free_port()
    cluster = LocalCluster(base, ROLES, extras={2: WEB.format(port=port)})
    web = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                           cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"demo cluster in {base}: {len(ROLES)} twistd nodes, group {cluster.group}:{cluster.port}; "
          f"node 2 serves web on 127.0.0.1:{port} (pid {web.pid})")
    cluster.start_all()
    started = time.monotonic()
    try:
        cluster.wait_ready()
        print("status pages (open in a browser): "
              + ", ".join(f"http://{n.address}:{n.control_port}/" for n in cluster.nodes))
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
        web.terminate()
        web.wait()
        if args.keep:
            print(f"configs and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
