"""Demos beyond Adult: ``shipyard demo spam`` and ``shipyard demo recommend``."""
