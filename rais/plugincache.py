"""Regenerate the Twisted plugin caches (dropin.cache), which go stale after install."""

from twisted.plugin import IPlugin, getPlugins


def main() -> None:
    list(getPlugins(IPlugin))


if __name__ == "__main__":
    main()
