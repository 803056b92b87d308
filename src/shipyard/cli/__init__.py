"""The ``shipyard`` command line: a thin shell over the library."""

from shipyard.cli.commands import app, main

__all__ = ["app", "main"]
