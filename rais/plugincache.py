"""Regenerate the Twisted plugin caches (dropin.cache), which go stale after install."""

from twisted.plugin import IPlugin, getPlugins

import probes
from rais.interfaces import IProbe


def main() -> None:
    list(getPlugins(IPlugin))
    list(getPlugins(IProbe, probes))  # the built-in probes' folder (plus any `probes` on sys.path)


if __name__ == "__main__":
    main()
