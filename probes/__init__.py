"""Probe plugins for RAIS, found at run time with twisted.plugin.getPlugins.

Extend the search path so modules in other folders named ``probes`` on
sys.path are found too, the way twisted.plugins does.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list[str] = []
