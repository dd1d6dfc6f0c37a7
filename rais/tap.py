"""twistd entry point: `twistd -n --pidfile= rais --config etc/rais.toml [--role R] [--host-id N]`."""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.python import usage

from rais.catalogue import declarations
from rais.config import Config, ConfigError, host_problems, ip_version, load_config
from rais.control import control_site
from rais.daemon import NodeService
from rais.states import Role


class Options(usage.Options):
    synopsis = "[--config PATH] [--role active|standby|master] [--host-id N]"
    optParameters = [
        ["config", "c", "/etc/rais/rais.toml", "The node's TOML config file."],
        ["role", "r", None, f"Start in this role ({', '.join(Role)}), overriding [node] role."],
        ["host-id", "i", None, "This host's id, 1..65535, overriding [node] host_id."],
    ]
    longdesc = (
        "Runs one RAIS node: it multicasts authenticated heartbeats to the cluster group, "
        "tracks every host it hears, and serves its status on the [node] control endpoint "
        "(and a Python prompt on the [manhole] listen endpoint, if configured). "
        "A bad config is refused with one 'file: section.key: problem' line per problem, exit 2."
    )

    def postOptions(self) -> None:
        problems: list[str] = []
        host_id = self["host-id"]
        if host_id is not None:
            if not (host_id.isascii() and host_id.isdigit()):
                problems.append(f"--host-id: expected an integer 1..65535, got {host_id!r}")
            host_id = int(host_id) if not problems else None
        try:
            self.loaded = load_config(self["config"], role=self["role"], host_id=host_id)
        except ConfigError as e:
            problems.extend(e.problems)
        else:
            problems.extend(host_problems(self.loaded, starting=True))
            try:
                self.services = declarations(self.loaded.services)
            except ValueError as e:
                problems.append(f"{self['config']}: {e}")
        if problems:
            # twistd would print the whole usage text; an operator wants only what is wrong.
            print("\n".join(problems), file=sys.stderr)
            raise SystemExit(2)


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor  # the shell picks the reactor; nothing below imports it

    config: Config = options.loaded
    top = MultiService()
    node = NodeService(config, options.services, reactor)
    node.setServiceParent(top)

    site = control_site(node.status, node.move, node.metrics.registry)
    _listen(reactor, config.node.control, site).setServiceParent(top)
    if config.manhole is not None:
        # After the node, so the node has started when the manhole opens (and closes before it stops).
        from rais.manhole import manhole_factory  # twisted.conch only when there is a manhole

        _listen(reactor, config.manhole.listen, manhole_factory(node, reactor, config.manhole.passwd)
                ).setServiceParent(top)
    return top


def _listen(reactor: Any, where: tuple[str, int], factory: Any) -> StreamServerEndpointService:
    listening = StreamServerEndpointService(_endpoint(reactor, *where), factory)
    # Should the port be taken after postOptions found it free, fail the start, not later.
    listening._raiseSynchronously = True
    return listening


def _endpoint(reactor: Any, host: str, port: int) -> Any:
    # A host name such as localhost: bind() resolves it as IPv4.
    endpoint = TCP6ServerEndpoint if ip_version(host) == 6 else TCP4ServerEndpoint
    return endpoint(reactor, port, interface=host)
