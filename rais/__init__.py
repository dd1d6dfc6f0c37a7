"""RAIS: a Redundant Array of Inexpensive Servers."""

__version__ = "0.1.0"
