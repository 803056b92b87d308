"""The single source of shipyard's version."""

__version__ = "0.1.0"
