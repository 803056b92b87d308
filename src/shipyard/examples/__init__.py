"""Example pipeline configs shipped with shipyard (``adult.yaml`` drives ``shipyard demo``)."""

from importlib import resources
from pathlib import Path

__all__ = ["example_path"]


def example_path(name: str) -> Path:
    """Path of a packaged example config, for example ``example_path("adult")``."""
    return Path(str(resources.files(__name__).joinpath(f"{name}.yaml")))
