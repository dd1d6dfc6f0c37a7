"""twistd entry point: `twistd -n --pidfile= rais --config etc/rais.toml [--role R] [--host-id N]
[--log-level LEVEL] [--log-format text|json]`."""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.logger import ILogObserver
from twisted.python import usage
from twisted.python.components import Componentized

from rais.catalogue import declarations
from rais.config import Config, ConfigError, host_problems, ip_version, load_config
from rais.control import control_site
from rais.daemon import NodeService
from rais.logs import FORMATS, LEVELS, json_observer, level, log_file
from rais.states import Role


class Options(usage.Options):
    synopsis = ("[--config PATH] [--role active|standby|master] [--host-id N] [--log-level LEVEL] "
                "[--log-format text|json]")
    optParameters = [
        ["config", "c", "/etc/rais/rais.toml", "The node's TOML config file."],
        ["role", "r", None, f"Start in this role ({', '.join(Role)}), overriding [node] role."],
        ["host-id", "i", None, "This host's id, 1..65535, overriding [node] host_id."],
        ["log-level", None, "info", f"Log events at this level and above ({', '.join(LEVELS)})."],
        ["log-format", None, "text", "text, or json: one JSON object per line, with every field of each event "
                                     "(to twistd's --logfile)."],
    ]
    longdesc = (
        "Runs one RAIS node: it multicasts authenticated heartbeats to the cluster group, "
        "tracks every host it hears, and serves its status on the [node] control endpoint "
        "(and a Python prompt on the [manhole] listen endpoint, if configured). "
        "A bad config is refused with one 'file: section.key: problem' line per problem, exit 2."
    )

    def postOptions(self) -> None:
        problems: list[str] = []
        try:
            self.log_level = level(self["log-level"])
        except ValueError as e:
            problems.append(str(e))
        if self["log-format"] not in FORMATS:
            problems.append(f"--log-format: expected one of {', '.join(FORMATS)}, got {self['log-format']!r}")
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
    # twistd's own options (--logfile, --nodaemon), when twistd runs this plugin.
    twistd_options = getattr(options, "parent", None) or {}
    top = NodeRoot(json_observer(log_file(twistd_options)) if options["log-format"] == "json" else None)
    node = NodeService(config, options.services, reactor, options.log_level)
    node.setServiceParent(top)

    site = control_site(node.status, node.operate, node.metrics.registry)
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


class NodeRoot(MultiService):
    """The node's services. twistd asks the application it puts them in for an ILogObserver
    before it makes its own text log: this gives it ``observer`` (--log-format json), if any."""

    def __init__(self, observer: ILogObserver | None) -> None:
        super().__init__()
        self.observer = observer

    def setServiceParent(self, parent: Any) -> Any:
        if self.observer is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.observer)
        return super().setServiceParent(parent)


def _endpoint(reactor: Any, host: str, port: int) -> Any:
    # A host name such as localhost: bind() resolves it as IPv4.
    endpoint = TCP6ServerEndpoint if ip_version(host) == 6 else TCP4ServerEndpoint
    return endpoint(reactor, port, interface=host)
