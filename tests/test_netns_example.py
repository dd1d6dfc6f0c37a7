"""etc/web-vip.toml, the annotated three-host example README deploys, run as it is on three hosts in
network namespaces: each with nginx on port 80, the configuration with only what README says to
change per host (and the test's paths, addresses and a short settle), the virtual IP moved by
etc/actions/rais-vip. The VIP comes up on one host; nginx killed there moves it; that host cut off
lets it go by itself (quorum and exclusive) while the two others move it on. A client in the
observer fetches http://VIP/ every 10 ms throughout."""

import time
from pathlib import Path

import pytest

from rais.localcluster import converged, wait_for
from rais.netcluster import CONTROL_PORT, Client, HolderWatch
from tests.test_netns_service import (
    _tools,  # noqa: F401 (an autouse fixture: arping and nginx)
    wait_value,
)

pytestmark = pytest.mark.integration

ETC = Path(__file__).resolve().parent.parent / "etc"
HTTP = 80
SETTLE = 2.0  # instead of 10 s: these hosts start together


def configure(cluster, node):
    """The example as host ``node.index`` has it, with this cluster's key, folders and addresses."""
    text = (ETC / "web-vip.toml").read_text()
    for old, new in (('interface = "192.0.2.11"', f'interface = "{node.address}"'),
                     ("host_id = 1 ", f"host_id = {node.index} "),
                     ('"/etc/rais/rais.key"', f'"{cluster.key_path}"'),
                     ('"/var/lib/rais"', '"state"'),
                     ('control = "127.0.0.1:8470"', f'control = "{node.address}:{CONTROL_PORT}"'),
                     ("192.0.2.10", cluster.vip),
                     ("/etc/rais/actions/", f"{ETC}/actions/"),
                     ("min_spares = 0\n", f"min_spares = 0\nsettle = {SETTLE}\n")):
        assert old in text, old
        text = text.replace(old, new)
    Path(node.config_path).write_text(text)


def holder(cluster, watch, client, nodes):
    """The host (index) ``nodes`` agree runs the VIP, if it alone holds it and answered the client last."""
    if not converged(nodes):
        return None
    rows = [r for r in nodes[0].status()["tables"]["services"] if r["name"] == "vip" and r["assigned"]]
    host = int(rows[0]["host"].rsplit(".", 1)[1]) if len(rows) == 1 and rows[0]["state"] == "running" else None
    last = client.last()
    return host if watch.holding() == {host} and last is not None and last.answer == f"host {host}" else None


def test_the_three_host_example_moves_its_vip_when_nginx_fails_and_when_the_holder_is_cut_off(net_cluster):
    cluster = net_cluster(["active"] * 3)
    servers = {}
    for node in cluster.nodes:
        configure(cluster, node)
        servers[node.index] = cluster.serve(node, HTTP)
    with HolderWatch(cluster) as watch, Client(cluster, HTTP) as client:
        cluster.start_all()
        cluster.wait_ready()
        first = wait_value(lambda: holder(cluster, watch, client, cluster.nodes), 30)
        assert first, (watch.holding(), client.last(), [n.status()["master"] for n in cluster.nodes])

        servers[first].terminate()  # nginx fails on the holder
        servers[first].wait()
        failed = time.monotonic()
        second = wait_value(lambda: (h := holder(cluster, watch, client, cluster.nodes)) not in (None, first) and h,
                            15)
        assert second, (watch.holding(), client.last())
        nginx_outage = client.longest(failed, time.monotonic())

        cut = cluster.nodes[second - 1]
        rest = [n for n in cluster.nodes if n is not cut]
        cluster.link_down(cut)
        down = time.monotonic()
        # The two others (a majority) move it to the one whose nginx runs; the holder cut off lets it go.
        third = ({1, 2, 3} - {first, second}).pop()
        assert wait_for(lambda: holder(cluster, watch, client, rest) == third and second not in watch.holding(),
                        20), (watch.holding(), client.last(), [n.status()["master"] for n in rest])
        cut_outage = client.longest(down, time.monotonic())
        both, _ = watch.overlap(down, time.monotonic())
    print(f"\n  etc/web-vip.toml on three hosts: the VIP on host {first}; nginx killed there: on host {second} "
          f"after a {nginx_outage:.2f} s outage; host {second} cut off: on host {third} after "
          f"{cut_outage:.2f} s, held by two hosts for {both:.2f} s")
    assert both == 0.0
